// The Kubernetes gateway with @kubernetes/client-node as a second client and raw protocol bytes
// as an attacker would send them: a target with `auth: { token-env }`, `ca-data` and a kubeconfig
// namespace; Secret values masked in gets, lists, tables and watches; the policy's detectors over
// exec output; exec over v4 as well as v5; and malformed requests and frames answered with an
// error that names the fault, never a crash of the daemon or another session.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { PassThrough } from 'node:stream';
import { CoreV1Api, Exec, KubeConfig, Watch } from '@kubernetes/client-node';
import { WebSocket } from 'ws';
import { startKubeApi, type KubeApi } from '../helpers/kube-api-stand-in.ts';
import { runKubectl } from '../helpers/kube-api-kubectl.ts';
import { cli, readLog, tempDir, waitFor, type LogRecord, startedGatewayEnv } from '../helpers/gateway.ts';

const TOKEN = 'cluster-token-' + 'c'.repeat(40);
const MASKED = Buffer.from('[masked by gateway]').toString('base64');
let kube: KubeApi;
let dir: string;
let stateDir: string;
let env: Record<string, string>;
let kc: KubeConfig;
let gatewayUrl: URL;
let runToken: string;

before(async () => {
  kube = await startKubeApi({ token: TOKEN });
  dir = tempDir('gw-kube-clients-');
  fs.writeFileSync(path.join(dir, 'gateway.yml'), `version: 1
targets:
  cluster:
    kind: kubernetes
    server: ${kube.server}
    ca-data: ${Buffer.from(kube.caPem).toString('base64')}
    auth: { token-env: KUBE_TOKEN }
    namespace: staging
rules:
  - { name: no-prod-writes, when: { kube: { verb: [create, update, patch, delete] }, namespace: [prod] }, action: deny }
  - { name: forward-in-staging, when: { kube: { subresource: [portforward] }, namespace: [staging] }, action: allow }
masking:
  detectors: [email]
`);
  stateDir = path.join(dir, 'state');
  env = await startedGatewayEnv(dir, stateDir, { env: { ...process.env, KUBE_TOKEN: TOKEN } });
  kc = new KubeConfig();
  kc.loadFromFile(env.KUBECONFIG!);
  gatewayUrl = new URL(kc.getCurrentCluster()!.server);
  runToken = kc.getCurrentUser()!.token!;
});

after(async () => {
  if (stateDir) cli(['stop', '--state-dir', stateDir]);
  await kube?.close();
});

const logText = (): string => fs.readdirSync(path.join(dir, 'logs')).map((f) => fs.readFileSync(path.join(dir, 'logs', f), 'utf8')).join('');
const log = (): LogRecord[] => readLog(fs.readdirSync(path.join(dir, 'logs')).map((f) => path.join(dir, 'logs', f))[0]!);
const resultOf = (id: string): Promise<LogRecord | undefined> => waitFor(() => log().find((r) => r.type === 'result' && r.command === id), `the result of ${id}`);

function kubectl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return runKubectl(env.KUBECONFIG!, dir, args);
}

test('client-node reads pods; a Secret\'s values are masked in a get, a list and a watch; the kubeconfig namespace is the default', async () => {
  const core = kc.makeApiClient(CoreV1Api);
  const pods = await core.listNamespacedPod({ namespace: 'staging' });
  assert.deepEqual(pods.items.map((p) => p.metadata?.name), ['worker-0']);
  const secret = await core.readNamespacedSecret({ namespace: 'default', name: 'db-credentials' });
  assert.deepEqual(secret.data, { username: MASKED, password: MASKED });
  const all = await core.listSecretForAllNamespaces();
  for (const s of all.items) for (const v of Object.values(s.data ?? {})) assert.equal(v, MASKED);
  const seen: Record<string, string>[] = [];
  let done!: () => void;
  const got = new Promise<void>((resolve) => (done = resolve));
  const controller = await new Watch(kc).watch('/api/v1/namespaces/prod/secrets', {}, (_phase, obj: { data?: Record<string, string> }) => {
    seen.push(obj.data ?? {});
    done();
  }, () => undefined);
  await got;
  controller.abort();
  assert.deepEqual(seen[0], { token: MASKED });
  const text = logText();
  for (const v of ['correct-horse-battery-staple', 'prod-api-token-5f1e9c']) {
    assert.ok(!text.includes(v) && !text.includes(Buffer.from(v).toString('base64')), `${v} is not in the log`);
  }
  // kubectl's table and YAML views of secrets, with the context's namespace (staging) as default.
  const table = await kubectl(['get', 'secrets', '-n', 'default']);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /db-credentials/);
  const yaml = await kubectl(['get', 'secret', 'db-credentials', '-n', 'default', '-o', 'yaml']);
  assert.match(yaml.stdout, new RegExp(`password: ${MASKED}`));
  const ns = await kubectl(['get', 'pods', '-o', 'name']);
  assert.equal(ns.stdout, 'pod/worker-0\n');
});

