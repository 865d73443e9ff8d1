// The HTTP gateway's protocol edges, end to end with real clients: HTTP/2 (h2c with prior
// knowledge, h2 over the per-run CA), chunked uploads with `Expect: 100-continue` (allowed and
// denied), a held PUT approved and another denied from the CLI, the refusals a user meets
// (upgrades, method overrides, paths servers read differently), a long-running operation followed
// through `Location` to Failed, python requests and Node fetch through the forward proxy from the
// exported environment alone, a 64 MB body streamed in bounded memory, and replay and report on
// the sealed log. The gateway is the shipped CLI's daemon (dist/cli.js; `npm run build` first) in
// front of the ARM stand-in over real HTTPS; its token comes from the environment (bearer-env).
// Needs: curl with HTTP/2 (nghttp2), python3 with requests.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import fs from 'node:fs';
import path from 'node:path';
import { startArmStandIn, type ArmStandIn } from '../helpers/arm-stand-in.ts';
import { cliAsync, readLog, tempDir, waitFor, ROOT, type LogRecord, startedGatewayEnv } from '../helpers/gateway.ts';

const run = promisify(execFile);
const ARM_TOKEN = 'arm-token-from-env-' + 'y'.repeat(40);
const BIG = 64 << 20;

let arm: ArmStandIn;
let dir: string;
let stateDir: string;
let env: Record<string, string>;
let stopped = false;

function policy(): string {
  return `version: 1
targets:
  arm:
    kind: http
    url: https://management.azure.com
    auth: { bearer-env: ARM_TOKEN }
    ca-file: arm-ca.pem
    connect-to: 127.0.0.1:${arm.port}
  bench:
    kind: http
    url: https://127.0.0.1:${arm.port}
    auth: { bearer-env: ARM_TOKEN }
    ca-file: arm-ca.pem
rules:
  - { name: no-storage-keys, target: arm, when: { resource: { provider: Microsoft.Storage, action: [listKeys, regenerateKey] } }, action: deny }
  - { name: review-storage-writes, target: arm, when: { method: [PUT], resource: { type: [Microsoft.Storage/storageAccounts] } }, action: approve }
masking:
  json-fields: ["$..properties.adminPassword"]
approvals:
  timeout: 60s
`;
}

before(async () => {
  arm = await startArmStandIn({ tokenCheck: (b) => b === ARM_TOKEN, lroHost: 'management.azure.com', inProgressPolls: 2, lroOutcomes: { 'rg-doomed': 'Failed' } });
  for (const g of ['rg-app', 'rg-doomed', 'rg-py', 'rg-node']) arm.addResourceGroup(g);
  arm.addStorageAccount('rg-app', 'stapp');
  dir = tempDir('gw-http-proto-');
  fs.copyFileSync(arm.caFile, path.join(dir, 'arm-ca.pem'));
  fs.writeFileSync(path.join(dir, 'gateway.yml'), policy());
  stateDir = path.join(dir, 'state');
  // Async: the ARM stand-in answers from this process while the daemon starts.
  env = await startedGatewayEnv(dir, stateDir, { env: { ...process.env, ARM_TOKEN } });
});

after(async () => {
  if (stateDir && !stopped) await cliAsync(['stop', '--state-dir', stateDir]);
  await arm?.stop();
});

const sub = (): string => arm.subscriptionId;
const logPath = (): string => fs.readdirSync(path.join(dir, 'logs')).map((f) => path.join(dir, 'logs', f)).find((f) => f.endsWith('.jsonl')) ?? path.join(dir, 'logs', fs.readdirSync(path.join(dir, 'logs'))[0]!);
const log = (): LogRecord[] => readLog(logPath());
const commandOf = (text: string): LogRecord | undefined => log().filter((r) => r.type === 'command' && r.text.includes(text)).at(-1);
const resultOf = (id: string): LogRecord | undefined => log().find((r) => r.type === 'result' && r.command === id);
const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

interface CurlResult { status: number; body: string; stderr: string; info: Record<string, string> }

