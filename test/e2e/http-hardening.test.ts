// The review's HTTP hardening, each fix proved end to end: the shipped CLI's daemon (dist/cli.js;
// `npm run build` first) in front of a plain-HTTP target written here (node:http on 127.0.0.1, so
// every answer is exactly what a test needs: echoes of the gateway's credentials, JSON under
// lying content types, binary bytes, operation headers on a 200, a redirect, an ETag). Each test
// checks what the client got and that the session log holds no secret. Clients: curl (plain
// HTTP/1.1) and Node's http2 client (h2c with prior knowledge, resetting streams mid-body).
// Needs: curl.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import fs from 'node:fs';
import path from 'node:path';
import { cliAsync, readLog, tempDir, waitFor, type LogRecord, startedGatewayEnv } from '../helpers/gateway.ts';

const run = promisify(execFile);
const API_TOKEN = 'api-token-from-env-' + 't'.repeat(32);
const API_KEY = 'api-key-from-env-' + 'k'.repeat(24);
const PK = (variant: string): string => `PK-SECRET-${variant}-${'p'.repeat(20)}`;
const PASSWORD = 'PW-FORM-222';
const BINARY_SECRET = 'BINARY-BODY-SECRET-77';
const MASK = '[masked:credential]';

/** One request as the target saw it: `complete` only once its body ended ('end' fired). */
interface Seen { method: string; url: string; headers: http.IncomingHttpHeaders; body: Buffer; complete: boolean; closed: boolean }

let upstream: http.Server;
let up: string;
const seen: Seen[] = [];
let dir: string;
let stateDir: string;
let env: Record<string, string>;

const json = (res: http.ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}): void => {
  const b = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(b), ...headers });
  res.end(b);
};

/** The target: what each path answers. Called once the request's body ended. */
function answer(req: http.IncomingMessage, res: http.ServerResponse): void {
  const u = new URL(req.url!, up);
  const auth = req.headers.authorization ?? '';
  const key = String(req.headers['x-api-key'] ?? '');
  const lie = `{"name":"lying","primaryKey":"${PK(u.pathname.slice(6))}"}`;
  switch (u.pathname) {
    case '/echo/json': return json(res, 200, { authorization: auth, apiKey: key });
    case '/echo/text':
      res.writeHead(200, { 'content-type': 'text/plain' });
      return void res.end(`you sent authorization=${auth} x-api-key=${key}\n`);
    case '/echo/split': {
      // The credential cut in its middle across two writes, with a pause between them.
      const text = `token: ${auth}${key}\n`;
      const half = text.indexOf(auth + key) + Math.floor((auth + key).length / 2);
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.flushHeaders();
      res.write(text.slice(0, half));
      setTimeout(() => res.end(text.slice(half)), 150);
      return;
    }
    case '/echo/header': return json(res, 200, { ok: true }, { 'x-echo-auth': auth, 'x-echo-key': key });
    case '/lie/plain':
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      return void res.end(lie);
    case '/lie/none':
      // No content type at all (node:http adds none).
      res.writeHead(200, { 'content-length': Buffer.byteLength(lie) });
      return void res.end(lie);
    case '/lie/x-json':
      res.writeHead(200, { 'content-type': 'application/x-json' });
      return void res.end(lie);
    case '/lie/dup':
      // Two Content-Type lines, text/plain first.
      res.setHeader('content-type', ['text/plain', 'application/json']);
      res.writeHead(200);
      return void res.end(lie);
    case '/lie/msgpack':
      res.writeHead(200, { 'content-type': 'application/x-msgpack' });
      return void res.end(lie);
    case '/binary':
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      return void res.end(Buffer.concat([Buffer.from([0x89, 0x00, 0x01, 0xff, 0x00, 0xfe]), Buffer.from(BINARY_SECRET), Buffer.from([0x00, 0x00])]));
    case '/things/provisioning':
      // A PUT still provisioning: 200 with Azure-AsyncOperation (as ARM answers some creates).
      return json(res, 200, { name: 'provisioning', properties: { provisioningState: 'Creating' } }, { 'azure-asyncoperation': `${up}/ops/op-1?api-version=2024-01-01` });
    case '/ops/op-1': return json(res, 200, { status: 'Succeeded' });
    case '/redirect':
      res.writeHead(302, { location: `${up}/landing?from=redirect` });
      return void res.end();
    case '/landing': return json(res, 200, { landed: true });
    case '/slow': {
      // Text for as long as someone reads it: a chunk every 50 ms, up to 2000.
      res.writeHead(200, { 'content-type': 'text/plain' });
      let n = 0;
      const timer = setInterval(() => (++n > 2000 ? (clearInterval(timer), res.end()) : res.write(`line ${n} ${'x'.repeat(2000)}\n`)), 50);
      res.on('close', () => clearInterval(timer));
      return;
    }
    case '/etag': return json(res, 200, { name: 'tagged', primaryKey: PK('etag') }, { etag: 'W/"0x8DC-etag-42"' });
    default: return json(res, 200, { ok: true, path: u.pathname });
  }
}