test('client-node exec: output masked by the policy\'s detectors, the status read, the argv recorded', async () => {
  const out = new PassThrough();
  let stdout = '';
  out.on('data', (c: Buffer) => (stdout += c.toString()));
  const status = await new Promise<{ status?: string }>((resolve, reject) => {
    new Exec(kc).exec('staging', 'worker-0', 'worker', ['echo', 'mail', 'alice@example.com'], out, null, null, false, (s) => resolve(s as { status?: string })).catch(reject);
  });
  assert.equal(status.status, 'Success');
  await waitFor(() => stdout.includes('mail'), 'the output');
  assert.ok(!stdout.includes('alice@example.com'), `the email is masked for the client: ${stdout}`);
  const c = log().filter((r) => r.type === 'command' && r.kind === 'kubernetes.exec').at(-1)!;
  assert.deepEqual(c.details.argv, ['echo', 'mail', 'alice@example.com']);
  const res = (await resultOf(c.command))!;
  assert.equal(res.details.exit_code, 0);
  assert.match(res.response.text, /^mail /);
  assert.ok(!res.response.text.includes('alice@example.com'), `the log's output sample is masked: ${res.response.text}`);
});

/** A raw WebSocket exec through the gateway, as a client that offers only the given protocols. */
function rawExec(query: string, protocols: string[], send: (ws: WebSocket) => void = () => undefined): Promise<{ protocol: string; frames: Buffer[]; code: number }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`wss://${gatewayUrl.host}/api/v1/namespaces/staging/pods/worker-0/exec?container=worker&${query}`, protocols, {
      ca: Buffer.from(kc.getCurrentCluster()!.caData!, 'base64').toString(), headers: { Authorization: `Bearer ${runToken}` },
    });
    const frames: Buffer[] = [];
    ws.on('open', () => send(ws));
    ws.on('message', (d: Buffer) => frames.push(Buffer.from(d)));
    ws.on('close', (code) => resolve({ protocol: ws.protocol, frames, code }));
    ws.on('error', reject);
  });
}

test('exec over v4.channel.k8s.io alone: the output and the exit code through the gateway', async () => {
  const r = await rawExec('command=sh&command=-c&command=exit%207&stdout=true&stderr=true', ['v4.channel.k8s.io']);
  assert.equal(r.protocol, 'v4.channel.k8s.io');
  const status = JSON.parse(r.frames.find((f) => f[0] === 3)!.subarray(1).toString());
  assert.equal(status.reason, 'NonZeroExitCode');
  const c = log().filter((x) => x.type === 'command' && x.kind === 'kubernetes.exec').at(-1)!;
  assert.equal((await resultOf(c.command))?.details.exit_code, 7);
});

test('a frame the channel protocol forbids ends that session with the fault recorded; the gateway serves on', async () => {
  const text = await rawExec('command=cat&stdin=true&stdout=true', ['v5.channel.k8s.io'], (ws) => ws.send('not a binary frame'));
  assert.notEqual(text.code, 1000);
  let c = log().filter((x) => x.type === 'command' && x.kind === 'kubernetes.exec').at(-1)!;
  let res = (await resultOf(c.command))!;
  assert.equal(res.error.code, 'protocol');
  assert.match(res.error.message, /text WebSocket message/);
  const stdout = await rawExec('command=cat&stdin=true&stdout=true', ['v5.channel.k8s.io'], (ws) => ws.send(Buffer.from([1, 0x41])));
  assert.notEqual(stdout.code, 1000);
  c = log().filter((x) => x.type === 'command' && x.kind === 'kubernetes.exec').at(-1)!;
  res = (await resultOf(c.command))!;
  assert.match(res.error.message, /stdout channel/);
  const after = await kubectl(['get', 'pods', '-o', 'name']);
  assert.equal(after.stdout, 'pod/worker-0\n');
});

