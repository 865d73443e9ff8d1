// Where a policy's bytes came from: the workspace (a file on disk, the CLI's and a push job's
// case) or a pull request's base commit (the Action's default on pull requests, so a pull request
// cannot loosen the rules it runs under). The run-start record carries it, with the digest of
// the exact bytes loaded, so `verify` can say which policy governed a run.

export type PolicySource =
  | { from: 'workspace' }
  | {
    from: 'base';
    /** OWNER/NAME of the repository the commit is in. */
    repository: string;
    /** The base commit's full SHA (SHA-1 or SHA-256). */
    commit: string;
    /** The file's path in the repository at that commit. */
    file: string;
    /** How it was read: the local clone (`git cat-file`) or GitHub's contents API. */
    via: 'git' | 'api';
  };

const COMMIT = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;
const REPOSITORY = /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/;

/** Whether `s` is a full commit SHA as GitHub writes it (lower-case hex). */
export const isCommitSha = (s: unknown): s is string => typeof s === 'string' && COMMIT.test(s);

/**
 * Reads the daemon's `--policy-source` JSON; anything but a complete, well-formed source is
 * refused (a wrong one would put a false statement into the signed log).
 */
export function parsePolicySource(json: string): PolicySource {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    throw new Error(`--policy-source is not JSON: ${json.slice(0, 80)}`);
  }
  const o = (v !== null && typeof v === 'object' && !Array.isArray(v) ? v : {}) as Record<string, unknown>;
  if (o.from === 'workspace' && Object.keys(o).length === 1) return { from: 'workspace' };
  if (o.from === 'base') {
    const { repository, commit, file, via } = o;
    const extra = Object.keys(o).filter((k) => !['from', 'repository', 'commit', 'file', 'via'].includes(k));
    if (extra.length) throw new Error(`--policy-source: unknown member ${extra[0]}`);
    if (typeof repository !== 'string' || !REPOSITORY.test(repository)) throw new Error('--policy-source: repository must be OWNER/NAME');
    if (!isCommitSha(commit)) throw new Error('--policy-source: commit must be a full commit SHA in lower-case hex');
    if (typeof file !== 'string' || file === '' || file.startsWith('/') || file.split('/').includes('..')) throw new Error('--policy-source: file must be a path inside the repository');
    if (via !== 'git' && via !== 'api') throw new Error('--policy-source: via must be git or api');
    return { from: 'base', repository, commit, file, via };
  }
  throw new Error('--policy-source: from must be "workspace" or "base" (with repository, commit, file and via)');
}

/**
 * The run-start record's `policy` member: the file (for a base commit's, its path in the
 * repository), the SHA-256 of the bytes loaded, and where they came from.
 */
export function policyRecord(p: { path: string; sha256: string; source?: PolicySource }): Record<string, unknown> {
  const s = p.source ?? { from: 'workspace' };
  if (s.from === 'base') return { path: s.file, sha256: p.sha256, from: 'base', repository: s.repository, commit: s.commit, via: s.via };
  return { path: p.path, sha256: p.sha256, from: 'workspace' };
}
