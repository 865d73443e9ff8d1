// The Kubernetes API stand-in (test/helpers/kube-api-stand-in.ts) driven by real clients: the
// kubectl on the machine (kubectlPath: PATH's when >= 1.30, else the copy scripts/ensure-kubectl.sh
// unpacks) and @kubernetes/client-node, with a kubeconfig naming the stand-in's HTTPS address, its
// CA and the bearer token it expects. The gateway tests will put the gateway between the same
// clients and this stand-in; here it is checked on its own.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { CoreV1Api, KubeConfig, Watch } from '@kubernetes/client-node';
import { startKubeApi, type KubeApi } from '../helpers/kube-api-stand-in.ts';
import { kubectlPath } from '../helpers/kube-api-kubectl.ts';

const TOKEN = `stand-in-${randomBytes(12).toString('hex')}`;
let api: KubeApi;
let kubeconfig: string;
let home: string;

before(async () => {
  api = await startKubeApi({
    token: TOKEN,
    pods: [
      { namespace: 'default', name: 'web-0', containers: ['web'], labels: { app: 'web' }, log: ['starting web', 'listening on :8080'] },
      { namespace: 'default', name: 'doomed-0', containers: ['app'] },
      { namespace: 'staging', name: 'worker-0', containers: ['worker', 'sidecar'], log: ['worker ready'] },
      { namespace: 'prod', name: 'api-0', containers: ['api'] },
    ],
  });
  home = await mkdtemp(path.join(tmpdir(), 'kube-api-test-home-'));
  kubeconfig = await api.writeKubeconfig();
});

after(async () => {
  await api?.close();
  if (home) await rm(home, { recursive: true, force: true });
});

interface Run { code: number | null; stdout: string; stderr: string }

/** Runs a command with the stand-in's kubeconfig and a private HOME (kubectl's discovery cache). */
function run(file: string, args: string[], opts: { input?: Buffer | string; kubeconfig?: string; untilStdout?: (out: string) => boolean; onStdout?: (out: string) => void } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      env: { PATH: process.env.PATH, HOME: home, KUBECONFIG: opts.kubeconfig ?? kubeconfig, LANG: 'C.UTF-8' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString('utf8');
      opts.onStdout?.(stdout);
      if (opts.untilStdout?.(stdout)) child.kill('SIGTERM');
    });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString('utf8'); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}

const kubectl = (args: string[], opts?: Parameters<typeof run>[2]): Promise<Run> => run(kubectlPath(), args, opts);

test('kubectl version reads the server version', async () => {
  const r = await kubectl(['version', '-o', 'json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).serverVersion.gitVersion, 'v1.32.4');
});

test('a wrong bearer token gets the API server\'s 401 and kubectl says so', async () => {
  const wrong = await api.writeKubeconfig({ token: 'not-the-token' });
  const before = api.calls.length;
  const r = await kubectl(['get', 'pods', '-o', 'json'], { kubeconfig: wrong });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /You must be logged in to the server|Unauthorized/);
  const mine = api.calls.slice(before);
  assert.ok(mine.length > 0 && mine.every((c) => c.status === 401 || c.url.startsWith('/version')), JSON.stringify(mine));
});

test('kubectl get pods, namespaces and secrets -o json', async () => {
  const pods = await kubectl(['get', 'pods', '-A', '-o', 'json']);
  assert.equal(pods.code, 0, pods.stderr);
  const names = JSON.parse(pods.stdout).items.map((p: { metadata: { namespace: string; name: string } }) => `${p.metadata.namespace}/${p.metadata.name}`);
  assert.deepEqual(names.sort(), ['default/doomed-0', 'default/web-0', 'prod/api-0', 'staging/worker-0']);

  const ns = await kubectl(['get', 'ns', '-o', 'json']);
  assert.equal(ns.code, 0, ns.stderr);
  assert.deepEqual(JSON.parse(ns.stdout).items.map((n: { metadata: { name: string } }) => n.metadata.name), ['default', 'prod', 'staging']);

  const secret = await kubectl(['get', 'secret', 'db-credentials', '-o', 'json']);
  assert.equal(secret.code, 0, secret.stderr);
  const data = JSON.parse(secret.stdout).data as Record<string, string>;
  assert.equal(Buffer.from(data.password, 'base64').toString(), 'correct-horse-battery-staple');

  const list = await kubectl(['get', 'secrets', '-n', 'prod', '-o', 'json']);
  assert.equal(JSON.parse(list.stdout).items[0].metadata.name, 'api-key');

  // kubectl asked for aggregated discovery and got it: no per-group-version discovery requests.
  const discovery = api.calls.filter((c) => c.url.startsWith('/api?') || c.url.startsWith('/apis?'));
  assert.ok(discovery.length >= 2);
  assert.ok(discovery.every((c) => c.accept?.includes('g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList')));
  assert.ok(!api.calls.some((c) => /^\/api\/v1(\?|$)/.test(c.url)));
});

test('legacy discovery for a client that does not ask for the aggregated form (curl)', async () => {
  const r = await run('curl', ['-sS', '--cacert', api.caFile, '-H', `Authorization: Bearer ${TOKEN}`, `${api.server}/apis/apps/v1`]);
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout);
  assert.equal(doc.kind, 'APIResourceList');
  assert.ok(doc.resources.some((x: { name: string }) => x.name === 'deployments'));
  const none = await run('curl', ['-sS', '--cacert', api.caFile, `${api.server}/api`]);
  assert.equal(JSON.parse(none.stdout).reason, 'Unauthorized');
});