function policy(): string {
  return `version: 1
targets:
  api:
    kind: http
    url: ${up}
    auth: { bearer-env: API_TOKEN }
  keyed:
    kind: http
    url: ${up}
    auth: { header-env: { X-Api-Key: API_KEY } }
default: allow
rules:
  - { name: no-admin, when: { path: ["/admin/**"] }, action: deny }
  - { name: review-held-puts, when: { method: [PUT], path: ["/held/**"] }, action: approve }
masking:
  json-fields: ["$..primaryKey", "$..password"]
approvals:
  timeout: 60s
`;
}

before(async () => {
  upstream = http.createServer((req, res) => {
    const s: Seen = { method: req.method!, url: req.url!, headers: req.headers, body: Buffer.alloc(0), complete: false, closed: false };
    seen.push(s);
    req.on('data', (c: Buffer) => (s.body = Buffer.concat([s.body, c])));
    req.on('end', () => {
      s.complete = true;
      answer(req, res);
    });
    req.on('close', () => (s.closed = true));
    req.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  up = `http://127.0.0.1:${(upstream.address() as net.AddressInfo).port}`;
  dir = tempDir('gw-http-hard-');
  fs.writeFileSync(path.join(dir, 'gateway.yml'), policy());
  stateDir = path.join(dir, 'state');
  // Async: the target answers from this process while the daemon starts.
  env = await startedGatewayEnv(dir, stateDir, { env: { ...process.env, API_TOKEN, API_KEY } });
  assert.ok(env.GATEWAY_API_URL && env.GATEWAY_KEYED_URL, JSON.stringify(env));
});

after(async () => {
  if (stateDir) await cliAsync(['stop', '--state-dir', stateDir]);
  upstream?.closeAllConnections();
  await new Promise((resolve) => upstream?.close(resolve));
});

const logPath = (): string => {
  const logs = path.join(dir, 'logs');
  return path.join(logs, fs.readdirSync(logs).find((f) => f.endsWith('.jsonl')) ?? fs.readdirSync(logs)[0]!);
};
const logText = (): string => fs.readFileSync(logPath(), 'utf8');
const log = (): LogRecord[] => readLog(logPath());
const commandOf = (text: string): LogRecord | undefined => log().filter((r) => r.type === 'command' && r.text.includes(text)).at(-1);
const resultOf = (id: string): LogRecord | undefined => log().find((r) => r.type === 'result' && r.command === id);
async function resultFor(text: string): Promise<{ command: LogRecord; result: LogRecord }> {
  const command = (await waitFor(() => commandOf(text), `the command record of ${text}`))!;
  const result = (await waitFor(() => resultOf(command.command), `the result record of ${text}`))!;
  return { command, result };
}

function assertLogHasNo(...secrets: string[]): void {
  const text = logText();
  for (const s of secrets) assert.ok(!text.includes(s), `the session log holds ${s}`);
}

interface CurlResult { status: number; headers: Record<string, string[]>; body: string; stderr: string }

let curls = 0;
/** curl with the response headers kept apart; never spawnSync (the target answers from this process). */
async function curl(args: string[]): Promise<CurlResult> {
  const headerFile = path.join(dir, `headers-${++curls}.txt`);
  const r = await run('curl', ['-sS', '--path-as-is', '-D', headerFile, '-w', '\n%{http_code}', ...args], { encoding: 'utf8', timeout: 60_000, maxBuffer: 16 << 20 })
    .catch((e: { stdout: string; stderr: string }) => e);
  const nl = r.stdout.lastIndexOf('\n');
  const headers: Record<string, string[]> = {};
  const raw = fs.existsSync(headerFile) ? fs.readFileSync(headerFile, 'utf8') : '';
  // The last response's headers (after any 100 Continue).
  for (const line of raw.trim().split(/\r?\n\r?\n/).at(-1)!.split(/\r?\n/).slice(1)) {
    const c = line.indexOf(':');
    if (c > 0) (headers[line.slice(0, c).trim().toLowerCase()] ??= []).push(line.slice(c + 1).trim());
  }
  return { status: Number(r.stdout.slice(nl + 1)), headers, body: r.stdout.slice(0, nl), stderr: r.stderr };
}

test('credentials the gateway sent are masked wherever the target echoes them: a JSON body, a text body, a token split across two writes, a response header', async () => {
  const cases: Array<{ target: string; url: string; secret: string }> = [
    { target: 'api', url: env.GATEWAY_API_URL!, secret: API_TOKEN },
    { target: 'keyed', url: env.GATEWAY_KEYED_URL!, secret: API_KEY },
  ];
  for (const { target, url, secret } of cases) {
    const j = await curl([`${url}/echo/json?via=${target}`]);
    assert.equal(j.status, 200, j.body + j.stderr);
    assert.ok(!j.body.includes(secret), `${target}: the JSON echo holds the credential: ${j.body}`);
    const echoed = JSON.parse(j.body) as { authorization: string; apiKey: string };
    assert.equal(target === 'api' ? echoed.authorization : echoed.apiKey, MASK, j.body);

    const t = await curl([`${url}/echo/text?via=${target}`]);
    assert.equal(t.status, 200, t.body + t.stderr);
    assert.ok(!t.body.includes(secret), `${target}: the text echo holds the credential: ${t.body}`);
    assert.ok(t.body.includes(MASK), t.body);

    const s = await curl([`${url}/echo/split?via=${target}`]);
    assert.equal(s.status, 200, s.body + s.stderr);
    assert.ok(!s.body.includes(secret), `${target}: the split echo holds the credential: ${s.body}`);
    assert.ok(!s.body.includes(secret.slice(0, 16)) && !s.body.includes(secret.slice(-16)), `${target}: half of the credential came through: ${s.body}`);
    assert.equal(s.body, `token: ${MASK}\n`);

    const h = await curl([`${url}/echo/header?via=${target}`]);
    assert.equal(h.status, 200, h.body + h.stderr);
    const echoedHeader = (target === 'api' ? h.headers['x-echo-auth'] : h.headers['x-echo-key'])?.[0];
    assert.equal(echoedHeader, MASK, JSON.stringify(h.headers));
    assert.ok(!JSON.stringify(h.headers).includes(secret), JSON.stringify(h.headers));

    for (const p of ['json', 'text', 'split', 'header']) {
      const { result } = await resultFor(`/echo/${p}?via=${target}`);
      assert.equal(result.status, 'ok', JSON.stringify(result));
      assert.ok(result.masked?.values >= 1, `${target} ${p}: the result counts the masked credential: ${JSON.stringify(result.masked)}`);
    }
  }
  assertLogHasNo(API_TOKEN, API_KEY);
});

test('JSON whose content type lies is still read as JSON: primaryKey is masked as text/plain, with no type, as x-json, under a duplicated type, as x-msgpack', async () => {
  for (const variant of ['plain', 'none', 'x-json', 'dup', 'msgpack']) {
    const r = await curl([`${env.GATEWAY_API_URL}/lie/${variant}`]);
    assert.equal(r.status, 200, `${variant}: ${r.body}${r.stderr}`);
    assert.ok(!r.body.includes(PK(variant)), `${variant}: primaryKey reached the client: ${r.body}`);
    const got = JSON.parse(r.body) as { name: string; primaryKey: string };
    assert.equal(got.name, 'lying');
    assert.notEqual(got.primaryKey, PK(variant));
    const { result } = await resultFor(`/lie/${variant}`);
    assert.ok(result.masked?.values >= 1, `${variant}: ${JSON.stringify(result)}`);
    assertLogHasNo(PK(variant));
  }
});

test('a binary body with masking on is refused with a 502, never passed', async () => {
  const r = await curl(['-o', path.join(dir, 'binary.out'), `${env.GATEWAY_API_URL}/binary`]);
  const body = fs.readFileSync(path.join(dir, 'binary.out'));
  assert.equal(r.status, 502, body.toString());
  assert.ok(!body.includes(BINARY_SECRET) && !body.includes(0), 'none of the binary bytes reached the client');
  const e = JSON.parse(body.toString()).error;
  assert.equal(e.code, 'GatewayUnmaskableBody', 'the code docs/http.md gives for a body masking cannot read');
  assert.match(e.message, /application\/octet-stream body that is not text/);
  const { result } = await resultFor('/binary');
  assert.equal(result.status, 'error');
  assertLogHasNo(BINARY_SECRET);
});

test('a JSON request body sent as a form (curl --data-binary) reaches the target unchanged; the log\'s sample of it is masked', async () => {
  const sent = `{"properties":{"password":"${PASSWORD}"}}`;
  const r = await curl(['--data-binary', sent, `${env.GATEWAY_API_URL}/form?via=curl-form`]);
  assert.equal(r.status, 200, r.body + r.stderr);
  const s = seen.find((x) => x.url === '/form?via=curl-form')!;
  assert.equal(s.headers['content-type'], 'application/x-www-form-urlencoded', 'curl\'s default type');
  assert.equal(s.body.toString(), sent, 'the target got the body the client sent');
  const { result } = await resultFor('/form?via=curl-form');
  assert.equal(result.input.bytes, Buffer.byteLength(sent));
  assert.match(result.input.text, /"password"/, result.input.text);
  assert.ok(!result.input.text.includes(PASSWORD), `the sample is masked: ${result.input.text}`);
  assertLogHasNo(PASSWORD);
});

test('refused before the target: a gzip-encoded request body, X-Original-URL and X-Rewrite-URL, ?_method=', async () => {
  const before = seen.length;
  const gz = path.join(dir, 'body.gz');
  fs.writeFileSync(gz, gzipSync(Buffer.from('{"properties":{"hidden":"in gzip"}}')));
  const refusals: Array<{ args: string[]; why: RegExp }> = [
    { args: ['-H', 'content-type: application/json', '-H', 'Content-Encoding: gzip', '--data-binary', `@${gz}`, `${env.GATEWAY_API_URL}/things/gz`], why: /gzip-encoded request body/ },
    { args: ['-H', 'X-Original-URL: /admin/x', `${env.GATEWAY_API_URL}/public/page`], why: /x-original-url/ },
    { args: ['-H', 'X-Rewrite-URL: /admin/x', `${env.GATEWAY_API_URL}/public/page`], why: /x-rewrite-url/ },
    { args: [`${env.GATEWAY_API_URL}/things/one?_method=DELETE`], why: /_method parameter/ },
    { args: [`${env.GATEWAY_API_URL}/things/one?x=1&_METHOD=delete`], why: /_method parameter/ },
  ];
  for (const { args, why } of refusals) {
    const r = await curl(args);
    assert.equal(r.status, 400, `${args.join(' ')}: ${r.body}`);
    const e = JSON.parse(r.body).error;
    assert.equal(e.code, 'GatewayUnreadableRequest', r.body);
    assert.match(e.message, why);
  }
  // The deny rule itself, for comparison: the path the header named is the one rules see.
  const admin = await curl([`${env.GATEWAY_API_URL}/admin/x`]);
  assert.equal(admin.status, 403, admin.body);
  assert.equal(seen.length, before, `the target saw nothing: ${seen.slice(before).map((s) => s.url).join(', ')}`);
});

/** An h2c session with prior knowledge to the gateway's plain port. */
function h2session(): http2.ClientHttp2Session {
  const session = http2.connect(env.GATEWAY_API_URL!);
  session.on('error', () => undefined);
  return session;
}

const frame = (type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer => {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
};

/** HPACK literal header fields without indexing, new names (every string shorter than 127 bytes). */
const headerBlock = (fields: Array<[string, string]>): Buffer =>
  Buffer.concat(fields.flatMap(([n, v]) => [Buffer.from([0x00, n.length]), Buffer.from(n), Buffer.from([v.length]), Buffer.from(v)]));

/**
 * An h2c request written frame by frame: HEADERS, then `part` as a DATA frame without END_STREAM;
 * `cancel()` sends RST_STREAM(CANCEL). Raw frames because Node's `stream.close(NGHTTP2_CANCEL)`
 * first ends the stream (an empty DATA frame with END_STREAM, so the body is complete by the
 * protocol) and only then resets it: that is not a body cut off.
 */
async function rawPartialRequest(method: string, p: string, part: string): Promise<{ cancel(): void; socket: net.Socket }> {
  const u = new URL(env.GATEWAY_API_URL!);
  const socket = net.connect(Number(u.port), u.hostname);
  socket.on('error', () => undefined);
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(4, 0, 0)]));
  // The server's SETTINGS come first: acknowledge them.
  socket.once('data', () => socket.write(frame(4, 1, 0)));
  const block = headerBlock([[':method', method], [':scheme', 'http'], [':authority', u.host], [':path', p], ['content-type', 'application/json']]);
  socket.write(Buffer.concat([frame(1, 0x4, 1, block), frame(0, 0, 1, Buffer.from(part))]));
  const rst = Buffer.alloc(4);
  rst.writeUInt32BE(http2.constants.NGHTTP2_CANCEL);
  return { cancel: () => socket.write(frame(3, 0, 1, rst)), socket };
}