/** curl with `-w` facts as JSON on the last line; never spawnSync (the stand-in answers from this process). */
async function curl(args: string[], extraEnv: Record<string, string> = {}): Promise<CurlResult> {
  const w = '\n{"status":"%{http_code}","http_version":"%{http_version}","size_upload":"%{size_upload}","size_download":"%{size_download}"}';
  const r = await run('curl', ['-sS', '--path-as-is', '-w', w, ...args], { encoding: 'utf8', timeout: 120_000, maxBuffer: 16 << 20, env: { ...process.env, ...extraEnv } })
    .catch((e: { stdout: string; stderr: string }) => e);
  const nl = r.stdout.lastIndexOf('\n');
  const info = JSON.parse(r.stdout.slice(nl + 1)) as Record<string, string>;
  return { status: Number(info.status), body: r.stdout.slice(0, nl), stderr: r.stderr, info };
}

test('HTTP/2: h2c with prior knowledge on the plain port, h2 by ALPN on the HTTPS port, both recorded as 2.0', async () => {
  const p = `/subscriptions/${sub()}/resourceGroups/rg-app?api-version=2021-04-01`;
  const h2c = await curl(['--http2-prior-knowledge', `${env.GATEWAY_ARM_URL}${p}`]);
  assert.equal(h2c.status, 200, h2c.body + h2c.stderr);
  assert.equal(h2c.info.http_version, '2');
  assert.equal(JSON.parse(h2c.body).name, 'rg-app');
  const c = (await waitFor(() => commandOf(`GET https://management.azure.com${p}`), 'the h2c request\'s record'))!;
  assert.equal(c.details.http_version, '2.0');

  // A body over h2c: DATA frames after the sniffed preface reach ARM whole.
  const put = JSON.stringify({ location: 'westeurope', tags: { via: 'h2c', pad: 'q'.repeat(3000) } });
  const created = await curl(['--http2-prior-knowledge', '-X', 'PUT', '-H', 'content-type: application/json', '--data-binary', put, `${env.GATEWAY_ARM_URL}/subscriptions/${sub()}/resourceGroups/rg-h2c?api-version=2021-04-01`]);
  assert.equal(created.status, 201, created.body + created.stderr);
  assert.equal(arm.requests.find((x) => x.method === 'PUT' && x.path.endsWith('/rg-h2c'))!.body, put);

  const h2 = await curl(['--http2', '--cacert', env.NODE_EXTRA_CA_CERTS!, `${env.GATEWAY_ARM_HTTPS_URL}${p}&via=h2`]);
  assert.equal(h2.status, 200, h2.body + h2.stderr);
  assert.equal(h2.info.http_version, '2', 'ALPN picked h2');
  const c2 = (await waitFor(() => commandOf('&via=h2'), 'the h2 request\'s record'))!;
  assert.equal(c2.details.http_version, '2.0');
  assert.equal(arm.requests.at(-1)!.headers.authorization, `Bearer ${ARM_TOKEN}`);
});

test('curl --http2 on the plain port (an h2c upgrade offer) is answered over HTTP/1.1', async () => {
  const p = `/subscriptions/${sub()}/resourceGroups/rg-app?api-version=2021-04-01&via=upgrade-offer`;
  const r = await curl(['--http2', `${env.GATEWAY_ARM_URL}${p}`]);
  assert.equal(r.status, 200, r.body + r.stderr);
  assert.equal(r.info.http_version, '1.1');
  assert.equal(JSON.parse(r.body).name, 'rg-app');
});

