// Where the action's policy comes from, driven the way the runner drives the bundled action
// (dist/main.js, steps, dist/post.js): on a pull request the base commit's version of the file
// (read through the GitHub REST API stand-in, or from the local clone when the commit is there),
// so a pull request that loosens its checked-out policy still runs under the base's rules; the
// checked-out file with policy-from: workspace and on other events. A base policy that cannot
// be read starts nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { appCluster, cliAsync, readLog, ROOT, tempDir, type Cluster } from '../helpers/gateway.ts';
import { startGitHubApi, type GitHubApi } from '../helpers/github-api.ts';
import { startArtifactService, type ArtifactService } from '../helpers/artifact-service.ts';
import { runJob, type JobResult } from '../helpers/runner.ts';

const run = promisify(execFile);
const HEAD_SHA = 'b'.repeat(40);
const MERGE_SHA = 'c'.repeat(40);
const BASE_SHA = 'a'.repeat(40);
/** A base commit that exists but has no policy file (the pull request adds it). */
const BARE_BASE_SHA = 'd'.repeat(40);
const FILE = '.github/gateway.yml';

let cluster: Cluster;
let api: GitHubApi;
/** The same repository, for a job whose token has no contents permission. */
let noContents: GitHubApi;
let artifacts: ArtifactService;
let work: string;

/**
 * The policy: TLS to the server verified against a CA file named relative to the policy (so the
 * base version, loaded from a copy, must still resolve it beside the workspace file), and
 * `drop` denied (base) or allowed (what a pull request would like).
 */
const POLICY = (port: number, drop: 'deny' | 'allow'): string => `version: 1
targets:
  app-db:
    kind: postgres
    host: 127.0.0.1
    port: ${port}
    database: app
    user: deployer
    tls: verify-full
    ca-file: pg-ca.crt
    auth: { password-env: APP_DB_PASSWORD }
rules:
  - name: no-drop
    when: { sql: [drop] }
    action: ${drop}
    reason: dropping a table waits for the base branch's owners
default: allow
`;
const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

before(async () => {
  work = tempDir('gw-policy-source-');
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'server.key', '-out', 'server.crt', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { cwd: work });
  cluster = await appCluster({ tls: { cert: path.join(work, 'server.crt'), key: path.join(work, 'server.key') } });
  cluster.sql('CREATE TABLE keep_api (id int); CREATE TABLE keep_git (id int); CREATE TABLE drop_ws (id int); CREATE TABLE drop_push (id int)', 'app');
  cluster.sql('ALTER TABLE keep_api OWNER TO deployer; ALTER TABLE keep_git OWNER TO deployer; ALTER TABLE drop_ws OWNER TO deployer; ALTER TABLE drop_push OWNER TO deployer', 'app');
  const repo = { owner: 'octo-org', name: 'payments', pulls: [{ number: 7, headSha: HEAD_SHA, mergeSha: MERGE_SHA, author: 'bob' }] };
  api = await startGitHubApi({ ...repo, trees: { [BASE_SHA]: { [FILE]: POLICY(cluster.port, 'deny') }, [BARE_BASE_SHA]: { 'README.md': 'payments\n' } } });
  noContents = await startGitHubApi({ ...repo, contents: 'none', trees: { [BASE_SHA]: { [FILE]: POLICY(cluster.port, 'deny') } } });
  artifacts = await startArtifactService();
});

