// The bundled action driven the way the runner drives it: dist/main.js, pipeline steps, then
// dist/post.js as separate processes with the runner's contract, against real stand-ins for
// GitHub's OIDC issuer, Entra ID over HTTPS, GitHub's REST API and the Actions artifact service
// (Azurite), and a real PostgreSQL whose role's password is the token Entra issues.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { appCluster, cliAsync, ROOT, tempDir, waitFor, type Cluster } from '../helpers/gateway.ts';
import { startOidcIssuer, type OidcIssuer } from '../helpers/oidc-issuer.ts';
import { startEntraStandIn, type EntraStandIn } from '../helpers/entra-stand-in.ts';
import { startGitHubApi, type GitHubApi } from '../helpers/github-api.ts';
import { startArtifactService, type ArtifactService } from '../helpers/artifact-service.ts';
import { runJob, type JobResult } from '../helpers/runner.ts';
import { SessionLogWriter, LOG_FORMAT } from '../../gateway/evidence/log-writer.ts';
import { startSshd, type Sshd } from '../helpers/sshd.ts';
import { startArmStandIn } from '../helpers/arm-stand-in.ts';
import { startKubeApi } from '../helpers/kube-api-stand-in.ts';
import { kubectlPath } from '../helpers/kube-api-kubectl.ts';
import { CheckpointSigner } from '../../gateway/evidence/checkpoint.ts';

const SCOPE = 'https://ossrdbms-aad.database.windows.net/.default';
const HEAD_SHA = 'b'.repeat(40);
const MERGE_SHA = 'c'.repeat(40);
const AKS_SCOPE = '6dae42f8-4368-4678-94ff-3960e28e3630/.default';
const AKS_TOKEN = `aks-entra-token-${'k'.repeat(48)}`;
const PG_TOKEN = `eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.${'A'.repeat(600)}.sig-${Date.now()}`;

let cluster: Cluster;
let issuer: OidcIssuer;
let entra: EntraStandIn;
let api: GitHubApi;
let artifacts: ArtifactService;
let work: string;
let sshd: Sshd;

const POLICY = (port: number): string => `version: 1
targets:
  app-db:
    kind: postgres
    host: 127.0.0.1
    port: ${port}
    database: app
    user: azure_deployer
    auth: azure
    tls: require
rules:
  - name: no-unbounded-writes
    when: { sql: [delete-without-where, update-without-where] }
    action: deny
    reason: add a WHERE clause
default: allow
unclassified: deny
`;

before(async () => {
  work = tempDir('gw-action-');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'server.key', '-out', 'server.crt', '-days', '2', '-subj', '/CN=localhost'], { cwd: work, stdio: 'pipe' });
  cluster = await appCluster({
    tls: { cert: path.join(work, 'server.crt'), key: path.join(work, 'server.key') },
    hba: ['hostssl all azure_deployer 127.0.0.1/32 scram-sha-256', 'hostnossl all azure_deployer 127.0.0.1/32 reject'],
  });
  // Azure Database for PostgreSQL checks the Entra token as the password; here the role's password is that token.
  cluster.sql(`CREATE ROLE azure_deployer LOGIN PASSWORD '${PG_TOKEN}'; GRANT ALL ON DATABASE app TO azure_deployer`);
  cluster.sql('CREATE TABLE scratch (id int); ALTER TABLE scratch OWNER TO azure_deployer; INSERT INTO scratch VALUES (1)', 'app');
  issuer = await startOidcIssuer({ eventName: 'pull_request', ref: 'refs/pull/7/merge', sha: MERGE_SHA });
  entra = await startEntraStandIn({ federatedCredentials: [{ issuer: issuer.url, subject: 'repo:octo-org/payments:pull_request' }], tokens: { [SCOPE]: PG_TOKEN, [AKS_SCOPE]: AKS_TOKEN } });
  api = await startGitHubApi({ owner: 'octo-org', name: 'payments', pulls: [{ number: 7, headSha: HEAD_SHA, mergeSha: MERGE_SHA, author: 'bob' }], collaborators: { carol: 'write' }, grantedPermissions: ['statuses', 'issues', 'pull_requests'] });
  artifacts = await startArtifactService();
  sshd = await startSshd();
});

const runnerTemps: string[] = [];

/** Everything a job leaves a reader: its log, summary, outputs, file commands, artifact files and state files, each named. */
function jobTexts(r: JobResult, artifactFiles: string[]): [string, string][] {
  const stateFiles = fs.readdirSync(r.state['state-dir']!).map((f) => path.join(r.state['state-dir']!, f)).filter((f) => fs.statSync(f).isFile());
  return [
    ['the job log', r.log], ['the summary', r.summary], ['the outputs', JSON.stringify(r.outputs)],
    ...Object.entries(r.commandFiles).map(([k, t]) => [`file command ${k}`, t] as [string, string]),
    ...artifactFiles.map((f) => [`artifact ${f}`, fs.readFileSync(f, 'utf8')] as [string, string]),
    ...stateFiles.map((f) => [`state file ${f}`, fs.readFileSync(f, 'utf8')] as [string, string]),
  ];
}
after(async () => {
  await Promise.all([issuer?.close(), entra?.close(), api?.close(), artifacts?.close()]);
  cluster?.stop();
  sshd?.stop();
  for (const d of [...runnerTemps, work]) fs.rmSync(d, { recursive: true, force: true });
});

