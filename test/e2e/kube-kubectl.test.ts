// The Kubernetes gateway end to end with the policy as written (AKS server name reached
// through `connect-to`, the stand-in's CA as `ca-file`, `auth: azure` through the job's OIDC token
// and the Entra ID stand-in), the real kubectl as the client: get, apply, delete with approval,
// logs and logs -f, watch, exec with and without a tty, exit codes, an exec denied by its argv,
// SPDY refused with the message, port-forward denied, and no cluster credential anywhere a step
// can see.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startEntraStandIn, type EntraStandIn } from '../helpers/entra-stand-in.ts';
import { startOidcIssuer, type OidcIssuer } from '../helpers/oidc-issuer.ts';
import { startKubeApi, type KubeApi } from '../helpers/kube-api-stand-in.ts';
import { kubectlPath, runKubectl } from '../helpers/kube-api-kubectl.ts';
import { cli, cliAsync, readLog, tempDir, waitFor, type LogRecord, startedGatewayEnv } from '../helpers/gateway.ts';

const AKS_SCOPE = '6dae42f8-4368-4678-94ff-3960e28e3630/.default';
const AKS_HOST = 'prod-dns-1a2b3c.hcp.westeurope.azmk8s.io';
const AKS_TOKEN = 'aks-token-from-entra-' + 'k'.repeat(40);

let kube: KubeApi;
let entra: EntraStandIn;
let issuer: OidcIssuer;
let dir: string;
let stateDir: string;
let env: Record<string, string>;

before(async () => {
  issuer = await startOidcIssuer({ ref: 'refs/heads/main' });
  entra = await startEntraStandIn({ federatedCredentials: [{ issuer: issuer.url, subject: 'repo:octo-org/payments:ref:refs/heads/main' }], tokens: { [AKS_SCOPE]: AKS_TOKEN } });
  kube = await startKubeApi({ token: AKS_TOKEN, hostNames: [AKS_HOST] });
  dir = tempDir('gw-kube-');
  fs.copyFileSync(kube.caFile, path.join(dir, 'aks-ca.pem'));
  fs.writeFileSync(path.join(dir, 'gateway.yml'), `version: 1
targets:
  aks-prod:
    kind: kubernetes
    server: https://${AKS_HOST}:443
    ca-file: aks-ca.pem                        # or ca-data
    auth: azure                                # Entra token for the AKS AAD server app 6dae42f8-4368-4678-94ff-3960e28e3630/.default
    connect-to: 127.0.0.1:${kube.port}
rules:
  - { name: no-secret-reads, target: aks-prod, when: { kube: { verb: [get, list, watch], resource: [secrets] } }, action: deny }
  - { name: review-deletes, when: { kube: { verb: [delete, deletecollection] } }, action: approve }
  - { name: exec-needs-review, when: { kube: { subresource: [exec, attach, portforward] }, namespace-not: [staging] }, action: approve }
  - { name: no-rm-in-pods, when: { program: [rm], option: [-r, --recursive] }, action: deny }   # the SSH issue's command conditions apply to exec argv
approvals:
  timeout: 20s
`);
  stateDir = path.join(dir, 'state');
  env = await startedGatewayEnv(dir, stateDir, {
    env: {
      ...process.env, ...issuer.requestEnv, NODE_EXTRA_CA_CERTS: entra.caFile,
      AZURE_CLIENT_ID: entra.clientId, AZURE_TENANT_ID: entra.tenantId, AZURE_AUTHORITY_HOST: entra.authorityHost,
      GITHUB_REF: 'refs/heads/main',
    },
  });
});

after(async () => {
  if (stateDir) cli(['stop', '--state-dir', stateDir]);
  await Promise.all([kube?.close(), entra?.close(), issuer?.close()]);
});

const logFile = (): string => fs.readdirSync(path.join(dir, 'logs')).map((f) => path.join(dir, 'logs', f))[0]!;
const log = (): LogRecord[] => readLog(logFile());
const commandsOf = (kind: string): LogRecord[] => log().filter((r) => r.type === 'command' && r.kind === kind);
/** A command's result: written once its response or stream ended, which may be just after the client exits. */
const resultOf = (id: string): Promise<LogRecord | undefined> => waitFor(() => log().find((r) => r.type === 'result' && r.command === id), `the result of ${id}`);

interface Ran { code: number; stdout: string; stderr: string }

