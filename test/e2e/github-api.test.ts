// The local GitHub REST stand-in, driven by the real @octokit/rest client the action uses:
// statuses, pull requests, comments with conditional requests, permissions, GITHUB_TOKEN
// permission failures, rate limiting and bad credentials look like they do against GitHub.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Octokit } from '@octokit/rest';
import { startGitHubApi, type GitHubApi } from '../helpers/github-api.ts';

const owner = 'octo-org';
const repo = 'payments';
const HEAD = 'a3c5e1f09b2d4c6e8f0a1b3c5d7e9f1a2b4c6d8e';
const MERGE = 'b4d6f2a10c3e5d7f9a1b2c4d6e8f0a2b3c5d7e9f';

let api: GitHubApi;
let octokit: Octokit;
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

before(async () => {
  api = await startGitHubApi({
    owner, name: repo,
    pulls: [{ number: 7, headSha: HEAD, mergeSha: MERGE, author: 'dev-dana' }],
    collaborators: { alice: 'admin', bob: 'maintain', carol: 'triage', mallory: 'read' },
    teams: { 'octo-org/dba': ['alice', 'Bob'] },
  });
  octokit = new Octokit({ auth: api.token, baseUrl: api.url, log: quiet });
});
after(() => api.close());

// Octokit's RequestError (name 'HttpError'), without importing a transitive dependency.
interface RequestError extends Error { status: number; response?: { headers: Record<string, string | undefined>; data: unknown } }

async function rejects(p: Promise<unknown>): Promise<RequestError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof Error && err.name === 'HttpError' && typeof (err as RequestError).status === 'number', `expected a RequestError, got ${String(err)}`);
    return err as RequestError;
  }
  assert.fail('expected the request to fail');
}

test('a commit status is created and read back, alone and combined', async () => {
  const created = await octokit.rest.repos.createCommitStatus({
    owner, repo, sha: HEAD, state: 'pending', context: 'gateway/approval', description: 'Waiting for approval', target_url: 'https://example.test/run/1',
  });
  assert.equal(created.status, 201);
  assert.equal(created.data.state, 'pending');
  assert.equal(created.data.creator?.login, 'github-actions[bot]');
  assert.match(created.headers['x-ratelimit-remaining'] ?? '', /^\d+$/);

  await octokit.rest.repos.createCommitStatus({ owner, repo, sha: HEAD, state: 'success', context: 'gateway/approval', description: 'Approved by alice' });
  await octokit.rest.repos.createCommitStatus({ owner, repo, sha: HEAD, state: 'success', context: 'gateway/log' });

  const list = await octokit.rest.repos.listCommitStatusesForRef({ owner, repo, ref: HEAD });
  assert.deepEqual(list.data.map((s) => [s.context, s.state]), [['gateway/log', 'success'], ['gateway/approval', 'success'], ['gateway/approval', 'pending']]);
  assert.ok(list.headers.etag);

  const combined = await octokit.rest.repos.getCombinedStatusForRef({ owner, repo, ref: HEAD });
  assert.equal(combined.data.state, 'success');
  assert.equal(combined.data.total_count, 2);
  assert.equal(api.statuses.length, 3);
  assert.equal(api.statuses[0]!.target_url, 'https://example.test/run/1');

  await octokit.rest.repos.createCommitStatus({ owner, repo, sha: HEAD, state: 'failure', context: 'gateway/log' });
  assert.equal((await octokit.rest.repos.getCombinedStatusForRef({ owner, repo, ref: HEAD })).data.state, 'failure');
  assert.equal((await octokit.rest.repos.getCombinedStatusForRef({ owner, repo, ref: MERGE })).data.state, 'pending');
});

test('a description over 140 characters is a 422 validation failure', async () => {
  const err = await rejects(octokit.rest.repos.createCommitStatus({ owner, repo, sha: HEAD, state: 'success', context: 'x', description: 'd'.repeat(141) }));
  assert.equal(err.status, 422);
  assert.match(err.message, /Validation Failed/);
  assert.match(JSON.stringify(err.response?.data), /description is too long/);
  await octokit.rest.repos.createCommitStatus({ owner, repo, sha: HEAD, state: 'success', context: 'x', description: 'd'.repeat(140) });
  const bad = await rejects(octokit.request('POST /repos/{owner}/{repo}/statuses/{sha}', { owner, repo, sha: HEAD, state: 'approved' as 'success' }));
  assert.equal(bad.status, 422);
});

