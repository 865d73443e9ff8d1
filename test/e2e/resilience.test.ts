// Robustness of the gateway against the things that go wrong around it: clients that cancel or send
// garbage, an upstream that drops or crashes mid-query, TLS/GSS negotiation, and a graceful stop
// while a command is running. Everything runs against a real PostgreSQL and the real daemon.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {
  appCluster, cli, cliAsync, policyFor, psql, psqlAsync, readLog, startGateway, tempDir, waitFor,
  type Cluster, type LogRecord, type RunningGateway,
} from '../helpers/gateway.ts';
import { newPgClient, type PgClient, type PgError } from '../helpers/pg.ts';


interface Connected {
  client: PgClient;
  /** Errors the client emitted outside of a query (e.g. a FATAL while idle). */
  errors: PgError[];
  /** Resolves when the connection has ended. */
  ended: Promise<void>;
  /** The client's local TCP port, which the session-open record names. */
  port: number;
}

let cluster: Cluster;
let gw: RunningGateway;
const opened: Connected[] = [];

before(async () => {
  cluster = await appCluster();
  gw = startGateway(policyFor(cluster));
});

after(async () => {
  for (const c of opened) await c.client.end().catch(() => undefined);
  try {
    gw?.stop();
  } finally {
    cluster?.stop();
  }
});

async function connect(env: Record<string, string>): Promise<Connected> {
  const client = newPgClient(env);
  const errors: PgError[] = [];
  client.on('error', (e) => errors.push(e));
  const ended = new Promise<void>((resolve) => client.on('end', resolve));
  await client.connect();
  const c = { client, errors, ended, port: client.connection.stream.localPort! };
  opened.push(c);
  return c;
}

async function selectOne(c: Connected, tag: string): Promise<void> {
  const r = await c.client.query('SELECT $1::text AS tag', [tag]);
  assert.deepEqual(r.rows, [{ tag }]);
}

/** The pid of the upstream backend running exactly this statement, once it runs. */
function runningBackend(text: string): number | null {
  const out = cluster.sql(`SELECT pid FROM pg_stat_activity WHERE state = 'active' AND query = $q$${text}$q$`).trim();
  return out ? Number(out.split('\n')[0]) : null;
}

function sessionOfPort(log: LogRecord[], port: number): string {
  const open = log.find((r) => r.type === 'session-open' && r.client?.port === port);
  assert.ok(open, `a session-open record for the client on port ${port}`);
  return open.session as string;
}

function commandWithText(log: LogRecord[], text: string): LogRecord {
  const cmd = log.find((r) => r.type === 'command' && r.text === text);
  assert.ok(cmd, `a command record with text ${JSON.stringify(text)}`);
  return cmd;
}

/** Waits until the daemon has logged the result of the command with this text. */
async function resultOf(text: string): Promise<{ log: LogRecord[]; cmd: LogRecord; result: LogRecord }> {
  const found = await waitFor(() => {
    const log = readLog(gw.logPath());
    const cmd = log.find((r) => r.type === 'command' && r.text === text);
    const result = cmd && log.find((r) => r.type === 'result' && r.command === cmd.command);
    return cmd && result ? { log, cmd, result } : null;
  }, `the result record of ${text}`);
  return found!;
}

/** Sends raw bytes to the gateway's listener and collects everything it answers until it closes. */
function rawExchange(bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = net.connect({ host: gw.env.PGHOST, port: Number(gw.env.PGPORT) }, () => s.write(bytes));
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', reject);
    s.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

/** Fields of an ErrorResponse message, by their one-letter codes. */
function errorFields(msg: Buffer): Record<string, string> {
  assert.equal(String.fromCharCode(msg[0]!), 'E', `an ErrorResponse, got ${JSON.stringify(msg.toString('latin1'))}`);
  const len = msg.readInt32BE(1);
  assert.equal(msg.length, 1 + len, 'exactly one ErrorResponse, then the connection closes');
  const fields: Record<string, string> = {};
  let pos = 5;
  while (msg[pos] !== 0) {
    const code = String.fromCharCode(msg[pos]!);
    const end = msg.indexOf(0, pos + 1);
    fields[code] = msg.toString('utf8', pos + 1, end);
    pos = end + 1;
  }
  return fields;
}

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}

