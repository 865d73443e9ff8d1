// Declared egress end to end: the gateway (dist/cli.js, a real daemon) started with a policy whose
// only target is PostgreSQL and an `egress:` list still serves its forward proxy and exports it;
// real curl through the exported HTTPS_PROXY reaches a local HTTPS server (its own throwaway CA)
// at a declared address and port with TLS end to end (the server's CA verifies, the gateway's run
// CA does not: nothing intercepted), and the connection is in the log with the bytes each way and
// how long it was open. An undeclared port, an undeclared host, a declared name that resolves to
// loopback, and plain http:// are refused with 403, recorded as denied, and never reach the server.
// replay shows the connections. There is no DNS here: the declared host is the IP literal 127.0.0.1.
// Needs: curl, openssl.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import type net from 'node:net';
import path from 'node:path';
import { cliAsync, readLog, startedGatewayEnv, tempDir, waitFor, type LogRecord } from '../helpers/gateway.ts';
import { makeCertificates } from '../helpers/entra-stand-in.ts';

const BODY = 'x'.repeat(3_000_000);

let dir: string;
let stateDir: string;
let env: Record<string, string>;
let server: https.Server;
let port: number;
let closedPort: number;
let caFile: string;
/** Requests the HTTPS server answered. */
const served: string[] = [];

interface Ran { code: number; stdout: string; stderr: string }
function curl(args: string[], extraEnv: Record<string, string> = {}): Promise<Ran> {
  return new Promise((resolve) => {
    // Loopback is in the exported NO_PROXY (the gateway's own listeners live there); the server
    // here is on loopback, so this step's NO_PROXY is empty and its requests go to the proxy.
    const stepEnv = { PATH: process.env.PATH, HOME: process.env.HOME, HTTPS_PROXY: env.HTTPS_PROXY!, http_proxy: env.http_proxy!, NO_PROXY: '', ...extraEnv };
    execFile('curl', ['-sS', ...args], { env: stepEnv, maxBuffer: 16 << 20, timeout: 60_000 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }));
  });
}

const logFile = (): string => fs.readdirSync(path.join(dir, 'logs')).map((f) => path.join(dir, 'logs', f)).find((f) => f.endsWith('.jsonl'))!;
const log = (): LogRecord[] => readLog(logFile());
const commandOf = (text: string): LogRecord | undefined => log().find((r) => r.type === 'command' && r.text === text);
const resultOf = (c: LogRecord): LogRecord | undefined => log().find((r) => r.type === 'result' && r.command === c.command);