after(async () => {
  await Promise.all([api?.close(), noContents?.close(), artifacts?.close()]);
  cluster?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

let jobs = 0;
interface JobOptions {
  event?: string;
  /** The checked-out policy (null: none). */
  policy?: string | null;
  baseSha?: string;
  inputs?: Record<string, string>;
  githubApi?: GitHubApi;
  /** Runs in the workspace before the job (a clone with the base commit in it); may name the base commit. */
  prepare?: (workspace: string) => Promise<{ baseSha: string }>;
}

async function job(steps: string[], o: JobOptions = {}): Promise<JobResult> {
  const workspace = fs.mkdtempSync(path.join(work, `ws${++jobs}-`));
  fs.mkdirSync(path.join(workspace, '.github'));
  fs.copyFileSync(path.join(work, 'server.crt'), path.join(workspace, '.github/pg-ca.crt'));
  const prepared = await o.prepare?.(workspace);
  const event = o.event ?? 'pull_request';
  const eventPath = path.join(work, `event-${jobs}.json`);
  const payload = event === 'pull_request'
    ? { number: 7, pull_request: { number: 7, head: { sha: HEAD_SHA }, base: { ref: 'main', sha: prepared?.baseSha ?? o.baseSha ?? BASE_SHA }, user: { login: 'bob' } } }
    : { ref: 'refs/heads/main', after: MERGE_SHA };
  fs.writeFileSync(eventPath, JSON.stringify(payload));
  const policy = o.policy === undefined ? POLICY(cluster.port, 'allow') : o.policy;
  if (policy !== null) fs.writeFileSync(path.join(workspace, FILE), policy);
  const gh = o.githubApi ?? api;
  const r = await runJob({
    actionDir: ROOT,
    workspace,
    inputs: { policy: FILE, 'status-context': `gateway/audit-${jobs}`, ...o.inputs },
    env: {
      GITHUB_REPOSITORY: 'octo-org/payments', GITHUB_REPOSITORY_OWNER: 'octo-org', GITHUB_RUN_ID: '4242', GITHUB_RUN_ATTEMPT: '1', GITHUB_JOB: `job${jobs}`,
      GITHUB_WORKFLOW_REF: 'octo-org/payments/.github/workflows/migrate.yml@refs/heads/main', GITHUB_ACTOR: 'bob', GITHUB_TRIGGERING_ACTOR: 'bob',
      GITHUB_EVENT_NAME: event, GITHUB_EVENT_PATH: eventPath, GITHUB_SHA: MERGE_SHA, GITHUB_REF: event === 'pull_request' ? 'refs/pull/7/merge' : 'refs/heads/main',
      GITHUB_SERVER_URL: 'https://github.com', GITHUB_API_URL: gh.url, GITHUB_TOKEN: gh.token,
      ...artifacts.env(),
      APP_DB_PASSWORD: 'deployer-pw',
      GATEWAY_ACTION_RUNTIME_DIR: path.join(work, 'run'),
    },
    steps,
    keepRunnerTemp: true,
  });
  return r;
}

const text = (r: JobResult): string => r.main.stdout + r.main.stderr;
const runStart = (r: JobResult): Record<string, any> => readLog(r.outputs['session-log']!)[0]!;

test('a pull request that loosens its checked-out policy still runs under the base commit\'s (read through the API): the DROP is denied, the summary shows the diff', async () => {
  const base = POLICY(cluster.port, 'deny');
  const before = api.requests.length;
  const r = await job(['psql -X -c "DROP TABLE keep_api" || echo "denied as expected"', 'psql -X -At -c "SELECT count(*) FROM keep_api"']);
  assert.equal(r.main.outcome, 'success', text(r));
  assert.match(text(r), new RegExp(`policy \\.github/gateway\\.yml from the pull request's base commit ${BASE_SHA} \\(read through the GitHub API\\), sha256 ${sha256(base)}`));
  assert.match(r.steps[0]!.stderr, /ERROR: {2}gateway: denied by rule "no-drop": dropping a table waits for the base branch's owners/);
  assert.equal(r.steps[1]!.stdout.trim(), '0', 'the table is still there');
  const read = api.requests.slice(before).find((q) => q.path.startsWith('/repos/octo-org/payments/contents/'));
  assert.ok(read, 'the base version was read through the contents API');
  assert.equal(decodeURIComponent(read.path), `/repos/octo-org/payments/contents/${FILE}`);
  assert.equal(new URLSearchParams(read.query).get('ref'), BASE_SHA);
  assert.equal(read.status, 200);

  // The summary: the diff from the enforced base version to the pull request's, and when it applies.
  assert.match(r.summary, /this pull request changes the policy/);
  assert.match(r.summary, /takes effect only after the pull request is merged/);
  const diff = /```diff\n([\s\S]*?)\n```/.exec(r.summary)?.[1] ?? '';
  assert.match(diff, /^--- a\/\.github\/gateway\.yml\tbase a{12}$/m);
  assert.match(diff, /^\+\+\+ b\/\.github\/gateway\.yml\tpull request$/m);
  assert.match(diff, /^-    action: deny$/m);
  assert.match(diff, /^\+    action: allow$/m);
  assert.match(r.summary, new RegExp(`<td>policy</td><td>\\.github/gateway\\.yml at base commit ${BASE_SHA} \\(sha256 ${sha256(base)}\\)</td>`));

  // The run-start record names the commit and the digest of the bytes the daemon loaded.
  assert.deepEqual(runStart(r).policy, { path: FILE, sha256: sha256(base), from: 'base', repository: 'octo-org/payments', commit: BASE_SHA, via: 'api' });
  const v = await cliAsync(['verify', r.outputs['session-log']!]);
  assert.equal(v.status, 0, v.stderr);
  assert.match(v.stdout, new RegExp(`^policy: +\\.github/gateway\\.yml at base commit ${BASE_SHA} \\(sha256 ${sha256(base)}\\)$`, 'm'));
  const json = JSON.parse((await cliAsync(['verify', r.outputs['session-log']!, '--json'])).stdout) as { run: { policy: Record<string, unknown> } };
  assert.equal(json.run.policy.commit, BASE_SHA);
  // The copy the daemon loaded is the state directory's, owner-only.
  assert.equal(fs.statSync(path.join(r.state['state-dir']!, 'policy-base.yml')).mode & 0o777, 0o600);
});

test('with the base commit in the local clone, the base version is read from git, not the API', async () => {
  let baseSha = '';
  const git = (cwd: string, ...args: string[]) => run('git', ['-c', 'user.name=ci', '-c', 'user.email=ci@example.com', ...args], { cwd });
  const r = await job(['psql -X -c "DROP TABLE keep_git" || echo "denied as expected"'], {
    prepare: async (ws) => {
      fs.writeFileSync(path.join(ws, FILE), POLICY(cluster.port, 'deny'));
      await git(ws, 'init', '-q');
      await git(ws, 'add', '.github');
      await git(ws, 'commit', '-q', '-m', 'base');
      baseSha = (await git(ws, 'rev-parse', 'HEAD')).stdout.trim();
      // The job then writes the pull request's version over it, as the merge commit's checkout has it.
      return { baseSha };
    },
  });
  assert.equal(r.main.outcome, 'success', text(r));
  assert.match(text(r), new RegExp(`from the pull request's base commit ${baseSha} \\(read from the local clone\\)`));
  assert.match(r.steps[0]!.stderr, /denied by rule "no-drop"/);
  assert.equal(runStart(r).policy.via, 'git');
  assert.equal(runStart(r).policy.commit, baseSha);
  assert.match(r.summary, /^\+    action: allow$/m);
});

test('policy-from: workspace on a pull request uses the checked-out file, and the log says so', async () => {
  const pr = POLICY(cluster.port, 'allow');
  const r = await job(['psql -X -c "DROP TABLE drop_ws"'], { inputs: { 'policy-from': 'workspace' } });
  assert.equal(r.main.outcome, 'success', text(r));
  assert.match(text(r), new RegExp(`policy \\.github/gateway\\.yml from the workspace \\(policy-from: workspace: the pull request's own version applies\\), sha256 ${sha256(pr)}`));
  assert.equal(r.steps[0]!.outcome, 'success', r.steps[0]!.stderr);
  assert.doesNotMatch(r.summary, /changes the policy/);
  const file = path.join(r.workspace, FILE);
  assert.deepEqual(runStart(r).policy, { path: file, sha256: sha256(pr), from: 'workspace' });
  const v = await cliAsync(['verify', r.outputs['session-log']!]);
  assert.match(v.stdout, new RegExp(`^policy: +${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(workspace, sha256 ${sha256(pr)}\\)$`, 'm'));
});

test('a push job uses the checked-out file by default', async () => {
  const before = api.requests.length;
  const r = await job(['psql -X -c "DROP TABLE drop_push"'], { event: 'push' });
  assert.equal(r.main.outcome, 'success', text(r));
  assert.match(text(r), /policy \.github\/gateway\.yml from the workspace \(policy-from: workspace\), sha256 [0-9a-f]{64}/);
  assert.equal(r.steps[0]!.outcome, 'success', r.steps[0]!.stderr);
  assert.equal(runStart(r).policy.from, 'workspace');
  assert.equal(api.requests.slice(before).some((q) => q.path.includes('/contents/')), false, 'no contents request');
});

/** What a job whose main step failed before starting anything leaves: no daemon, nothing for post. */
function assertNothingStarted(r: JobResult): void {
  assert.equal(r.main.outcome, 'failure');
  assert.equal(r.state['state-dir'], undefined);
  assert.deepEqual(fs.readdirSync(r.runnerTemp).filter((f) => f.startsWith('gateway-')), []);
  assert.equal(r.steps[0]!.outcome, 'skipped');
  assert.match(r.post?.stdout ?? '', /did not start in this job; nothing to stop/);
  assert.deepEqual(r.orphanDetails, []);
}

test('a base commit without the policy file (404) fails the main step naming the commit, and starts nothing', async () => {
  const r = await job(['psql -X -c "SELECT 1"'], { baseSha: BARE_BASE_SHA });
  assertNothingStarted(r);
  assert.match(text(r), new RegExp(`gateway-action: the policy file \\.github/gateway\\.yml does not exist at the pull request's base commit ${BARE_BASE_SHA}`));
  assert.match(text(r), /merge the policy first, or set policy-from: workspace/);
});

test('a token without contents permission (403) fails the main step saying so, and starts nothing', async () => {
  const r = await job(['psql -X -c "SELECT 1"'], { githubApi: noContents });
  assertNothingStarted(r);
  assert.match(text(r), new RegExp(`GitHub refused to let the token read \\.github/gateway\\.yml at the pull request's base commit ${BASE_SHA} \\(403\\): the token lacks contents: read`));
  assert.equal(noContents.requests.find((q) => q.path.includes('/contents/'))?.status, 403);
});

test('a checkout that turns a directory on the policy path into a symlink is refused: it could make another base file stand for the policy', async () => {
  const r = await job(['psql -X -c "SELECT 1"'], {
    prepare: async (workspace) => {
      fs.renameSync(path.join(workspace, '.github'), path.join(workspace, 'examples'));
      fs.symlinkSync('examples', path.join(workspace, '.github'));
      return { baseSha: BASE_SHA };
    },
  });
  assertNothingStarted(r);
  assert.match(text(r), /input "policy": \.github is a symbolic link in the pull request's checkout/);
});

test('a bad policy-from, base on a push, and an invalid base version stop the main step naming the input or the commit and line', async () => {
  const bad = await job(['true'], { inputs: { 'policy-from': 'head' } });
  assertNothingStarted(bad);
  assert.match(text(bad), /input "policy-from" is "head": use base \(/);
  const push = await job(['true'], { event: 'push', inputs: { 'policy-from': 'base' } });
  assertNothingStarted(push);
  assert.match(text(push), /input "policy-from" is "base", but a push event has no pull request base commit/);
  const brokenSha = 'e'.repeat(40);
  api.setFile(brokenSha, FILE, POLICY(cluster.port, 'deny').replace('tls: verify-full', 'tls: sometimes'));
  const broken = await job(['true'], { baseSha: brokenSha });
  assertNothingStarted(broken);
  assert.match(text(broken), new RegExp(`${brokenSha}:\\.github/gateway\\.yml:9: targets\\.app-db\\.tls`));
});

test('the stand-in serves contents as GitHub does: JSON with base64, raw bytes, a directory listing, 404 and 403', async () => {
  const url = `${api.url}/repos/octo-org/payments/contents/.github%2Fgateway.yml?ref=${BASE_SHA}`;
  const auth = { authorization: `Bearer ${api.token}` };
  const json = await fetch(url, { headers: auth });
  const body = await json.json() as { type: string; encoding: string; content: string; path: string; sha: string };
  assert.equal(body.type, 'file');
  assert.equal(body.encoding, 'base64');
  assert.equal(Buffer.from(body.content, 'base64').toString('utf8'), POLICY(cluster.port, 'deny'));
  assert.equal(body.path, FILE);
  const raw = await fetch(url, { headers: { ...auth, accept: 'application/vnd.github.raw+json' } });
  assert.equal(await raw.text(), POLICY(cluster.port, 'deny'));
  const dir = await (await fetch(`${api.url}/repos/octo-org/payments/contents/.github?ref=${BASE_SHA}`, { headers: auth })).json() as { name: string; type: string }[];
  assert.deepEqual(dir.map((e) => [e.name, e.type]), [['gateway.yml', 'file']]);
  assert.equal((await fetch(`${api.url}/repos/octo-org/payments/contents/nope.yml?ref=${BASE_SHA}`, { headers: auth })).status, 404);
  const denied = await fetch(url.replace(api.url, noContents.url), { headers: { authorization: `Bearer ${noContents.token}` } });
  assert.equal(denied.status, 403);
  assert.equal(denied.headers.get('x-accepted-github-permissions'), 'contents=read');
});