function startupMessage(params: Record<string, string>): Buffer {
  const body = Buffer.concat([int32(196608), ...Object.entries(params).map(([k, v]) => Buffer.from(`${k}\0${v}\0`)), Buffer.from([0])]);
  return Buffer.concat([int32(body.length + 4), body]);
}

test('a psql cancel (Ctrl-C) reaches the server through the gateway and is recorded', { timeout: 60_000 }, async () => {
  const text = 'SELECT pg_sleep(30) /* cancel me */';
  const p = psqlAsync(gw.env, ['-c', text]);
  await waitFor(() => runningBackend(text), 'the sleep to run upstream');
  p.child.kill('SIGINT');
  const r = await p.done;
  assert.match(r.stderr, /canceling statement due to user request/);
  assert.equal(r.status, 1, 'psql reports the failed command');

  const { log, cmd, result } = await resultOf(text);
  const cancel = log.find((x) => x.type === 'cancel-request' && x.session === cmd.session);
  assert.ok(cancel, 'a cancel-request record for the session');
  assert.equal(cancel.forwarded, true);
  assert.ok(cancel.seq < result.seq, 'the cancel is recorded before the outcome it caused');
  assert.equal(result.status, 'error');
  assert.equal(result.error.code, '57014');
});

test('a backend terminated by an administrator: the client gets the server FATAL, other sessions go on', { timeout: 60_000 }, async () => {
  const bystander = await connect(gw.env);
  await selectOne(bystander, 'before');

  const text = 'SELECT pg_sleep(30) /* terminate me */';
  const victim = await connect(gw.env);
  const running = victim.client.query(text).then(() => null, (e: PgError) => e);
  const pid = await waitFor(() => runningBackend(text), 'the sleep to run upstream');
  assert.equal(cluster.sql(`SELECT pg_terminate_backend(${pid})`).trim(), 't');

  const err = await running;
  assert.ok(err, 'the query fails');
  assert.equal(err.code, '57P01');
  assert.equal(err.severity, 'FATAL');
  assert.match(err.message, /terminating connection due to administrator command/);
  await victim.ended;

  await selectOne(bystander, 'after');
  const { log, cmd, result } = await resultOf(text);
  assert.equal(sessionOfPort(log, victim.port), cmd.session);
  const close = (await waitFor(() => readLog(gw.logPath()).find((x) => x.type === 'session-close' && x.session === cmd.session), 'the session-close record'))!;
  assert.ok(close.seq > result.seq, 'the session is closed after the failed command');
  const fresh = psql(gw.env, ['-tA', '-c', "SELECT 'new session'"]);
  assert.equal(fresh.status, 0, fresh.stderr);
  assert.equal(fresh.stdout.trim(), 'new session');

  // The log records the error the client actually received from the server.
  assert.equal(result.status, 'error');
  assert.deepEqual(result.error, { severity: 'FATAL', code: '57P01', message: 'terminating connection due to administrator command' });
});

test('a backend killed with SIGKILL: the client gets an error, the gateway serves again once the server recovers', { timeout: 90_000 }, async () => {
  const text = 'SELECT pg_sleep(30) /* kill -9 me */';
  const victim = await connect(gw.env);
  const running = victim.client.query(text).then(() => null, (e: PgError) => e);
  const pid = await waitFor(() => runningBackend(text), 'the sleep to run upstream');
  process.kill(pid!, 'SIGKILL');

  const err = await running;
  assert.ok(err, 'the query fails instead of hanging');
  assert.equal(err.code, '08006');
  assert.match(err.message, /connection to upstream app-db was lost/);
  await victim.ended;

  const { result } = await resultOf(text);
  assert.equal(result.status, 'error');
  assert.equal(result.error.code, err.code);
  assert.equal(result.error.message, err.message);

  // The postmaster restarts every backend; new sessions through the same gateway work again.
  const ok = await waitFor(() => {
    const r = psql(gw.env, ['-tA', '-c', "SELECT 'recovered'"]);
    return r.status === 0 ? r : null;
  }, 'a session through the gateway after crash recovery', 60_000);
  assert.equal(ok!.stdout.trim(), 'recovered');
  const still = await connect(gw.env);
  await selectOne(still, 'after recovery');
});