test('HTTP/2: a POST reset mid-body (RST_STREAM CANCEL, or Node\'s stream.destroy()) never reaches the target as a complete request, and its result is an error', async () => {
  const part = '{"items":["first part of the body"';
  const resets: Array<{ p: string; start(): Promise<() => void> }> = [
    {
      p: '/upload/reset-cancel',
      async start() {
        const r = await rawPartialRequest('POST', '/upload/reset-cancel', part);
        return () => r.cancel();
      },
    },
    {
      p: '/upload/reset-destroy',
      async start() {
        const session = h2session();
        const stream = session.request({ ':method': 'POST', ':path': '/upload/reset-destroy', 'content-type': 'application/json' }, { endStream: false });
        stream.on('error', () => undefined);
        await new Promise<void>((resolve) => stream.write(part, () => resolve()));
        // RST_STREAM without END_STREAM first.
        return () => {
          stream.destroy();
          session.close();
        };
      },
    },
  ];
  for (const { p, start } of resets) {
    const reset = await start();
    // The target has the request and the first part: the gateway streams a body as it comes.
    const s = (await waitFor(() => seen.find((x) => x.url === p && x.body.length > 0), `the first part of ${p} at the target`))!;
    reset();
    const { result } = await resultFor(`POST ${up}${p}`);
    assert.equal(result.status, 'error', JSON.stringify(result));
    await waitFor(() => s.closed, `the target's request ${p} closed`);
    assert.equal(s.complete, false, `${p}: the target got a complete request: ${s.body.toString()}`);
    assert.equal(s.body.toString(), part);
  }
});

