// The policy file as the pull request's base commit has it: from the local clone when that commit
// is there (`git cat-file`: content addressed, so the bytes are the commit's), else from GitHub's
// contents API with the job's token. A pull request can edit the checked-out file; it cannot
// edit its base commit. Every way this can fail stops the action with what to do about it.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { GitHubApiError, RepoClient } from '../gateway/github/repo-client.ts';
import { isCommitSha, type PolicySource } from '../gateway/config/policy-source.ts';

export type BaseSource = Extract<PolicySource, { from: 'base' }>;

export interface BasePolicy { bytes: Buffer; source: BaseSource }

/** The base policy cannot be read: the action starts nothing. */
export class BasePolicyError extends Error {}

const run = promisify(execFile);
const GIT_TIMEOUT_MS = 30_000;

export async function readBasePolicy(o: { env: NodeJS.ProcessEnv; workspace: string; policyFile: string; token: string }): Promise<BasePolicy> {
  const commit = baseCommit(o.env);
  const repository = o.env.GITHUB_REPOSITORY ?? '';
  if (!/^[^/\s]+\/[^/\s]+$/.test(repository)) throw new BasePolicyError(`policy-from: base: GITHUB_REPOSITORY is "${repository}", not OWNER/NAME, so the base commit's policy cannot be read`);
  refuseSymlinks(o.workspace, o.policyFile);
  const clone = await localClone(o.workspace, o.policyFile, o.env);
  const file = clone?.file ?? workspacePath(o.workspace, o.policyFile);
  const base = { repository, commit, file };
  if (clone && (await git(clone.top, ['cat-file', '-e', `${commit}^{commit}`], o.env)) !== null) {
    const bytes = await git(clone.top, ['cat-file', 'blob', `${commit}:${file}`], o.env);
    if (bytes === null) throw missing(file, commit);
    return { bytes, source: { from: 'base', ...base, via: 'git' } };
  }
  return { bytes: await fromApi(o.env, o.token, base), source: { from: 'base', ...base, via: 'api' } };
}

/**
 * The checkout is the pull request's: a directory on the policy's path that it turned into a
 * symlink would change which file is read at the base commit (and hide the diff). Every part of
 * the path below the workspace must be what it says.
 */
function refuseSymlinks(workspace: string, policyFile: string): void {
  const rel = path.relative(path.resolve(workspace), path.resolve(policyFile));
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) return;
  let at = path.resolve(workspace);
  for (const part of rel.split(path.sep)) {
    at = path.join(at, part);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(at);
    } catch {
      return;
    }
    if (st.isSymbolicLink()) throw new BasePolicyError(`input "policy": ${path.relative(path.resolve(workspace), at)} is a symbolic link in the pull request's checkout, which could make another file at the base commit stand for the policy; give the policy's real path`);
  }
}

/** `pull_request.base.sha` of the event payload: the commit the pull request would merge into. */
function baseCommit(env: NodeJS.ProcessEnv): string {
  const file = env.GITHUB_EVENT_PATH;
  if (!file) throw new BasePolicyError('policy-from: base needs the pull request\'s base commit, but GITHUB_EVENT_PATH (the event payload) is not set');
  let payload: unknown;
  try {
    payload = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new BasePolicyError(`policy-from: base needs the pull request's base commit, but the event payload ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const sha = (payload as { pull_request?: { base?: { sha?: unknown } } } | null)?.pull_request?.base?.sha;
  if (!isCommitSha(sha)) throw new BasePolicyError(`policy-from: base needs the pull request's base commit, but the event payload has no pull_request.base.sha${sha === undefined ? '' : ` that is a commit SHA (it has ${JSON.stringify(sha).slice(0, 80)})`}`);
  return sha;
}

/**
 * The clone the workspace policy file is in (its top directory) and the file's path in it, when
 * git can tell (a checkout in a subdirectory of the workspace included); null otherwise.
 */
async function localClone(workspace: string, policyFile: string, env: NodeJS.ProcessEnv): Promise<{ top: string; file: string } | null> {
  // The file itself may be missing (the pull request deletes it): ask from the nearest directory.
  let dir = path.dirname(policyFile);
  while (!fs.existsSync(dir) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  const out = await git(dir, ['rev-parse', '--show-toplevel'], env);
  if (out === null) return null;
  const top = fs.realpathSync(out.toString('utf8').trim());
  // A repository around the workspace is not the job's checkout.
  if (!fs.existsSync(workspace) || path.relative(fs.realpathSync(workspace), top).startsWith('..')) return null;
  const rel = path.relative(top, path.join(fs.realpathSync(dir), path.relative(dir, policyFile)));
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) return null;
  return { top, file: rel.split(path.sep).join('/') };
}

/** Without a clone, the workspace is taken as the repository's root (actions/checkout's default). */
function workspacePath(workspace: string, policyFile: string): string {
  const rel = path.relative(path.resolve(workspace), policyFile);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new BasePolicyError(`input "policy": ${policyFile} is outside the workspace (${workspace}), so it has no path in the repository to read at the base commit; give the file's path in the repository, or set policy-from: workspace`);
  }
  return rel.split(path.sep).join('/');
}

/** git's output, or null when it fails (no git, not a clone, no such object). */
async function git(cwd: string, args: string[], env: NodeJS.ProcessEnv): Promise<Buffer | null> {
  // GIT_DIR and friends from the job's environment would point git at another repository.
  const clean = Object.fromEntries(Object.entries(env).filter(([k]) => !k.startsWith('GIT_')));
  try {
    const { stdout } = await run('git', args, { cwd, env: clean, encoding: 'buffer', timeout: GIT_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch {
    return null;
  }
}

const missing = (file: string, commit: string): BasePolicyError => new BasePolicyError(
  `the policy file ${file} does not exist at the pull request's base commit ${commit}, so there is no policy this pull request cannot change. `
  + 'If this pull request adds it, it takes effect once merged: merge the policy first, or set policy-from: workspace for this workflow (the pull request\'s own version then applies).',
);

async function fromApi(env: NodeJS.ProcessEnv, token: string, base: Omit<BaseSource, 'from' | 'via'>): Promise<Buffer> {
  if (!token) throw new BasePolicyError(`policy-from: base reads ${base.file} at the base commit ${base.commit} through GitHub's API, but the github-token input is empty (the base commit is not in the local clone)`);
  const [owner, repo] = base.repository.split('/') as [string, string];
  const apiUrl = env.GITHUB_API_URL || 'https://api.github.com';
  try {
    return await new RepoClient({ owner, repo, token, apiUrl }).fileAt(base.file, base.commit);
  } catch (e) {
    if (!(e instanceof GitHubApiError)) throw new BasePolicyError(`cannot read the policy at the pull request's base commit ${base.commit} from ${apiUrl}: ${(e as Error).message}`);
    if (e.status === 404) throw missing(base.file, base.commit);
    if (e.status === 401 || e.kind === 'forbidden') {
      throw new BasePolicyError(`GitHub refused to let the token read ${base.file} at the pull request's base commit ${base.commit} (${e.status}): the token lacks contents: read. Add \`permissions: contents: read\` to the job (or give a github-token that can read the repository's contents)`);
    }
    if (e.kind === 'rate-limit') throw new BasePolicyError(`GitHub rate-limited reading ${base.file} at the pull request's base commit ${base.commit}; try again later`);
    throw new BasePolicyError(`cannot read ${base.file} at the pull request's base commit ${base.commit} from ${apiUrl}: ${e.message}`);
  }
}
