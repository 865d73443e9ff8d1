// The forward proxy with real clients: curl (HTTP/1.1 and HTTP/2 by ALPN, keep-alive, chunked
// uploads, NO_PROXY), Node's fetch with NODE_USE_ENV_PROXY in a child process, undici's
// EnvHttpProxyAgent, Python requests with REQUESTS_CA_BUNDLE, and openssl/Node TLS sockets for what
// clients do not send on their own (another SNI name, another Host inside a tunnel, malformed
// CONNECT lines). Hosts never resolve: the proxy connects nowhere, the handler answers a JSON echo.
// Needs: curl (with HTTP/2), openssl, python3 with requests (the pyenv python3 here; Debian's
// python3-requests in CI).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type http2 from 'node:http2';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { EnvHttpProxyAgent, fetch as undiciFetch } from 'undici';
import { createRunCa, type RunCa } from '../../gateway/http/run-ca.ts';
import { caBundle } from '../../gateway/http/ca-bundle.ts';
import { ForwardProxy, type ForwardRequest, type ForwardResponse, type ForwardRoute } from '../../gateway/http/forward-proxy.ts';

const ROUTES: Record<string, string> = {
  'https management.azure.com:443': 'arm',
  'https api.internal.example:443': 'internal-api',
  'https 127.0.0.1:8443': 'ip-api',
  'http plain.internal.example:80': 'plain-api',
};
const TARGETS = ['management.azure.com:443', 'api.internal.example:443', '127.0.0.1:8443', 'plain.internal.example:80'];

let ca: RunCa;
let proxy: ForwardProxy;
let proxyAddr: string;
let dir: string;
let bundleFile: string;
let caFile: string;
const connectionIds = new WeakMap<object, number>();
let nextConnection = 1;
const routeCalls: string[] = [];

function route(host: string, port: number, scheme: 'https' | 'http'): ForwardRoute | null {
  routeCalls.push(`${scheme} ${host}:${port}`);
  const target = ROUTES[`${scheme} ${host}:${port}`];
  return target ? { target } : null;
}

/** The handler: a JSON echo of what reached it, with an id per client connection (keep-alive). */
function echo(req: ForwardRequest, res: ForwardResponse, r: ForwardRoute): void {
  if (req.url === '/throw') throw new Error('a handler bug');
  const conn = req.httpVersionMajor === 2 ? (req as http2.Http2ServerRequest).stream.session! : req.socket;
  if (!connectionIds.has(conn)) connectionIds.set(conn, nextConnection++);
  const hash = createHash('sha256');
  let length = 0;
  let sample = '';
  const body = req as http.IncomingMessage; // either kind reads as a stream
  body.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    length += chunk.length;
    if (sample.length < 64) sample += chunk.toString('utf8', 0, 64);
  });
  body.on('end', () => {
    const answer = JSON.stringify({
      target: r.target, method: req.method, path: req.url, host: req.headers.host ?? req.headers[':authority'],
      httpVersion: req.httpVersion, connection: connectionIds.get(conn), bodyLength: length, bodySha256: hash.digest('hex'),
      bodySample: sample.slice(0, 64), chunked: req.headers['transfer-encoding'] === 'chunked',
    });
    (res as http.ServerResponse).writeHead(200, { 'content-type': 'application/json' });
    res.end(answer);
  });
}

interface Ran { code: number; stdout: string; stderr: string }
function runTool(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, input?: string): Promise<Ran> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, maxBuffer: 8 << 20 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }));
    if (input !== undefined) child.stdin!.end(input);
  });
}
const curl = (args: string[], env?: NodeJS.ProcessEnv, input?: string): Promise<Ran> =>
  runTool('curl', ['-sS', '--proxy', `http://${proxyAddr}`, '--cacert', bundleFile, ...args], env, input);