let jobs = 0;
async function job(steps: Parameters<typeof runJob>[0]['steps'], opts: { inputs?: Record<string, string>; cancelAfterStep?: number; event?: string; policy?: string; env?: Record<string, string>; files?: Record<string, string> } = {}): Promise<JobResult> {
  const workspace = fs.mkdtempSync(path.join(work, `ws${++jobs}-`));
  fs.mkdirSync(path.join(workspace, '.github'));
  for (const [f, text] of Object.entries(opts.files ?? {})) fs.writeFileSync(path.join(workspace, f), text);
  fs.writeFileSync(path.join(workspace, '.github/gateway.yml'), opts.policy ?? POLICY(cluster.port));
  const eventPath = path.join(workspace, '..', `event-${jobs}.json`);
  // The issuer's claims follow the event, as GitHub's do (the subject names pull_request or the ref).
  issuer.job.eventName = opts.event ?? 'pull_request';
  issuer.job.ref = issuer.job.eventName === 'pull_request' ? 'refs/pull/7/merge' : 'refs/heads/main';
  fs.writeFileSync(eventPath, JSON.stringify({ number: 7, pull_request: { number: 7, head: { sha: HEAD_SHA }, user: { login: 'bob' } } }));
  const r = await runJob({
    actionDir: ROOT,
    workspace,
    // The policy's source on pull requests has its own tests (action-policy-source.test.ts).
    inputs: { policy: '.github/gateway.yml', 'policy-from': 'workspace', 'azure-client-id': entra.clientId, 'azure-tenant-id': entra.tenantId, 'azure-authority-host': entra.authorityHost, ...opts.inputs },
    env: {
      ...issuer.requestEnv,
      ...issuer.githubEnv(),
      GITHUB_EVENT_NAME: opts.event ?? 'pull_request',
      GITHUB_EVENT_PATH: eventPath,
      GITHUB_SHA: MERGE_SHA,
      GITHUB_API_URL: api.url,
      GITHUB_TOKEN: api.token,
      ...artifacts.env(),
      NODE_EXTRA_CA_CERTS: entra.caFile,
      GATEWAY_ACTION_OIDC_ISSUER: issuer.url,
      GATEWAY_ACTION_RUNTIME_DIR: path.join(work, 'run'),
      ...opts.env,
    },
    steps,
    cancelAfterStep: opts.cancelAfterStep,
    keepRunnerTemp: true,
  });
  runnerTemps.push(r.runnerTemp);
  return r;
}

/** Every secret the job had: none may appear anywhere a later step, a log reader or the artifact sees. */
function secrets(): Record<string, string> {
  return {
    'Entra token (upstream password)': PG_TOKEN,
    'OIDC request token': issuer.requestEnv.ACTIONS_ID_TOKEN_REQUEST_TOKEN,
    'Actions runtime token': artifacts.env().ACTIONS_RUNTIME_TOKEN!,
    'GitHub token': api.token,
  };
}

function assertNoSecrets(where: string, text: string): void {
  for (const [name, value] of Object.entries(secrets())) assert.equal(text.includes(value), false, `${name} leaked into ${where}`);
}

