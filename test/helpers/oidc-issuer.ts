// A local stand-in for GitHub Actions' OIDC issuer, speaking the documented contract over real
// HTTP: the runner's token request (GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=..., bearer
// $ACTIONS_ID_TOKEN_REQUEST_TOKEN, answer {"value": JWT}), the OpenID discovery document and
// the JWKS. Tokens are RS256 with a kid, carrying GitHub's claim set for the configured job.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes, randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';

export interface JobClaims {
  repository: string;
  workflowFile: string;
  ref: string;
  sha: string;
  runId: string;
  runAttempt: string;
  eventName: string;
  actor: string;
  triggeringActor: string;
  environment?: string;
}

export const DEFAULT_JOB: JobClaims = {
  repository: 'octo-org/payments',
  workflowFile: '.github/workflows/migrate.yml',
  ref: 'refs/heads/main',
  sha: 'a3c5e1f09b2d4c6e8f0a1b3c5d7e9f1a2b4c6d8e',
  runId: '9876543210',
  runAttempt: '1',
  eventName: 'push',
  actor: 'alice',
  triggeringActor: 'alice',
};

export interface OidcIssuer {
  url: string;
  /** What a job's environment holds for token requests. */
  requestEnv: { ACTIONS_ID_TOKEN_REQUEST_URL: string; ACTIONS_ID_TOKEN_REQUEST_TOKEN: string };
  /** GITHUB_* variables matching the job claims, as the runner sets them. */
  githubEnv(): Record<string, string>;
  job: JobClaims;
  /** Token lifetime in seconds (GitHub's are minutes). */
  lifetimeS: number;
  /** The public key set, as served at jwks_uri. */
  jwks(): { keys: JWK[] };
  /** Signs a token directly (for forgeries and edge cases), with claims overridden. */
  mint(audience: string | string[], overrides?: Record<string, unknown>, iat?: number): Promise<string>;
  /** Audiences requested through the runner contract, in order. */
  requests: string[];
  /** How often the JWKS was fetched (offline verification must not fetch it). */
  jwksFetches: number;
  close(): Promise<void>;
}

export async function startOidcIssuer(job: Partial<JobClaims> = {}): Promise<OidcIssuer> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const kid = randomBytes(8).toString('hex');
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  const bearer = randomBytes(24).toString('base64url');
  const requests: string[] = [];
  let url = '';
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', url);
    const send = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (u.pathname === '/.well-known/openid-configuration') {
      return send(200, {
        issuer: url, jwks_uri: `${url}/.well-known/jwks`, subject_types_supported: ['public', 'pairwise'],
        response_types_supported: ['id_token'], id_token_signing_alg_values_supported: ['RS256'], scopes_supported: ['openid'],
        claims_supported: ['sub', 'aud', 'exp', 'iat', 'iss', 'jti', 'nbf', 'ref', 'sha', 'repository', 'run_id', 'run_attempt', 'actor', 'workflow_ref'],
      });
    }
    if (u.pathname === '/.well-known/jwks') {
      issuer.jwksFetches++;
      return send(200, { keys: [publicJwk] });
    }
    if (u.pathname.endsWith('/idtoken')) {
      if (req.headers.authorization !== `Bearer ${bearer}`) return send(401, { message: 'bad request token' });
      const audience = u.searchParams.get('audience') ?? `https://github.com/${issuer.job.repository.split('/')[0]}`;
      requests.push(audience);
      void issuer.mint(audience).then((value) => send(200, { count: 1, value }), (e: Error) => send(500, { message: e.message }));
      return;
    }
    send(404, { message: 'not found' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const issuer: OidcIssuer = {
    url,
    requestEnv: { ACTIONS_ID_TOKEN_REQUEST_URL: `${url}/_apis/distributedtask/hubs/Actions/plans/p1/jobs/j1/idtoken?api-version=2.0`, ACTIONS_ID_TOKEN_REQUEST_TOKEN: bearer },
    job: { ...DEFAULT_JOB, ...job },
    lifetimeS: 300,
    requests,
    jwksFetches: 0,
    jwks: () => ({ keys: [publicJwk] }),
    githubEnv() {
      const j = this.job;
      return {
        GITHUB_ACTIONS: 'true', GITHUB_REPOSITORY: j.repository, GITHUB_WORKFLOW_REF: `${j.repository}/${j.workflowFile}@${j.ref}`,
        GITHUB_RUN_ID: j.runId, GITHUB_RUN_ATTEMPT: j.runAttempt, GITHUB_SHA: j.sha, GITHUB_REF: j.ref, GITHUB_EVENT_NAME: j.eventName,
        GITHUB_ACTOR: j.actor, GITHUB_TRIGGERING_ACTOR: j.triggeringActor, GITHUB_JOB: 'migrate',
      };
    },
    async mint(audience, overrides = {}, iat = Math.floor(Date.now() / 1000)) {
      const j = issuer.job;
      const [owner] = j.repository.split('/');
      const workflowRef = `${j.repository}/${j.workflowFile}@${j.ref}`;
      const claims: Record<string, unknown> = {
        // GitHub's subject: the environment when the job has one, else pull_request for PR events, else the ref.
        jti: randomUUID(), sub: j.environment ? `repo:${j.repository}:environment:${j.environment}` : j.eventName.startsWith('pull_request') ? `repo:${j.repository}:pull_request` : `repo:${j.repository}:ref:${j.ref}`, ref: j.ref, sha: j.sha, repository: j.repository,
        repository_owner: owner, repository_owner_id: '1001', repository_id: '2002', repository_visibility: 'private',
        run_id: j.runId, run_number: '42', run_attempt: j.runAttempt, actor: j.actor, actor_id: '3003',
        triggering_actor: j.triggeringActor, workflow: 'migrate', workflow_ref: workflowRef, workflow_sha: j.sha,
        job_workflow_ref: workflowRef, job_workflow_sha: j.sha, event_name: j.eventName, ref_type: 'branch',
        head_ref: '', base_ref: '', runner_environment: 'github-hosted',
        ...(j.environment ? { environment: j.environment } : {}),
        ...overrides,
      };
      return new SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT', x5t: kid })
        .setIssuer(url)
        .setAudience(audience)
        .setIssuedAt(iat)
        .setNotBefore(iat - 5)
        .setExpirationTime(iat + issuer.lifetimeS)
        .sign(privateKey);
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  return issuer;
}
