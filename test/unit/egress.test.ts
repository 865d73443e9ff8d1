// Declared egress: how the policy's `egress:` hosts are read and matched (DNS labels, never text;
// IP addresses only when named), where a resolved name may lead, the policy's messages for what
// cannot be declared, and the egress service with the real session log writer and real sockets:
// a declared connection is recorded before it is dialled and relayed unread both ways with its
// byte counts; an undeclared one is recorded as denied and never dialled; the gateway's stop
// ends open tunnels with what crossed them. With the forward proxy and real curl, a target's
// host keeps its interception while a declared host is tunnelled. Needs: curl, openssl.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import type http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { parsePolicy } from '../../gateway/adapters.ts';
import { egressHostText, matchEgress, parseEgressHost, type EgressEntry } from '../../gateway/egress/allow-list.ts';
import { resolveName, specialAddress } from '../../gateway/egress/addresses.ts';
import { Egress, EGRESS_TARGET } from '../../gateway/egress/egress.ts';
import { egressRenderer } from '../../gateway/egress/renderer.ts';
import { SessionLogWriter } from '../../gateway/evidence/log-writer.ts';
import { Recorder } from '../../gateway/core/recorder.ts';
import { readTimeline } from '../../gateway/evidence/timeline.ts';
import { createRunCa } from '../../gateway/http/run-ca.ts';
import { ForwardProxy } from '../../gateway/http/forward-proxy.ts';
import { tempDir } from '../helpers/gateway.ts';
import { makeCertificates } from '../helpers/entra-stand-in.ts';

const FILE = '/ci/gateway.yml';
/** Ten lines: what a case appends starts on line 11. */
const BASE = 'version: 1\ntargets:\n  app-db:\n    kind: postgres\n    host: 127.0.0.1\n    port: 5432\n    database: app\n    user: deployer\n    auth: { password-env: APP_DB_PASSWORD }\n    tls: disable\n';

function entries(yaml: string): EgressEntry[] {
  return parsePolicy(`${BASE}egress:\n${yaml}`, FILE).egress;
}

test('hosts are read into names, wildcards and IP addresses, in one canonical form', () => {
  const read = (h: string): unknown => {
    const r = parseEgressHost(h);
    return 'error' in r ? r : egressHostText(r) + ` (${r.kind})`;
  };
  assert.equal(read('API.Anthropic.com'), 'api.anthropic.com (name)');
  assert.equal(read('registry.npmjs.org.'), 'registry.npmjs.org (name)');
  assert.equal(read('*.NPMJS.org'), '*.npmjs.org (wildcard)');
  assert.equal(read('140.82.112.3'), '140.82.112.3 (ip)');
  assert.equal(read('2001:DB8:0:0::1'), '2001:db8::1 (ip)');
  assert.equal(read('[2001:db8::1]'), '2001:db8::1 (ip)');
  assert.equal(read('_service.example.com'), '_service.example.com (name)');
  assert.deepEqual(read('*'), { error: 'would declare every host: name the hosts a step needs' });
  assert.deepEqual(read('*.com'), { error: 'would declare every name under the top-level domain "com": name a domain under it' });
  assert.deepEqual(read('*.*.example.com'), { error: 'has a "*" after its first label: only a leading "*." is a wildcard' });
  assert.deepEqual(read('api*.example.com'), { error: 'has a "*" that is not a leading "*.": only "*.domain" is a wildcard (every subdomain of domain)' });
  assert.deepEqual(read('*.10.0.0.1'), { error: 'puts a wildcard before an IP address: declare the address itself' });
  assert.deepEqual(read('a..example.com'), { error: 'has an empty label (two dots in a row, or a leading dot)' });
  assert.deepEqual(read(`${'a'.repeat(64)}.example.com`), { error: `has a label "${'a'.repeat(64)}" that is not 1 to 63 letters, digits, "-" or "_"` });
  // A last label of digits is an IPv4 address in a spelling the proxy refuses: never reachable.
  assert.deepEqual(read('10.1'), { error: 'ends in a number: it reads as an IPv4 address in a form other than four decimal numbers' });
  assert.deepEqual(read('0x7f.1'), { error: 'ends in a number: it reads as an IPv4 address in a form other than four decimal numbers' });
  assert.deepEqual(read('[fe80::1%eth0]'), { error: 'is not an IPv6 address (write it as 2001:db8::1 or [2001:db8::1], without a zone)' });
});

