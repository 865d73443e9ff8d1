// The whole verdict on a session log: its chain and signatures, then who held the signing key.
// One function shared by `verify`, `report` and the Action's post step.
import { verifyChainFile, type ChainResult } from './log-verifier.ts';
import { checkAttestation, type IdentityCheck, type IdentityOptions } from './attestation-check.ts';
import { emptyTotals } from './log-totals.ts';

export type VerifyStatus = 'valid' | 'tampered' | 'unsealed' | 'unreadable' | 'identity-mismatch' | 'identity-unchecked';

/** Exit codes of `gateway-action verify` (2 is a usage error), documented in docs/session-log.md. */
export const VERIFY_EXIT: Record<VerifyStatus, number> = {
  valid: 0, tampered: 1, unreadable: 3, unsealed: 4, 'identity-mismatch': 5, 'identity-unchecked': 6,
};

export interface Verification {
  file: string;
  status: VerifyStatus;
  /** The most serious problem, naming the record by sequence number and line where there is one. */
  problem: string | null;
  chain: ChainResult;
  /** Null when the chain was too broken to trust anything it says. */
  identity: IdentityCheck | null;
}

/**
 * Most serious first: an unreadable or tampered log says nothing reliable about identity; a
 * wrong identity matters more than a missing seal; an identity that could not be checked
 * (issuer unreachable) is reported before the seal because it is fixable with --jwks.
 */
/** The verdict on a log that cannot be read at all. */
export function unreadableLog(file: string, problem: string): Verification {
  const chain: ChainResult = { status: 'unreadable', problem, sealed: false, signing: { thumbprint: null, lastCheckpoint: null, unsignedRecords: 0 }, totals: emptyTotals(), signedTotals: null, runStart: null, lastHash: '' };
  return { file, status: 'unreadable', problem, chain, identity: null };
}

export async function verifyLog(file: string, opts: IdentityOptions = {}): Promise<Verification> {
  let chain: ChainResult;
  try {
    chain = await verifyChainFile(file);
  } catch (e) {
    return unreadableLog(file, `cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (chain.status === 'unreadable' || chain.status === 'tampered' || !chain.runStart) {
    return { file, status: chain.status === 'valid' ? 'unreadable' : chain.status, problem: chain.problem, chain, identity: null };
  }
  const identity = await checkAttestation(chain.runStart, opts);
  if (identity.status === 'mismatch') return { file, status: 'identity-mismatch', problem: identity.problem, chain, identity };
  if (identity.status === 'unavailable') return { file, status: 'identity-unchecked', problem: identity.problem, chain, identity };
  return { file, status: chain.status, problem: chain.problem, chain, identity };
}

/** The claims an auditor reads, in order, with their labels. */
export const IDENTITY_FIELDS: [claim: string, label: string][] = [
  ['repository', 'repository'],
  ['workflow_ref', 'workflow'],
  ['run_id', 'run id'],
  ['run_attempt', 'run attempt'],
  ['sha', 'commit'],
  ['ref', 'ref'],
  ['event_name', 'event'],
  ['actor', 'actor'],
  ['triggering_actor', 'triggering actor'],
];

export interface IdentitySummary {
  /** 'verified' (signed by the issuer), 'unattested' (local run), or why it is not verified. */
  status: string;
  issuer: string | null;
  /** Claim name to value; from the token when attested, else from the run-start record. */
  claims: Record<string, string>;
}

export function identitySummary(v: Verification): IdentitySummary {
  const claims: Record<string, string> = {};
  const id = v.identity;
  if (id?.claims) {
    for (const [k] of IDENTITY_FIELDS) if (id.claims[k] !== undefined) claims[k] = String(id.claims[k]);
    return { status: id.status, issuer: id.issuer, claims };
  }
  const recorded = v.chain.totals.identity ?? {};
  for (const [k, val] of Object.entries(recorded)) if (val !== undefined && val !== null) claims[k] = String(val);
  return { status: id?.status ?? 'unchecked', issuer: null, claims };
}

/**
 * Which policy governed the run, as its run-start record says: `.github/gateway.yml at base
 * commit SHA (sha256 ...)` for a pull request's base version, `PATH (workspace, sha256 ...)` for a
 * file on disk; null when the log has no run-start or no policy member.
 */
export function policyOrigin(v: Verification): string | null {
  const p = v.chain.runStart?.policy as Record<string, unknown> | undefined;
  if (!p || typeof p !== 'object') return null;
  const digest = `sha256 ${typeof p.sha256 === 'string' ? p.sha256 : '?'}`;
  const file = typeof p.path === 'string' ? p.path : '?';
  if (p.from === 'base') return `${file} at base commit ${typeof p.commit === 'string' ? p.commit : '?'} (${digest})`;
  if (p.from === 'workspace') return `${file} (workspace, ${digest})`;
  // Logs from before the source was recorded.
  return `${file} (${digest})`;
}

/** One line for the top of a report or the verify output. */
export function headline(v: Verification): string {
  const c = v.chain;
  const sig = `${c.totals.checkpoints} checkpoint${c.totals.checkpoints === 1 ? '' : 's'} signed`;
  const who = v.identity?.status === 'verified' ? `identity verified by ${v.identity.issuer}` : v.identity?.status === 'unattested' ? 'identity unattested (no OIDC token: a local run)' : '';
  switch (v.status) {
    case 'valid': return `VALID: hash chain intact, ${sig}, sealed; ${who}`;
    case 'tampered': return `TAMPERED: ${v.problem}`;
    case 'unsealed': return `UNSEALED: ${v.problem}${who ? `; ${who}` : ''}`;
    case 'unreadable': return `UNREADABLE: ${v.problem}`;
    case 'identity-mismatch': return `IDENTITY MISMATCH: ${v.problem}`;
    case 'identity-unchecked': return `IDENTITY NOT CHECKED: ${v.problem}`;
  }
}