const DEPLOYMENT = (replicas: number, image: string): string => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
  labels: { app: hello }
spec:
  replicas: ${replicas}
  selector: { matchLabels: { app: hello } }
  template:
    metadata: { labels: { app: hello } }
    spec:
      containers:
      - name: hello
        image: ${image}
        env:
        - { name: MODE, value: "blue" }
`;

test('kubectl apply: client-side create and configure, then --server-side, then delete', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'kube-apply-'));
  try {
    const file = path.join(dir, 'deploy.yaml');
    await writeFile(file, DEPLOYMENT(2, 'registry.example/hello:1.0'));
    const created = await kubectl(['apply', '-f', file]);
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /deployment\.apps\/hello created/);

    await writeFile(file, DEPLOYMENT(3, 'registry.example/hello:1.1'));
    const configured = await kubectl(['apply', '-f', file]);
    assert.equal(configured.code, 0, configured.stderr);
    assert.match(configured.stdout, /deployment\.apps\/hello configured/);
    const patch = api.calls.findLast((c) => c.method === 'PATCH');
    assert.equal(patch?.contentType, 'application/strategic-merge-patch+json');
    let got = JSON.parse((await kubectl(['get', 'deploy', 'hello', '-o', 'json'])).stdout);
    assert.equal(got.spec.replicas, 3);
    assert.deepEqual(got.spec.template.spec.containers[0], { name: 'hello', image: 'registry.example/hello:1.1', env: [{ name: 'MODE', value: 'blue' }] });
    assert.match(got.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration'], /hello:1\.1/);

    await writeFile(file, DEPLOYMENT(4, 'registry.example/hello:1.2'));
    const ssa = await kubectl(['apply', '--server-side', '-f', file]);
    assert.equal(ssa.code, 0, ssa.stderr);
    assert.match(ssa.stdout, /serverside-applied/);
    const apply = api.calls.filter((c) => c.method === 'PATCH' && c.contentType === 'application/apply-patch+yaml');
    assert.ok(apply.some((c) => c.url.includes('fieldManager=kubectl&')), JSON.stringify(apply));
    got = JSON.parse((await kubectl(['get', 'deploy', 'hello', '-o', 'json'])).stdout);
    assert.equal(got.spec.replicas, 4);
    assert.equal(got.spec.template.spec.containers[0].image, 'registry.example/hello:1.2');

    const deleted = await kubectl(['delete', 'deployment', 'hello']);
    assert.equal(deleted.code, 0, deleted.stderr);
    const gone = await kubectl(['get', 'deploy', 'hello']);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /deployments\.apps "hello" not found/);

    // Server-side apply also creates.
    const ssaCreate = await kubectl(['apply', '--server-side', '-f', file]);
    assert.equal(ssaCreate.code, 0, ssaCreate.stderr);
    assert.equal(api.calls.findLast((c) => c.method === 'PATCH')?.status, 201);
    assert.equal((await kubectl(['delete', '-f', file])).code, 0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('kubectl delete pod, then the pod is gone', async () => {
  const r = await kubectl(['delete', 'pod', 'doomed-0']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /pod "doomed-0" deleted/);
  const again = await kubectl(['get', 'pod', 'doomed-0']);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /pods "doomed-0" not found/);
});

test('kubectl logs, and logs -f streaming until the test ends it', async () => {
  const r = await kubectl(['logs', 'web-0']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'starting web\nlistening on :8080\n');
  const multi = await kubectl(['logs', '-n', 'staging', 'worker-0', '-c', 'sidecar']);
  assert.equal(multi.code, 0, multi.stderr);

  let appended = false;
  const follow = await kubectl(['logs', '-f', 'web-0'], {
    onStdout: (out) => { if (!appended && out.includes('listening on :8080\n')) { appended = true; api.appendLog('default', 'web-0', 'GET /healthz 200'); } },
    untilStdout: (out) => out.includes('GET /healthz 200\n'),
  });
  assert.equal(follow.stdout, 'starting web\nlistening on :8080\nGET /healthz 200\n');
  assert.ok(api.calls.some((c) => c.url.includes('/pods/web-0/log?') && c.url.includes('follow=true')));
});

test('kubectl exec without a TTY: output, exit codes, unknown programs', async () => {
  const echo = await kubectl(['exec', 'web-0', '--', 'echo', 'hello', 'world']);
  assert.equal(echo.code, 0, echo.stderr);
  assert.equal(echo.stdout, 'hello world\n');
  const rec = api.execs.at(-1)!;
  assert.deepEqual(rec.command, ['echo', 'hello', 'world']);
  assert.equal(rec.protocol, 'v5.channel.k8s.io');
  assert.equal(rec.exitCode, 0);
  const upgrade = api.calls.findLast((c) => c.status === 101)!;
  assert.equal(upgrade.upgrade?.toLowerCase(), 'websocket');
  assert.match(upgrade.url, /\/api\/v1\/namespaces\/default\/pods\/web-0\/exec\?command=echo&command=hello&command=world&container=web/);

  const three = await kubectl(['exec', 'web-0', '--', 'sh', '-c', 'exit 3']);
  assert.equal(three.code, 3);
  assert.match(three.stderr, /command terminated with exit code 3/);

  const missing = await kubectl(['exec', 'web-0', '--', 'no-such-program']);
  assert.equal(missing.code, 127);
  assert.match(missing.stderr, /executable file not found/);

  const multi = await kubectl(['exec', '-n', 'staging', 'worker-0', '-c', 'sidecar', '--', 'env']);
  assert.equal(multi.code, 0, multi.stderr);
  assert.match(multi.stdout, /HOSTNAME=worker-0/);
});

test('kubectl exec -i: stdin piped to cat comes back whole, and the v5 close frame ends it', async () => {
  const input = randomBytes(3 << 20);
  const child = spawn(kubectlPath(), ['exec', '-i', 'web-0', '--', 'cat'], { env: { PATH: process.env.PATH, HOME: home, KUBECONFIG: kubeconfig }, stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  child.stdout.on('data', (d: Buffer) => out.push(d));
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d; });
  child.stdin.end(input);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 0, stderr);
  assert.ok(Buffer.concat(out).equals(input));
  const rec = api.execs.at(-1)!;
  assert.equal(rec.stdinBytes, input.length);
  assert.equal(rec.stdinClosed, true);
});

test('kubectl exec -it under a pseudo-terminal (script): terminal size and exit code', async () => {
  const k = kubectlPath();
  const size = await run('script', ['-qec', `stty cols 100 rows 30; ${k} exec -it web-0 -- stty size`, '/dev/null']);
  assert.equal(size.code, 0, size.stdout + size.stderr);
  assert.match(size.stdout, /30 100\r\n/);
  const rec = api.execs.at(-1)!;
  assert.equal(rec.tty, true);
  assert.deepEqual(rec.resizes[0], { Width: 100, Height: 30 });

  const five = await run('script', ['-qec', `${k} exec -it web-0 -- sh -c 'exit 5'`, '/dev/null']);
  assert.equal(five.code, 5, five.stdout);
});

test('a refused WebSocket upgrade makes kubectl try SPDY, which is refused too', async () => {
  api.acceptWebSocketExec = false;
  try {
    const before = api.calls.length;
    const r = await kubectl(['exec', 'web-0', '--', 'echo', 'hi']);
    assert.notEqual(r.code, 0);
    const upgrades = api.calls.slice(before).filter((c) => c.upgrade);
    assert.equal(upgrades[0].upgrade?.toLowerCase(), 'websocket');
    assert.equal(upgrades[0].status, 400);
    const spdy = upgrades.find((c) => c.upgrade?.startsWith('SPDY'));
    assert.ok(spdy, JSON.stringify(upgrades));
    assert.equal(spdy.method, 'POST');
    assert.equal(spdy.status, 400);
    assert.match(spdy.protocols ?? '', /v4\.channel\.k8s\.io/);
  } finally {
    api.acceptWebSocketExec = true;
  }
});

test('kubectl get pods -w lists, then streams a pod added later', async () => {
  let added = false;
  const r = await kubectl(['get', 'pods', '-w', '-o', 'name'], {
    onStdout: (out) => { if (!added && out.includes('pod/web-0')) { added = true; api.addPod({ namespace: 'default', name: 'late-0' }); } },
    untilStdout: (out) => out.includes('pod/late-0'),
  });
  assert.match(r.stdout, /pod\/web-0\n/);
  assert.match(r.stdout, /pod\/late-0\n/);
  assert.ok(api.calls.some((c) => c.url.includes('/api/v1/namespaces/default/pods?') && c.url.includes('watch=true')));
});

test('@kubernetes/client-node lists pods and watches them', async () => {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const list = await core.listNamespacedPod({ namespace: 'prod' });
  assert.deepEqual(list.items.map((p) => p.metadata?.name), ['api-0']);

  const events: string[] = [];
  let ended!: () => void;
  const done = new Promise<void>((resolve) => { ended = resolve; });
  const watch = new Watch(kc);
  const controller = await watch.watch('/api/v1/namespaces/prod/pods', {}, (phase, obj: { metadata: { name: string } }) => {
    events.push(`${phase} ${obj.metadata.name}`);
    if (events.length === 1) api.addPod({ namespace: 'prod', name: 'api-1' });
    if (events.length === 2) ended();
  }, () => undefined);
  await done;
  controller.abort();
  assert.deepEqual(events, ['ADDED api-0', 'ADDED api-1']);
});

test('exec over v4.channel.k8s.io (a client offering only v4): output and the status channel', async () => {
  const { WebSocket } = await import('ws');
  const url = `${api.server.replace('https', 'wss')}/api/v1/namespaces/default/pods/web-0/exec?command=sh&command=-c&command=exit%207&stdout=true&stderr=true`;
  const ws = new WebSocket(url, ['v4.channel.k8s.io'], { ca: api.caPem, headers: { Authorization: `Bearer ${TOKEN}` } });
  const frames: Buffer[] = [];
  ws.on('message', (d: Buffer) => frames.push(Buffer.from(d)));
  await new Promise<void>((resolve, reject) => { ws.on('close', () => resolve()); ws.on('error', reject); });
  assert.equal(ws.protocol, 'v4.channel.k8s.io');
  const statusFrame = frames.find((f) => f[0] === 3)!;
  const st = JSON.parse(statusFrame.subarray(1).toString());
  assert.equal(st.reason, 'NonZeroExitCode');
  assert.deepEqual(st.details.causes, [{ reason: 'ExitCode', message: '7' }]);
});

test('malformed requests get a Status, never a crash', async () => {
  const post = await run('curl', ['-sS', '--cacert', api.caFile, '-H', `Authorization: Bearer ${TOKEN}`, '-H', 'Content-Type: application/json',
    '--data-binary', '{not json', `${api.server}/api/v1/namespaces/default/pods`]);
  assert.equal(JSON.parse(post.stdout).code, 400);
  const unknown = await run('curl', ['-sS', '--cacert', api.caFile, '-H', `Authorization: Bearer ${TOKEN}`, `${api.server}/api/v1/namespaces/default/configmaps`]);
  assert.equal(JSON.parse(unknown.stdout).code, 404);
  const noUpgrade = await run('curl', ['-sS', '--cacert', api.caFile, '-H', `Authorization: Bearer ${TOKEN}`, `${api.server}/api/v1/namespaces/default/pods/web-0/exec?command=ls`]);
  assert.equal(JSON.parse(noUpgrade.stdout).code, 400);
  const still = await kubectl(['get', 'ns', '-o', 'name']);
  assert.equal(still.code, 0, still.stderr);
});