test('a chunked upload with Expect: 100-continue reaches ARM byte for byte; the result records its size, digest and text', async () => {
  const tags = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`tag${String(i).padStart(2, '0')}`, `value-${i}-${'z'.repeat(20)}`]));
  const body = JSON.stringify({ location: 'westeurope', tags });
  assert.ok(body.length > 1024);
  const file = path.join(dir, 'chunked.json');
  fs.writeFileSync(file, body);
  const p = `/subscriptions/${sub()}/resourceGroups/rg-chunked?api-version=2021-04-01`;
  const r = await curl(['-v', '-X', 'PUT', '-H', 'content-type: application/json', '-H', 'Transfer-Encoding: chunked', '-H', 'Expect: 100-continue', '--data-binary', `@${file}`, `${env.GATEWAY_ARM_URL}${p}`]);
  assert.equal(r.status, 201, r.body + r.stderr);
  assert.match(r.stderr, /> Transfer-Encoding: chunked/i);
  assert.match(r.stderr, /< HTTP\/1\.1 100 Continue/, 'the gateway said continue');
  const seen = arm.requests.find((x) => x.method === 'PUT' && x.path.endsWith('/resourceGroups/rg-chunked'))!;
  assert.equal(seen.body, body, 'byte-identical at ARM');
  const c = commandOf(`PUT https://management.azure.com${p}`)!;
  const res = (await waitFor(() => resultOf(c.command), 'the result record'))!;
  assert.equal(res.input.bytes, Buffer.byteLength(body));
  assert.equal(res.input.sha256, sha256(body));
  assert.ok(body.startsWith(res.input.text.slice(0, 200)), 'the text sample is the body\'s start');
  assert.match(res.input.text, /"tag00":"value-0-z+"/);
});

test('a denied request with Expect: 100-continue gets its 403 before any body is sent; ARM sees nothing', async () => {
  const before = arm.requests.length;
  const file = path.join(dir, 'denied.json');
  fs.writeFileSync(file, JSON.stringify({ padding: 'p'.repeat(4000) }));
  const p = `/subscriptions/${sub()}/resourceGroups/rg-app/providers/Microsoft.Storage/storageAccounts/stapp/listKeys?api-version=2023-01-01`;
  const r = await curl(['-v', '-X', 'POST', '-H', 'content-type: application/json', '-H', 'Expect: 100-continue', '--data-binary', `@${file}`, `${env.GATEWAY_ARM_URL}${p}`]);
  assert.equal(r.status, 403, r.body);
  const e = JSON.parse(r.body).error;
  assert.equal(e.code, 'GatewayPolicyDenied');
  assert.match(e.message, /no-storage-keys/);
  assert.doesNotMatch(r.stderr, /100 Continue/);
  assert.equal(r.info.size_upload, '0', 'curl sent none of the body');
  assert.equal(arm.requests.length, before, 'nothing reached ARM');
});

interface Pending { id: string; target: string; rule: string; text: string }

async function pendingRequests(): Promise<Pending[]> {
  const r = await cliAsync(['pending', '--json', '--state-dir', stateDir]);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as Pending[];
}

async function held(text: string): Promise<Pending> {
  return (await waitFor(async () => (await pendingRequests()).find((x) => x.text.includes(text)), 'the held request'))!;
}

