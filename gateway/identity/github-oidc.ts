// GitHub Actions' OIDC token request, the documented runner contract: GET
// $ACTIONS_ID_TOKEN_REQUEST_URL with an `audience` query parameter and the bearer
// $ACTIONS_ID_TOKEN_REQUEST_TOKEN; the answer is {"value": "<JWT>"}. The job needs
// `permissions: id-token: write`, without which the runner does not set the variables.
import fs from 'node:fs';
import { localIdentity, type Identity } from './local.ts';

export const GITHUB_ISSUER = 'https://token.actions.githubusercontent.com';

export class OidcRequestError extends Error {}

/** True when this process runs in a GitHub Actions job that may request OIDC tokens. */
export function canRequestIdToken(env: NodeJS.ProcessEnv): boolean {
  return Boolean(env.ACTIONS_ID_TOKEN_REQUEST_URL);
}

const ATTEMPTS = 3;

/** Requests a token for `audience`; retries server errors and network failures briefly. */
export async function requestIdToken(env: NodeJS.ProcessEnv, audience: string): Promise<string> {
  const base = env.ACTIONS_ID_TOKEN_REQUEST_URL;
  const bearer = env.ACTIONS_ID_TOKEN_REQUEST_TOKEN;
  if (!base) throw new OidcRequestError('ACTIONS_ID_TOKEN_REQUEST_URL is not set (the job needs `permissions: id-token: write`)');
  if (!bearer) throw new OidcRequestError('ACTIONS_ID_TOKEN_REQUEST_URL is set but ACTIONS_ID_TOKEN_REQUEST_TOKEN is not');
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw new OidcRequestError('ACTIONS_ID_TOKEN_REQUEST_URL is not a URL');
  }
  url.searchParams.set('audience', audience);
  let last = '';
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    try {
      const res = await fetch(url, { headers: { authorization: `Bearer ${bearer}`, accept: 'application/json; api-version=2.0' }, signal: AbortSignal.timeout(15_000) });
      const body = await res.text();
      if (res.ok) {
        const value = (safeJson(body) as { value?: unknown } | null)?.value;
        if (typeof value !== 'string' || value.split('.').length !== 3) throw new OidcRequestError(`the OIDC token request to ${url.host} answered without a token`);
        return value;
      }
      // The body may echo request details; report the status only.
      last = `HTTP ${res.status} ${res.statusText}`;
      if (res.status < 500 && res.status !== 429) break;
    } catch (e) {
      if (e instanceof OidcRequestError) throw e;
      last = (e as Error).message;
    }
    if (attempt < ATTEMPTS) await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
  }
  throw new OidcRequestError(`the OIDC token request to ${url.host} failed: ${last}`);
}

/**
 * What the runner says about the job, for the log's `identity` member. These are claims, not
 * proof: the attestation token is what `verify` checks.
 */
export function actionsIdentity(env: NodeJS.ProcessEnv): Identity {
  const pick = (k: string): string | undefined => env[k] || undefined;
  return {
    kind: 'github-actions',
    repository: pick('GITHUB_REPOSITORY'),
    workflow_ref: pick('GITHUB_WORKFLOW_REF'),
    run_id: pick('GITHUB_RUN_ID'),
    run_attempt: pick('GITHUB_RUN_ATTEMPT'),
    sha: pick('GITHUB_SHA'),
    ref: pick('GITHUB_REF'),
    event_name: pick('GITHUB_EVENT_NAME'),
    actor: pick('GITHUB_ACTOR'),
    triggering_actor: pick('GITHUB_TRIGGERING_ACTOR'),
    job: pick('GITHUB_JOB'),
    ...prClaims(pullRequestOfEvent(env)),
  };
}

export interface EventPullRequest { number: number; author: string; headSha: string | null }

/**
 * The pull request a job runs for, from the event payload (GITHUB_EVENT_PATH) of pull_request*
 * events: its number, author and head commit (GITHUB_SHA is then a merge commit nobody pushed).
 */
export function pullRequestOfEvent(env: NodeJS.ProcessEnv): EventPullRequest | null {
  if (!env.GITHUB_EVENT_PATH || !(env.GITHUB_EVENT_NAME ?? '').startsWith('pull_request')) return null;
  try {
    const pr = (JSON.parse(fs.readFileSync(env.GITHUB_EVENT_PATH, 'utf8')) as { pull_request?: { number?: unknown; user?: { login?: unknown }; head?: { sha?: unknown } } }).pull_request;
    if (typeof pr?.number !== 'number') return null;
    return { number: pr.number, author: typeof pr.user?.login === 'string' ? pr.user.login : '', headSha: typeof pr.head?.sha === 'string' ? pr.head.sha : null };
  } catch {
    return null;
  }
}

function prClaims(pr: EventPullRequest | null): { pull_request?: number; head_sha?: string } {
  return pr ? { pull_request: pr.number, ...(pr.headSha ? { head_sha: pr.headSha } : {}) } : {};
}

/** The identity a run records: the GitHub job's when in Actions, else the local user. */
export function runIdentity(env: NodeJS.ProcessEnv = process.env): Identity {
  return env.GITHUB_ACTIONS === 'true' ? actionsIdentity(env) : localIdentity();
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