test('a malformed first packet is answered as PostgreSQL answers it: silence for a bad length, FATAL for a bad layout; recorded', { timeout: 60_000 }, async () => {
  const bystander = await connect(gw.env);
  await selectOne(bystander, 'before garbage');

  const http = Buffer.from('GET / HTTP/1.1\r\n\r\n');
  const random = randomBytes(64);
  random[0] = random[0]! | 0x80; // a negative length: never mistaken for a startup packet
  const terminate = Buffer.from([0x58, 0, 0, 0, 4]); // a Terminate message before any startup packet
  // The server closes these without a word (postmaster.c logs "invalid length of startup packet").
  for (const bytes of [http, random, terminate, Buffer.concat([int32(12), int32(80877102), int32(1)])]) {
    const reply = await rawExchange(bytes);
    assert.equal(reply.length, 0, `no reply to ${JSON.stringify(bytes.toString('latin1'))}, got ${JSON.stringify(reply.toString('latin1'))}`);
  }
  // Well framed, but no protocol version the server speaks, or no terminator: a FATAL, as the server sends.
  const noTerminator = Buffer.concat([int32(16), int32(196608), Buffer.from('user\0bob')]);
  for (const c of [
    { bytes: Buffer.concat([int32(8), int32(0x12345678)]), code: '0A000', message: 'unsupported frontend protocol 4660.22136: server supports 3.0' },
    { bytes: noTerminator, code: '08P01', message: 'malformed startup packet: unterminated string' },
  ]) {
    const f = errorFields(await rawExchange(c.bytes));
    assert.equal(f.S, 'FATAL');
    assert.equal(f.C, c.code);
    assert.equal(f.M, `gateway: ${c.message}`);
  }

  for (const message of [`invalid startup packet length ${http.readInt32BE(0)}`, `invalid startup packet length ${terminate.readInt32BE(0)}`, 'unsupported frontend protocol 4660.22136: server supports 3.0']) {
    const rec = (await waitFor(() => readLog(gw.logPath()).find((r) => r.type === 'protocol-error' && r.message === message), `a protocol-error record: ${message}`))!;
    assert.equal(rec.peer, 'client');
    assert.equal(rec.target, 'app-db');
  }

  await selectOne(bystander, 'after garbage');
  const fresh = await connect(gw.env);
  await selectOne(fresh, 'new session after garbage');
});

test('node-postgres connect() then end() at once (a Terminate before the startup packet) ends quietly', { timeout: 60_000 }, async () => {
  for (let i = 0; i < 5; i++) {
    const client = newPgClient(gw.env);
    const errors: Error[] = [];
    client.on('error', (e) => errors.push(e));
    const connecting = client.connect().then(() => 'connected', (e: Error) => e.message);
    const closed = new Promise((resolve) => client.connection.stream.once('close', resolve));
    // (end()'s promise waits for an event node-postgres never emits here, against the server too.)
    void client.end();
    await closed;
    const outcome = await Promise.race([connecting, new Promise((r) => setImmediate(r, 'pending'))]);
    assert.deepEqual(errors, [], `no error event (a server error here is thrown out of the client): ${errors.map((e) => e.message).join('; ')}`);
    assert.doesNotMatch(String(outcome), /invalid startup packet|FATAL|08P01/);
  }
});

