// Approval by pull-request comment against the GitHub REST stand-in, driven by the real Octokit
// inside a real gateway daemon: a held psql command is posted on the PR, reviewers answer there,
// and every forgery is ignored with its reason recorded.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { appCluster, policyFor, psqlAsync, readLog, startGateway, tempDir, waitFor, type Cluster, type LogRecord, type RunningGateway } from '../helpers/gateway.ts';
import { startGitHubApi, type GitHubApi } from '../helpers/github-api.ts';

let cluster: Cluster;
let api: GitHubApi;
let work: string;
const gateways: RunningGateway[] = [];

const HEAD = 'd'.repeat(40);

before(async () => {
  cluster = await appCluster();
  work = tempDir('gw-ghapprovals-');
  api = await startGitHubApi({
    owner: 'octo-org', name: 'payments',
    pulls: [{ number: 7, headSha: HEAD, author: 'bob' }, { number: 8, headSha: 'e'.repeat(40), author: 'bob' }],
    collaborators: {
      alice: 'write', tina: 'admin', bob: 'write', mallory: 'write', rita: 'read', wanda: 'write', dave: 'maintain', erin: 'write', carol: 'write',
      // For the permission tests: listed or team members without write access, and roles that have it.
      lena: 'read', tom: 'triage', max: 'write', walt: 'write', mona: 'maintain', adam: 'admin',
      cora: { custom: 'deployer', base: 'write' }, rory: { custom: 'release-manager', base: 'triage' },
    },
    teams: { 'octo-org/dba-team': ['dave', 'erin', 'tom'] },
  });
});
after(async () => {
  for (const g of gateways) {
    try {
      g.stop();
    } catch {
      // Already stopped.
    }
  }
  await api?.close();
  cluster?.stop();
});

function jobEnv(over: Record<string, string> = {}, pr = 7): Record<string, string> {
  const event = path.join(work, `event-${pr}.json`);
  fs.writeFileSync(event, JSON.stringify({ pull_request: { number: pr, head: { sha: HEAD }, user: { login: 'bob' } } }));
  return {
    GITHUB_ACTIONS: 'true', GITHUB_REPOSITORY: 'octo-org/payments', GITHUB_RUN_ID: '555', GITHUB_RUN_ATTEMPT: '1',
    GITHUB_ACTOR: 'alice', GITHUB_TRIGGERING_ACTOR: 'tina', GITHUB_SHA: 'f'.repeat(40), GITHUB_EVENT_NAME: 'pull_request',
    GITHUB_EVENT_PATH: event, GITHUB_SERVER_URL: 'https://github.com', GITHUB_API_URL: api.url,
    GATEWAY_GITHUB_TOKEN: api.token, GATEWAY_ACTION_APPROVAL_POLL_MS: '150',
    GATEWAY_ACTION_RUNTIME_DIR: path.join(work, 'run'),
    ...over,
  };
}

function gateway(approvals: string, env: Record<string, string> = {}, pr = 7): RunningGateway {
  const g = startGateway(policyFor(cluster) + `rules:
  - name: approve-drops
    when: { sql: [drop, truncate] }
    action: approve
    reason: destructive
default: allow
unclassified: deny
approvals:
${approvals}`, 'deployer-pw', jobEnv(env, pr));
  gateways.push(g);
  return g;
}

const LISTED = `  approvers: ["@octo-org/dba-team", "carol"]
  timeout: 60s
`;

function makeTable(name: string): void {
  cluster.sql(`DROP TABLE IF EXISTS ${name}; CREATE TABLE ${name} (id int); ALTER TABLE ${name} OWNER TO deployer`, 'app');
}
const exists = (name: string): boolean => cluster.sql(`SELECT to_regclass('${name}') IS NOT NULL`, 'app').trim() === 't';

/** The request comment the gateway posted for `text`, and its request id. */
async function requestFor(text: string): Promise<{ id: string; commentId: number; url: string }> {
  const c = (await waitFor(() => api.comments.find((x) => x.body.includes(text) && x.body.includes('approval requested')), `the request comment for ${text}`))!;
  const id = /approval requested `([a-z0-9]+)`/.exec(c.body)![1]!;
  return { id, commentId: c.id, url: c.html_url };
}