/** kubectl with the gateway's kubeconfig (never spawnSync: the stand-ins answer from this process). */
function kubectl(args: string[], opts: { input?: string; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<Ran> {
  return runKubectl(env.KUBECONFIG!, dir, args, opts);
}

async function approveNext(after: number, decision: 'approve' | 'deny' = 'approve'): Promise<void> {
  let id = '';
  for (let i = 0; i < 100 && !id; i++) {
    await new Promise((r) => setTimeout(r, 200));
    id = log().filter((r) => r.type === 'approval-request').slice(after).at(0)?.id ?? '';
  }
  assert.ok(id, 'an approval request was recorded');
  const a = await cliAsync([decision, id, '--state-dir', stateDir]);
  assert.equal(a.status, 0, a.stderr);
}
const approvalCount = (): number => log().filter((r) => r.type === 'approval-request').length;

test('the kubeconfig names the gateway with a per-run token; the Entra ID token for AKS is nowhere a step can see', async () => {
  const text = fs.readFileSync(env.KUBECONFIG!, 'utf8');
  assert.match(text, /server: https:\/\/127\.0\.0\.1:\d+/);
  assert.ok(!text.includes(AKS_TOKEN) && !JSON.stringify(env).includes(AKS_TOKEN), 'no AKS token in the kubeconfig or the environment');
  const r = await kubectl(['get', 'pods', '-n', 'default']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /web-0/);
  const list = commandsOf('kubernetes.request').find((c) => c.details?.kube?.resource === 'pods' && c.details.kube.verb === 'list');
  assert.ok(list, 'the list is recorded with its request attributes');
  assert.equal(list.details.kube.namespace, 'default');
  assert.equal((await resultOf(list.command))?.status, 'ok');
  assert.ok(!fs.readFileSync(logFile(), 'utf8').includes(AKS_TOKEN), 'no AKS token in the log');
  // Another credential than the per-run token is refused at the gateway.
  const other = await kubectl(['get', 'pods', '--token', 'not-the-run-token']);
  assert.notEqual(other.code, 0);
  assert.match(other.stderr, /Unauthorized|per-run token/);
});

test('no-secret-reads: kubectl get secret is denied with the rule named, and the API server never sees it', async () => {
  const before = kube.calls.length;
  const r = await kubectl(['get', 'secret', 'db-credentials', '-n', 'default', '-o', 'yaml']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /Forbidden/);
  assert.match(r.stderr, /no-secret-reads/);
  assert.ok(!kube.calls.slice(before).some((c) => c.url.includes('/secrets')), 'the stand-in saw no secret request');
  const denied = commandsOf('kubernetes.request').filter((c) => c.details?.kube?.resource === 'secrets').at(-1)!;
  assert.equal((await resultOf(denied.command))?.status, 'denied');
});

test('a Secret written with kubectl is answered with its values masked; the log sample of the body is masked too', async () => {
  const file = path.join(dir, 'secret.yaml');
  fs.writeFileSync(file, `apiVersion: v1\nkind: Secret\nmetadata: { name: new-creds, namespace: staging }\ndata: { password: ${Buffer.from('s3cr3t-value-42').toString('base64')} }\n`);
  // Created, not applied: apply reads the live Secret first, which no-secret-reads denies.
  const r = await kubectl(['create', '--save-config', '-f', file, '-o', 'json']);
  assert.equal(r.code, 0, r.stderr);
  const data = JSON.parse(r.stdout).data;
  assert.equal(Buffer.from(data.password, 'base64').toString(), '[masked by gateway]');
  const annotation = JSON.parse(r.stdout).metadata.annotations['kubectl.kubernetes.io/last-applied-configuration'];
  assert.ok(!annotation.includes('s3cr3t-value-42'), `the last-applied annotation is masked: ${annotation}`);
  const write = commandsOf('kubernetes.request').filter((c) => c.details?.kube?.resource === 'secrets' && c.details.kube.verb !== 'get').at(-1)!;
  const res = (await resultOf(write.command))!;
  assert.ok(res.input?.sha256, 'the body digest is recorded');
  assert.match(res.input.text, /W21hc2tlZCBieSBnYXRld2F5XQ==/, 'the sample shows the masked value');
  assert.ok(!fs.readFileSync(logFile(), 'utf8').includes(Buffer.from('s3cr3t-value-42').toString('base64')), 'the value is not in the log');
  assert.ok(!fs.readFileSync(logFile(), 'utf8').includes('s3cr3t-value-42'));
});

test('kubectl apply is recorded with its body digest; delete waits for approval and runs once approved', async () => {
  const manifest = path.join(dir, 'deploy.yaml');
  fs.writeFileSync(manifest, `apiVersion: apps/v1
kind: Deployment
metadata: { name: api, namespace: staging }
spec:
  replicas: 2
  selector: { matchLabels: { app: api } }
  template:
    metadata: { labels: { app: api } }
    spec: { containers: [{ name: api, image: "registry.example/api:1.2.3" }] }
`);
  const a = await kubectl(['apply', '-f', manifest]);
  assert.equal(a.code, 0, a.stderr);
  assert.match(a.stdout, /deployment.apps\/api (created|configured)/);
  const write = commandsOf('kubernetes.request').filter((c) => c.details?.kube?.resource === 'deployments' && ['create', 'patch'].includes(c.details.kube.verb)).at(-1)!;
  const res = (await resultOf(write.command))!;
  assert.ok(res.input?.sha256, 'the body digest is recorded');
  assert.match(res.input.text, /registry\.example\/api:1\.2\.3/);
  // Server-side apply: a PATCH with an apply-patch+yaml body, recorded the same way.
  const ssa = await kubectl(['apply', '--server-side', '-f', manifest]);
  assert.equal(ssa.code, 0, ssa.stderr);
  const patch = commandsOf('kubernetes.request').filter((c) => c.details?.kube?.resource === 'deployments' && c.details.kube.verb === 'patch').at(-1)!;
  assert.match(patch.details.headers['content-type'], /application\/apply-patch\+yaml/);
  assert.match((await resultOf(patch.command))!.input.text, /registry\.example\/api:1\.2\.3/);
  const n = approvalCount();
  const pending = kubectl(['delete', 'deployment', 'api', '-n', 'staging']);
  await approveNext(n);
  const d = await pending;
  assert.equal(d.code, 0, d.stderr);
  assert.match(d.stdout, /deleted/);
  const denyN = approvalCount();
  const pending2 = kubectl(['delete', 'pod', 'api-0', '-n', 'prod']);
  await approveNext(denyN, 'deny');
  const d2 = await pending2;
  assert.notEqual(d2.code, 0);
  assert.match(d2.stderr, /Forbidden/);
  // Denied by the reviewer: the API server never got the DELETE.
  assert.ok(!kube.calls.some((c) => c.method === 'DELETE' && c.url.includes('/pods/api-0')), 'the denied delete never reached the API server');
});

test('kubectl logs, and logs -f streams each line as the pod writes it', async () => {
  const r = await kubectl(['logs', 'web-0', '-n', 'default']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /listening on :8080/);
  const child = spawn(kubectlPath(), ['logs', '-f', 'web-0', '-n', 'default'], { env: { PATH: process.env.PATH!, HOME: dir, KUBECONFIG: env.KUBECONFIG! } });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  try {
    for (let i = 0; i < 100 && !out.includes('GET /healthz 200'); i++) await new Promise((r) => setTimeout(r, 100));
    kube.appendLog('default', 'web-0', 'streamed-line-1');
    for (let i = 0; i < 100 && !out.includes('streamed-line-1'); i++) await new Promise((r) => setTimeout(r, 100));
    assert.match(out, /streamed-line-1/, 'a followed line arrives while the stream is open');
  } finally {
    child.kill();
  }
});

test('kubectl get pods -w streams a new pod as it is added', async () => {
  const child = spawn(kubectlPath(), ['get', 'pods', '-n', 'staging', '-w'], { env: { PATH: process.env.PATH!, HOME: dir, KUBECONFIG: env.KUBECONFIG! } });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  try {
    for (let i = 0; i < 100 && !out.includes('worker-0'); i++) await new Promise((r) => setTimeout(r, 100));
    kube.addPod({ namespace: 'staging', name: 'late-0', containers: ['app'] });
    for (let i = 0; i < 100 && !out.includes('late-0'); i++) await new Promise((r) => setTimeout(r, 100));
    assert.match(out, /late-0/);
  } finally {
    child.kill();
  }
  const w = commandsOf('kubernetes.request').find((c) => c.details?.kube?.verb === 'watch' && c.details.kube.resource === 'pods');
  assert.ok(w, 'the watch is recorded as verb watch');
});

test('kubectl exec in staging runs, its output and exit code come back, and the argv is recorded', async () => {
  const r = await kubectl(['exec', '-n', 'staging', 'worker-0', '-c', 'worker', '--', 'echo', 'hello', 'from', 'pod']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'hello from pod\n');
  const c = commandsOf('kubernetes.exec').at(-1)!;
  assert.deepEqual(c.details.argv, ['echo', 'hello', 'from', 'pod']);
  assert.equal(c.details.container, 'worker');
  const res = (await resultOf(c.command))!;
  assert.equal(res.status, 'ok');
  assert.equal(res.details.exit_code, 0);
  const failing = await kubectl(['exec', '-n', 'staging', 'worker-0', '-c', 'worker', '--', 'sh', '-c', 'exit 3']);
  assert.equal(failing.code, 3, failing.stderr);
  const f = commandsOf('kubernetes.exec').at(-1)!;
  assert.equal((await resultOf(f.command))?.details.exit_code, 3);
  const piped = await kubectl(['exec', '-i', '-n', 'staging', 'worker-0', '-c', 'worker', '--', 'cat'], { input: 'line one\nline two\n' });
  assert.equal(piped.code, 0, piped.stderr);
  assert.equal(piped.stdout, 'line one\nline two\n');
});

test('no-rm-in-pods: an exec whose argv runs rm -r is denied before the API server sees it', async () => {
  const before = kube.execs.length;
  const r = await kubectl(['exec', '-n', 'staging', 'worker-0', '-c', 'worker', '--', 'sh', '-c', 'cd /data && rm -rf cache']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /no-rm-in-pods/);
  assert.equal(kube.execs.length, before, 'no exec reached the stand-in');
  const c = commandsOf('kubernetes.exec').at(-1)!;
  assert.equal((await resultOf(c.command))?.status, 'denied');
});

test('exec-needs-review: an exec outside staging waits for approval, then runs', async () => {
  const n = approvalCount();
  const pending = kubectl(['exec', '-n', 'default', 'web-0', '--', 'echo', 'approved-run']);
  await approveNext(n);
  const r = await pending;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'approved-run\n');
});

test('kubectl exec -it is recorded as a terminal recording with input, output and resizes', async () => {
  const r = await new Promise<Ran>((resolve) => {
    const child = spawn('script', ['-qec', `${kubectlPath()} exec -it -n staging worker-0 -c worker -- sh`, '/dev/null'], { env: { PATH: process.env.PATH!, HOME: dir, KUBECONFIG: env.KUBECONFIG!, TERM: 'xterm' } });
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    setTimeout(() => child.stdin.write('echo typed-in-tty\n'), 1500);
    setTimeout(() => child.stdin.write('exit\n'), 2500);
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code: code ?? -1, stdout, stderr: '' }); });
  });
  assert.match(r.stdout, /typed-in-tty/);
  const c = commandsOf('kubernetes.exec').at(-1)!;
  assert.equal(c.details.tty, true);
  const events = log().filter((x) => x.type === 'terminal' && x.command === c.command).flatMap((x) => x.events ?? []);
  assert.ok(events.some((e: unknown[]) => e[1] === 'i'), 'stdin is in the recording');
  assert.ok(events.some((e: unknown[]) => e[1] === 'o' && String(e[2]).includes('typed-in-tty')), 'output is in the recording');
  assert.ok(events.some((e: unknown[]) => e[1] === 'r'), 'the terminal size is in the recording');
});