test('a malformed message after login ends only that session, with a protocol error recorded', { timeout: 60_000 }, async () => {
  const bystander = await connect(gw.env);
  await bystander.client.query('BEGIN');
  const xact = (await bystander.client.query('SELECT pg_current_xact_id()::text AS x')).rows[0]!.x;

  const frames = [
    { bytes: Buffer.from([0x51, 0, 0, 0, 2]), message: "invalid message length 2 for message type 'Q' from client" },
    { bytes: Buffer.from([0x01, 0, 0, 0, 8, 0, 0, 0, 0]), message: 'invalid message type 0x01 from client' },
  ];
  for (const frame of frames) {
    const victim = await connect(gw.env);
    await selectOne(victim, 'victim before');
    victim.client.connection.stream.write(frame.bytes);
    await victim.ended;
    const fatal = victim.errors.find((e) => e.code !== undefined);
    assert.ok(fatal, `the client receives an error: ${victim.errors.map((e) => e.message).join('; ')}`);
    assert.equal(fatal.code, '08P01');
    assert.equal(fatal.severity, 'FATAL');
    assert.equal(fatal.message, `gateway: protocol error: ${frame.message}`);
    await assert.rejects(victim.client.query('SELECT 1'));

    const log = (await waitFor(() => {
      const l = readLog(gw.logPath());
      const s = sessionOfPort(l, victim.port);
      return l.some((r) => r.type === 'session-close' && r.session === s) ? l : null;
    }, 'the victim session to be closed in the log'))!;
    const session = sessionOfPort(log, victim.port);
    const perr = log.find((r) => r.type === 'protocol-error' && r.session === session);
    assert.ok(perr, 'a protocol-error record for the session');
    assert.equal(perr.peer, 'client');
    assert.equal(perr.message, frame.message);
  }

  // The other session, mid-transaction the whole time, is untouched.
  const still = await bystander.client.query('SELECT pg_current_xact_id()::text AS x');
  assert.deepEqual(still.rows, [{ x: xact }], 'still inside the transaction begun before');
  await bystander.client.query('COMMIT');
  assert.equal(bystander.errors.length, 0);
});

test('an oversized message ends the session with an error naming the limit; the daemon keeps serving', { timeout: 60_000 }, async () => {
  const bystander = await connect(gw.env);
  const victim = await connect(gw.env);
  await selectOne(victim, 'victim before');
  const declared = 200 * 1024 * 1024;
  victim.client.connection.stream.write(Buffer.concat([Buffer.from('Q'), int32(declared), Buffer.from('SELECT ')]));
  await victim.ended;
  const fatal = victim.errors.find((e) => e.code !== undefined);
  assert.ok(fatal, `the client receives an error: ${victim.errors.map((e) => e.message).join('; ')}`);
  assert.equal(fatal.code, '54000');
  assert.match(fatal.message, new RegExp(`message type 'Q' from client is ${declared - 4} bytes, over the limit of ${64 * 1024 * 1024}`));

  // psql sends the whole query before it reads: it still gets the FATAL, not a lost connection.
  const file = path.join(tempDir(), 'big.sql');
  fs.writeFileSync(file, `SELECT length('${'x'.repeat(65 * 1024 * 1024)}');\n`);
  const big = psql(gw.env, ['-f', file]);
  fs.rmSync(file);
  assert.notEqual(big.status, 0);
  assert.match(big.stderr, /FATAL: {2}gateway: protocol error: message type 'Q' from client is \d+ bytes, over the limit of 67108864/);

  assert.doesNotThrow(() => process.kill(gw.pid, 0), 'the daemon is still running');
  await selectOne(bystander, 'bystander after');
  const fresh = await connect(gw.env);
  await selectOne(fresh, 'new session after the oversized message');

  const session = sessionOfPort(readLog(gw.logPath()), victim.port);
  const perr = (await waitFor(() => readLog(gw.logPath()).find((r) => r.type === 'protocol-error' && r.session === session), 'a protocol-error record for the session'))!;
  assert.equal(perr.peer, 'client');
  assert.match(perr.message, /over the limit/);
});