test('a held PUT shows method, resource and a masked body; approved, ARM gets the exact body; another, denied, gets an ARM-shaped 403', async () => {
  const secret = 'Sup3r-s3cret-admin-pw';
  const body = JSON.stringify({ location: 'westeurope', kind: 'StorageV2', properties: { adminPassword: secret, minimumTlsVersion: 'TLS1_2' } });
  const p = `/subscriptions/${sub()}/resourceGroups/rg-app/providers/Microsoft.Storage/storageAccounts/stnew?api-version=2023-01-01`;
  const file = path.join(dir, 'put.json');
  fs.writeFileSync(file, body);
  const put = curl(['-X', 'PUT', '-H', 'content-type: application/json', '--data-binary', `@${file}`, `${env.GATEWAY_ARM_URL}${p}`]);
  const h = await held('/storageAccounts/stnew');
  assert.equal(h.rule, 'review-storage-writes');
  assert.match(h.text, new RegExp(`^PUT https://management\\.azure\\.com/subscriptions/${sub()}/resourceGroups/rg-app/providers/Microsoft\\.Storage/storageAccounts/stnew\\?api-version=2023-01-01`));
  assert.match(h.text, /resource: Microsoft\.Storage\/storageAccounts stnew/);
  assert.match(h.text, new RegExp(`body \\(${body.length} bytes\\):`));
  assert.match(h.text, /"minimumTlsVersion":\s*"TLS1_2"/);
  assert.ok(!h.text.includes(secret), 'the password is masked in the approval request');
  const shown = await cliAsync(['pending', '--state-dir', stateDir]);
  assert.match(shown.stdout, new RegExp(`${h.id}\\s+arm\\s+review-storage-writes`));
  assert.ok(!shown.stdout.includes(secret));
  assert.equal(arm.requests.filter((x) => x.path.endsWith('/stnew')).length, 0, 'nothing sent while held');

  const a = await cliAsync(['approve', h.id, '--state-dir', stateDir]);
  assert.equal(a.status, 0, a.stderr);
  const r = await put;
  assert.equal(r.status, 201, r.body);
  const seen = arm.requests.find((x) => x.method === 'PUT' && x.path.endsWith('/stnew'))!;
  assert.equal(seen.body, body, 'ARM got the bytes that were approved');
  assert.equal(seen.headers.authorization, `Bearer ${ARM_TOKEN}`);
  const c = commandOf('/storageAccounts/stnew?')!;
  const res = (await waitFor(() => resultOf(c.command), 'the result record'))!;
  assert.equal(res.input.sha256, sha256(body));
  assert.ok(!fs.readFileSync(logPath(), 'utf8').includes(secret), 'the password is not in the log');

  const before = arm.requests.length;
  const second = curl(['-X', 'PUT', '-H', 'content-type: application/json', '--data-binary', '{"location":"westeurope"}', `${env.GATEWAY_ARM_URL}${p.replace('stnew', 'stother')}`]);
  const h2 = await held('/storageAccounts/stother');
  const d = await cliAsync(['deny', h2.id, '--state-dir', stateDir]);
  assert.equal(d.status, 0, d.stderr);
  const r2 = await second;
  assert.equal(r2.status, 403, r2.body);
  const e = JSON.parse(r2.body).error;
  assert.equal(e.code, 'GatewayPolicyDenied');
  assert.equal(typeof e.message, 'string');
  assert.equal(arm.requests.length, before, 'the denied PUT never reached ARM');
});

test('refusals: a WebSocket upgrade, a method override, and paths servers read differently never reach ARM', async () => {
  const before = arm.requests.length;
  const base = `${env.GATEWAY_ARM_URL}/subscriptions/${sub()}/resourceGroups/rg-app`;
  // A WebSocket handshake, and an Upgrade header without `Connection: Upgrade`: refused alike.
  for (const headers of [['Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=='], ['Upgrade: websocket']]) {
    const ws = await curl([...headers.flatMap((h) => ['-H', h]), `${base}?api-version=2021-04-01&ws=${headers.length}`]);
    assert.equal(ws.status, 400, ws.body);
    const e = JSON.parse(ws.body).error;
    assert.equal(e.code, 'GatewayUnreadableRequest');
    assert.match(e.message, /Upgrade to websocket .*WebSockets are refused/);
    const c = (await waitFor(() => commandOf(`&ws=${headers.length}`), 'the refused upgrade\'s record'))!;
    assert.equal(c.decision.action, 'deny');
  }

  const override = await curl(['-H', 'X-HTTP-Method-Override: DELETE', `${base}?api-version=2021-04-01`]);
  assert.equal(override.status, 400, override.body);
  assert.equal(JSON.parse(override.body).error.code, 'GatewayUnreadableRequest');
  assert.match(JSON.parse(override.body).error.message, /X-HTTP-Method-Override/i);

  for (const p of [`/subscriptions/${sub()}/./resourceGroups/rg-app`, `/subscriptions/x/%2e%2e/${sub()}/resourceGroups/rg-app`, `/subscriptions/${sub()}//resourceGroups/rg-app`]) {
    const r = await curl([`${env.GATEWAY_ARM_URL}${p}?api-version=2021-04-01`]);
    assert.equal(r.status, 400, `${p}: ${r.body}`);
    assert.equal(JSON.parse(r.body).error.code, 'GatewayUnreadableRequest', p);
  }
  assert.equal(arm.requests.length, before, 'nothing reached ARM');
});