test('raw requests: no token is 401, a path that does not read one way is 400, garbage is 400; never a crash', async () => {
  const request = (raw: string): Promise<string> => new Promise((resolve) => {
    // Written without ending: a half-closed connection may be closed before the answer is written.
    const s = tls.connect({ host: gatewayUrl.hostname, port: Number(gatewayUrl.port), ca: Buffer.from(kc.getCurrentCluster()!.caData!, 'base64').toString(), ALPNProtocols: ['http/1.1'] }, () => s.write(raw));
    setTimeout(() => s.destroy(), 10_000).unref();
    let out = '';
    s.on('data', (c: Buffer) => (out += c.toString()));
    s.on('close', () => resolve(out));
    s.on('error', () => resolve(out));
  });
  const noToken = await request('GET /api/v1/namespaces/default/pods HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.match(noToken, /^HTTP\/1\.1 401/);
  assert.match(noToken, /"kind":"Status"/);
  const encoded = await request(`GET /api/v1/namespaces/default/secrets%2Fdb-credentials HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${runToken}\r\nConnection: close\r\n\r\n`);
  assert.match(encoded, /^HTTP\/1\.1 400/);
  assert.match(encoded, /GatewayUnreadableRequest/);
  const garbage = await request('\x16\x03\x01 not http at all\r\n\r\n');
  assert.match(garbage, /^HTTP\/1\.1 400/);
  // A plain TCP connection that sends bytes and leaves does not take the daemon down either.
  await new Promise<void>((resolve) => {
    const s = net.connect(Number(gatewayUrl.port), '127.0.0.1', () => s.end(Buffer.from([0, 1, 2, 3, 255])));
    s.on('close', () => resolve());
    s.on('error', () => resolve());
  });
  const ok = await kubectl(['get', 'pods', '-o', 'name']);
  assert.equal(ok.stdout, 'pod/worker-0\n');
});

test('no-prod-writes: a delete in prod is refused as kubectl prints it; the cluster token is never in the kubeconfig or the log', async () => {
  const before = kube.calls.length;
  const r = await kubectl(['delete', 'pod', 'api-0', '-n', 'prod']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /Error from server \(Forbidden\).*no-prod-writes/);
  assert.ok(!kube.calls.slice(before).some((c) => c.method === 'DELETE'));
  assert.ok(!fs.readFileSync(env.KUBECONFIG!, 'utf8').includes(TOKEN));
  assert.ok(!logText().includes(TOKEN));
});

test('a port-forward a rule allows is relayed unread with the cluster credential and recorded as metadata; elsewhere it is denied', async () => {
  const upgrade = (ns: string, pod: string): Promise<string> => new Promise((resolve) => {
    const s = tls.connect({ host: gatewayUrl.hostname, port: Number(gatewayUrl.port), ca: Buffer.from(kc.getCurrentCluster()!.caData!, 'base64').toString(), ALPNProtocols: ['http/1.1'] }, () => s.write(
      `GET /api/v1/namespaces/${ns}/pods/${pod}/portforward?ports=5432 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${runToken}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
      `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: SPDY/3.1+portforward.k8s.io\r\n\r\n`));
    let out = '';
    s.on('data', (c: Buffer) => (out += c.toString('latin1')));
    s.on('close', () => resolve(out));
    s.on('error', () => resolve(out));
    setTimeout(() => s.destroy(), 5000).unref();
  });
  const before = kube.calls.length;
  const allowed = await upgrade('staging', 'worker-0');
  // The stand-in serves no port-forward: its own answer (after checking the cluster token) comes back as it sent it.
  assert.match(allowed, /^HTTP\/1\.1 400 /);
  assert.match(allowed, /upgrade is not served/);
  assert.ok(kube.calls.slice(before).some((c) => c.url.includes('/portforward') && c.status === 400), 'the API server got the upgrade with the cluster credential');
  const pf = log().filter((x) => x.type === 'command' && x.kind === 'kubernetes.portforward');
  assert.equal(pf.at(-1)!.decision.rule, 'forward-in-staging');
  assert.equal(pf.at(-1)!.details.ports, '5432');
  const res = (await resultOf(pf.at(-1)!.command))!;
  assert.match(res.details.answer, /^HTTP\/1\.1 400/);
  assert.ok(res.details.bytes_to_client > 0);
  const n = kube.calls.length;
  const denied = await upgrade('default', 'web-0');
  assert.match(denied, /^HTTP\/1\.1 403 /);
  assert.match(denied, /"kind":"Status".*denied by rule \\"port-forward\\"/);
  assert.equal(kube.calls.length, n, 'nothing reached the API server');
});