test('SSL and GSS encryption requests are declined and the login continues in the clear', { timeout: 60_000 }, async () => {
  const prefer = psql({ ...gw.env, PGSSLMODE: 'prefer' }, ['-tA', '-c', "SELECT 'ssl prefer'"]);
  assert.equal(prefer.status, 0, prefer.stderr);
  assert.equal(prefer.stdout.trim(), 'ssl prefer');

  const require_ = psql({ ...gw.env, PGSSLMODE: 'require' }, ['-tA', '-c', 'SELECT 1']);
  assert.notEqual(require_.status, 0);
  assert.match(require_.stderr, /server does not support SSL, but SSL was required/);

  const gss = psql({ ...gw.env, PGSSLMODE: 'prefer', PGGSSENCMODE: 'prefer' }, ['-tA', '-c', "SELECT 'gss prefer'"]);
  assert.equal(gss.status, 0, gss.stderr);
  assert.equal(gss.stdout.trim(), 'gss prefer');

  // On the wire: GSSENCRequest and SSLRequest each get 'N', and the same connection then logs in.
  const s = net.connect({ host: gw.env.PGHOST, port: Number(gw.env.PGPORT) });
  const received: Buffer[] = [];
  let waiting: (() => void) | null = null;
  s.on('data', (d: Buffer) => (received.push(d), waiting?.()));
  const next = async (n: number): Promise<Buffer> => {
    while (Buffer.concat(received).length < n) await new Promise<void>((r) => (waiting = r));
    const all = Buffer.concat(received);
    received.length = 0;
    if (all.length > n) received.push(all.subarray(n));
    return all.subarray(0, n);
  };
  await new Promise<void>((r) => s.once('connect', r));
  s.write(Buffer.concat([int32(8), int32(80877104)]));
  assert.equal((await next(1)).toString(), 'N', 'GSSENCRequest declined');
  s.write(Buffer.concat([int32(8), int32(80877103)]));
  assert.equal((await next(1)).toString(), 'N', 'SSLRequest declined');
  s.write(startupMessage({ user: gw.env.PGUSER!, database: gw.env.PGDATABASE! }));
  const header = await next(5);
  assert.equal(String.fromCharCode(header[0]!), 'R', 'an authentication request follows');
  const body = await next(header.readInt32BE(1) - 4);
  assert.equal(body.readInt32BE(0), 10, 'AuthenticationSASL');
  assert.match(body.toString('latin1', 4), /SCRAM-SHA-256/);
  s.destroy();
});

test('a graceful stop lets the command in flight finish, then seals the log', { timeout: 90_000 }, async () => {
  const gw2 = startGateway(policyFor(cluster));
  const text = "SELECT pg_sleep(2), 'done' /* in flight at stop */";
  const p = psqlAsync(gw2.env, ['-tA', '-c', text]);
  await waitFor(() => runningBackend(text), 'the command to run upstream');

  const stopped = cliAsync(['stop', '--state-dir', gw2.stateDir]);

  const r = await p.done;
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /\|done/);
  const stop = await stopped;
  assert.equal(stop.status, 0, stop.stderr);
  const logPath = stop.stdout.trim();
  assert.equal(logPath, gw2.logPath());

  const v = cli(['verify', logPath]);
  assert.equal(v.status, 0, v.stderr);
  assert.match(v.stdout, /VALID: hash chain intact, \d+ checkpoints? signed, sealed/);

  const log = readLog(logPath);
  const cmd = commandWithText(log, text);
  const result = log.find((x) => x.type === 'result' && x.command === cmd.command);
  assert.ok(result, 'the in-flight command has a result record');
  assert.equal(result.status, 'ok');
  assert.deepEqual(result.details.tags, ['SELECT 1']);
  const close = log.find((x) => x.type === 'session-close' && x.session === cmd.session);
  assert.ok(close && close.seq > result.seq, 'the session closes after the command finished');
  assert.equal(log.at(-2)!.type, 'run-end');
  assert.equal(log.at(-1)!.seal, true, 'the seal follows run-end');
});

test('a graceful stop closes idle sessions with a shutdown error, then seals the log', { timeout: 90_000 }, async () => {
  const gw3 = startGateway(policyFor(cluster));
  const idle = await connect(gw3.env);
  await selectOne(idle, 'idle from now on');

  const stopped = cliAsync(['stop', '--state-dir', gw3.stateDir]);
  let told: PgError | undefined;
  try {
    told = await waitFor(() => idle.errors.find((e) => e.code !== undefined), 'the idle session to be told that the gateway is shutting down');
  } finally {
    // Whatever happened, let the stop finish so no daemon outlives the test.
    await idle.client.end().catch(() => undefined);
    await stopped;
  }
  assert.equal(told!.code, '57P01');
  assert.equal(told!.severity, 'FATAL');
  assert.equal(told!.message, 'terminating connection because the gateway is shutting down');
  await idle.ended;

  const stop = await stopped;
  assert.equal(stop.status, 0, stop.stderr);
  const logPath = stop.stdout.trim();
  const v = cli(['verify', logPath]);
  assert.equal(v.status, 0, v.stderr);
  const log = readLog(logPath);
  const session = sessionOfPort(log, idle.port);
  const close = log.find((x) => x.type === 'session-close' && x.session === session);
  assert.ok(close, 'the idle session is closed in the log');
  assert.equal(close.reason, 'gateway shutdown');
});