test('kubectl attach in staging: stdin reaches the main process and its output comes back; recorded as an attach', async () => {
  const r = await kubectl(['attach', '-i', '-n', 'staging', 'worker-0', '-c', 'worker'], { input: 'attached line\n' });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /attached line/);
  const c = commandsOf('kubernetes.attach').at(-1)!;
  assert.equal(c.details.kube.subresource, 'attach');
  assert.equal(c.details.stdin, true);
  assert.equal((await resultOf(c.command))?.status, 'ok');
});

test('SPDY (kubectl with WebSockets turned off) is refused with the message saying what to use', async () => {
  const before = kube.calls.length;
  const r = await kubectl(['exec', '-n', 'staging', 'worker-0', '-c', 'worker', '--', 'echo', 'x'], { env: { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' } });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /SPDY/);
  assert.ok(!kube.calls.slice(before).some((c) => c.url.includes('/exec')), 'nothing reached the stand-in');
  const refused = log().filter((x) => x.type === 'command' && x.kind === 'kubernetes.upgrade').at(-1)!;
  assert.equal((await resultOf(refused.command))?.status, 'denied');
});

test('port-forward is recorded and denied: no rule allows it', async () => {
  const before = kube.calls.length;
  const r = await kubectl(['port-forward', '-n', 'staging', 'pod/worker-0', '18080:8080'], { timeoutMs: 20_000 });
  assert.notEqual(r.code, 0);
  const pf = log().filter((x) => x.type === 'command' && x.kind === 'kubernetes.portforward');
  assert.ok(pf.length >= 1, 'the port-forward upgrade is recorded');
  assert.equal(pf.at(-1)!.decision.rule, 'port-forward');
  assert.equal((await resultOf(pf.at(-1)!.command))?.status, 'denied');
  assert.ok(!kube.calls.slice(before).some((c) => c.url.includes('/portforward')), 'nothing reached the stand-in');
});