test('a wildcard covers subdomains by DNS label: registry.npmjs.org, not npmjs.org nor evil-npmjs.org', () => {
  const list = entries('  - host: "*.npmjs.org"\n  - host: api.anthropic.com\n  - host: 10.1.2.3\n    ports: [8080, 443]\n');
  const declared = (host: string, port = 443): boolean => matchEgress(list, host, port).declared;
  assert.deepEqual(list.map((e) => [e.host, e.ports]), [['*.npmjs.org', [443]], ['api.anthropic.com', [443]], ['10.1.2.3', [8080, 443]]]);
  for (const host of ['registry.npmjs.org', 'a.b.npmjs.org']) assert.ok(declared(host), host);
  for (const host of ['npmjs.org', 'evil-npmjs.org', 'registry.npmjs.org.evil.example', 'xnpmjs.org', 'api.anthropic.com.evil.example', 'anthropic.com', 'www.api.anthropic.com']) {
    assert.ok(!declared(host), host);
  }
  assert.ok(declared('api.anthropic.com'));
  // Ports: 443 unless the entry lists others; another port says on which the host is declared.
  assert.deepEqual(matchEgress(list, 'api.anthropic.com', 80), { declared: false, hostDeclared: [443] });
  assert.ok(declared('10.1.2.3', 8080));
  assert.deepEqual(matchEgress(list, 'unknown.example', 443), { declared: false, hostDeclared: null });
  // An IP address is matched only by an entry naming it; a name never matches an address.
  assert.ok(!declared('10.1.2.4'));
  const byName = entries('  - host: localhost\n    ports: [443]\n  - host: "*.example.com"\n');
  for (const host of ['127.0.0.1', '::1', '93.184.215.14']) assert.ok(!matchEgress(byName, host, 443).declared, host);
  const v6 = entries('  - host: "[2001:db8::1]"\n');
  assert.ok(matchEgress(v6, '2001:db8::1', 443).declared);
  assert.ok(!matchEgress(v6, '2001:db8::2', 443).declared);
});

test('what cannot be declared fails the load with the file, the line and why', () => {
  const cases: [string, number, string][] = [
    ['  - host: "*"\n', 12, 'egress[0].host: "*" would declare every host: name the hosts a step needs'],
    ['  - host: api.anthropic.com\n  - host: "*.org"\n', 13, 'egress[1].host: "*.org" would declare every name under the top-level domain "org": name a domain under it'],
    ['  - host: "registry.*.org"\n', 12, 'egress[0].host: "registry.*.org" has a "*" that is not a leading "*.": only "*.domain" is a wildcard (every subdomain of domain)'],
    ['  - host: "10.1"\n', 12, 'egress[0].host: "10.1" ends in a number: it reads as an IPv4 address in a form other than four decimal numbers'],
    ['  - host: a.example\n    ports: [0]\n', 13, 'egress[0].ports[0]: 0 is out of range; use 1 to 65535'],
    ['  - host: a.example\n    ports: []\n', 13, 'egress[0].ports must not be an empty list'],
    ['  - host: a.example\n    ports: [443, 443]\n', 13, 'egress[0].ports lists 443 twice'],
    ['  - host: a.example\n    port: 443\n', 13, 'egress[0]: unknown key "port" (did you mean "ports"?)'],
  ];
  for (const [yaml, line, message] of cases) {
    assert.throws(() => entries(yaml), (e: Error) => {
      assert.equal(e.message, `${FILE}:${line}: ${message}`);
      return true;
    }, yaml);
  }
  assert.deepEqual(parsePolicy(BASE, FILE).egress, []);
});

