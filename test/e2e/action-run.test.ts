// The action's main and post steps as functions: run() of action/main.ts and action/post.ts
// called in this process with a recording Step (the runner contract: inputs, state, outputs,
// exported variables, masks, messages), without the runner harness. The daemon they start is the
// real one (dist/cli.js) in front of a real PostgreSQL; the commit status, the artifact and the
// OIDC token go to the stand-ins of test/helpers. The toolkit's own readers (the event context of
// @actions/github, the artifact client, the job summary) read process.env, so the job's
// variables are put there too.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { appCluster, CLI, psql, tempDir, type Cluster } from '../helpers/gateway.ts';
import { startGitHubApi, type GitHubApi } from '../helpers/github-api.ts';
import { startArtifactService, type ArtifactService } from '../helpers/artifact-service.ts';
import { startOidcIssuer, type OidcIssuer } from '../helpers/oidc-issuer.ts';
import type { Step } from '../../action/step.ts';

const HEAD_SHA = 'b'.repeat(40);
const MERGE_SHA = 'c'.repeat(40);
const UPSTREAM_PASSWORD = 'deployer-pw';

let cluster: Cluster;
let api: GitHubApi;
let artifacts: ArtifactService;
let issuer: OidcIssuer;
let work: string;
let jobEnv: Record<string, string>;
let main: typeof import('../../action/main.ts');
let post: typeof import('../../action/post.ts');

const policyText = (port: number, extra = ''): string => `version: 1
targets:
  app-db:
    kind: postgres
    host: 127.0.0.1
    port: ${port}
    database: app
    user: deployer
    tls: disable
    auth: { password-env: APP_DB_PASSWORD }
${extra}rules:
  - name: no-unbounded-writes
    when: { sql: [delete-without-where] }
    action: deny
    reason: add a WHERE clause
default: allow
`;

before(async () => {
  work = tempDir('gw-action-run-');
  cluster = await appCluster();
  cluster.sql('CREATE TABLE scratch (id int); ALTER TABLE scratch OWNER TO deployer; INSERT INTO scratch VALUES (1)', 'app');
  api = await startGitHubApi({ owner: 'octo-org', name: 'payments', pulls: [{ number: 7, headSha: HEAD_SHA, mergeSha: MERGE_SHA, author: 'bob' }], grantedPermissions: ['statuses'] });
  artifacts = await startArtifactService();
  issuer = await startOidcIssuer({ eventName: 'pull_request', ref: 'refs/pull/7/merge', sha: MERGE_SHA });
  const eventPath = path.join(work, 'event.json');
  fs.writeFileSync(eventPath, JSON.stringify({ number: 7, pull_request: { number: 7, head: { sha: HEAD_SHA }, user: { login: 'bob' } } }));
  fs.mkdirSync(path.join(work, 'runner-temp'));
  jobEnv = {
    ...issuer.githubEnv(),
    ...issuer.requestEnv,
    ...artifacts.env(),
    GITHUB_EVENT_NAME: 'pull_request',
    GITHUB_EVENT_PATH: eventPath,
    GITHUB_SHA: MERGE_SHA,
    GITHUB_API_URL: api.url,
    GITHUB_WORKSPACE: work,
    GITHUB_STEP_SUMMARY: path.join(work, 'summary.md'),
    RUNNER_TEMP: path.join(work, 'runner-temp'),
    GATEWAY_ACTION_OIDC_ISSUER: issuer.url,
    GATEWAY_ACTION_RUNTIME_DIR: path.join(work, 'run'),
  };
  fs.writeFileSync(jobEnv.GITHUB_STEP_SUMMARY!, ''); // the runner creates it empty
  Object.assign(process.env, jobEnv);
  // Loaded once the job's variables are in place: the event context reads them on first use.
  main = await import('../../action/main.ts');
  post = await import('../../action/post.ts');
});