/** The answer inside the tunnel, without the proxy's 200 to the CONNECT that `curl -i` prints first. */
const inner = (r: Ran): string => r.stdout.replace(/^HTTP\/1\.1 200 Connection Established\r\n\r\n/, '');
const json = (r: Ran): Record<string, unknown> => {
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Record<string, unknown>;
};

before(async () => {
  ca = await createRunCa('forward-proxy test');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fwd-proxy-'));
  bundleFile = path.join(dir, 'bundle.pem');
  caFile = path.join(dir, 'ca.pem');
  fs.writeFileSync(bundleFile, caBundle(ca.certPem));
  fs.writeFileSync(caFile, ca.certPem);
  proxy = new ForwardProxy({ ca, route, handle: echo, targetAuthorities: TARGETS });
  proxyAddr = await proxy.listen();
});
after(async () => {
  await proxy.close(1000);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('curl over HTTP/1.1: CONNECT, TLS with the run CA, keep-alive across requests, a chunked upload', async () => {
  const out = json(await curl(['--http1.1', 'https://management.azure.com/subscriptions?api-version=2022-12-01']));
  assert.deepEqual({ ...out, connection: 0, bodySha256: '' }, {
    target: 'arm', method: 'GET', path: '/subscriptions?api-version=2022-12-01', host: 'management.azure.com', httpVersion: '1.1',
    connection: 0, bodyLength: 0, bodySha256: '', bodySample: '', chunked: false,
  });
  // Two URLs in one curl run share the tunnel and its TLS connection.
  const two = await curl(['--http1.1', 'https://management.azure.com/a', '--next', '--http1.1', '--proxy', `http://${proxyAddr}`, '--cacert', bundleFile,
    'https://management.azure.com/b']);
  assert.equal(two.code, 0, two.stderr);
  const [a, b] = two.stdout.replace('}{', '}\n{').split('\n').map((l) => JSON.parse(l) as { path: string; connection: number });
  assert.deepEqual([a!.path, b!.path], ['/a', '/b']);
  assert.equal(a!.connection, b!.connection, 'keep-alive: one connection for both');
  // A body of unknown length from stdin goes chunked.
  const payload = 'x'.repeat(200_000);
  const upload = await curl(['--http1.1', '-v', '-H', 'Expect: 100-continue', '-X', 'PUT', '-T', '-', 'https://api.internal.example/upload'], {}, payload);
  assert.match(upload.stderr, /< HTTP\/1\.1 100 Continue/);
  const up = json(upload);
  assert.equal(up.target, 'internal-api');
  assert.equal(up.chunked, true);
  assert.equal(up.bodyLength, payload.length);
  assert.equal(up.bodySha256, createHash('sha256').update(payload).digest('hex'));
});

test('curl --http2 through the tunnel: ALPN h2, streams multiplexed on one connection', async () => {
  const r = await curl(['--http2', '-X', 'DELETE', 'https://management.azure.com/subscriptions/s/resourceGroups/rg?api-version=2021-04-01',
    '--next', '--http2', '--proxy', `http://${proxyAddr}`, '--cacert', bundleFile, 'https://management.azure.com/second']);
  assert.equal(r.code, 0, r.stderr);
  const [a, b] = r.stdout.replace('}{', '}\n{').split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(a!.httpVersion, '2.0');
  assert.equal(a!.method, 'DELETE');
  assert.equal(a!.host, 'management.azure.com');
  assert.equal(a!.connection, b!.connection);
  const body = 'y'.repeat(100_000);
  const up = json(await curl(['--http2', '--data-binary', '@-', '-H', 'content-type: text/plain', 'https://management.azure.com/post'], {}, body));
  assert.equal(up.httpVersion, '2.0');
  assert.equal(up.bodyLength, body.length);
});

test('an IP literal target: no SNI, the leaf carries the address', async () => {
  const out = json(await curl(['https://127.0.0.1:8443/ip']));
  assert.equal(out.target, 'ip-api');
  assert.equal(out.host, '127.0.0.1:8443');
});

test('Node fetch with NODE_USE_ENV_PROXY, HTTPS_PROXY and NODE_EXTRA_CA_CERTS (the CA alone) in a child process', async () => {
  const script = `const r = await fetch('https://management.azure.com/providers?api-version=1', { method: 'POST', body: 'from node' });
console.log(r.status, await r.text());`;
  const r = await runTool(process.execPath, ['--input-type=module', '-e', script],
    { NODE_USE_ENV_PROXY: '1', HTTPS_PROXY: `http://${proxyAddr}`, NODE_EXTRA_CA_CERTS: caFile });
  assert.equal(r.code, 0, r.stderr);
  const [status, ...rest] = r.stdout.trim().split(' ');
  assert.equal(status, '200');
  const out = JSON.parse(rest.join(' ')) as Record<string, unknown>;
  assert.equal(out.target, 'arm');
  assert.equal(out.method, 'POST');
  assert.equal(out.bodySample, 'from node');
});

/** An error's message and those of its causes, which undici nests. */
function causes(e: unknown): string {
  const messages: string[] = [];
  for (let c = e as Error | undefined; c; c = c.cause as Error | undefined) messages.push(c.message);
  return messages.join(' <- ');
}

test("undici's EnvHttpProxyAgent: https through CONNECT with TLS inside, http through CONNECT in clear", async () => {
  const dispatcher = new EnvHttpProxyAgent({ httpsProxy: `http://${proxyAddr}`, httpProxy: `http://${proxyAddr}`, noProxy: '', requestTls: { ca: ca.certPem } });
  try {
    const https = await undiciFetch('https://api.internal.example/v1/items?x=1', { dispatcher });
    const a = await https.json() as Record<string, unknown>;
    assert.equal(a.target, 'internal-api');
    assert.equal(a.path, '/v1/items?x=1');
    const plain = await undiciFetch('http://plain.internal.example/health?deep=1', { dispatcher, method: 'PATCH', body: '{"a":1}' });
    const b = await plain.json() as Record<string, unknown>;
    assert.deepEqual([b.target, b.path, b.method, b.host, b.bodySample], ['plain-api', '/health?deep=1', 'PATCH', 'plain.internal.example', '{"a":1}']);
    // https://plain.internal.example is no https target: refused at CONNECT.
    await assert.rejects(undiciFetch('https://plain.internal.example/', { dispatcher }), (e: Error) => /Proxy response \(403\)/.test(causes(e)));
  } finally {
    await dispatcher.close();
  }
});

test('python requests with REQUESTS_CA_BUNDLE (system roots + the run CA) and HTTPS_PROXY', async () => {
  const script = `
import json, sys, requests
r = requests.put("https://management.azure.com/subscriptions/s/resourceGroups/rg?api-version=2021-04-01", json={"location": "westeurope"})
print(json.dumps({"status": r.status_code, "echo": r.json()}))
try:
    requests.get("https://login.microsoftonline.com/common")
    print("TUNNELLED")
except requests.exceptions.ProxyError as e:
    print("REFUSED", e)
`;
  const r = await runTool('python3', ['-c', script], { HTTPS_PROXY: `http://${proxyAddr}`, REQUESTS_CA_BUNDLE: bundleFile });
  assert.equal(r.code, 0, r.stderr);
  const [first, second] = r.stdout.trim().split('\n');
  const out = JSON.parse(first!) as { status: number; echo: Record<string, unknown> };
  assert.equal(out.status, 200);
  assert.deepEqual([out.echo.target, out.echo.method, out.echo.bodySample], ['arm', 'PUT', '{"location": "westeurope"}']);
  assert.match(second!, /^REFUSED .*403 Forbidden: login\.microsoftonline\.com:443 is not a gateway target/);
});

test('a host no target names: 403 with the message, never tunnelled; plain http the same', async () => {
  const before = routeCalls.length;
  const r = await curl(['-v', 'https://login.microsoftonline.com/x']);
  assert.equal(r.code, 56, r.stderr);
  assert.match(r.stderr, /< HTTP\/1\.1 403 Forbidden: login\.microsoftonline\.com:443 is not a gateway target/);
  assert.match(r.stderr, /CONNECT tunnel failed, response 403/);
  // Asked as an https target, then as an http one (a CONNECT may carry clear HTTP to an http:// target).
  assert.deepEqual(routeCalls.slice(before), ['https login.microsoftonline.com:443', 'http login.microsoftonline.com:443']);
  // The raw answer carries the whole message in its body.
  const raw = await rawExchange('CONNECT login.microsoftonline.com:443 HTTP/1.1\r\nHost: login.microsoftonline.com:443\r\n\r\n');
  assert.match(raw, /^HTTP\/1\.1 403 /);
  assert.match(raw, /\r\n\r\ngateway: login\.microsoftonline\.com:443 is not a target of this gateway \(targets: management\.azure\.com:443, api\.internal\.example:443, 127\.0\.0\.1:8443, plain\.internal\.example:80\); it is never tunnelled\n$/);
  const plain = await curl(['-i', 'http://login.microsoftonline.com/x']);
  assert.match(plain.stdout, /^HTTP\/1\.1 403 Forbidden/);
  assert.match(plain.stdout, /gateway: login\.microsoftonline\.com:80 is not a target of this gateway .*it is never tunnelled\n$/);
  // An https target's host over plain http is not that target.
  assert.match((await curl(['-i', 'http://management.azure.com/x'])).stdout, /^HTTP\/1\.1 403 /);
});

test('plain http:// targets: absolute-form requests from curl and python requests reach the handler with an origin-form path', async () => {
  const out = json(await curl(['-X', 'POST', '--data-binary', 'plain body', 'http://Plain.Internal.Example/v1/x?y=2']));
  assert.deepEqual([out.target, out.method, out.path, out.host, out.bodySample, out.httpVersion], ['plain-api', 'POST', '/v1/x?y=2', 'Plain.Internal.Example', 'plain body', '1.1']);
  const script = `
import requests
print(requests.get("http://plain.internal.example/py?z=3").text)
`;
  const r = await runTool('python3', ['-c', script], { HTTP_PROXY: `http://${proxyAddr}` });
  assert.equal(r.code, 0, r.stderr);
  const py = JSON.parse(r.stdout) as Record<string, unknown>;
  assert.deepEqual([py.target, py.path, py.host], ['plain-api', '/py?z=3', 'plain.internal.example']);
});

test('NO_PROXY=127.0.0.1,localhost: curl goes direct to loopback', async () => {
  const local = http.createServer((_req, res) => res.end('direct\n'));
  await new Promise<void>((resolve) => local.listen(0, '127.0.0.1', resolve));
  const port = (local.address() as net.AddressInfo).port;
  try {
    const env = { http_proxy: `http://${proxyAddr}`, HTTPS_PROXY: `http://${proxyAddr}`, NO_PROXY: '127.0.0.1,localhost' };
    for (const host of ['127.0.0.1', 'localhost']) {
      const r = await runTool('curl', ['-sS', `http://${host}:${port}/`], env);
      assert.equal(r.stdout, 'direct\n', host);
    }
    // Without NO_PROXY the same request would have gone to the proxy, which refuses it.
    const r = await runTool('curl', ['-sS', `http://127.0.0.1:${port}/`], { http_proxy: `http://${proxyAddr}` });
    assert.match(r.stdout, /is not a target of this gateway/);
  } finally {
    local.close();
  }
});

/** Sends bytes to the proxy port and returns everything it answers until it closes. */
function rawExchange(bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const [host, port] = proxyAddr.split(':');
    const s = net.connect(Number(port), host, () => s.write(bytes));
    let got = '';
    s.on('data', (d) => { got += d.toString('latin1'); });
    s.on('end', () => { s.destroy(); resolve(got); });
    s.on('error', reject);
  });
}