const records = (g: RunningGateway, type: string): LogRecord[] => readLog(g.logPath()).filter((r) => r.type === type);

test('approve: the command is posted on the PR, a listed team member approves, it runs, and the comment says so', async () => {
  const g = gateway(LISTED);
  makeTable('gh_a');
  const p = psqlAsync(g.env, ['-c', 'DROP TABLE gh_a']);
  const req = await requestFor('DROP TABLE gh_a');
  assert.match(api.comments.find((c) => c.id === req.commentId)!.body, /```sql\nDROP TABLE gh_a\n```/);
  assert.match(api.comments.find((c) => c.id === req.commentId)!.body, new RegExp(`Reply \`/approve ${req.id}\` or \`/deny ${req.id} <reason>\``));
  assert.match(api.comments.find((c) => c.id === req.commentId)!.body, /Who may approve: carol, @octo-org\/dba-team, while they have write access to the repository;/);
  assert.equal(req.id.length, 10, 'ids are bound to the run, attempt and command');
  api.addComment(7, { login: 'dave' }, `LGTM\n/approve ${req.id}`);
  const r = await p.done;
  assert.equal(r.status, 0, r.stderr);
  assert.equal(exists('gh_a'), false);
  const verdict = records(g, 'approval').find((x) => x.id === req.id)!;
  assert.equal(verdict.outcome, 'approved');
  assert.equal(verdict.by, 'github:dave');
  assert.equal(records(g, 'approval-comment').find((x) => x.id === req.id)!.url, req.url);
  const reply = records(g, 'approval-reply').find((x) => x.id === req.id && x.counted)!;
  assert.equal(reply.author, 'dave');
  assert.match(reply.why, /dave is a member of @octo-org\/dba-team/);
  await waitFor(() => /Approved\*\* by @dave/.test(api.comments.find((c) => c.id === req.commentId)!.body), 'the comment to show the verdict');
});

test('deny with a reason: the client gets it, the table stays', async () => {
  const g = gateway(LISTED);
  makeTable('gh_d');
  const p = psqlAsync(g.env, ['-c', 'DROP TABLE gh_d']);
  const req = await requestFor('DROP TABLE gh_d');
  api.addComment(7, { login: 'carol' }, `/deny ${req.id} not during the freeze`);
  const r = await p.done;
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, new RegExp(`denied by rule "approve-drops": request ${req.id} was denied by github:carol: not during the freeze`));
  assert.equal(exists('gh_d'), true);
  await waitFor(() => /Denied\*\* by @carol/.test(api.comments.find((c) => c.id === req.commentId)!.body), 'the comment to show the verdict');
});

test('forgeries are ignored, each with its reason in the log; then a real approval counts', async () => {
  const g = gateway(LISTED);
  makeTable('gh_f');
  // A comment written before the request exists, naming nothing yet.
  const p = psqlAsync(g.env, ['-c', 'DROP TABLE gh_f']);
  const req = await requestFor('DROP TABLE gh_f');
  // Written an hour before the request (then touched, so the since-filtered poll returns it).
  const early = api.addComment(7, { login: 'dave' }, `/approve ${req.id}`, new Date(Date.now() - 3_600_000));
  api.editComment(early.id, `/approve ${req.id}`);
  api.addComment(7, { login: 'bob' }, `/approve ${req.id}`);            // the PR author
  api.addComment(7, { login: 'alice' }, `/approve ${req.id}`);          // the run's actor
  api.addComment(7, { login: 'tina' }, `/approve ${req.id}`);           // who re-ran it (triggering actor)
  api.addComment(7, { login: 'renovate[bot]', type: 'Bot' }, `/approve ${req.id}`);
  api.addComment(7, { login: 'mallory' }, `/approve ${req.id}`);        // write access, but not listed
  api.addComment(7, { login: 'erin' }, '/approve zzzzzzzzzz');          // another request's id
  const edited = api.addComment(7, { login: 'erin' }, 'looks fine');
  api.editComment(edited.id, `/approve ${req.id}`);                     // edited into an approval
  await waitFor(() => records(g, 'approval-reply').filter((x) => x.id === req.id).length >= 8, 'all replies to be considered');
  assert.equal(exists('gh_f'), true, 'nothing approved it');
  const why = (author: string): string => records(g, 'approval-reply').filter((x) => x.id === req.id && x.author === author).map((x) => `${x.counted}:${x.why}`).join(' | ');
  assert.match(why('dave'), /false:written before the request was posted/);
  assert.match(why('bob'), /false:bob is the pull request's author or the run's actor/);
  assert.match(why('alice'), /false:alice is the pull request's author or the run's actor/);
  assert.match(why('tina'), /false:tina is the pull request's author or the run's actor/);
  assert.match(why('renovate[bot]'), /false:written by a bot/);
  assert.match(why('mallory'), /false:mallory is not a listed approver nor a member of @octo-org\/dba-team/);
  assert.match(why('erin'), /false:names request zzzzzzzzzz, not/);
  assert.match(why('erin'), /false:edited after it was written/);
  api.addComment(7, { login: 'erin' }, `/approve ${req.id}`);
  assert.equal((await p.done).status, 0);
  assert.equal(exists('gh_f'), false);
});