test('pull requests: by number, by head commit, 404 for unknown', async () => {
  const pr = await octokit.rest.pulls.get({ owner, repo, pull_number: 7 });
  assert.equal(pr.data.head.sha, HEAD);
  assert.equal(pr.data.merge_commit_sha, MERGE);
  assert.equal(pr.data.user?.login, 'dev-dana');
  const byCommit = await octokit.rest.repos.listPullRequestsAssociatedWithCommit({ owner, repo, commit_sha: HEAD });
  assert.deepEqual(byCommit.data.map((p) => p.number), [7]);
  assert.deepEqual((await octokit.rest.repos.listPullRequestsAssociatedWithCommit({ owner, repo, commit_sha: MERGE })).data, []);
  const err = await rejects(octokit.rest.pulls.get({ owner, repo, pull_number: 8 }));
  assert.equal(err.status, 404);
  assert.equal((err.response?.data as { message: string }).message, 'Not Found');
  assert.equal((await rejects(octokit.request('GET /repos/{owner}/{repo}/nothing-here', { owner, repo }))).status, 404);
});

test('comments: create, list with ETag and 304, a reviewer edits, since filters', async () => {
  const mine = await octokit.rest.issues.createComment({ owner, repo, issue_number: 7, body: 'Approval needed for `DROP TABLE invoices`' });
  assert.equal(mine.status, 201);
  assert.equal(mine.data.user?.login, 'github-actions[bot]');
  assert.equal(mine.data.user?.type, 'Bot');

  const first = await octokit.request('GET /repos/{owner}/{repo}/issues/{issue_number}/comments', { owner, repo, issue_number: 7 });
  const etag = first.headers.etag!;
  assert.ok(etag);
  assert.equal(first.data.length, 1);

  const before = api.requests.length;
  const notModified = await rejects(octokit.request('GET /repos/{owner}/{repo}/issues/{issue_number}/comments', { owner, repo, issue_number: 7, headers: { 'if-none-match': etag } }));
  assert.equal(notModified.status, 304);
  assert.equal(api.requests[before]!.ifNoneMatch, etag);
  assert.equal(api.requests[before]!.status, 304);

  const review = api.addComment(7, { login: 'alice' }, '/approve');
  assert.equal(review.author_association, 'MEMBER');
  const second = await octokit.request('GET /repos/{owner}/{repo}/issues/{issue_number}/comments', { owner, repo, issue_number: 7, headers: { 'if-none-match': etag } });
  assert.equal(second.status, 200);
  assert.notEqual(second.headers.etag, etag);
  assert.deepEqual(second.data.map((c) => c.user?.login), ['github-actions[bot]', 'alice']);

  api.editComment(review.id, '/deny too risky');
  const edited = await octokit.rest.issues.getComment({ owner, repo, comment_id: review.id });
  assert.equal(edited.data.body, '/deny too risky');
  assert.ok(Date.parse(edited.data.updated_at) > Date.parse(edited.data.created_at));
  const third = await octokit.request('GET /repos/{owner}/{repo}/issues/{issue_number}/comments', { owner, repo, issue_number: 7, headers: { 'if-none-match': second.headers.etag! } });
  assert.equal(third.status, 200);

  const updated = await octokit.rest.issues.updateComment({ owner, repo, comment_id: mine.data.id, body: 'Approval needed (2 commands)' });
  assert.equal(updated.data.body, 'Approval needed (2 commands)');
  assert.equal(api.comments.find((c) => c.id === mine.data.id)!.body, 'Approval needed (2 commands)');

  const old = api.addComment(7, { login: 'bob' }, 'earlier remark', new Date(Date.now() - 3_600_000));
  const since = await octokit.rest.issues.listComments({ owner, repo, issue_number: 7, since: new Date(Date.now() - 60_000).toISOString() });
  assert.ok(!since.data.some((c) => c.id === old.id));
  assert.equal(since.data.length, 2);

  const paged = await octokit.rest.issues.listComments({ owner, repo, issue_number: 7, per_page: 1, page: 2 });
  assert.equal(paged.data.length, 1);
  assert.match(paged.headers.link ?? '', /rel="next"/);
  const all = await octokit.paginate(octokit.rest.issues.listComments, { owner, repo, issue_number: 7, per_page: 1 });
  assert.equal(all.length, 3);
  assert.equal(all[0]!.id, old.id, 'oldest first');

  assert.equal((await rejects(octokit.rest.issues.getComment({ owner, repo, comment_id: 1 }))).status, 404);
  assert.equal((await rejects(octokit.rest.issues.createComment({ owner, repo, issue_number: 99, body: 'x' }))).status, 404);
});

test('collaborator permission and team membership', async () => {
  const alice = await octokit.rest.repos.getCollaboratorPermissionLevel({ owner, repo, username: 'alice' });
  assert.equal(alice.data.permission, 'admin');
  assert.equal(alice.data.role_name, 'admin');
  assert.equal(alice.data.user?.login, 'alice');
  const bob = await octokit.rest.repos.getCollaboratorPermissionLevel({ owner, repo, username: 'bob' });
  assert.deepEqual([bob.data.permission, bob.data.role_name], ['write', 'maintain']);
  const carol = await octokit.rest.repos.getCollaboratorPermissionLevel({ owner, repo, username: 'carol' });
  assert.deepEqual([carol.data.permission, carol.data.role_name], ['read', 'triage']);
  assert.equal((await rejects(octokit.rest.repos.getCollaboratorPermissionLevel({ owner, repo, username: 'eve' }))).status, 404);

  const m = await octokit.rest.teams.getMembershipForUserInOrg({ org: 'octo-org', team_slug: 'dba', username: 'bob' });
  assert.deepEqual([m.data.state, m.data.role], ['active', 'member']);
  assert.equal((await rejects(octokit.rest.teams.getMembershipForUserInOrg({ org: 'octo-org', team_slug: 'dba', username: 'carol' }))).status, 404);
  assert.equal((await rejects(octokit.rest.teams.getMembershipForUserInOrg({ org: 'octo-org', team_slug: 'nope', username: 'alice' }))).status, 404);
});