test('a long-running delete followed through Location alone ends in an operation record that says Failed', async () => {
  const p = `/subscriptions/${sub()}/resourceGroups/rg-doomed?api-version=2021-04-01`;
  const r = await curl(['-D', '-', '-X', 'DELETE', `${env.GATEWAY_ARM_URL}${p}`]);
  assert.equal(r.status, 202, r.body);
  const location = /^location: (\S+)/im.exec(r.body)?.[1];
  assert.ok(location?.startsWith(`${env.GATEWAY_ARM_URL}/`), `Location comes back through the gateway: ${location}`);
  const del = commandOf(`DELETE https://management.azure.com${p}`)!;
  let last: CurlResult | undefined;
  for (let i = 0; i < 6; i++) {
    last = await curl([location!]);
    if (last.status !== 202) break;
  }
  assert.equal(last!.status, 409, last!.body);
  assert.equal(JSON.parse(last!.body).error.code, 'OperationFailed');
  const op = (await waitFor(() => log().find((x) => x.type === 'operation' && x.command === del.command), 'the operation record'))!;
  assert.equal(op.status, 'Failed');
  assert.ok(!arm.requests.some((x) => /\/providers\/Microsoft\.Resources\/operations\//i.test(x.path)), 'only the Location URL was polled');
});

/** A child with nothing but PATH, HOME and what the gateway exported. */
function stepEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: process.env.PATH!, HOME: process.env.HOME ?? '/tmp', ...env, ...extra };
}

test('python requests and Node fetch through HTTPS_PROXY from the exported environment alone: ARM answers 200 and is recorded; another host is refused 403', async () => {
  const py = `
import json, requests
r = requests.get("https://management.azure.com/subscriptions/${sub()}/resourceGroups/rg-py?api-version=2021-04-01")
print(json.dumps({"status": r.status_code, "name": r.json().get("name")}))
try:
    requests.get("https://example.com/")
    print("TUNNELLED")
except requests.exceptions.ProxyError as e:
    print("REFUSED", e)
`;
  const p = await run('python3', ['-c', py], { encoding: 'utf8', env: stepEnv(), timeout: 60_000 });
  const [first, second] = p.stdout.trim().split('\n');
  assert.deepEqual(JSON.parse(first!), { status: 200, name: 'rg-py' });
  assert.match(second!, /^REFUSED .*403/);
  const pc = (await waitFor(() => commandOf('/resourceGroups/rg-py?'), 'python\'s request record'))!;
  assert.equal(pc.text, `GET https://management.azure.com/subscriptions/${sub()}/resourceGroups/rg-py?api-version=2021-04-01`);
  assert.match(pc.details.headers['user-agent'], /python-requests/);

  const js = `
const r = await fetch('https://management.azure.com/subscriptions/${sub()}/resourceGroups/rg-node?api-version=2021-04-01');
console.log(JSON.stringify({ status: r.status, name: (await r.json()).name }));
try {
  await fetch('https://example.com/');
  console.log('TUNNELLED');
} catch (e) {
  const m = []; for (let c = e; c; c = c.cause) m.push(c.message);
  console.log('REFUSED ' + m.join(' <- '));
}`;
  const n = await run(process.execPath, ['--input-type=module', '-e', js], { encoding: 'utf8', env: stepEnv({ NODE_USE_ENV_PROXY: '1' }), timeout: 60_000 });
  const [nFirst, nSecond] = n.stdout.trim().split('\n');
  assert.deepEqual(JSON.parse(nFirst!), { status: 200, name: 'rg-node' });
  assert.match(nSecond!, /^REFUSED .*403/);
  const nc = (await waitFor(() => commandOf('/resourceGroups/rg-node?'), 'Node\'s request record'))!;
  assert.match(nc.details.headers['user-agent'], /node/i);
  for (const c of [pc, nc]) assert.equal((await waitFor(() => resultOf(c.command), 'the result'))!.details.status, 200);
  // The refused host ran no request; its CONNECTs are recorded as denied egress (attempts show).
  assert.ok(!log().some((r) => r.type === 'command' && /example\.com/.test(r.text) && r.kind !== 'egress.connect'), 'the refused host ran no command');
  assert.ok(log().some((r) => r.type === 'command' && r.text === 'CONNECT example.com:443' && r.decision?.action === 'deny'), 'the refused CONNECT is recorded');
});

