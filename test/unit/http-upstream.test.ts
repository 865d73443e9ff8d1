// The gateway's upstream leg: a runner behind a proxy reaches an HTTP target through the
// proxy its gateway step had in HTTPS_PROXY (CONNECT, then TLS to the target checked against the
// target's own name and CA), NO_PROXY honoured; connect-to always goes directly. A real CONNECT
// proxy and a real HTTPS server on loopback; the target's host name never resolves, so only a
// request that went through the proxy can succeed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { createRunCa } from '../../gateway/http/run-ca.ts';
import { dispatcherFor } from '../../gateway/http/upstream.ts';
import type { HttpTarget } from '../../gateway/http/target.ts';

let server: https.Server;
let proxy: http.Server;
let caPem = '';
const connects: string[] = [];

before(async () => {
  const ca = await createRunCa('upstream-test');
  caPem = ca.certPem;
  const leaf = await ca.leafFor('api.internal.example');
  server = https.createServer({ key: leaf.keyPem, cert: leaf.certPem }, (req, res) => res.end(JSON.stringify({ path: req.url, host: req.headers.host })));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  proxy = http.createServer();
  proxy.on('connect', (req: http.IncomingMessage, socket: net.Socket) => {
    connects.push(req.url!);
    const port = Number(req.url!.split(':').at(-1));
    const up = net.connect(port, '127.0.0.1', () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      up.pipe(socket);
      socket.pipe(up);
    });
    up.on('error', () => socket.destroy());
    socket.on('error', () => up.destroy());
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
});

after(() => {
  server.close();
  proxy.close();
});

function target(over: Partial<HttpTarget> = {}): HttpTarget {
  const port = (server.address() as AddressInfo).port;
  return { name: 'api', kind: 'http', origin: `https://api.internal.example:${port}`, protocol: 'https:', host: 'api.internal.example', port, auth: { kind: 'none' }, ca: caPem, caFile: null, connectTo: null, timeoutMs: 10_000, secretEnv: [], azure: false, ...over };
}

const proxyUrl = (): string => `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;

test('behind a proxy, requests go through CONNECT and TLS checks the target\'s name and CA', async () => {
  const t = target();
  const d = dispatcherFor(t, { HTTPS_PROXY: proxyUrl() });
  const r = await d.request({ origin: t.origin, path: '/x?y=1', method: 'GET' });
  assert.equal(r.statusCode, 200);
  assert.deepEqual(await r.body.json(), { path: '/x?y=1', host: `api.internal.example:${t.port}` });
  assert.equal(connects.at(-1), `api.internal.example:${t.port}`);
  await d.close();
});

test('a certificate the target\'s CA did not issue is refused through the proxy too', async () => {
  const other = await createRunCa('other');
  const t = target({ ca: other.certPem });
  const d = dispatcherFor(t, { HTTPS_PROXY: proxyUrl() });
  await assert.rejects(d.request({ origin: t.origin, path: '/', method: 'GET' }), /certificate|self.signed|issuer/i);
  await d.close();
});

test('NO_PROXY sends the target directly (its name does not resolve here, so it fails), and connect-to never uses the proxy', async () => {
  const t = target();
  const before = connects.length;
  const d = dispatcherFor(t, { HTTPS_PROXY: proxyUrl(), NO_PROXY: 'api.internal.example' });
  await assert.rejects(d.request({ origin: t.origin, path: '/', method: 'GET' }), /ENOTFOUND|EAI_AGAIN|getaddrinfo/);
  await d.close();
  const direct = target({ connectTo: { host: '127.0.0.1', port: (server.address() as AddressInfo).port } });
  const d2 = dispatcherFor(direct, { HTTPS_PROXY: proxyUrl() });
  const r = await d2.request({ origin: `https://127.0.0.1:${direct.connectTo!.port}`, path: '/direct', method: 'GET', headers: { host: `api.internal.example:${direct.port}` } });
  assert.equal(r.statusCode, 200);
  await r.body.dump();
  await d2.close();
  assert.equal(connects.length, before, 'nothing went through the proxy');
});