test('writes outside the granted permissions: 403 Resource not accessible by integration', async () => {
  const limited = await startGitHubApi({ owner, name: repo, pulls: [{ number: 1, headSha: HEAD, author: 'dev' }], grantedPermissions: ['pull_requests'] });
  try {
    const client = new Octokit({ auth: limited.token, baseUrl: limited.url, log: quiet });
    const err = await rejects(client.rest.repos.createCommitStatus({ owner, repo, sha: HEAD, state: 'success', context: 'c' }));
    assert.equal(err.status, 403);
    assert.equal(err.message.split(' - ')[0], 'Resource not accessible by integration');
    assert.match((err.response?.data as { documentation_url: string }).documentation_url, /^https:\/\/docs\.github\.com\//);
    assert.equal(err.response?.headers['x-accepted-github-permissions'], 'statuses=write');
    assert.equal(limited.statuses.length, 0);
    // pull_requests: write is enough for comments on a pull request.
    assert.equal((await client.rest.issues.createComment({ owner, repo, issue_number: 1, body: 'ok' })).status, 201);
  } finally {
    await limited.close();
  }
  const none = await startGitHubApi({ owner, name: repo, pulls: [{ number: 1, headSha: HEAD, author: 'dev' }], grantedPermissions: ['statuses'] });
  try {
    const client = new Octokit({ auth: none.token, baseUrl: none.url, log: quiet });
    assert.equal((await rejects(client.rest.issues.createComment({ owner, repo, issue_number: 1, body: 'x' }))).status, 403);
    assert.equal((await client.rest.repos.createCommitStatus({ owner, repo, sha: HEAD, state: 'success' })).status, 201);
  } finally {
    await none.close();
  }
});

test('rate limits: 429 with retry-after and 403 with x-ratelimit-remaining 0, then normal again', async () => {
  api.rateLimit(/\/statuses\//, 1, '429', 7);
  const err = await rejects(octokit.rest.repos.createCommitStatus({ owner, repo, sha: HEAD, state: 'success', context: 'rl' }));
  assert.equal(err.status, 429);
  assert.equal(err.response?.headers['retry-after'], '7');
  assert.match(err.message, /secondary rate limit/);
  assert.equal((await octokit.rest.repos.createCommitStatus({ owner, repo, sha: HEAD, state: 'success', context: 'rl' })).status, 201);

  api.rateLimit(/^\/repos\/[^/]+\/[^/]+\/pulls\/\d+$/, 2, '403', 30);
  for (let i = 0; i < 2; i++) {
    const e = await rejects(octokit.rest.pulls.get({ owner, repo, pull_number: 7 }));
    assert.equal(e.status, 403);
    assert.equal(e.response?.headers['x-ratelimit-remaining'], '0');
    const reset = Number(e.response?.headers['x-ratelimit-reset']);
    assert.ok(reset >= Math.floor(Date.now() / 1000) + 25 && reset <= Math.floor(Date.now() / 1000) + 31, String(reset));
    assert.match(e.message, /API rate limit exceeded/);
  }
  assert.equal((await octokit.rest.pulls.get({ owner, repo, pull_number: 7 })).status, 200);
  assert.deepEqual(api.requests.filter((r) => r.status === 403 || r.status === 429).map((r) => r.status), [429, 403, 403]);
});

test('a bad token is 401 Bad credentials', async () => {
  const wrong = new Octokit({ auth: 'ghs_not-the-token', baseUrl: api.url, log: quiet });
  const err = await rejects(wrong.rest.pulls.get({ owner, repo, pull_number: 7 }));
  assert.equal(err.status, 401);
  assert.match(err.message, /^Bad credentials/);
  // Bearer works as well as `token` (what a GitHub App installation token client sends).
  const bearer = new Octokit({ baseUrl: api.url, log: quiet });
  assert.equal((await rejects(bearer.rest.pulls.get({ owner, repo, pull_number: 7 }))).status, 401, 'no token: Requires authentication');
  assert.equal((await bearer.request('GET /repos/{owner}/{repo}/pulls/{pull_number}', { owner, repo, pull_number: 7, headers: { authorization: `Bearer ${api.token}` } })).status, 200);
});
