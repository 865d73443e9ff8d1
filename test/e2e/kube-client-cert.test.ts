// A Kubernetes target whose gateway logs in with a TLS client certificate (the API server's x509
// authentication): `auth: { client-cert-env, client-key-env }`, the certificate given as a
// kubeconfig's base64 and the key as PEM. kubectl lists and execs through it; the key is in no
// file a step can read; a key that does not match its certificate stops the start with the reason.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { startKubeApi, type KubeApi } from '../helpers/kube-api-stand-in.ts';
import { runKubectl } from '../helpers/kube-api-kubectl.ts';
import { cli, cliAsync, tempDir, startedGatewayEnv } from '../helpers/gateway.ts';

let kube: KubeApi;
let dir: string;
let stateDir: string;
let env: Record<string, string>;

const POLICY = (server: string, caFile: string): string => `version: 1
targets:
  cluster:
    kind: kubernetes
    server: ${server}
    ca-file: ${caFile}
    auth: { client-cert-env: KUBE_CLIENT_CERT, client-key-env: KUBE_CLIENT_KEY }
`;

before(async () => {
  // The gateway is never given the token: only the certificate opens the stand-in.
  kube = await startKubeApi({ token: randomBytes(24).toString('hex'), clientCertificates: true });
  dir = tempDir('gw-kube-cert-');
  fs.writeFileSync(path.join(dir, 'gateway.yml'), POLICY(kube.server, kube.caFile));
  stateDir = path.join(dir, 'state');
  env = await startedGatewayEnv(dir, stateDir, { env: { ...process.env, KUBE_CLIENT_CERT: Buffer.from(kube.clientCertPem!).toString('base64'), KUBE_CLIENT_KEY: kube.clientKeyPem! } });
});

after(async () => {
  if (stateDir) cli(['stop', '--state-dir', stateDir]);
  await kube?.close();
});

function kubectl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return runKubectl(env.KUBECONFIG!, dir, args);
}

test('kubectl lists and execs through a gateway that logs in with a client certificate', async () => {
  const list = await kubectl(['get', 'pods', '-n', 'default', '-o', 'name']);
  assert.equal(list.code, 0, list.stderr);
  assert.equal(list.stdout, 'pod/web-0\n');
  const exec = await kubectl(['exec', '-n', 'default', 'web-0', '--', 'echo', 'over-x509']);
  assert.equal(exec.code, 0, exec.stderr);
  assert.equal(exec.stdout, 'over-x509\n');
  const keyLine = kube.clientKeyPem!.split('\n').find((l) => l.length > 40)!;
  for (const f of [env.KUBECONFIG!, ...fs.readdirSync(path.join(dir, 'logs')).map((x) => path.join(dir, 'logs', x))]) {
    assert.ok(!fs.readFileSync(f, 'utf8').includes(keyLine), `the client key is not in ${f}`);
  }
});

test('a key that is not the certificate\'s fails the start, naming the target', async () => {
  const other = tempDir('gw-kube-cert-bad-');
  fs.writeFileSync(path.join(other, 'gateway.yml'), POLICY(kube.server, kube.caFile));
  const { privateKey } = await import('node:crypto').then((c) => c.generateKeyPairSync('ec', { namedCurve: 'prime256v1' }));
  const r = await cliAsync(['start', '--policy', path.join(other, 'gateway.yml'), '--state-dir', path.join(other, 'state'), '--log-dir', path.join(other, 'logs')], {
    env: { ...process.env, KUBE_CLIENT_CERT: kube.clientCertPem!, KUBE_CLIENT_KEY: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() },
  });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /targets\.cluster\.auth: the client certificate and key do not load/);
});
