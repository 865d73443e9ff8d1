// Who held the log's signing key: the run-start record carries a GitHub OIDC token whose
// audience names the key's thumbprint. Checked against the issuer's key set (fetched, or a saved
// file for offline work), as of the token's own issue time: tokens expire minutes after issue,
// audits happen months later.
import fs from 'node:fs';
import { createLocalJWKSet, decodeJwt, errors, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose';
import { keyAudience } from './checkpoint.ts';
import { GITHUB_ISSUER } from '../identity/github-oidc.ts';

export type IdentityStatus = 'verified' | 'unattested' | 'mismatch' | 'unavailable';

export interface Expectations { repository?: string; workflow?: string; sha?: string }

export interface IdentityOptions {
  /** A saved JWKS file: verify without network access. */
  jwksFile?: string;
  /** The expected token issuer, whose key set is fetched unless jwksFile is given. */
  issuer?: string;
  expect?: Expectations;
}

export interface IdentityCheck {
  status: IdentityStatus;
  problem: string | null;
  issuer: string | null;
  /** The token's claims: verified when status is 'verified'. */
  claims: JWTPayload | null;
  /** The key set the token was checked against (to save next to the log). */
  jwks: JSONWebKeySet | null;
}

/** Longest the token's issue time may lie before the log's start (clock skew and a slow token request). */
const ISSUED_BEFORE_START_S = 300;
/** Longest it may lie after: the token is requested before the run-start record is written. */
const ISSUED_AFTER_START_S = 60;

export async function checkAttestation(runStart: Record<string, unknown>, opts: IdentityOptions = {}): Promise<IdentityCheck> {
  const issuer = (opts.issuer ?? GITHUB_ISSUER).replace(/\/+$/, '');
  const expect = opts.expect ?? {};
  const demanded = Object.values(expect).some(Boolean) || opts.jwksFile !== undefined || opts.issuer !== undefined;
  const base: IdentityCheck = { status: 'unattested', problem: null, issuer: null, claims: null, jwks: null };
  const a = runStart.attestation as { kind?: unknown; token?: unknown; audience?: unknown } | string | undefined;
  if (a === 'unattested' || a === undefined) {
    if (!demanded) return base;
    return { ...base, status: 'mismatch', problem: 'the log is unattested (it was not written in a GitHub Actions job with id-token: write), so its identity cannot be checked' };
  }
  if (a === null || typeof a !== 'object' || a.kind !== 'github-oidc' || typeof a.token !== 'string') {
    return { ...base, status: 'mismatch', problem: 'the run-start attestation is not a GitHub OIDC token' };
  }
  const thumbprint = String((runStart.key as { thumbprint?: unknown } | undefined)?.thumbprint ?? '');
  let claims: JWTPayload;
  try {
    claims = decodeJwt(a.token);
  } catch {
    return { ...base, status: 'mismatch', problem: 'the attestation token is not a JWT' };
  }
  const fail = (status: IdentityStatus, problem: string, jwks: JSONWebKeySet | null = null): IdentityCheck => ({ status, problem, issuer, claims, jwks });
  if (typeof claims.iat !== 'number' || !Number.isFinite(claims.iat)) return fail('mismatch', 'the attestation token has no issue time (iat)');
  // One audience, exactly this key's: a token valid for several audiences is not bound to one key.
  if (typeof claims.aud !== 'string') return fail('mismatch', 'the attestation token\'s audience is not a single string');
  let jwks: JSONWebKeySet;
  try {
    jwks = opts.jwksFile ? readJwks(opts.jwksFile) : await fetchJwks(issuer);
  } catch (e) {
    return fail('unavailable', (e as Error).message);
  }
  try {
    await jwtVerify(a.token, createLocalJWKSet(jwks), {
      issuer,
      audience: keyAudience(thumbprint),
      currentDate: new Date(claims.iat * 1000),
      algorithms: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'],
      requiredClaims: ['iss', 'aud', 'iat', 'exp'],
    });
  } catch (e) {
    return fail('mismatch', explain(e, claims, issuer, thumbprint), jwks);
  }
  const started = Date.parse(String(runStart.time));
  const skew = claims.iat - Math.floor(started / 1000);
  if (!(skew >= -ISSUED_BEFORE_START_S && skew <= ISSUED_AFTER_START_S)) {
    return fail('mismatch', `the attestation token was issued at ${new Date(claims.iat * 1000).toISOString()}, which does not fit the log's start at ${String(runStart.time)} (allowed: ${ISSUED_BEFORE_START_S}s before to ${ISSUED_AFTER_START_S}s after)`, jwks);
  }
  const mismatch = expectationProblem(claims, expect) ?? recordedIdentityProblem(claims, runStart.identity as Record<string, unknown> | undefined);
  if (mismatch) return fail('mismatch', mismatch, jwks);
  return { status: 'verified', problem: null, issuer, claims, jwks };
}

function explain(e: unknown, claims: JWTPayload, issuer: string, thumbprint: string): string {
  if (e instanceof errors.JWTClaimValidationFailed) {
    if (e.claim === 'aud') return `the attestation token's audience ${JSON.stringify(claims.aud)} does not name this log's signing key (${keyAudience(thumbprint)}): the key was replaced or the token belongs to another log`;
    if (e.claim === 'iss') return `the attestation token was issued by ${JSON.stringify(claims.iss)}, expected ${issuer}`;
    return `the attestation token's ${e.claim} claim is invalid: ${e.message}`;
  }
  if (e instanceof errors.JWTExpired) return `the attestation token had expired at its own issue time: ${e.message}`;
  if (e instanceof errors.JWKSNoMatchingKey) return `no key in ${issuer}'s key set matches the attestation token (forged, or the key set is not the issuer's)`;
  if (e instanceof errors.JWSSignatureVerificationFailed) return `the attestation token's signature does not verify with ${issuer}'s key set (forged or altered)`;
  return `the attestation token does not verify: ${(e as Error).message}`;
}

function expectationProblem(c: JWTPayload, expect: Expectations): string | null {
  const repo = typeof c.repository === 'string' ? c.repository : '';
  if (expect.repository && repo.toLowerCase() !== expect.repository.toLowerCase()) {
    return `the token was issued to repository ${repo || '(none)'}, expected ${expect.repository}`;
  }
  const wf = String(c.workflow_ref ?? '');
  if (expect.workflow && !workflowMatches(wf, repo, expect.workflow)) {
    return `the token was issued to workflow ${wf || '(none)'}, expected ${expect.workflow}`;
  }
  const sha = String(c.sha ?? '').toLowerCase();
  const want = expect.sha?.toLowerCase();
  if (want && !(sha === want || (want.length >= 7 && /^[0-9a-f]+$/.test(want) && sha.startsWith(want)))) {
    return `the token was issued for commit ${sha || '(none)'}, expected ${expect.sha}`;
  }
  return null;
}

/**
 * `--workflow` accepts the full workflow_ref (OWNER/REPO/.github/workflows/F.yml@REF), the same
 * without @REF, or the file path inside the repository with or without @REF.
 */
export function workflowMatches(workflowRef: string, repository: string, want: string): boolean {
  const [path, ref] = splitAt(workflowRef);
  const inRepo = path.toLowerCase().startsWith(repository.toLowerCase() + '/') ? path.slice(repository.length + 1) : path;
  const [wantPath, wantRef] = splitAt(want);
  const pathOk = wantPath === path || wantPath === inRepo;
  return pathOk && (wantRef === '' || wantRef === ref);
}

function splitAt(s: string): [string, string] {
  const at = s.indexOf('@');
  return at < 0 ? [s, ''] : [s.slice(0, at), s.slice(at + 1)];
}

/** The identity member is what the runner said; it must not contradict the signed token. */
function recordedIdentityProblem(c: JWTPayload, id: Record<string, unknown> | undefined): string | null {
  if (!id || id.kind !== 'github-actions') return null;
  for (const k of ['repository', 'run_id', 'run_attempt', 'sha'] as const) {
    if (id[k] !== undefined && c[k] !== undefined && String(id[k]) !== String(c[k])) {
      return `the log's identity says ${k} ${String(id[k])} but the attestation token says ${String(c[k])}`;
    }
  }
  return null;
}

function readJwks(file: string): JSONWebKeySet {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read the key set ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const jwks = safeJson(text) as JSONWebKeySet | null;
  if (!jwks || !Array.isArray(jwks.keys)) throw new Error(`${file} is not a JWKS (a JSON object with a "keys" array)`);
  return jwks;
}

/** The issuer's key set through its OpenID discovery document, as GitHub publishes it. */
async function fetchJwks(issuer: string): Promise<JSONWebKeySet> {
  const get = async (url: string): Promise<unknown> => {
    const res = await fetch(url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(15_000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    return res.json();
  };
  const discovery = `${issuer}/.well-known/openid-configuration`;
  try {
    const config = (await get(discovery)) as { jwks_uri?: unknown; issuer?: unknown };
    if (typeof config.jwks_uri !== 'string') throw new Error('the discovery document has no jwks_uri');
    const jwks = (await get(config.jwks_uri)) as JSONWebKeySet;
    if (!Array.isArray(jwks?.keys)) throw new Error(`${config.jwks_uri} is not a JWKS`);
    return jwks;
  } catch (e) {
    const why = (e as Error).cause ? `${(e as Error).message}: ${String(((e as Error).cause as Error).message ?? (e as Error).cause)}` : (e as Error).message;
    throw new Error(`cannot fetch the key set of ${issuer} (${why}); to verify offline, pass the saved key set with --jwks FILE`);
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