test('a pull request job: psql through the gateway on Azure auth, then a verifiable artifact, a summary and a status on the PR head', async (t) => {
  const r = await job([
    'psql -X -At -c "SELECT current_user, count(*) FROM scratch"',
    'psql -X -c "DELETE FROM scratch" || echo "denied as expected"',
    // What a later step could read of the daemon: its whole environment.
    'tr "\\0" "\\n" < /proc/"$(jq -r .pid "$RUNNER_TEMP"/gateway-action-*/daemon.json)"/environ > "$RUNNER_TEMP/daemon-environ.txt"',
  ]);
  assert.equal(r.main.outcome, 'success', r.main.stdout + r.main.stderr);
  const ready = /gateway ready in (\d+) ms/.exec(r.main.stdout);
  assert.ok(ready, r.main.stdout);
  // Measured, not asserted: the startup budget (2 s from step start to ready) is reported here.
  t.diagnostic(`main step: ${r.main.durationMs} ms from process start to exit; ${ready[1]} ms from inputs to ready (includes the local Entra stand-in)`);
  assert.equal(r.steps[0]!.outcome, 'success', r.steps[0]!.stderr);
  assert.equal(r.steps[0]!.stdout.trim(), 'azure_deployer|1');
  assert.match(r.steps[1]!.stderr, /ERROR: {2}gateway: denied by rule "no-unbounded-writes": add a WHERE clause/);
  assert.ok(r.post, 'post ran');
  // fail-on: denied (the default): the denied DELETE fails the check and the post step.
  assert.equal(r.post.outcome, 'failure');
  assert.match(r.post.stdout + r.post.stderr, /fail-on: denied/);

  // The commit status is on the PR's head, not the merge commit.
  const status = api.statuses.find((s) => s.context === 'gateway/audit');
  assert.ok(status, 'a status was set');
  assert.equal(status.sha, HEAD_SHA);
  assert.equal(status.state, 'failure');
  assert.match(status.description, /^2 commands, 1 denied, 0 approved, 0 not approved; log verified$/);

  // The summary shows the verdict, the identity and the counts by target.
  assert.match(r.summary, /VALID: hash chain intact/);
  assert.match(r.summary, /octo-org\/payments/);
  assert.match(r.summary, /<td><code>app-db<\/code><\/td><td>2<\/td><td>1<\/td><td>1<\/td>/);
  assert.match(r.summary, /no-unbounded-writes/);
  assert.match(r.summary, /gateway-session-log-/);

  // The artifact downloads and verifies offline with the key set it carries.
  const name = r.outputs['artifact-name']!;
  const dir = fs.mkdtempSync(path.join(work, 'download-'));
  const files = await artifacts.download(name, dir);
  const log = files.find((f) => f.endsWith('.jsonl'))!;
  assert.deepEqual(files.map((f) => path.basename(f)).sort(), [path.basename(log), 'jwks.json', 'report.html'].sort());
  const v = await cliAsync(['verify', path.join(dir, log), '--jwks', path.join(dir, 'jwks.json'), '--issuer', issuer.url, '--repository', 'octo-org/payments']);
  assert.equal(v.status, 0, v.stderr);
  assert.match(v.stdout, /event: +pull_request/);

  // Azure: every token request carried a fresh assertion with the PR subject.
  assert.ok(entra.requests.length >= 1 && entra.requests.every((q) => q.ok && q.subject === 'repo:octo-org/payments:pull_request'));

  // No secret in any file-command file, output, summary, step output, daemon output or the artifact.
  for (const [k, text] of Object.entries(r.commandFiles)) assertNoSecrets(`file command ${k}`, text);
  assertNoSecrets('the job log', r.log);
  assertNoSecrets('the summary', r.summary);
  assertNoSecrets('the outputs', JSON.stringify(r.outputs));
  const stateDir = r.state['state-dir']!;
  assertNoSecrets('the daemon output', fs.readFileSync(path.join(stateDir, 'daemon.log'), 'utf8'));
  for (const f of files) assertNoSecrets(`artifact file ${f}`, fs.readFileSync(path.join(dir, f), 'utf8'));
  // The per-run password is in GITHUB_ENV by design, and masked.
  assert.ok(r.masks.includes(r.exportedEnv.PGPASSWORD!), 'the per-run password is masked');
  assert.equal(r.exportedEnv.GATEWAY_APP_DB_URL?.startsWith('postgresql://azure_deployer:'), true);
  // The daemon's environment is an allowlist: no inputs, no runtime or GitHub token, no file commands.
  const environ = fs.readFileSync(path.join(r.runnerTemp, 'daemon-environ.txt'), 'utf8');
  assert.match(environ, /^GITHUB_REPOSITORY=octo-org\/payments$/m);
  assert.match(environ, /^AZURE_CLIENT_ID=/m);
  for (const banned of [/^INPUT_/m, /^ACTIONS_RUNTIME_TOKEN=/m, /^ACTIONS_RESULTS_URL=/m, /^GITHUB_TOKEN=/m, /^GITHUB_ENV=/m, /^GITHUB_OUTPUT=/m, /^GITHUB_STATE=/m]) {
    assert.doesNotMatch(environ, banned);
  }
  assertNoSecrets('the daemon environment', environ.replace(issuer.requestEnv.ACTIONS_ID_TOKEN_REQUEST_TOKEN, ''));
  // The log names the pull request behind the run.
  const start = JSON.parse(fs.readFileSync(path.join(dir, log), 'utf8').split('\n')[0]!) as { identity: Record<string, unknown> };
  assert.equal(start.identity.pull_request, 7);
  assert.equal(start.identity.head_sha, HEAD_SHA);
});

test('fail-on: never keeps the status green despite a denial; outputs carry the counts', async () => {
  const r = await job(['psql -X -c "DELETE FROM scratch" || true'], { inputs: { 'fail-on': 'never', 'status-context': 'gateway/audit-never' } });
  assert.equal(r.post?.outcome, 'success', (r.post?.stdout ?? '') + (r.post?.stderr ?? '') + r.main.stdout + r.main.stderr);
  const status = api.statuses.find((s) => s.context === 'gateway/audit-never');
  assert.equal(status?.state, 'success');
  assert.equal(r.post!.outputs.denied, '1');
  assert.equal(r.post!.outputs.verification, 'valid');
});