function vmHwmKb(pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, 'VmHWM in /proc/PID/status');
  return Number(m[1]);
}

/** Streams a download's body into a digest (never held whole here either). */
function download(url: string, headers: string[] = [], cacert?: string): Promise<{ bytes: number; sha256: string; code: number | null }> {
  const child = spawn('curl', ['-sS', '--fail', ...(cacert ? ['--cacert', cacert] : []), ...headers.flatMap((h) => ['-H', h]), url], { stdio: ['ignore', 'pipe', 'inherit'] });
  const h = createHash('sha256');
  let bytes = 0;
  child.stdout.on('data', (c: Buffer) => { h.update(c); bytes += c.length; });
  return new Promise((resolve) => child.on('close', (code) => resolve({ bytes, sha256: h.digest('hex'), code })));
}

test('a 64 MB response streams through the reverse proxy complete, with its digest recorded, and the daemon\'s peak memory grows by less than 64 MB', async (t) => {
  const pid = (JSON.parse(fs.readFileSync(path.join(stateDir, 'daemon.json'), 'utf8')) as { pid: number }).pid;
  const direct = await download(`${arm.url}/bench/body?bytes=${BIG}`, [`authorization: Bearer ${ARM_TOKEN}`], arm.caFile);
  assert.equal(direct.code, 0);
  assert.equal(direct.bytes, BIG);
  const hwmBefore = vmHwmKb(pid);
  const through = await download(`${env.GATEWAY_BENCH_URL}/bench/body?bytes=${BIG}`);
  const hwmAfter = vmHwmKb(pid);
  assert.equal(through.code, 0);
  assert.equal(through.bytes, BIG, 'complete');
  assert.equal(through.sha256, direct.sha256, 'the bytes ARM sent');
  const c = (await waitFor(() => commandOf(`/bench/body?bytes=${BIG}`), 'the record'))!;
  const res = (await waitFor(() => resultOf(c.command), 'the result record'))!;
  assert.equal(res.details.status, 200);
  assert.equal(res.response.bytes, BIG);
  assert.equal(res.response.sha256, direct.sha256);
  t.diagnostic(`daemon VmHWM ${hwmBefore} -> ${hwmAfter} kB`);
  assert.ok((hwmAfter - hwmBefore) * 1024 < BIG, `VmHWM grew by ${Math.round((hwmAfter - hwmBefore) / 1024)} MB (${hwmBefore} -> ${hwmAfter} kB)`);
});

test('replay and report on the sealed log show the HTTP commands in resources', async () => {
  const s = await cliAsync(['stop', '--state-dir', stateDir]);
  assert.equal(s.status, 0, s.stderr);
  stopped = true;
  const sealed = s.stdout.trim().split('\n').at(-1)!;
  assert.ok(fs.existsSync(sealed), `the sealed log: ${sealed}`);
  const replay = await cliAsync(['replay', sealed], { env: { ...process.env, NO_COLOR: '1' } });
  assert.equal(replay.status, 0, replay.stderr + replay.stdout);
  assert.match(replay.stdout, /chain: VALID/);
  assert.match(replay.stdout, /Microsoft\.Storage\/storageAccounts stnew/);
  assert.match(replay.stdout, /Microsoft\.Resources\/resourceGroups rg-doomed/);
  assert.match(replay.stdout, /operation Failed|Failed/);
  const html = path.join(dir, 'report.html');
  const report = await cliAsync(['report', sealed, '-o', html], { cwd: ROOT });
  assert.equal(report.status, 0, report.stderr);
  const page = fs.readFileSync(html, 'utf8');
  assert.match(page, /Microsoft\.Storage\/storageAccounts/);
  assert.match(page, /review-storage-writes/);
  assert.ok(!page.includes('Sup3r-s3cret-admin-pw') && !page.includes(ARM_TOKEN), 'no secret in the report');
});