test('HTTP/2: a client that resets its stream mid-response is recorded as gone and the target\'s answer is abandoned', async () => {
  const session = h2session();
  const stream = session.request({ ':method': 'GET', ':path': '/slow?via=h2-reset' });
  stream.on('error', () => undefined);
  await new Promise((resolve) => stream.once('data', resolve));
  const s = (await waitFor(() => seen.find((x) => x.url === '/slow?via=h2-reset'), 'the slow request at the target'))!;
  stream.close(http2.constants.NGHTTP2_CANCEL);
  const { result } = await resultFor('/slow?via=h2-reset');
  assert.equal(result.status, 'error', JSON.stringify(result));
  assert.equal(result.error.code, 'client', JSON.stringify(result));
  await waitFor(() => s.closed, 'the target\'s connection for it closed');
  session.close();
});

interface Pending { id: string; target: string; rule: string; text: string }
async function pendingRequests(): Promise<Pending[]> {
  const r = await cliAsync(['pending', '--json', '--state-dir', stateDir]);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as Pending[];
}

test('HTTP/2: a held PUT whose client resets the stream is never forwarded, even when approved afterwards', async () => {
  // Reset while the gateway reads the body to hold it: denied as cut off, never held.
  const partial = await rawPartialRequest('PUT', '/held/partial', '{"name":"cut');
  partial.cancel();
  const { command: pc, result: pr } = await resultFor(`PUT ${up}/held/partial`);
  assert.equal(pr.status, 'denied', JSON.stringify(pr));
  assert.match(pr.reason, /cut the request body off/);
  assert.ok(!(await pendingRequests()).some((x) => x.text.includes('/held/partial')), 'the cut-off PUT is not waiting for approval');
  assert.deepEqual([pc.decision.action, pc.decision.rule], ['deny', 'review-held-puts'], JSON.stringify(pc.decision));
  partial.socket.destroy();

  // Reset while held (the body was whole): the pending request goes away; approving it sends nothing.
  const session = h2session();
  const whole = session.request({ ':method': 'PUT', ':path': '/held/whole', 'content-type': 'application/json' }, { endStream: false });
  whole.on('error', () => undefined);
  whole.end('{"name":"whole"}');
  const h = (await waitFor(async () => (await pendingRequests()).find((x) => x.text.includes('/held/whole')), 'the held PUT'))!;
  assert.equal(h.rule, 'review-held-puts');
  whole.close(http2.constants.NGHTTP2_CANCEL);
  const { result } = await resultFor(`PUT ${up}/held/whole`);
  assert.notEqual(result.status, 'ok', JSON.stringify(result));
  assert.ok(!(await pendingRequests()).some((x) => x.id === h.id), 'the reset request is no longer pending');
  const approve = await cliAsync(['approve', h.id, '--state-dir', stateDir]);
  // A request after the approval, through the same target: the gateway has had its chance to forward.
  const after = await curl([`${env.GATEWAY_API_URL}/after-approve`]);
  assert.equal(after.status, 200, after.body);
  assert.ok(!seen.some((x) => x.url.startsWith('/held/')), `a held PUT reached the target (approve said ${approve.status}: ${approve.stdout}${approve.stderr})`);
  session.close();
});