test('without a list, collaborators with write access approve and read access does not; ids differ per run attempt', async () => {
  const g = gateway('  timeout: 60s\n');
  makeTable('gh_w');
  const p = psqlAsync(g.env, ['-c', 'DROP TABLE gh_w']);
  const req = await requestFor('DROP TABLE gh_w');
  // The same command in attempt 2 of the run gets another id: attempt 1's approval cannot be replayed.
  const g2 = gateway('  timeout: 60s\n', { GITHUB_RUN_ATTEMPT: '2' });
  const p2 = psqlAsync(g2.env, ['-c', 'DROP TABLE gh_w']);
  const req2 = await waitFor(async () => {
    const cs = api.comments.filter((x) => x.body.includes('DROP TABLE gh_w') && x.body.includes('approval requested') && !x.body.includes(req.id));
    return cs[0] ? /approval requested `([a-z0-9]+)`/.exec(cs[0].body)![1]! : null;
  }, 'the attempt-2 request');
  assert.notEqual(req2, req.id);
  api.addComment(7, { login: 'rita' }, `/approve ${req.id}`);
  await waitFor(() => records(g, 'approval-reply').some((x) => x.author === 'rita'), 'rita\'s reply to be considered');
  assert.match(records(g, 'approval-reply').find((x) => x.author === 'rita')!.why, /rita has read permission; approving needs write, maintain or admin/);
  api.addComment(7, { login: 'wanda' }, `/approve ${req.id}`);
  assert.equal((await p.done).status, 0);
  await waitFor(() => records(g2, 'approval-reply').some((x) => x.author === 'wanda'), 'attempt 2 to see the approval of attempt 1');
  assert.match(records(g2, 'approval-reply').find((x) => x.author === 'wanda')!.why, new RegExp(`names request ${req.id}, not ${req2}`));
  api.addComment(7, { login: 'wanda' }, `/deny ${req2} already done in attempt 1`);
  assert.notEqual((await p2.done).status, 0);
});

test('two concurrent requests are approved separately; min-approvals counts distinct approvers', async () => {
  const g = gateway('  approvers: ["@octo-org/dba-team", "carol"]\n  min-approvals: 2\n  timeout: 60s\n');
  makeTable('gh_c1');
  makeTable('gh_c2');
  const p1 = psqlAsync(g.env, ['-c', 'DROP TABLE gh_c1']);
  const p2 = psqlAsync(g.env, ['-c', 'DROP TABLE gh_c2']);
  const r1 = await requestFor('DROP TABLE gh_c1');
  const r2 = await requestFor('DROP TABLE gh_c2');
  api.addComment(7, { login: 'dave' }, `/approve ${r2.id}`);
  api.addComment(7, { login: 'dave' }, `/approve ${r2.id}`);   // the same person twice is one approval
  await waitFor(() => records(g, 'approval-reply').filter((x) => x.id === r2.id && x.counted).length >= 2, 'both of dave\'s replies');
  assert.equal(exists('gh_c2'), true, 'one distinct approver is not two');
  api.addComment(7, { login: 'carol' }, `/approve ${r2.id}`);
  assert.equal((await p2.done).status, 0);
  assert.equal(exists('gh_c1'), true, 'the other request is still waiting');
  api.addComment(7, { login: 'erin' }, `/approve ${r1.id}`);
  api.addComment(7, { login: 'carol' }, `/approve ${r1.id}`);
  assert.equal((await p1.done).status, 0);
  assert.equal(records(g, 'approval').find((x) => x.id === r2.id)!.by, 'github:dave,github:carol');
});