before(async () => {
  dir = tempDir('gw-egress-');
  const certs = await makeCertificates(dir, 'IP:127.0.0.1,DNS:localhost', 'egress host');
  caFile = certs.caFile;
  server = https.createServer({ key: fs.readFileSync(certs.keyFile), cert: fs.readFileSync(certs.certFile) }, (req, res) => {
    served.push(`${req.method} ${req.url}`);
    res.end(req.url === '/big' ? BODY : 'hello from the real host\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as net.AddressInfo).port;
  // A port nothing listens on: declared, so the refusal there is the host's, not the policy's.
  closedPort = port === 65535 ? port - 1 : port + 1;
  fs.writeFileSync(path.join(dir, 'gateway.yml'), [
    'version: 1',
    'targets:',
    '  app-db:',
    '    kind: postgres',
    '    host: 127.0.0.1',
    '    port: 1',
    '    database: app',
    '    user: deployer',
    '    tls: disable',
    '    auth: { password-env: APP_DB_PASSWORD }',
    'egress:',
    '  - host: 127.0.0.1',
    `    ports: [${port}]`,
    '  - host: localhost',
    `    ports: [${port}]`,
    '  - host: "*.npmjs.org"',
    '',
  ].join('\n'));
  stateDir = path.join(dir, 'state');
  env = await startedGatewayEnv(dir, stateDir, { env: { ...process.env, APP_DB_PASSWORD: 'unused' } });
});

after(async () => {
  if (stateDir) await cliAsync(['stop', '--state-dir', stateDir]);
  server?.close();
});

test('with egress declared and no HTTP target, the forward proxy is served and exported as it is for HTTP targets', () => {
  for (const name of ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy', 'GATEWAY_HTTPS_PROXY']) assert.match(env[name] ?? '', /^http:\/\/127\.0\.0\.1:\d+$/, name);
  assert.equal(env.HTTPS_PROXY, env.HTTP_PROXY);
  assert.equal(env.NO_PROXY, '127.0.0.1,localhost,::1');
  for (const name of ['NODE_EXTRA_CA_CERTS', 'REQUESTS_CA_BUNDLE', 'SSL_CERT_FILE', 'CURL_CA_BUNDLE', 'GATEWAY_CA_CERT']) assert.ok(fs.existsSync(env[name]!), name);
  const start = log().find((r) => r.type === 'run-start')!;
  assert.deepEqual(start.egress, [{ host: '127.0.0.1', ports: [port] }, { host: 'localhost', ports: [port] }, { host: '*.npmjs.org', ports: [443] }]);
});

test('a declared address and port is reached end to end: the server\'s own CA verifies it, the gateway\'s does not; recorded with bytes and duration', async () => {
  const url = `https://127.0.0.1:${port}/hello`;
  const ok = await curl(['-v', '--cacert', caFile, url]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout, 'hello from the real host\n');
  assert.match(ok.stderr, /CONNECT 127\.0\.0\.1:\d+ HTTP\/1\.1/);
  assert.match(ok.stderr, /issuer: CN=egress host throwaway CA/);
  // Had the gateway terminated TLS, its run CA would verify the certificate: it does not.
  const intercepted = await curl(['--cacert', env.GATEWAY_CA_CERT!, url]);
  assert.equal(intercepted.code, 60, intercepted.stderr);

  const big = await curl(['--cacert', caFile, '-o', '/dev/null', '-w', '%{size_download}', `https://127.0.0.1:${port}/big`]);
  assert.equal(big.stdout, String(BODY.length), big.stderr);

  const text = `CONNECT 127.0.0.1:${port}`;
  const commands: LogRecord[] = (await waitFor(() => {
    const c = log().filter((r) => r.type === 'command' && r.text === text);
    return c.length === 3 && c.every((x) => resultOf(x)) ? c : undefined;
  }, 'three recorded tunnels'))!;
  for (const c of commands) {
    assert.equal(c.kind, 'egress.connect');
    assert.equal(c.target, '(egress)');
    assert.deepEqual(c.decision, { action: 'allow', rule: 'egress' });
    assert.deepEqual(c.details, { host: '127.0.0.1', port, entry: '127.0.0.1' });
    const r = resultOf(c)!;
    assert.equal(r.status, 'ok');
    assert.equal(r.details.address, '127.0.0.1');
    assert.ok(r.details.bytes_to_host > 0 && r.details.bytes_to_client > 0, JSON.stringify(r.details));
    assert.equal(typeof r.duration_us, 'number');
    const open = log().find((x) => x.type === 'session-open' && x.session === c.session)!;
    assert.deepEqual([open.target, open.protocol, open.via], ['(egress)', 'egress', 'forward-proxy']);
    assert.ok(log().some((x) => x.type === 'session-close' && x.session === c.session));
  }
  // The download crossed the tunnel whole (plus TLS framing): what the log counts is what went.
  assert.ok(resultOf(commands[2]!)!.details.bytes_to_client > BODY.length);
  assert.deepEqual(served, ['GET /hello', 'GET /big']);
});

test('an undeclared port or host, a name that resolves to loopback and plain http:// are refused 403 and recorded denied; the server sees none', async () => {
  const before = served.length;
  const refused = async (url: string, reason: RegExp, text: string, kind = 'egress.connect'): Promise<void> => {
    const r = await curl(['-v', '--cacert', caFile, url]);
    if (kind === 'egress.connect') {
      assert.equal(r.code, 56, r.stderr);
      assert.match(r.stderr, /< HTTP\/1\.1 403 Forbidden: /);
    } else {
      assert.match(r.stdout, /^gateway: denied by rule "egress": /);
      assert.match(r.stderr, /< HTTP\/1\.1 403 /);
    }
    const c = (await waitFor(() => commandOf(text), `the record of ${text}`))!;
    assert.equal(c.kind, kind);
    assert.equal(c.decision.action, 'deny');
    assert.equal(c.decision.rule, 'egress');
    assert.match(c.decision.reason, reason);
    const res = (await waitFor(() => resultOf(c), `the result of ${text}`))!;
    assert.deepEqual([res.status, res.rule], ['denied', 'egress']);
  };
  await refused(`https://127.0.0.1:${closedPort}/`, new RegExp(`^127\\.0\\.0\\.1 is declared egress on port ${port} only$`), `CONNECT 127.0.0.1:${closedPort}`);
  await refused('https://example.com/', /^example\.com:443 is not declared egress \(declared: 127\.0\.0\.1:\d+, localhost:\d+, \*\.npmjs\.org:443\)$/, 'CONNECT example.com:443');
  await refused('https://npmjs.org/', /^npmjs\.org:443 is not declared egress/, 'CONNECT npmjs.org:443');
  // The gateway resolves the name itself, and a name never leads to this machine.
  await refused(`https://localhost:${port}/`, /^localhost resolves to (127\.0\.0\.1|::1), a loopback address: a name never leads there/, `CONNECT localhost:${port}`);
  await refused(`http://127.0.0.1:${port}/secret?token=abc`, /^plain http:\/\/ is not relayed as egress/, `GET http://127.0.0.1:${port}`, 'egress.http');
  await refused('http://example.com/', /^example\.com:80 is not declared egress/, 'GET http://example.com:80', 'egress.http');
  assert.equal(served.length, before, 'no refused request reached the server');
  assert.ok(!log().some((r) => JSON.stringify(r).includes('token=abc')), 'a refused URL\'s path and query are not recorded');
});

test('after the stop the log verifies, and replay shows each connection with its bytes and the refusals with their rule', async () => {
  const stop = await cliAsync(['stop', '--state-dir', stateDir]);
  assert.equal(stop.status, 0, stop.stderr);
  stateDir = '';
  const v = await cliAsync(['verify', logFile()]);
  assert.equal(v.status, 0, v.stdout + v.stderr);
  const r = await cliAsync(['replay', logFile()]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`CONNECT 127\\.0\\.0\\.1:${port}`));
  assert.match(r.stdout, /bytes to host, .* to client/);
  assert.match(r.stdout, /CONNECT example\.com:443/);
  assert.match(r.stdout, /rule "egress": localhost resolves to/);
  const html = path.join(dir, 'report.html');
  const rep = await cliAsync(['report', logFile(), '-o', html]);
  assert.equal(rep.status, 0, rep.stderr);
  const page = fs.readFileSync(html, 'utf8');
  assert.match(page, new RegExp(`<pre class="cmd-text http">CONNECT 127\\.0\\.0\\.1:${port}</pre>`));
  assert.match(page, /bytes to host, 3\.0 MB to client/);
});
