// The commit status branch protection can require, on the commit the workflow is about: for pull
// request events the PR's head commit (GITHUB_SHA is then a merge commit nobody pushed). The job
// is read through @actions/github's context (GITHUB_* variables and the event payload at
// GITHUB_EVENT_PATH). The daemon keeps its own reader (gateway/identity/github-oidc.ts): it reads
// the environment it is given, not process.env, and dist/cli.js stays free of the toolkit.
import { Octokit } from '@octokit/rest';
import type { Outcome } from './outcome.ts';

export interface JobContext {
  repo: { owner: string; repo: string } | null;
  /** The commit the status goes on: the pull request's head, else GITHUB_SHA. */
  statusSha: string | null;
  apiUrl: string;
  /** The workflow run's page. */
  runUrl: string | null;
}

/**
 * The job as @actions/github's context describes it. The context is loaded on first use (it
 * reads process.env and parses the event payload then): an unreadable payload leaves the job's
 * own commit, as the runner's variables name it, instead of failing the post step at load.
 */
export async function jobContext(): Promise<JobContext> {
  let context: typeof import('@actions/github').context;
  try {
    ({ context } = await import('@actions/github'));
  } catch {
    return { repo: repoOf(process.env.GITHUB_REPOSITORY), statusSha: process.env.GITHUB_SHA || null, apiUrl: process.env.GITHUB_API_URL || 'https://api.github.com', runUrl: null };
  }
  const pr = context.eventName?.startsWith('pull_request') ? context.payload.pull_request : undefined;
  const head: unknown = pr?.head?.sha;
  let repo: JobContext['repo'] = null;
  try {
    repo = context.repo;
  } catch {
    // Neither GITHUB_REPOSITORY nor a repository in the payload.
  }
  return {
    repo,
    statusSha: typeof head === 'string' && head ? head : context.sha || null,
    apiUrl: context.apiUrl || 'https://api.github.com',
    runUrl: repo && Number.isFinite(context.runId) ? `${context.serverUrl}/${repo.owner}/${repo.repo}/actions/runs/${context.runId}` : null,
  };
}

function repoOf(name: string | undefined): JobContext['repo'] {
  const [owner, repo] = (name ?? '').split('/');
  return owner && repo ? { owner, repo } : null;
}

export async function setCommitStatus(token: string, job: JobContext, sha: string, statusContext: string, o: Outcome): Promise<void> {
  if (!job.repo) throw new Error('no repository (GITHUB_REPOSITORY is not set)');
  const { owner, repo } = job.repo;
  const octokit = new Octokit({ auth: token, baseUrl: job.apiUrl, request: { retries: 0, signal: AbortSignal.timeout(30_000) } });
  try {
    await octokit.rest.repos.createCommitStatus({ owner, repo, sha, state: o.state, context: statusContext, description: o.description, ...(job.runUrl ? { target_url: job.runUrl } : {}) });
  } catch (e) {
    const status = (e as { status?: number }).status;
    if (status === 403) throw new Error(`GitHub refused the commit status (403: ${(e as Error).message}): give the job \`permissions: statuses: write\``);
    if (status === 404) throw new Error(`GitHub found no commit ${sha} in ${owner}/${repo} (404), or the token cannot see the repository`);
    throw new Error(`the commit status could not be set: ${(e as Error).message}`);
  }
}