test('a name never leads to loopback, unspecified, link-local, multicast or Azure platform addresses', async () => {
  for (const a of ['127.0.0.1', '127.53.0.9', '::1', '::ffff:127.0.0.1', '0.0.0.0', '::', '169.254.169.254', 'fe80::1', '224.0.0.1', '255.255.255.255', '168.63.129.16', '::10.0.0.1', 'fd00:ec2::254']) {
    assert.ok(specialAddress(a), a);
  }
  for (const a of ['8.8.8.8', '10.0.0.1', '192.168.1.1', '172.16.0.1', '140.82.112.3', '2001:4860:4860::8888', 'fd12::1', '::ffff:8.8.8.8']) {
    assert.equal(specialAddress(a), null, a);
  }
  const lookup = (answers: Record<string, string[]>) => async (host: string): Promise<string[]> => {
    const a = answers[host];
    if (!a) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return a;
  };
  const dns = lookup({ 'registry.example': ['203.0.113.7', '2001:db8::7'], 'rebind.example': ['203.0.113.8', '127.0.0.1'], 'metadata.example': ['169.254.169.254'] });
  assert.deepEqual(await resolveName('registry.example', dns), { addresses: ['203.0.113.7', '2001:db8::7'] });
  assert.deepEqual(await resolveName('rebind.example', dns), { refused: 'rebind.example resolves to 127.0.0.1, a loopback address: a name never leads there (declare the address itself to reach it)' });
  assert.match((await resolveName('metadata.example', dns) as { refused: string }).refused, /169\.254\.169\.254, a link-local address/);
  assert.deepEqual(await resolveName('nowhere.example', dns), { error: 'nowhere.example does not resolve (ENOTFOUND)' });
  // This machine's own interface addresses (eth0, a bridge), like loopback, are never a name's.
  const { networkInterfaces } = await import('node:os');
  const mine = Object.values(networkInterfaces()).flat().map((a) => a!.address).filter((a) => !a.startsWith('127.') && a !== '::1');
  for (const a of mine) assert.ok(specialAddress(a), a);
  const routable = mine.find((a) => !a.toLowerCase().startsWith('fe80'));
  if (routable) assert.match((await resolveName('own.example', lookup({ 'own.example': [routable] })) as { refused: string }).refused, /an address of this machine/);
  // The system resolver: localhost is this machine, so a name never reaches it.
  assert.match((await resolveName('localhost') as { refused: string }).refused, /^localhost resolves to (127\.0\.0\.1|::1), a loopback address/);
});

/** A TCP server that answers each connection with what it read, upper-cased, until the client ends. */
async function upperServer(): Promise<{ port: number; close(): void; connections: () => number }> {
  let connections = 0;
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    connections++;
    s.on('data', (d: Buffer) => s.write(d.toString().toUpperCase()));
    s.on('end', () => s.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as net.AddressInfo).port, close: () => server.close(), connections: () => connections };
}

/** A connected pair of sockets (the client's socket as the proxy holds it, and the client's end). */
async function socketPair(): Promise<{ held: net.Socket; client: net.Socket; close(): void }> {
  const server = net.createServer({ allowHalfOpen: true });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const held = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  return { held: await held, client, close: () => server.close() };
}

function readAll(s: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    s.on('data', (d: Buffer) => (out += d));
    s.on('close', () => resolve(out));
  });
}

