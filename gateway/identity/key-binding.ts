// Binding the log's signing key to the job: under GitHub Actions, a GitHub OIDC token whose
// audience names the key's thumbprint; and the claims rules match on, as GitHub signed them.
import { keyAudience, type CheckpointSigner } from '../evidence/checkpoint.ts';
import { canRequestIdToken, requestIdToken } from './github-oidc.ts';
import type { Claims } from '../policy/engine.ts';

export class KeyBindingError extends Error {}

/**
 * Under GitHub Actions, a GitHub OIDC token whose audience names the signing key's thumbprint:
 * GitHub's signature then binds the key to this job. Without the token request variables the
 * log is unattested. A failed request stops the start: evidence that claims an identity it
 * cannot prove is worse than none.
 */
export async function attest(signer: CheckpointSigner, env: NodeJS.ProcessEnv): Promise<unknown> {
  if (!canRequestIdToken(env)) return 'unattested';
  const audience = keyAudience(signer.thumbprint);
  try {
    return { kind: 'github-oidc', audience, token: await requestIdToken(env, audience) };
  } catch (e) {
    throw new KeyBindingError(`cannot bind the session log's signing key to this job: ${(e as Error).message}`);
  }
}

/**
 * The claims rules match on. Under Actions they come from the OIDC token GitHub signed (ref,
 * actor, event and the job's environment, which no variable names), not from variables a
 * workflow could set; elsewhere from the local environment.
 */
export function claimsOf(attestation: unknown, local: Claims): Claims {
  const token = (attestation as { token?: unknown } | null)?.token;
  if (typeof token !== 'string') return local;
  let c: Record<string, unknown>;
  try {
    c = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return local;
  }
  const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
  const out: Claims = { ...local };
  for (const [claim, key] of [['ref', 'ref'], ['actor', 'actor'], ['event_name', 'event'], ['environment', 'environment']] as const) {
    const v = str(c[claim]);
    if (v !== undefined) out[key] = v;
  }
  return out;
}

