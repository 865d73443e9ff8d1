// The commit status branch protection can require, on the commit the workflow is about: for pull
// request events the PR's head commit (GITHUB_SHA is then a merge commit nobody pushed).
import { pullRequestOfEvent } from '../gateway/identity/github-oidc.ts';
import { Octokit } from '@octokit/rest';
import type { Outcome } from './outcome.ts';

export function statusSha(env: NodeJS.ProcessEnv): string | null {
  return pullRequestOfEvent(env)?.headSha ?? (env.GITHUB_SHA || null);
}

export async function setCommitStatus(token: string, env: NodeJS.ProcessEnv, sha: string, context: string, o: Outcome): Promise<void> {
  const [owner, repo] = (env.GITHUB_REPOSITORY ?? '/').split('/') as [string, string];
  const octokit = new Octokit({ auth: token, baseUrl: env.GITHUB_API_URL || 'https://api.github.com', request: { retries: 0, signal: AbortSignal.timeout(30_000) } });
  const runUrl = env.GITHUB_SERVER_URL && env.GITHUB_RUN_ID ? `${env.GITHUB_SERVER_URL}/${env.GITHUB_REPOSITORY}/actions/runs/${env.GITHUB_RUN_ID}` : undefined;
  try {
    await octokit.rest.repos.createCommitStatus({ owner, repo, sha, state: o.state, context, description: o.description, ...(runUrl ? { target_url: runUrl } : {}) });
  } catch (e) {
    const status = (e as { status?: number }).status;
    if (status === 403) throw new Error(`GitHub refused the commit status (403: ${(e as Error).message}): give the job \`permissions: statuses: write\``);
    if (status === 404) throw new Error(`GitHub found no commit ${sha} in ${owner}/${repo} (404), or the token cannot see the repository`);
    throw new Error(`the commit status could not be set: ${(e as Error).message}`);
  }
}