test('the egress service: declared is recorded, then dialled and relayed both ways; undeclared is recorded denied and never dialled', async () => {
  const dir = tempDir('egress-unit-');
  const writer = SessionLogWriter.create(dir, 'egress.jsonl');
  assert.equal(new Egress([], new Recorder(writer, { sampleRows: 0 })).declared, false);
  const host = await upperServer();
  try {
    const service = new Egress(entries(`  - host: 127.0.0.1\n    ports: [${host.port}]\n  - host: localhost\n    ports: [${host.port}]\n`), new Recorder(writer, { sampleRows: 0 }));
    const base = { client: '127.0.0.1:50000', targets: ['management.azure.com:443'] };

    const pair = await socketPair();
    const answer = await service.connect({ ...base, host: '127.0.0.1', port: host.port });
    assert.ok('tunnel' in answer);
    const received = readAll(pair.client);
    answer.tunnel.relay(pair.held, Buffer.from('head:'));
    pair.client.end('hello through the tunnel');
    assert.equal(await received, 'HEAD:HELLO THROUGH THE TUNNEL');
    pair.close();

    const refused = await service.connect({ ...base, host: '127.0.0.1', port: host.port + 1 });
    assert.deepEqual(refused, { refused: {
      status: 403,
      message: `gateway: denied by rule "egress": 127.0.0.1 is declared egress on port ${host.port} only; it is not a target of this gateway either (targets: management.azure.com:443); nothing was sent`,
      reason: `Forbidden: 127.0.0.1:${host.port + 1} is not declared egress or a gateway target`,
    } });
    const undeclared = await service.connect({ ...base, host: 'example.com', port: 443 });
    assert.match(('refused' in undeclared ? undeclared.refused.message : ''), /example\.com:443 is not declared egress \(declared: 127\.0\.0\.1:\d+, localhost:\d+\)/);
    const ip = await service.connect({ ...base, host: '10.9.9.9', port: host.port });
    assert.match(('refused' in ip ? ip.refused.message : ''), /an IP address is reached only when an entry names it/);
    const local = await service.connect({ ...base, host: 'localhost', port: host.port });
    assert.match(('refused' in local ? local.refused.message : ''), /localhost resolves to .*, a loopback address: a name never leads there/);
    const plain = await service.refusePlain({ ...base, host: '127.0.0.1', port: host.port, method: 'POST' });
    assert.equal(plain.status, 403);
    assert.match(plain.message, /plain http:\/\/ is not relayed as egress/);
    assert.equal(host.connections(), 1, 'only the declared connection reached the host');

    // A tunnel still open when the gateway stops ends with what crossed it.
    const open = await socketPair();
    const second = await service.connect({ ...base, host: '127.0.0.1', port: host.port });
    assert.ok('tunnel' in second);
    const closedClient = readAll(open.client);
    second.tunnel.relay(open.held, Buffer.alloc(0));
    open.client.write('abc');
    await new Promise<void>((resolve) => open.client.once('data', () => resolve()));
    service.closeAll('the gateway is stopping');
    assert.equal(await closedClient, 'ABC');
    open.close();

    writer.close('run-end', {});
    const records = fs.readFileSync(path.join(dir, 'egress.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>);
    const commands = records.filter((r) => r.type === 'command');
    assert.deepEqual(commands.map((c) => [c.kind, c.text, c.target, c.decision.action, c.decision.rule]), [
      ['egress.connect', `CONNECT 127.0.0.1:${host.port}`, EGRESS_TARGET, 'allow', 'egress'],
      ['egress.connect', `CONNECT 127.0.0.1:${host.port + 1}`, EGRESS_TARGET, 'deny', 'egress'],
      ['egress.connect', 'CONNECT example.com:443', EGRESS_TARGET, 'deny', 'egress'],
      ['egress.connect', `CONNECT 10.9.9.9:${host.port}`, EGRESS_TARGET, 'deny', 'egress'],
      ['egress.connect', `CONNECT localhost:${host.port}`, EGRESS_TARGET, 'deny', 'egress'],
      ['egress.http', `POST http://127.0.0.1:${host.port}`, EGRESS_TARGET, 'deny', 'egress'],
      ['egress.connect', `CONNECT 127.0.0.1:${host.port}`, EGRESS_TARGET, 'allow', 'egress'],
    ]);
    const resultOf = (c: Record<string, any>): Record<string, any> => records.find((r) => r.type === 'result' && r.command === c.command)!;
    // Recorded before dialled: the command comes before anything of the host's answer.
    assert.deepEqual(resultOf(commands[0]!).details, { address: '127.0.0.1', bytes_to_host: 'head:hello through the tunnel'.length, bytes_to_client: 'head:hello through the tunnel'.length });
    assert.equal(resultOf(commands[0]!).status, 'ok');
    assert.equal(typeof resultOf(commands[0]!).duration_us, 'number');
    for (const c of commands.slice(1, 6)) assert.equal(resultOf(c).status, 'denied');
    assert.deepEqual(resultOf(commands[6]!).details, { address: '127.0.0.1', bytes_to_host: 3, bytes_to_client: 3 });
    const closes = records.filter((r) => r.type === 'session-close');
    assert.equal(closes.length, 7, 'one session per connection, each closed');
    assert.equal(closes.at(-1)!.reason, 'the gateway is stopping');
    assert.deepEqual([closes[0]!.totals.bytes_from_client, closes[0]!.totals.bytes_to_client], [29, 29]);

    // The evidence tools' renderer reads them.
    const t = await readTimeline(path.join(dir, 'egress.jsonl'));
    const shown = t.sessions.flatMap((s) => s.commands);
    assert.equal(egressRenderer.line(shown[0]!), `CONNECT 127.0.0.1:${host.port}`);
    assert.deepEqual(egressRenderer.notes(shown[0]!), ['reached 127.0.0.1', '29 bytes to host, 29 bytes to client']);
    assert.deepEqual(egressRenderer.notes({ ...shown[0]!, details: { host: 'registry.npmjs.org', entry: '*.npmjs.org' }, resultDetails: { address: '104.16.1.35', bytes_to_host: 1500, bytes_to_client: 2_345_678 } }),
      ['declared as *.npmjs.org', 'reached 104.16.1.35', '1.5 kB to host, 2.3 MB to client']);
  } finally {
    host.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('through the forward proxy with curl: a target\'s host keeps its interception even when declared as egress; a declared host is tunnelled with its own TLS', async () => {
  const dir = tempDir('egress-proxy-');
  const certs = await makeCertificates(dir, 'IP:127.0.0.1', 'egress unit host');
  const host = https.createServer({ key: fs.readFileSync(certs.keyFile), cert: fs.readFileSync(certs.certFile) }, (_req, res) => res.end('the real host\n'));
  await new Promise<void>((resolve) => host.listen(0, '127.0.0.1', resolve));
  const port = (host.address() as net.AddressInfo).port;
  const writer = SessionLogWriter.create(dir, 'proxy.jsonl');
  const egress = new Egress(entries(`  - host: management.azure.com\n  - host: 127.0.0.1\n    ports: [${port}]\n`), new Recorder(writer, { sampleRows: 0 }));
  const ca = await createRunCa('egress unit');
  const runCaFile = path.join(dir, 'run-ca.pem');
  fs.writeFileSync(runCaFile, ca.certPem);
  const proxy = new ForwardProxy({
    ca,
    route: (h, p, scheme) => (h === 'management.azure.com' && p === 443 && scheme === 'https' ? { target: 'arm' } : null),
    handle: (_req, res) => (res as http.ServerResponse).end('answered by the target handler\n'),
    targetAuthorities: ['management.azure.com:443'],
    egress,
  });
  const proxyUrl = `http://${await proxy.listen()}`;
  const curl = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => new Promise((resolve) => {
    execFile('curl', ['-sS', '--proxy', proxyUrl, ...args], { env: { PATH: process.env.PATH } },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }));
  });
  try {
    const target = await curl(['--cacert', runCaFile, 'https://management.azure.com/subscriptions']);
    assert.equal(target.stdout, 'answered by the target handler\n', target.stderr);
    const tunnelled = await curl(['--cacert', certs.caFile, `https://127.0.0.1:${port}/`]);
    assert.equal(tunnelled.stdout, 'the real host\n', tunnelled.stderr);
    const refused = await curl(['-v', '--cacert', certs.caFile, `https://127.0.0.1:${port + 1}/`]);
    assert.match(refused.stderr, /< HTTP\/1\.1 403 Forbidden: 127\.0\.0\.1:\d+ is not declared egress or a gateway target/);
    await proxy.close(1000);
    writer.close('run-end', {});
    const commands = fs.readFileSync(path.join(dir, 'proxy.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>).filter((r) => r.type === 'command');
    // The target's request is the target handler's to record: egress saw only the other two.
    assert.deepEqual(commands.map((c) => [c.text, c.decision.action]), [[`CONNECT 127.0.0.1:${port}`, 'allow'], [`CONNECT 127.0.0.1:${port + 1}`, 'deny']]);
  } finally {
    host.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