/** CONNECT to `authority`, then TLS inside with `servername`; resolves the TLS socket. */
function tunnel(authority: string, servername: string, alpn = ['http/1.1']): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const [host, port] = proxyAddr.split(':');
    const s = net.connect(Number(port), host, () => s.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`));
    s.once('data', (d) => {
      if (!d.toString().startsWith('HTTP/1.1 200 ')) return reject(new Error(d.toString()));
      const t = tls.connect({ socket: s, servername, ca: ca.certPem, ALPNProtocols: alpn });
      t.once('secureConnect', () => resolve(t));
      t.once('error', reject);
    });
    s.once('error', reject);
  });
}

function exchange(t: tls.TLSSocket, request: string): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    t.on('data', (d) => { got += d.toString(); });
    t.on('close', () => resolve(got));
    t.write(request);
  });
}

test('SNI naming another host than the CONNECT is refused in the handshake', async () => {
  await assert.rejects(tunnel('management.azure.com:443', 'api.internal.example'), /alert|handshake|socket hang up|ECONNRESET|disconnected/i);
  await assert.rejects(tunnel('management.azure.com:443', 'login.microsoftonline.com'), /alert|handshake|socket hang up|ECONNRESET|disconnected/i);
  const ok = await tunnel('Management.Azure.com:443', 'management.azure.com');
  const answer = await exchange(ok, 'GET /ok HTTP/1.1\r\nHost: management.azure.com\r\nConnection: close\r\n\r\n');
  assert.match(answer, /^HTTP\/1\.1 200 /);
  assert.match(answer, /"target":"arm"/);
});

test('inside a tunnel, a Host or :authority naming another authority is refused with 421 before the handler', async () => {
  for (const host of ['api.internal.example', 'login.microsoftonline.com', 'management.azure.com:8443']) {
    const r = await curl(['--http1.1', '-i', '-H', `Host: ${host}`, 'https://management.azure.com/x']);
    assert.match(inner(r), /^HTTP\/1\.1 421 /, host);
    assert.match(r.stdout, /gateway: this tunnel is for management\.azure\.com:443; a request for .* is not served through it/);
    assert.doesNotMatch(r.stdout, /"target"/);
    const h2 = await curl(['--http2', '-i', '-H', `Host: ${host}`, 'https://management.azure.com/x']);
    assert.match(inner(h2), /^HTTP\/2 421/, `${host} over h2`);
  }
  // Raw HTTP/1.1 in the tunnel: two Host headers, no Host, an absolute-form target.
  const cases: [string, RegExp][] = [
    ['GET /x HTTP/1.1\r\nHost: management.azure.com\r\nHost: api.internal.example\r\n\r\n', /^HTTP\/1\.1 (400|421) /],
    ['GET /x HTTP/1.1\r\n\r\n', /^HTTP\/1\.1 400 /],
    ['GET https://api.internal.example/x HTTP/1.1\r\nHost: management.azure.com\r\n\r\n', /^HTTP\/1\.1 400 /],
    ['CONNECT api.internal.example:443 HTTP/1.1\r\nHost: api.internal.example:443\r\n\r\n', /^HTTP\/1\.1 405 /],
  ];
  for (const [request, status] of cases) {
    const t = await tunnel('management.azure.com:443', 'management.azure.com');
    const answer = await exchange(t, request);
    assert.match(answer, status, JSON.stringify(request));
    assert.doesNotMatch(answer, /"target"/);
  }
});

test('WebSocket upgrades are refused with 501, in a tunnel and in plain http', async () => {
  const ws = ['-H', 'Connection: Upgrade', '-H', 'Upgrade: websocket', '-H', 'Sec-WebSocket-Version: 13', '-H', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=='];
  const tunnelled = await curl(['--http1.1', '-i', ...ws, 'https://management.azure.com/ws']);
  assert.match(inner(tunnelled), /^HTTP\/1\.1 501 /);
  assert.match(tunnelled.stdout, /gateway: WebSocket upgrades are not relayed for HTTP targets\n$/);
  const plain = await curl(['-i', ...ws, 'http://plain.internal.example/ws']);
  assert.match(plain.stdout, /^HTTP\/1\.1 501 /);
  assert.match(plain.stdout, /WebSocket upgrades are not relayed/);
});

test('malformed CONNECT lines, bad ports, garbage and origin-form requests get a 400, and the proxy keeps serving', async () => {
  const cases: [string, RegExp][] = [
    ['CONNECT management.azure.com HTTP/1.1\r\nHost: x\r\n\r\n', /^HTTP\/1\.1 400 [^]*CONNECT needs host:port: "management\.azure\.com" names no port/],
    ['CONNECT management.azure.com:99999 HTTP/1.1\r\nHost: x\r\n\r\n', /^HTTP\/1\.1 400 [^]*not from 1 to 65535/],
    ['CONNECT management.azure.com:0x1bb HTTP/1.1\r\nHost: x\r\n\r\n', /^HTTP\/1\.1 400 /],
    ['CONNECT [::1 HTTP/1.1\r\nHost: x\r\n\r\n', /^HTTP\/1\.1 400 /],
    ['CONNECT user@management.azure.com:443 HTTP/1.1\r\nHost: x\r\n\r\n', /^HTTP\/1\.1 400 /],
    ['HELLO THERE\r\n\r\n', /^HTTP\/1\.1 400 [^]*malformed request/],
    ['\x16\x03\x01\x00\x05hello', /^HTTP\/1\.1 400 /],
    ['GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', /^HTTP\/1\.1 400 [^]*forward proxy/],
    ['GET https://management.azure.com/x HTTP/1.1\r\nHost: management.azure.com\r\n\r\n', /^HTTP\/1\.1 400 [^]*goes through CONNECT/],
    ['GET http://plain.internal.example/x HTTP/1.1\r\nHost: api.internal.example\r\n\r\n', /^HTTP\/1\.1 421 /],
  ];
  for (const [request, expected] of cases) assert.match(await rawExchange(request), expected, JSON.stringify(request));
  // A handler that throws costs that request a 500, over either protocol, not the proxy.
  for (const version of ['--http1.1', '--http2']) {
    const thrown = await curl([version, '-i', 'https://management.azure.com/throw']);
    assert.match(inner(thrown), /^HTTP\/(1\.1|2) 500/, version);
    assert.match(thrown.stdout, /gateway: the request failed: a handler bug\n$/);
  }
  assert.equal(json(await curl(['https://management.azure.com/still-up'])).path, '/still-up');
});

test('close(grace) lets a request in flight finish, then refuses new connections', async () => {
  let release!: () => void;
  const released = new Promise<void>((resolve) => { release = resolve; });
  let arrived!: () => void;
  const hasArrived = new Promise<void>((resolve) => { arrived = resolve; });
  const p = new ForwardProxy({
    ca, route, targetAuthorities: TARGETS,
    handle: (_req, res) => { arrived(); void released.then(() => res.end('finished\n')); },
  });
  const addr = await p.listen();
  const pending = runTool('curl', ['-sS', '--http1.1', '--proxy', `http://${addr}`, '--cacert', bundleFile, 'https://management.azure.com/slow']);
  await hasArrived;
  const closed = p.close(60_000);
  release();
  assert.equal((await pending).stdout, 'finished\n');
  await closed;
  const after = await runTool('curl', ['-sS', '--proxy', `http://${addr}`, '--cacert', bundleFile, 'https://management.azure.com/']);
  assert.notEqual(after.code, 0);
});