test('a timeout denies, and the comment says so', async () => {
  const g = gateway('  approvers: [carol]\n  timeout: 2s\n');
  makeTable('gh_t');
  const r = await psqlAsync(g.env, ['-c', 'DROP TABLE gh_t']).done;
  assert.match(r.stderr, /timed out: no verdict within 2s/);
  assert.equal(exists('gh_t'), true);
  const c = api.comments.filter((x) => x.body.includes('DROP TABLE gh_t')).at(-1)!;
  await waitFor(() => /Denied\*\* \(timeout\)/.test(api.comments.find((x) => x.id === c.id)!.body), 'the comment to show the timeout');
});

test('rate limits back off and the approval still arrives; the log says GitHub rate-limited', async () => {
  const g = gateway(LISTED);
  makeTable('gh_r');
  const p = psqlAsync(g.env, ['-c', 'DROP TABLE gh_r']);
  const req = await requestFor('DROP TABLE gh_r');
  api.rateLimit(/\/issues\/7\/comments/, 2, '429', 1);
  api.rateLimit(/\/issues\/7\/comments/, 1, '403', 1);
  api.addComment(7, { login: 'dave' }, `/approve ${req.id}`);
  assert.equal((await p.done).status, 0);
  assert.ok(readLog(g.logPath()).some((x) => x.type === 'gateway-error' && /GitHub rate-limited the request to read the comments of #7; asking again in \d+s/.test(x.message)));
});

test('a pull request GitHub does not know, or a push with no pull request, denies with a clear reason', async () => {
  const g = gateway(LISTED, {}, 99);
  makeTable('gh_404');
  const r = await psqlAsync(g.env, ['-c', 'DROP TABLE gh_404']).done;
  assert.match(r.stderr, /cannot ask for approval on GitHub: GitHub found nothing when asked to post a comment on #99 \(404\)/);
  assert.equal(exists('gh_404'), true);
  const push = gateway(LISTED, { GITHUB_EVENT_NAME: 'push', GITHUB_SHA: '0'.repeat(40) });
  const r2 = await psqlAsync(push.env, ['-c', 'DROP TABLE gh_404']).done;
  assert.match(r2.stderr, /there is nowhere to ask for approval: this push has no pull request .* set approvals\.where: issue:NUMBER/);
  // A push whose commit belongs to a PR asks there.
  const viaCommit = gateway(LISTED, { GITHUB_EVENT_NAME: 'push', GITHUB_SHA: 'e'.repeat(40) });
  const p = psqlAsync(viaCommit.env, ['-c', 'DROP TABLE gh_404']);
  const c = (await waitFor(() => api.comments.find((x) => x.issue === 8 && x.body.includes('DROP TABLE gh_404')), 'the request on PR #8'))!;
  api.addComment(8, { login: 'carol' }, `/approve ${/approval requested `([a-z0-9]+)`/.exec(c.body)![1]}`);
  assert.equal((await p.done).status, 0);
});

test('a token without pull-requests: write denies the held command with a message naming the permission', async () => {
  const readOnly = await startGitHubApi({ owner: 'octo-org', name: 'payments', pulls: [{ number: 7, headSha: HEAD, author: 'bob' }], grantedPermissions: ['statuses'] });
  try {
    const g = gateway(LISTED, { GITHUB_API_URL: readOnly.url, GATEWAY_GITHUB_TOKEN: readOnly.token });
    makeTable('gh_ro');
    const r = await psqlAsync(g.env, ['-c', 'DROP TABLE gh_ro']).done;
    assert.match(r.stderr, /cannot ask for approval on GitHub: GitHub refused to post a comment on #7 \(403 .*\): the job's token needs permissions pull-requests: write and issues: write/);
    assert.equal(exists('gh_ro'), true);
  } finally {
    await readOnly.close();
  }
});

test('an edited request comment denies; a /deny wins over an approval read with it; the PR author may deny', async () => {
  const g = gateway(LISTED);
  makeTable('gh_e');
  const p = psqlAsync(g.env, ['-c', 'DROP TABLE gh_e']);
  const req = await requestFor('DROP TABLE gh_e');
  const body = api.comments.find((c) => c.id === req.commentId)!.body;
  api.editComment(req.commentId, body.replace('DROP TABLE gh_e', 'DROP TABLE harmless_scratch'));
  api.addComment(7, { login: 'dave' }, `/approve ${req.id}`);
  const r = await p.done;
  assert.match(r.stderr, /the request comment was edited while the command waited/);
  assert.equal(exists('gh_e'), true);

  makeTable('gh_b');
  const p2 = psqlAsync(g.env, ['-c', 'DROP TABLE gh_b']);
  const req2 = await requestFor('DROP TABLE gh_b');
  api.addComment(7, { login: 'dave' }, `/approve ${req2.id}`);
  api.addComment(7, { login: 'carol' }, `/deny ${req2.id} wait for the backup`);
  assert.match((await p2.done).stderr, /denied by github:carol: wait for the backup/);
  assert.equal(exists('gh_b'), true);

  const open = gateway('  timeout: 60s\n');
  const p3 = psqlAsync(open.env, ['-c', 'DROP TABLE gh_b']);
  const req3 = await waitFor(() => api.comments.filter((c) => c.body.includes('DROP TABLE gh_b') && c.body.includes('approval requested')).find((c) => !c.body.includes(req2.id)), 'the third request');
  api.addComment(7, { login: 'bob' }, `/deny ${/approval requested `([a-z0-9]+)`/.exec(req3!.body)![1]} oops, wrong table`);
  assert.match((await p3.done).stderr, /denied by github:bob: oops, wrong table/, 'self-approval rules stop approvals, not denials');
});

test('asked on an issue, the PR author still cannot approve; a failed permission check is asked again', async () => {
  const g = gateway('  where: issue:8\n  timeout: 60s\n');
  makeTable('gh_i');
  const p = psqlAsync(g.env, ['-c', 'DROP TABLE gh_i']);
  const c = (await waitFor(() => api.comments.find((x) => x.issue === 8 && x.body.includes('DROP TABLE gh_i')), 'the request on issue 8'))!;
  const id = /approval requested `([a-z0-9]+)`/.exec(c.body)![1]!;
  assert.match(c.body, /@bob, @alice, @tina cannot approve/);
  api.addComment(8, { login: 'bob' }, `/approve ${id}`);
  api.rateLimit(/collaborators\/wanda\/permission/, 1, '429', 1);
  api.addComment(8, { login: 'wanda' }, `/approve ${id}`);
  assert.equal((await p.done).status, 0);
  const replies = records(g, 'approval-reply').filter((x) => x.id === id);
  assert.match(replies.find((x) => x.author === 'bob')!.why, /bob is the pull request's author/);
  assert.ok(replies.some((x) => x.author === 'wanda' && !x.counted && /could not check wanda: .*will check again/.test(x.why)));
  assert.ok(replies.some((x) => x.author === 'wanda' && x.counted));
});

test('while it waits, the client gets progress NOTICEs that link to the request comment', async () => {
  const g = gateway('  approvers: [carol]\n  timeout: 8s\n');
  makeTable('gh_n');
  const p = psqlAsync(g.env, ['-c', 'DROP TABLE gh_n']);
  const req = await requestFor('DROP TABLE gh_n');
  assert.match(p.output.stderr(), new RegExp(`HINT: {2}a reviewer replies \`/approve ${req.id}\` or \`/deny ${req.id} REASON\``));
  // Every quarter of the 8 s timeout: waiting, time left, and where to answer.
  await waitFor(() => p.output.stderr().includes(`still waiting for approval of request ${req.id}`) && p.output.stderr().includes(req.url), 'a progress NOTICE with the link', 6000);
  assert.match(p.output.stderr(), new RegExp(`NOTICE: {2}gateway: still waiting for approval of request ${req.id} \\(\\d+s left\\): a reviewer replies .* on ${req.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  api.addComment(7, { login: 'carol' }, `/approve ${req.id}`);
  assert.equal((await p.done).status, 0);
});

/** The approval-reply records of request `id` by `author`. */
const repliesOf = (g: RunningGateway, id: string, author: string): LogRecord[] => records(g, 'approval-reply').filter((x) => x.id === id && x.author === author);

test('listed approvers without write access now cannot approve: read by name, triage through a team, removed; the log shows the permission seen', async () => {
  const g = gateway('  approvers: ["lena", "rex", "@octo-org/dba-team"]\n  timeout: 8s\n');
  makeTable('gh_pr');
  const p = psqlAsync(g.env, ['-c', 'DROP TABLE gh_pr']);
  const req = await requestFor('DROP TABLE gh_pr');
  api.addComment(7, { login: 'lena' }, `/approve ${req.id}`);   // listed by name, read permission
  api.addComment(7, { login: 'tom' }, `/approve ${req.id}`);    // member of the listed team, triage (read)
  api.addComment(7, { login: 'rex' }, `/approve ${req.id}`);    // listed, but no longer a collaborator
  const r = await p.done;
  assert.match(r.stderr, /timed out: no verdict within 8s/, 'nothing released the command');
  assert.equal(exists('gh_pr'), true);
  const lena = repliesOf(g, req.id, 'lena');
  assert.equal(lena.length, 1);
  assert.equal(lena[0]!.counted, false);
  assert.equal(lena[0]!.permission, 'read');
  assert.equal(lena[0]!.role_name, 'read');
  assert.match(lena[0]!.why, /lena has read permission; approving needs write, maintain or admin on the repository, also for a listed approver/);
  const tom = repliesOf(g, req.id, 'tom')[0]!;
  assert.equal(tom.counted, false);
  assert.deepEqual([tom.permission, tom.role_name], ['read', 'triage']);
  assert.match(tom.why, /tom has read \(role triage\) permission; approving needs write/);
  const rex = repliesOf(g, req.id, 'rex')[0]!;
  assert.equal(rex.counted, false);
  assert.equal(rex.permission, 'none');
  assert.equal(records(g, 'approval').find((x) => x.id === req.id)!.outcome, 'denied');
});

test('access lowered between two polls: the later reply is refused, with or without an approvers list', async () => {
  // Without a list: walt approves the first request with write access, then is lowered to read.
  const open = gateway('  timeout: 60s\n');
  makeTable('gh_lo1');
  makeTable('gh_lo2');
  const p1 = psqlAsync(open.env, ['-c', 'DROP TABLE gh_lo1']);
  const r1 = await requestFor('DROP TABLE gh_lo1');
  api.addComment(7, { login: 'walt' }, `/approve ${r1.id}`);
  assert.equal((await p1.done).status, 0);
  assert.equal(repliesOf(open, r1.id, 'walt')[0]!.permission, 'write');
  api.setRole('walt', 'read');
  const p2 = psqlAsync(open.env, ['-c', 'DROP TABLE gh_lo2']);
  const r2 = await requestFor('DROP TABLE gh_lo2');
  api.addComment(7, { login: 'walt' }, `/approve ${r2.id}`);
  const refused = (await waitFor(() => repliesOf(open, r2.id, 'walt').find((x) => x.verb === 'approve'), 'walt\'s second reply to be weighed'))!;
  assert.equal(refused.counted, false);
  assert.equal(refused.permission, 'read');
  assert.match(refused.why, /walt has read permission; approving needs write/);
  assert.equal(exists('gh_lo2'), true, 'still held');
  api.addComment(7, { login: 'wanda' }, `/deny ${r2.id} walt lost access`);
  assert.match((await p2.done).stderr, /denied by github:wanda: walt lost access/);
  assert.equal(exists('gh_lo2'), true);

  // Listed by name: approves one request, is removed from the repository, then approves the next.
  const listed = gateway('  approvers: [max, wanda]\n  timeout: 60s\n');
  makeTable('gh_lo3');
  makeTable('gh_lo5');
  const p3 = psqlAsync(listed.env, ['-c', 'DROP TABLE gh_lo3']);
  const r3 = await requestFor('DROP TABLE gh_lo3');
  api.addComment(7, { login: 'max' }, `/approve ${r3.id}`);
  assert.equal((await p3.done).status, 0);
  api.setRole('max', null);
  const p5 = psqlAsync(listed.env, ['-c', 'DROP TABLE gh_lo5']);
  const r5 = await requestFor('DROP TABLE gh_lo5');
  api.addComment(7, { login: 'max' }, `/approve ${r5.id}`);
  const gone = (await waitFor(() => repliesOf(listed, r5.id, 'max').find((x) => x.verb === 'approve'), 'max\'s second approval to be weighed'))!;
  assert.equal(gone.counted, false);
  assert.equal(gone.permission, 'none');
  assert.match(gone.why, /max has no access to the repository \(permission none\); approving needs write/);
  assert.equal(exists('gh_lo5'), true, 'still held');
  api.addComment(7, { login: 'wanda' }, `/deny ${r5.id} max left`);
  assert.notEqual((await p5.done).status, 0);
  assert.equal(exists('gh_lo5'), true);
  api.setRole('max', 'write');
  api.setRole('walt', 'write');
});

test('with min-approvals, an approval counted earlier no longer counts once its author lost write access', async () => {
  const g = gateway('  approvers: [max, carol]\n  min-approvals: 2\n  timeout: 60s\n');
  makeTable('gh_lo4');
  const p = psqlAsync(g.env, ['-c', 'DROP TABLE gh_lo4']);
  const req = await requestFor('DROP TABLE gh_lo4');
  api.addComment(7, { login: 'max' }, `/approve ${req.id}`);
  const first = (await waitFor(() => repliesOf(g, req.id, 'max').find((x) => x.counted), 'max\'s approval to count'))!;
  assert.match(first.why, /max is a listed approver with write permission; 1 of 2 approvals/);
  api.setRole('max', 'read');
  api.addComment(7, { login: 'carol' }, `/approve ${req.id}`);
  // max's older comments on the same pull request (naming other requests) are replies too.
  const withdrawn = (await waitFor(() => repliesOf(g, req.id, 'max').find((x) => !x.counted && x.why.startsWith('no longer counted')), 'max\'s approval to be checked again'))!;
  assert.match(withdrawn.why, /^no longer counted: max has read permission; approving needs write.*; 1 of 2 approvals$/);
  assert.equal(withdrawn.permission, 'read');
  assert.equal(exists('gh_lo4'), true, 'one current approver is not two');
  api.setRole('max', 'write');
  api.addComment(7, { login: 'max' }, `/approve ${req.id}`);
  assert.equal((await p.done).status, 0);
  assert.equal(records(g, 'approval').find((x) => x.id === req.id)!.by, 'github:carol,github:max');
});

test('write, maintain, admin and a custom role based on write count; a custom role based on triage does not', async () => {
  const g = gateway('  min-approvals: 3\n  timeout: 60s\n');
  makeTable('gh_roles');
  const p = psqlAsync(g.env, ['-c', 'DROP TABLE gh_roles']);
  const req = await requestFor('DROP TABLE gh_roles');
  api.addComment(7, { login: 'rory' }, `/approve ${req.id}`);
  const rory = (await waitFor(() => repliesOf(g, req.id, 'rory')[0], 'rory\'s reply'))!;
  assert.equal(rory.counted, false);
  assert.deepEqual([rory.permission, rory.role_name], ['read', 'release-manager']);
  assert.match(rory.why, /rory has read \(role release-manager\) permission; approving needs write/);
  api.addComment(7, { login: 'mona' }, `/approve ${req.id}`);
  api.addComment(7, { login: 'adam' }, `/approve ${req.id}`);
  await waitFor(() => repliesOf(g, req.id, 'adam')[0] && repliesOf(g, req.id, 'mona')[0], 'mona and adam');
  assert.equal(exists('gh_roles'), true, 'two of three');
  api.addComment(7, { login: 'cora' }, `/approve ${req.id}`);
  assert.equal((await p.done).status, 0);
  const seen = (who: string): unknown[] => { const x = repliesOf(g, req.id, who)[0]!; return [x.counted, x.permission, x.role_name]; };
  assert.deepEqual(seen('mona'), [true, 'write', 'maintain']);
  assert.deepEqual(seen('adam'), [true, 'admin', 'admin']);
  assert.deepEqual(seen('cora'), [true, 'write', 'deployer']);
  assert.match(repliesOf(g, req.id, 'cora')[0]!.why, /cora has write \(role deployer\) permission/);
});