after(async () => {
  await Promise.all([api?.close(), artifacts?.close(), issuer?.close()]);
  cluster?.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

interface Recorded {
  outputs: Record<string, string>;
  state: Record<string, string>;
  exported: Record<string, string>;
  paths: string[];
  masks: string[];
  messages: string[];
  untrusted: string[];
  failed: string | null;
}

/** A Step that records what run() does, as the runner would keep it. */
function recordingStep(inputs: Record<string, string>, env: NodeJS.ProcessEnv, state: Record<string, string> = {}): { step: Step; r: Recorded } {
  const r: Recorded = { outputs: {}, state: { ...state }, exported: {}, paths: [], masks: [], messages: [], untrusted: [], failed: null };
  // The policy's source on pull requests has its own tests (action-policy-source.test.ts).
  inputs = { 'policy-from': 'workspace', ...inputs };
  const step: Step = {
    env,
    input: (name) => (inputs[name] ?? '').trim(),
    state: (name) => r.state[name] ?? '',
    saveState: (name, value) => void (r.state[name] = value),
    setOutput: (name, value) => void (r.outputs[name] = value),
    exportVariable: (name, value) => void (r.exported[name] = value),
    addPath: (dir) => void r.paths.push(dir),
    setSecret: (value) => void r.masks.push(value),
    info: (m) => void r.messages.push(`info: ${m}`),
    warning: (m) => void r.messages.push(`warning: ${m}`),
    error: (m) => void r.messages.push(`error: ${m}`),
    untrusted: (title, text) => void r.untrusted.push(`${title}\n${text}`),
    setFailed: (m) => void (r.failed = m),
  };
  return { step, r };
}

function killLeftover(pid: number): void {
  try {
    if (pid > 0) process.kill(pid, 'SIGKILL');
  } catch {
    // Stopped by post.
  }
}

function writePolicy(name: string, text: string): string {
  fs.writeFileSync(path.join(work, name), text);
  return name;
}

test('main starts the daemon and hands over the connection; post stops it, verifies, uploads, and sets the status on the PR head', async (t) => {
  const inputs = { policy: writePolicy('gateway.yml', policyText(cluster.port)), 'github-token': api.token, 'status-context': 'gateway/audit' };
  const { step, r } = recordingStep(inputs, { ...jobEnv, APP_DB_PASSWORD: UPSTREAM_PASSWORD });
  await main.run(step, CLI);
  // Should an assertion fail before post runs, the daemon does not outlive the test.
  t.after(() => killLeftover(Number(r.state.pid)));
  assert.equal(r.failed, null, r.messages.join('\n'));

  // What later steps get is connection.json's env, exported as is; the masks are the upstream
  // secret and exactly the secrets connection.json declares.
  const stateDir = r.state['state-dir']!;
  const connection = JSON.parse(fs.readFileSync(path.join(stateDir, 'connection.json'), 'utf8')) as { env: Record<string, string>; secrets: string[] };
  // The connection, and where the gateway keeps its state (gateway-action exec reads it there); the CLI on the PATH.
  assert.deepEqual(r.exported, { ...connection.env, GATEWAY_STATE_DIR: r.state['state-dir'] } as Record<string, string>);
  assert.equal(r.paths.length, 1);
  assert.match(fs.readFileSync(path.join(r.paths[0]!, 'gateway-action'), 'utf8'), /^#!\/bin\/sh\nexec '.*node.*' '.*cli\.js' "\$@"\n$/);
  assert.deepEqual(r.masks, [UPSTREAM_PASSWORD, ...connection.secrets]);
  assert.ok(r.masks.includes(r.exported.PGPASSWORD!), 'the per-run password is masked');
  assert.match(r.exported.GATEWAY_APP_DB_URL!, /^postgresql:\/\/deployer:/);
  assert.deepEqual(JSON.parse(r.outputs['url-variables']!), { 'app-db': 'GATEWAY_APP_DB_URL' });
  assert.equal(r.outputs['app-db-url-variable'], 'GATEWAY_APP_DB_URL');
  assert.equal(r.outputs['session-log'], r.state.log);
  assert.equal(r.state.attested, 'true');
  assert.match(r.state['artifact-name']!, /^gateway-session-log-migrate-1-/);
  assert.ok(r.messages.some((m) => /gateway ready in \d+ ms/.test(m)), r.messages.join('\n'));

  // A later step: psql with the exported variables.
  assert.equal(psql(r.exported, ['-X', '-At', '-c', 'SELECT count(*) FROM scratch']).stdout.trim(), '1');
  assert.match(psql(r.exported, ['-X', '-c', 'DELETE FROM scratch']).stderr, /denied by rule "no-unbounded-writes"/);

  const pid = Number(r.state.pid);
  assert.ok(pid > 0);
  const p = recordingStep(inputs, jobEnv, r.state);
  await post.run(p.step);
  // fail-on: denied (the default): the denied DELETE fails the check and the step, after everything ran.
  assert.match(p.r.failed ?? '', /^gateway-action: fail-on: denied: 2 commands, 1 denied/);
  assert.deepEqual({ status: p.r.outputs.status, verification: p.r.outputs.verification, commands: p.r.outputs.commands, denied: p.r.outputs.denied }, { status: 'failure', verification: 'valid', commands: '2', denied: '1' });
  assert.deepEqual(p.r.untrusted, [], 'the daemon output is shown only at log-level debug or when it died');
  assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, 'the daemon is gone');

  // The status is on the pull request's head, read from the event payload, not on GITHUB_SHA.
  const status = api.statuses.find((s) => s.context === 'gateway/audit');
  assert.equal(status?.sha, HEAD_SHA);
  assert.equal(status?.state, 'failure');
  assert.equal(status?.target_url, `https://github.com/octo-org/payments/actions/runs/${jobEnv.GITHUB_RUN_ID}`);
  // The evidence: uploaded under the name main chose, and summarized.
  const files = await artifacts.download(r.state['artifact-name']!, fs.mkdtempSync(path.join(work, 'download-')));
  assert.deepEqual(files.map((f) => path.basename(f)).sort(), [path.basename(r.state.log!), 'jwks.json', 'report.html'].sort());
  assert.match(fs.readFileSync(jobEnv.GITHUB_STEP_SUMMARY!, 'utf8'), /no-unbounded-writes/);
  // Nothing secret in what the step printed or set.
  for (const secret of r.masks) assert.equal(JSON.stringify([p.r, r.outputs, r.messages]).includes(secret), false);
});

test('main masks whatever secrets the daemon declares, under any name, and refuses a connection file it cannot read', async () => {
  // A daemon of an adapter whose secret is called nothing like a password (the shipped CLI has
  // only the postgres adapter): a script keeping launchDaemon's contract (IPC secrets in,
  // daemon.json and connection.json written, ready out) that exports what connection.json says.
  const stub = path.join(work, 'stub-daemon');
  fs.mkdirSync(stub);
  fs.writeFileSync(path.join(stub, 'cli.mjs'), `import fs from 'node:fs';
import path from 'node:path';
const arg = (n) => process.argv[process.argv.indexOf(n) + 1];
process.once('message', () => {
  const state = arg('--state-dir');
  fs.writeFileSync(path.join(state, 'daemon.json'), JSON.stringify({ pid: process.pid, log: path.join(arg('--log-dir'), 'stub.jsonl'), run: 'stub-run', key: 'stub-key', attested: true }));
  fs.copyFileSync(new URL('./connection.json', import.meta.url), path.join(state, 'connection.json'));
  process.send({ ready: true });
});
process.on('disconnect', () => process.exit(0));
`);
  const inputs = { policy: writePolicy('stub.yml', policyText(cluster.port)) };
  const env = { ...jobEnv, APP_DB_PASSWORD: UPSTREAM_PASSWORD };

  fs.writeFileSync(path.join(stub, 'connection.json'), JSON.stringify({ env: { GATEWAY_ECHO_URL: 'echo://127.0.0.1:7000', ECHO_SESSION: 'tok-3f9a1c' }, secrets: ['tok-3f9a1c'], files: [] }));
  const ok = recordingStep(inputs, env);
  await main.run(ok.step, path.join(stub, 'cli.mjs'));
  assert.equal(ok.r.failed, null, ok.r.messages.join('\n'));
  assert.deepEqual(ok.r.exported, { GATEWAY_ECHO_URL: 'echo://127.0.0.1:7000', ECHO_SESSION: 'tok-3f9a1c', GATEWAY_STATE_DIR: ok.r.state['state-dir'] });
  assert.deepEqual(ok.r.masks, [UPSTREAM_PASSWORD, 'tok-3f9a1c']);

  for (const [broken, why] of [
    ['{"env": {"A": "1"}}', /secrets is not a list of strings/],
    ['{"env": {"A\\nB": "1"}, "secrets": []}', /env has a variable named "A\\nB"/],
    ['{"env": {"A": 1}, "secrets": []}', /env\.A is not a string/],
    ['not json', /cannot be read/],
  ] as const) {
    fs.writeFileSync(path.join(stub, 'connection.json'), broken);
    const bad = recordingStep(inputs, env);
    await main.run(bad.step, path.join(stub, 'cli.mjs'));
    assert.match(bad.r.failed ?? '', why, broken);
    assert.match(bad.r.failed ?? '', /nothing was exported/);
    assert.deepEqual(bad.r.exported, {}, 'nothing is exported without knowing what to mask');
    assert.equal(bad.r.state['state-dir'] !== undefined, true, 'post still finds the daemon to stop');
  }
});

test('main checks each target before starting anything: its secret variables set, Entra ID inputs and the OIDC token when it needs them', async () => {
  const inputs = { policy: writePolicy('checks.yml', policyText(cluster.port)) };
  const missing = recordingStep(inputs, { ...jobEnv });
  await main.run(missing.step, CLI);
  assert.match(missing.r.failed ?? '', /^gateway-action: target "app-db": the environment variable APP_DB_PASSWORD \(its upstream secret\) is not set for this step/);
  assert.deepEqual(missing.r.state, {}, 'nothing started');

  const azure = writePolicy('azure.yml', policyText(cluster.port).replace('auth: { password-env: APP_DB_PASSWORD }', 'auth: azure').replace('tls: disable', 'tls: require'));
  const noInputs = recordingStep({ policy: azure }, { ...jobEnv });
  await main.run(noInputs.step, CLI);
  assert.match(noInputs.r.failed ?? '', /target "app-db" signs in with an Entra ID token \(auth: azure\): set the azure-client-id and azure-tenant-id inputs/);
  const guid = '00000000-0000-0000-0000-000000000001';
  const noOidc = { ...jobEnv };
  delete noOidc.ACTIONS_ID_TOKEN_REQUEST_URL;
  const noToken = recordingStep({ policy: azure, 'azure-client-id': guid, 'azure-tenant-id': guid }, noOidc);
  await main.run(noToken.step, CLI);
  assert.match(noToken.r.failed ?? '', /target "app-db" signs in with an Entra ID token, which needs the job's OIDC token: add `permissions: id-token: write`/);

  // post after a main that started nothing: nothing to stop, and no failure of its own.
  const p = recordingStep(inputs, jobEnv, missing.r.state);
  await post.run(p.step);
  assert.equal(p.r.failed, null);
  assert.deepEqual(p.r.messages, ['info: gateway-action: the gateway did not start in this job; nothing to stop']);
});