test('log-level: debug prints the daemon output with workflow commands off: a :: line a step planted there sets nothing', async () => {
  // A later step can write where the daemon writes (the threat model says so); what post prints of
  // it must not act as workflow commands (set an output, add an annotation, stop commands).
  const r = await job([
    'printf "::set-output name=verification::forged\\n::error::planted annotation\\n::stop-commands::x\\n\\033[2Kfake line\\n" >> "$RUNNER_TEMP"/gateway-action-*/daemon.log',
  ], { inputs: { 'log-level': 'debug', 'status-context': 'gateway/audit-debug' } });
  const post = r.post!;
  assert.equal(post.outcome, 'success', post.stdout + post.stderr + r.main.stdout + r.main.stderr);
  assert.match(post.stdout, /::set-output name=verification::forged/, 'the planted line is shown as text');
  assert.equal(post.outputs.verification, 'valid');
  assert.equal(r.annotations.some((a) => /planted annotation/.test(a.message)), false);
  assert.equal(post.stdout.includes('\u001b'), false, 'terminal controls are escaped');
  assert.match(post.stdout, /\\x1b\[2Kfake line/);
});

test('a subject Entra does not trust fails the main step with the translated error; post has nothing to stop', async () => {
  const r = await job(['psql -X -c "SELECT 1"'], { event: 'push' });
  assert.equal(r.main.outcome, 'failure');
  const text = r.main.stdout + r.main.stderr;
  assert.match(text, /Azure refused the job's identity for https:\/\/ossrdbms-aad\.database\.windows\.net\/\.default: no federated credential matches the subject "repo:octo-org\/payments:ref:refs\/heads\/main" the job presented; add a federated credential/);
  assert.match(text, /AADSTS700213/);
  assert.equal(r.steps[0]!.outcome, 'skipped');
  assert.match(r.post?.stdout ?? '', /did not start in this job; nothing to stop/);
});

test('bad inputs and a malformed policy stop the main step with the input or the policy line named', async () => {
  const bad = await job(['true'], { inputs: { 'fail-on': 'sometimes' } });
  assert.equal(bad.main.outcome, 'failure');
  assert.match(bad.main.stdout, /input "fail-on" is "sometimes": use denied/);
  const guid = await job(['true'], { inputs: { 'azure-client-id': 'my-app' } });
  assert.match(guid.main.stdout, /input "azure-client-id" is "my-app", which is not a GUID/);
  const missing = await job(['true'], { inputs: { policy: '.github/nope.yml' } });
  assert.match(missing.main.stdout, /input "policy": \.github\/nope\.yml does not exist in the workspace/);
  const workspace = fs.mkdtempSync(path.join(work, 'badpolicy-'));
  fs.mkdirSync(path.join(workspace, '.github'));
  fs.writeFileSync(path.join(workspace, '.github/broken.yml'), POLICY(cluster.port).replace('tls: require', 'tls: sometimes'));
  const broken = await job(['true'], { inputs: { policy: path.join(workspace, '.github/broken.yml') } });
  assert.match(broken.main.stdout, /broken\.yml:10: targets\.app-db\.tls/);
  for (const r of [bad, guid, missing, broken]) assert.equal(r.steps[0]!.outcome, 'skipped');
});

test('attest: true signs for the job identity through Sigstore; unreachable here, it fails the post step only after the artifact and the status', async (t) => {
  const before = issuer.requests.length;
  const r = await job(['psql -X -At -c "SELECT 1"'], { inputs: { attest: 'true', 'status-context': 'gateway/audit-attest' } });
  assert.equal(r.main.outcome, 'success', r.main.stdout);
  assert.equal(r.post?.outcome, 'failure');
  const failure = /the Sigstore attestation of the log failed: [^\n]*/.exec(r.post!.stdout + r.post!.stderr)?.[0] ?? '';
  assert.match(failure, /fulcio|sigstore|ENOTFOUND|fetch failed/i);
  t.diagnostic(failure);
  assert.ok(issuer.requests.slice(before).includes('sigstore'), `the job's OIDC token was requested for Sigstore (${issuer.requests.slice(before).join(', ')})`);
  assert.equal(api.statuses.find((s) => s.context === 'gateway/audit-attest')?.state, 'failure', 'evidence that was asked for and is missing fails the check');
  assert.ok((await artifacts.download(r.outputs['artifact-name']!, fs.mkdtempSync(path.join(work, 'attest-')))).length === 3);
});

test('every target gets its own per-run password, and every one is masked, as is the upstream password', async () => {
  const twoTargets = POLICY(cluster.port).replace('rules:', `  reporting:
    kind: postgres
    host: 127.0.0.1
    port: ${cluster.port}
    database: app
    user: deployer
    auth: { password-env: REPORTING_PASSWORD }
    tls: require
rules:`);
  const r = await job(['psql -X -At "$GATEWAY_REPORTING_URL" -c "SELECT current_user"'], { policy: twoTargets, env: { REPORTING_PASSWORD: 'deployer-pw' } });
  assert.equal(r.steps[0]!.stdout.trim(), 'deployer', r.steps[0]!.stderr);
  const passwordOf = (url: string): string => decodeURIComponent(new URL(url).password);
  for (const v of ['GATEWAY_APP_DB_URL', 'GATEWAY_REPORTING_URL']) assert.ok(r.masks.includes(passwordOf(r.exportedEnv[v]!)), `${v}'s password is masked`);
  assert.ok(r.masks.includes('deployer-pw'), 'the upstream password is masked too');
  assert.notEqual(passwordOf(r.exportedEnv.GATEWAY_APP_DB_URL!), passwordOf(r.exportedEnv.GATEWAY_REPORTING_URL!));
  assert.equal(r.log.includes(passwordOf(r.exportedEnv.GATEWAY_REPORTING_URL!)), false, 'no per-run password in the job log');
});

test('a later step that replaces the log file is caught: the uploaded evidence says so and the check fails', async () => {
  // A consistent, unattested log of the forger's own: its chain verifies on its own.
  const forged = path.join(work, 'forged.jsonl');
  const w = SessionLogWriter.create(work, 'forged.jsonl');
  const signer = new CheckpointSigner();
  w.signWith('f0f0f0f0f0f0', signer);
  w.append('run-start', { format: LOG_FORMAT, run: 'f0f0f0f0f0f0', identity: { kind: 'local', user: 'x', host: 'y' }, targets: [{ name: 'app-db' }], key: { alg: 'EdDSA', jwk: signer.jwk, thumbprint: signer.thumbprint }, attestation: 'unattested' });
  w.close('run-end', { run: 'f0f0f0f0f0f0', reason: 'stopped' });
  const r = await job(['psql -X -c "DELETE FROM scratch" || true', `log=$(ls "$RUNNER_TEMP"/gateway-logs-*/gateway-*.jsonl) && cp ${forged} "$log.new" && mv "$log.new" "$log"`], { inputs: { 'status-context': 'gateway/audit-swap', 'fail-on': 'never' } });
  assert.equal(r.post?.outcome, 'failure');
  assert.match(r.post!.stdout + r.post!.stderr, /the session log on the runner is not the one this job's gateway wrote: it is signed by key [\w-]+, the gateway's key is [\w-]+ \(a later step replaced the file\)/);
  assert.equal(api.statuses.find((s) => s.context === 'gateway/audit-swap')?.state, 'failure');
  assert.equal(r.outputs['key-thumbprint']?.length, 43);
  assert.match(r.summary, /TAMPERED/);
});

test('a DROP TABLE held in the job is approved by a PR comment, then runs; the status and the summary show the approval', async () => {
  cluster.sql('CREATE TABLE IF NOT EXISTS legacy (id int); ALTER TABLE legacy OWNER TO azure_deployer', 'app');
  const held = POLICY(cluster.port).replace('default: allow', `  - name: approve-drops
    when: { sql: [drop] }
    action: approve
    reason: dropping a table needs a DBA
default: allow`) + 'approvals:\n  approvers: [carol]\n  timeout: 2m\n';
  const running = job(['psql -X -v ON_ERROR_STOP=1 -c "DROP TABLE legacy"'], { policy: held, inputs: { 'status-context': 'gateway/audit-approval' }, env: { GATEWAY_ACTION_APPROVAL_POLL_MS: '200' } });
  const request = await waitFor(() => api.comments.find((c) => c.issue === 7 && c.body.includes('DROP TABLE legacy') && c.body.includes('approval requested')), 'the request on the PR', 60_000);
  const id = /approval requested `([a-z0-9]+)`/.exec(request!.body)![1]!;
  api.addComment(7, { login: 'carol' }, `/approve ${id}`);
  const r = await running;
  assert.equal(r.steps[0]!.outcome, 'success', r.steps[0]!.stderr);
  assert.match(r.steps[0]!.stderr, new RegExp(`waiting for approval: rule "approve-drops" holds this command as request ${id}`));
  assert.equal(cluster.sql("SELECT to_regclass('legacy') IS NULL", 'app').trim(), 't');
  assert.equal(r.post?.outcome, 'success', r.post?.stdout);
  const status = api.statuses.find((s) => s.context === 'gateway/audit-approval')!;
  assert.equal(status.state, 'success');
  assert.match(status.description, /^1 commands, 0 denied, 1 approved, 0 not approved; log verified$/);
  assert.match(r.summary, new RegExp(`approved by github:carol.*href="${request!.html_url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"`));
  assert.match(r.summary, /Approved by: github:carol \(1\)/);
});

test('an SSH step: commands run through the gateway, the summary lists them, and no key is in any output', async () => {
  const policy = POLICY(cluster.port).replace('rules:', `  web-vm:
    kind: ssh
    host: 127.0.0.1
    port: ${sshd.port}
    user: ${sshd.user}
    auth: { key-env: DEPLOY_SSH_KEY }
    host-key: "${sshd.hostKey}"
rules:
  - name: no-recursive-rm
    target: web-vm
    when: { program: [rm], option: [-r, -R, --recursive] }
    action: deny
    reason: Recursive deletes on servers are never run from CI`);
  const r = await job([
    'ssh -F "$GATEWAY_SSH_CONFIG" web-vm \'echo "hello from $(whoami)"\'',
    'ssh -F "$GATEWAY_SSH_CONFIG" web-vm \'rm -rf /tmp/gw-action-ssh\' || echo "denied as expected"',
    'cat "$GATEWAY_SSH_CONFIG"',
  ], { policy, inputs: { 'status-context': 'gateway/audit-ssh', 'fail-on': 'never' }, env: { DEPLOY_SSH_KEY: sshd.privateKey } });
  assert.equal(r.main.outcome, 'success', r.main.stdout + r.main.stderr);
  assert.equal(r.steps[0]!.stdout.trim(), `hello from ${sshd.user}`, r.steps[0]!.stderr);
  assert.match(r.steps[1]!.stderr, /gateway: denied by rule "no-recursive-rm": Recursive deletes on servers are never run from CI/);
  assert.match(r.steps[1]!.stdout, /denied as expected/);
  assert.match(r.steps[2]!.stdout, /^Host web-vm$/m);
  assert.match(r.summary, /<td><code>web-vm<\/code><\/td><td>2<\/td><td>1<\/td><td>1<\/td>/);
  assert.match(r.summary, /rm -rf \/tmp\/gw-action-ssh/);
  // Neither the upstream key nor the run key: not in the job log, the summary, outputs or the artifact.
  const runKey = fs.readFileSync(path.join(r.state['state-dir']!, 'ssh_client_key'), 'utf8');
  const keyLines = [sshd.privateKey, runKey].flatMap((k) => k.split('\n').filter((l) => l.length > 20 && !l.startsWith('-----')));
  assert.ok(keyLines.length >= 4);
  const dest = fs.mkdtempSync(path.join(work, 'ssh-'));
  const files = (await artifacts.download(r.outputs['artifact-name']!, dest)).map((f) => path.join(dest, f));
  const texts: [string, string][] = [['the job log', r.log], ['the summary', r.summary], ['the outputs', JSON.stringify(r.outputs)], ...Object.entries(r.commandFiles).map(([k, t]) => [`file command ${k}`, t] as [string, string]), ...files.map((f) => [`artifact ${f}`, fs.readFileSync(f, 'utf8')] as [string, string])];
  for (const [where, text] of texts) for (const line of keyLines) assert.equal(text.includes(line), false, `a key line leaked into ${where}`);
  // The upstream key's lines are masked, should anything print them.
  for (const line of sshd.privateKey.split('\n').filter((l) => l.length > 20 && !l.startsWith('-----'))) assert.ok(r.masks.includes(line.trim()), 'upstream key line masked');
});

test('an HTTP step: ARM calls through the reverse and the forward proxy, a denial in the ARM error shape, and no token in any output', async () => {
  const armToken = `arm-bearer-${'t'.repeat(48)}`;
  const arm = await startArmStandIn({ tokenCheck: (b) => b === armToken, lroHost: 'management.azure.com' });
  try {
    arm.addResourceGroup('rg-app');
    const policy = POLICY(cluster.port).replace('rules:', `  arm:
    kind: http
    url: https://management.azure.com
    auth: { bearer-env: ARM_TOKEN }
    ca-file: arm-ca.pem
    connect-to: 127.0.0.1:${arm.port}
rules:
  - { name: no-storage-keys, target: arm, when: { resource: { provider: Microsoft.Storage, action: [listKeys] } }, action: deny }`);
    const sub = arm.subscriptionId;
    const r = await job([
      `curl -sS "$GATEWAY_ARM_URL/subscriptions/${sub}/resourceGroups/rg-app?api-version=2021-04-01"`,
      `curl -sS "https://management.azure.com/subscriptions/${sub}/resourcegroups?api-version=2021-04-01"`,
      `curl -sS -X POST "$GATEWAY_ARM_URL/subscriptions/${sub}/resourceGroups/rg-app/providers/Microsoft.Storage/storageAccounts/st1/listKeys?api-version=2023-01-01"`,
    ], { policy, files: { '.github/arm-ca.pem': fs.readFileSync(arm.caFile, 'utf8') }, inputs: { 'status-context': 'gateway/audit-http', 'fail-on': 'never' }, env: { ARM_TOKEN: armToken } });
    assert.equal(r.main.outcome, 'success', r.main.stdout + r.main.stderr);
    assert.match(r.steps[0]!.stdout, /"name":\s*"rg-app"/, r.steps[0]!.stderr);
    assert.match(r.steps[1]!.stdout, /rg-app/, r.steps[1]!.stderr);
    assert.match(r.steps[2]!.stdout, /GatewayPolicyDenied.*no-storage-keys/);
    assert.match(r.summary, /listKeys/);
    assert.ok(arm.requests.every((q) => q.headers.authorization === `Bearer ${armToken}`));
    const dest = fs.mkdtempSync(path.join(work, 'http-'));
    const files = (await artifacts.download(r.outputs['artifact-name']!, dest)).map((f) => path.join(dest, f));
    assert.ok(files.length > 0);
    const texts = jobTexts(r, files);
    for (const [where, text] of texts) assert.equal(text.includes(armToken), false, `the token leaked into ${where}`);
    assert.ok(r.masks.includes(armToken), 'the token is masked');
  } finally {
    await arm.stop();
  }
});

test('a kubectl step: AKS through the gateway on the job\'s Entra token, a secret read denied, an exec recorded, and no token in any output', async () => {
  const host = 'prod-dns-1a2b3c.hcp.westeurope.azmk8s.io';
  const kube = await startKubeApi({ token: AKS_TOKEN, hostNames: [host] });
  try {
    const policy = POLICY(cluster.port).replace('rules:', `  aks-prod:
    kind: kubernetes
    server: https://${host}:443
    ca-file: aks-ca.pem
    auth: azure
    connect-to: 127.0.0.1:${kube.port}
rules:
  - { name: no-secret-reads, target: aks-prod, when: { kube: { verb: [get, list, watch], resource: [secrets] } }, action: deny }`);
    const kubectl = kubectlPath();
    const r = await job([
      `${kubectl} get pods -n default`,
      `${kubectl} exec -n staging worker-0 -c worker -- echo hello-from-the-job`,
      `${kubectl} get secret db-credentials -n default -o yaml`,
    ], { policy, files: { '.github/aks-ca.pem': fs.readFileSync(kube.caFile, 'utf8') }, inputs: { 'status-context': 'gateway/audit-kube', 'fail-on': 'never' } });
    assert.equal(r.main.outcome, 'success', r.main.stdout + r.main.stderr);
    assert.match(r.steps[0]!.stdout, /web-0/, r.steps[0]!.stderr);
    assert.match(r.steps[1]!.stdout, /hello-from-the-job/, r.steps[1]!.stderr);
    assert.match(r.steps[2]!.stderr, /Forbidden.*no-secret-reads/);
    assert.match(r.summary, /get secrets\/db-credentials -n default · GET https:\/\/prod-dns/, 'the denial is listed as kubectl says it');
    assert.ok(!kube.calls.some((c) => c.url.includes('/secrets')), 'the API server never saw the secret read');
    const dest = fs.mkdtempSync(path.join(work, 'kube-'));
    const files = (await artifacts.download(r.outputs['artifact-name']!, dest)).map((f) => path.join(dest, f));
    const logText = files.filter((f) => f.endsWith('.jsonl')).map((f) => fs.readFileSync(f, 'utf8')).join('');
    assert.match(logText, /"kind":"kubernetes\.exec"[^\n]*"argv":\["echo","hello-from-the-job"\]|"argv":\["echo","hello-from-the-job"\][^\n]*"kind":"kubernetes\.exec"/, 'the exec and its argv are in the uploaded log');
    const texts = jobTexts(r, files);
    for (const [where, text] of texts) assert.equal(text.includes(AKS_TOKEN), false, `the AKS token leaked into ${where}`);
    // The per-run token of the kubeconfig is masked wherever the job prints it.
    const runToken = /token: (\S+)/.exec(fs.readFileSync(path.join(r.state['state-dir']!, 'kubeconfig'), 'utf8'))?.[1];
    assert.ok(runToken && r.masks.includes(runToken), 'the per-run token is masked');
  } finally {
    await kube.close();
  }
});

test('a confined step: gateway-action is on the PATH, psql reaches the database through the gateway only, and the summary lists the confined commands', async () => {
  const r = await job([
    `cd / && gateway-action exec --confine -- psql -XAtc "select 'through-the-gateway'"`,
    `cd / && gateway-action exec --confine -- bash -c 'exec 3<>/dev/tcp/127.0.0.1/${cluster.port}' || echo "direct connection refused inside"`,
    `cd / && gateway-action exec --confine -- bash -c 'echo "oidc:\${ACTIONS_ID_TOKEN_REQUEST_TOKEN:-none} github:\${GITHUB_TOKEN:-none}"'`,
  ], { inputs: { 'fail-on': 'never' }, env: { GITHUB_TOKEN: 'ghs_job_token_value_1234' } });
  assert.equal(r.main.outcome, 'success', r.main.stdout + r.main.stderr);
  assert.match(r.steps[0]!.stdout, /through-the-gateway/, r.steps[0]!.stderr);
  assert.match(r.steps[1]!.stdout, /direct connection refused inside/);
  assert.match(r.steps[2]!.stdout, /oidc:none github:none/);
  assert.match(r.summary, /<h3>Confined commands<\/h3>/);
  assert.match(r.summary, /<td><code>psql -XAtc &#39;select [^<]*through-the-gateway[^<]*<\/code><\/td><td><code>gateway-confined<\/code><\/td><td>exit 0<\/td><td><code>s\d+<\/code><\/td>/, 'the confined psql and the session it opened');
});

test('a cancelled job still uploads a sealed, verifiable log', async () => {
  const r = await job(['psql -X -At -c "SELECT 42"', 'sleep 60'], { cancelAfterStep: 1 });
  assert.equal(r.cancelled, true);
  assert.ok(r.post);
  const files = await artifacts.download(r.outputs['artifact-name']!, fs.mkdtempSync(path.join(work, 'cancel-')));
  assert.ok(files.some((f) => f.endsWith('.jsonl')));
  assert.equal(r.post!.outputs.verification, 'valid');
  assert.equal(r.post!.outputs.commands, '1');
});

test('a daemon that crashed fails the job loudly, and what it logged is still uploaded', async () => {
  const r = await job(['psql -X -At -c "SELECT 1"', 'kill -9 "$(jq -r .pid "$RUNNER_TEMP"/gateway-action-*/daemon.json)"'], { inputs: { 'status-context': 'gateway/audit-crash' } });
  assert.equal(r.post?.outcome, 'failure');
  assert.match(r.post!.stdout + r.post!.stderr, /the gateway daemon did not stop cleanly: pid \d+ died during the job/);
  assert.equal(r.post!.outputs.verification, 'unsealed');
  assert.equal(api.statuses.find((s) => s.context === 'gateway/audit-crash')?.state, 'failure');
  const dir = fs.mkdtempSync(path.join(work, 'crash-'));
  const files = await artifacts.download(r.outputs['artifact-name']!, dir);
  const log = files.find((f) => f.endsWith('.jsonl'))!;
  const v = await cliAsync(['verify', path.join(dir, log), '--jwks', path.join(dir, 'jwks.json'), '--issuer', issuer.url]);
  assert.equal(v.status, 4, v.stderr);
});

/** The policy of the held-DELETE tests: the ARM target, its stand-in CA, and review-deletes. */
function armApprovalPolicy(armPort: number): string {
  return POLICY(cluster.port).replace('rules:', `  arm:
    kind: http
    url: https://management.azure.com
    auth: { bearer-env: ARM_TOKEN }
    ca-file: arm-ca.pem
    connect-to: 127.0.0.1:${armPort}
rules:
  - { name: review-deletes, target: arm, when: { method: [DELETE] }, action: approve }`) + 'approvals:\n  approvers: [carol]\n  timeout: 2m\n';
}

/** The approval request comment naming this resource group, and its request id. */
async function armApprovalComment(resourceGroup: string): Promise<{ body: string; html_url: string; id: string }> {
  const c = await waitFor(() => api.comments.find((x) => x.issue === 7 && x.body.includes('approval requested') && x.body.includes(`/resourceGroups/${resourceGroup}?`)), `the request for ${resourceGroup} on the PR`, 60_000);
  return { body: c!.body, html_url: c!.html_url, id: /approval requested `([a-z0-9]+)`/.exec(c!.body)![1]! };
}

test('an HTTP DELETE held in the job: the PR comment shows the ARM resource, a reviewer approves, ARM gets it with the token', async () => {
  const armToken = `arm-bearer-${'a'.repeat(48)}`;
  const arm = await startArmStandIn({ tokenCheck: (b) => b === armToken, lroHost: 'management.azure.com' });
  try {
    arm.addResourceGroup('rg-old');
    const sub = arm.subscriptionId;
    const running = job([
      `curl -sS -o /dev/null -w '%{http_code}\\n' -X DELETE "$GATEWAY_ARM_URL/subscriptions/${sub}/resourceGroups/rg-old?api-version=2021-04-01"`,
    ], { policy: armApprovalPolicy(arm.port), files: { '.github/arm-ca.pem': fs.readFileSync(arm.caFile, 'utf8') }, inputs: { 'status-context': 'gateway/audit-http-approval' }, env: { ARM_TOKEN: armToken, GATEWAY_ACTION_APPROVAL_POLL_MS: '200' } });
    const request = await armApprovalComment('rg-old');
    // Nothing reached ARM while the request was held.
    assert.equal(arm.requests.some((q) => q.method === 'DELETE'), false, 'the DELETE is held, not sent');
    // The comment says what the request does in ARM's terms, then the request line in an http fence.
    assert.match(request.body, /A command on \*\*arm\*\* is held by rule \*\*review-deletes\*\*/);
    assert.ok(request.body.includes(`\n\`DELETE\` \`Microsoft.Resources/resourceGroups\` \`rg-old\` of subscription \`${sub}\`\n`), request.body);
    assert.ok(request.body.includes(`\`\`\`http\nDELETE https://management.azure.com/subscriptions/${sub}/resourceGroups/rg-old?api-version=2021-04-01`), request.body);
    assert.equal(request.body.includes(armToken), false, 'no token in the comment');
    api.addComment(7, { login: 'carol' }, `/approve ${request.id}`);
    const r = await running;
    assert.equal(r.steps[0]!.outcome, 'success', r.steps[0]!.stderr);
    assert.equal(r.steps[0]!.stdout.trim(), '202');
    const deletes = arm.requests.filter((q) => q.method === 'DELETE');
    assert.equal(deletes.length, 1);
    assert.equal(deletes[0]!.path, `/subscriptions/${sub}/resourceGroups/rg-old`);
    assert.equal(deletes[0]!.headers.authorization, `Bearer ${armToken}`);
    assert.equal(r.post?.outcome, 'success', r.post?.stdout);
    const status = api.statuses.find((s) => s.context === 'gateway/audit-http-approval')!;
    assert.equal(status.state, 'success');
    assert.match(status.description, /^1 commands, 0 denied, 1 approved, 0 not approved; log verified$/);
    assert.match(r.summary, new RegExp(`approved by github:carol.*href="${request.html_url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"`));
    assert.match(r.summary, /Approved by: github:carol \(1\)/);
    assert.match(r.summary, /Microsoft\.Resources\/resourceGroups rg-old/);
    for (const [where, text] of [['the job log', r.log], ['the summary', r.summary]]) assert.equal(text!.includes(armToken), false, `the token leaked into ${where}`);
  } finally {
    await arm.stop();
  }
});

test('an HTTP DELETE held in the job: a reviewer denies with a reason, curl gets 403 in the ARM error shape, ARM never sees it', async () => {
  const armToken = `arm-bearer-${'d'.repeat(48)}`;
  const arm = await startArmStandIn({ tokenCheck: (b) => b === armToken, lroHost: 'management.azure.com' });
  try {
    arm.addResourceGroup('rg-keep');
    const sub = arm.subscriptionId;
    const running = job([
      `curl -sS -w '\\n%{http_code}\\n' -X DELETE "$GATEWAY_ARM_URL/subscriptions/${sub}/resourceGroups/rg-keep?api-version=2021-04-01"`,
      `curl -sS -o /dev/null -w '%{http_code}\\n' "$GATEWAY_ARM_URL/subscriptions/${sub}/resourceGroups/rg-keep?api-version=2021-04-01"`,
    ], { policy: armApprovalPolicy(arm.port), files: { '.github/arm-ca.pem': fs.readFileSync(arm.caFile, 'utf8') }, inputs: { 'status-context': 'gateway/audit-http-deny', 'fail-on': 'never' }, env: { ARM_TOKEN: armToken, GATEWAY_ACTION_APPROVAL_POLL_MS: '200' } });
    const request = await armApprovalComment('rg-keep');
    assert.match(request.body, /^`DELETE` `Microsoft\.Resources\/resourceGroups` `rg-keep`/m);
    api.addComment(7, { login: 'carol' }, `/deny ${request.id} the group still serves the legacy app`);
    const r = await running;
    assert.equal(r.steps[0]!.outcome, 'success', r.steps[0]!.stderr);
    const [body, code] = r.steps[0]!.stdout.trim().split('\n');
    assert.equal(code, '403');
    const error = JSON.parse(body!) as { error: { code: string; message: string } };
    assert.equal(error.error.code, 'GatewayPolicyDenied');
    assert.match(error.error.message, /review-deletes/);
    assert.match(error.error.message, /github:carol/);
    assert.match(error.error.message, /the group still serves the legacy app/);
    // ARM never saw the DELETE; the group is still there.
    assert.equal(arm.requests.some((q) => q.method === 'DELETE'), false);
    assert.equal(r.steps[1]!.stdout.trim(), '200');
    assert.equal(r.post?.outcome, 'success', r.post?.stdout);
    const status = api.statuses.find((s) => s.context === 'gateway/audit-http-deny')!;
    // A request not approved is a denial too (as evidence-totals counts it).
    assert.match(status.description, /^2 commands, 1 denied, 0 approved, 1 not approved; log verified$/);
    assert.match(r.summary, /github:carol/);
    assert.match(r.summary, /the group still serves the legacy app/);
  } finally {
    await arm.stop();
  }
});