test('Azure-AsyncOperation on a 200 is rewritten to the gateway and its poll ends in an operation record; a same-origin 302 Location is rewritten', async () => {
  const put = await curl(['-X', 'PUT', '-H', 'content-type: application/json', '--data-binary', '{"location":"here"}', `${env.GATEWAY_API_URL}/things/provisioning`]);
  assert.equal(put.status, 200, put.body);
  const op = put.headers['azure-asyncoperation']?.[0];
  assert.equal(op, `${env.GATEWAY_API_URL}/ops/op-1?api-version=2024-01-01`, JSON.stringify(put.headers));
  const { command: pc, result: pr } = await resultFor(`PUT ${up}/things/provisioning`);
  assert.equal(pr.details.operation?.status, 'InProgress', JSON.stringify(pr.details));
  const poll = await curl([op!]);
  assert.equal(poll.status, 200, poll.body);
  assert.equal(JSON.parse(poll.body).status, 'Succeeded');
  const record = (await waitFor(() => log().find((x) => x.type === 'operation' && x.command === pc.command), 'the operation record'))!;
  assert.equal(record.status, 'Succeeded');

  const r = await curl([`${env.GATEWAY_API_URL}/redirect`]);
  assert.equal(r.status, 302, r.body);
  assert.equal(r.headers.location?.[0], `${env.GATEWAY_API_URL}/landing?from=redirect`, JSON.stringify(r.headers));
  const followed = await curl(['-L', `${env.GATEWAY_API_URL}/redirect`]);
  assert.equal(followed.status, 200);
  assert.deepEqual(JSON.parse(followed.body), { landed: true });
  assert.ok(commandOf(`GET ${up}/landing?from=redirect`), 'the redirect was followed through the gateway');
});

test('the target\'s ETag reaches the client on a masked JSON response', async () => {
  const r = await curl([`${env.GATEWAY_API_URL}/etag`]);
  assert.equal(r.status, 200, r.body);
  assert.deepEqual(r.headers.etag, ['W/"0x8DC-etag-42"']);
  assert.ok(!r.body.includes(PK('etag')), r.body);
  assert.equal(JSON.parse(r.body).name, 'tagged');
  assertLogHasNo(PK('etag'), API_TOKEN, API_KEY);
});
