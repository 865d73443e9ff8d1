// The extended query protocol through the gateway, driven by node-postgres (and, for a true
// pipeline, by a small raw-protocol client): results reach the client unchanged, and the log holds
// one command per Execute with its parameters and its own outcome.
//
// Each scenario first runs its clients (tests named "client: ..."), each scenario on its own
// application_name; the gateway is then stopped once and the tests named "log: ..." check what
// the sealed log recorded for those sessions.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import net from 'node:net';
import { parse, serialize } from 'pg-protocol';
import { appCluster, cli, policyFor, readLog, startGateway, type Cluster, type LogRecord, type RunningGateway } from '../helpers/gateway.ts';
import { newPgClient, type PgClient, type PgError, type QueryResult } from '../helpers/pg.ts';

// node-postgres ships no type declarations; this is the part of its API the tests use.

let cluster: Cluster;
let gw: RunningGateway;
let records: LogRecord[] = [];
let logPath = '';

before(async () => {
  cluster = await appCluster();
  gw = startGateway(policyFor(cluster));
});

after(() => {
  try {
    gw?.stop();
  } finally {
    cluster?.stop();
  }
});

// Every connection a test opened; a failed test's leftovers are closed before the gateway stops.
const open = new Set<{ end(): Promise<void> }>();

async function connect(applicationName: string): Promise<PgClient> {
  const client = newPgClient({ connectionString: gw.env.GATEWAY_APP_DB_URL!, application_name: applicationName });
  await client.connect();
  const end = client.end.bind(client);
  const tracked = { end: () => (open.delete(tracked), end()) };
  open.add(tracked);
  client.end = tracked.end;
  return client;
}

async function rejection(p: Promise<unknown>): Promise<PgError> {
  try {
    await p;
  } catch (e) {
    return e as PgError;
  }
  assert.fail('the query was expected to fail');
}

// ---- a minimal raw protocol client (SCRAM-SHA-256 login, then whatever bytes the test sends) ----

type Msg = { name: string; [k: string]: unknown };

class RawClient {
  private readonly socket: net.Socket;
  private readonly inbox: Msg[] = [];
  private wake: (() => void) | null = null;
  /** Every byte received after login. */
  readonly received: Buffer[] = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    void parse(socket, (m) => {
      this.inbox.push(m as unknown as Msg);
      this.wake?.();
    });
  }

  static async connect(env: Record<string, string>, applicationName: string): Promise<RawClient> {
    const socket = net.connect({ host: env.PGHOST, port: Number(env.PGPORT) });
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const c = new RawClient(socket);
    open.add(c);
    socket.write(serialize.startup({ user: env.PGUSER!, database: env.PGDATABASE!, application_name: applicationName }));
    const hmac = (key: Buffer, data: string): Buffer => createHmac('sha256', key).update(data).digest();
    const nonce = randomBytes(18).toString('base64');
    const clientFirstBare = `n=*,r=${nonce}`;
    let authMessage = '';
    let salted = Buffer.alloc(0);
    for (;;) {
      const m = await c.next();
      if (m.name === 'authenticationSASL') {
        assert.ok((m.mechanisms as string[]).includes('SCRAM-SHA-256'));
        socket.write(serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', `n,,${clientFirstBare}`));
      } else if (m.name === 'authenticationSASLContinue') {
        const serverFirst = m.data as string;
        const attrs = new Map(serverFirst.split(',').map((p) => [p[0]!, p.slice(2)] as const));
        assert.ok(attrs.get('r')!.startsWith(nonce));
        salted = pbkdf2Sync(env.PGPASSWORD!, Buffer.from(attrs.get('s')!, 'base64'), Number(attrs.get('i')), 32, 'sha256');
        const clientKey = hmac(salted, 'Client Key');
        const storedKey = createHash('sha256').update(clientKey).digest();
        const withoutProof = `c=biws,r=${attrs.get('r')}`;
        authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
        const signature = hmac(storedKey, authMessage);
        const proof = Buffer.from(clientKey.map((b, i) => b ^ signature[i]!));
        socket.write(serialize.sendSCRAMClientFinalMessage(`${withoutProof},p=${proof.toString('base64')}`));
      } else if (m.name === 'authenticationSASLFinal') {
        assert.equal(m.data, `v=${hmac(hmac(salted, 'Server Key'), authMessage).toString('base64')}`, 'the gateway proved it knows the password');
      } else if (m.name === 'error') {
        throw new Error(`login failed: ${String(m.message)}`);
      } else if (m.name === 'readyForQuery') {
        socket.on('data', (d: Buffer) => c.received.push(d));
        return c;
      }
    }
  }

  private async next(): Promise<Msg> {
    while (this.inbox.length === 0) {
      if (this.socket.destroyed) throw new Error('connection closed');
      await new Promise<void>((resolve, reject) => {
        const onClose = (): void => reject(new Error('connection closed'));
        this.socket.once('close', onClose);
        this.wake = () => (this.socket.off('close', onClose), resolve());
      });
      this.wake = null;
    }
    return this.inbox.shift()!;
  }

  /** Sends the messages in one write and returns every reply up to the next ReadyForQuery. */
  async roundTrip(messages: Buffer[]): Promise<Msg[]> {
    return this.until('readyForQuery', messages);
  }

  /** Sends the messages in one write and returns every reply up to the first named `last`. */
  async until(last: string, messages: Buffer[]): Promise<Msg[]> {
    this.socket.write(Buffer.concat(messages));
    const out: Msg[] = [];
    for (;;) {
      const m = await this.next();
      out.push(m);
      if (m.name === last) return out;
    }
  }

  async end(): Promise<void> {
    open.delete(this);
    if (this.socket.destroyed) return;
    this.socket.end(serialize.end());
    await new Promise<void>((resolve) => this.socket.once('close', () => resolve()));
  }
}

// ---- scenario data shared between the client phase and the log phase ----

const BIN = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
const BIG = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7919) % 251));
const TEXT = 'ünïcödé ☃ \'single\' "double" \\ back';
const CLIENTS = 50;
const QUERIES = 20;
const marker = (c: number, q: number): string => `c${c}-q${q}`;

// ---- client phase ----

test('client: text and binary parameters round-trip, and binary results decode', async () => {
  const client = await connect('e2e-params');
  const r = await client.query(
    "SELECT $1::bytea AS b, $1::bytea = decode($2::text, 'hex') AS same, $3::text AS t, $4::int + 1 AS n, $5::text IS NULL AS was_null, $6::bytea AS big, md5($6::bytea) AS big_md5",
    [BIN, BIN.toString('hex'), TEXT, 42, null, BIG],
  );
  const row = r.rows[0]!;
  assert.ok(Buffer.isBuffer(row.b) && row.b.equals(BIN), 'bytea parameter came back byte for byte');
  assert.equal(row.same, true, 'the server saw the binary parameter as the bytes sent');
  assert.equal(row.t, TEXT);
  assert.equal(row.n, 43);
  assert.equal(row.was_null, true);
  assert.ok(Buffer.isBuffer(row.big) && row.big.equals(BIG));
  assert.equal(row.big_md5, createHash('md5').update(BIG).digest('hex'));

  const bin = await client.query({ text: 'SELECT $1::int4 AS n, $2::bytea = $3::bytea AS same', values: [7, Buffer.from('00ff', 'hex'), '\\x00ff'], binary: true });
  assert.deepEqual(bin.rows, [{ n: 7, same: true }], 'binary-format results decode');
  await client.end();
});

test('client: a named prepared statement runs several times with different values', async () => {
  const client = await connect('e2e-prepared');
  for (let i = 1; i <= 5; i++) {
    const r = await client.query({ name: 'double_it', text: 'SELECT $1::int * 2 AS doubled, $2::text AS label', values: [i, `label-${i}`] });
    assert.deepEqual(r.rows, [{ doubled: i * 2, label: `label-${i}` }]);
    // An unnamed statement in between must not disturb the named one.
    assert.deepEqual((await client.query('SELECT $1::text AS other', [`between-${i}`])).rows, [{ other: `between-${i}` }]);
  }
  await client.end();
});

// Statements that fail with parameters, and where the server raises the error: while planning at
// Bind (constant folding with the parameter values), converting a parameter at Bind, parsing at
// Parse, or while executing.
const FAILING: { text: string; values: unknown[]; code: string }[] = [
  { text: 'SELECT $1::int / $2::int AS q', values: [1, 0], code: '22012' },
  { text: 'SELECT $1::int AS n', values: ['abc'], code: '22P02' },
  { text: 'SELEC $1::int AS n', values: [1], code: '42601' },
  { text: 'SELECT 10 / (i - $1::int) AS q FROM generate_series(1, 3) AS i', values: [2], code: '22012' },
];

test('client: errors in queries with parameters reach the client and the connection stays usable', async () => {
  const client = await connect('e2e-errors');
  for (const [i, f] of FAILING.entries()) {
    const err = await rejection(client.query(f.text, f.values));
    assert.equal(err.code, f.code, `${f.text} fails with ${f.code}: ${err.message}`);
    assert.equal(err.severity, 'ERROR');
    const r = await client.query('SELECT $1::text AS ok', [`usable-${i}`]);
    assert.deepEqual(r.rows, [{ ok: `usable-${i}` }]);
  }
  await client.end();
});

test(`client: ${CLIENTS} concurrent clients, ${QUERIES} queries each, each get their own answers`, async () => {
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, c) => {
      const client = await connect(`e2e-c${c}`);
      for (let q = 0; q < QUERIES; q++) {
        const m = marker(c, q);
        // node-postgres sends a query with values in the extended protocol, one without as Query.
        const r = q % 2 === 0 ? await client.query('SELECT $1::text AS marker', [m]) : await client.query(`SELECT '${m}' AS marker`);
        assert.deepEqual(r.rows, [{ marker: m }]);
      }
      await client.end();
    }),
  );
});

test('client: after an error the rest of a Query message is not run, and a queued query still succeeds', async () => {
  const client = await connect('e2e-pipeline');
  await client.query('CREATE TABLE pipeline_t (n int)');
  // Several statements in one Query message run as one implicit transaction: the error rolls back
  // the first INSERT and the third never runs.
  const err = await rejection(client.query('INSERT INTO pipeline_t VALUES (1); SELECT 1/0; INSERT INTO pipeline_t VALUES (3)'));
  assert.equal(err.code, '22012');
  assert.deepEqual((await client.query('SELECT count(*)::int AS n FROM pipeline_t')).rows, [{ n: 0 }]);

  // Two queries queued without waiting: the first fails while executing, the second succeeds.
  const first = client.query('SELECT 10 / (i - $1::int) AS q FROM generate_series(1, 3) AS i', [2]);
  const second = client.query('SELECT $1::text AS after', ['still fine']);
  const [a, b] = await Promise.allSettled([first, second]);
  assert.equal(a.status, 'rejected');
  assert.equal((a as PromiseRejectedResult).reason.code, '22012');
  assert.equal(b.status, 'fulfilled');
  assert.deepEqual((b as PromiseFulfilledResult<QueryResult>).value.rows, [{ after: 'still fine' }]);
  await client.end();
});

test('client: in a pipeline, messages after a failed Execute are discarded until Sync', async () => {
  const raw = await RawClient.connect(gw.env, 'e2e-raw-pipeline');
  const replies = await raw.roundTrip([
    serialize.parse({ text: 'SELECT 10 / (i - 2) AS q FROM generate_series(1, 3) AS i' }),
    serialize.bind({}),
    serialize.execute({}),
    serialize.parse({ text: "SELECT 'discarded' AS d" }),
    serialize.bind({}),
    serialize.execute({}),
    serialize.sync(),
  ]);
  assert.deepEqual(replies.map((m) => m.name), ['parseComplete', 'bindComplete', 'dataRow', 'error', 'readyForQuery']);
  assert.equal(replies[3]!.code, '22012');
  const again = await raw.roundTrip([serialize.parse({ text: "SELECT 'after sync' AS s" }), serialize.bind({}), serialize.execute({}), serialize.sync()]);
  assert.deepEqual(again.map((m) => m.name), ['parseComplete', 'bindComplete', 'dataRow', 'commandComplete', 'readyForQuery']);
  assert.deepEqual(again[2]!.fields, ['after sync']);
  await raw.end();
});

/** Each whole server message in the bytes: [type, the message's bytes]. */
function serverMessages(bytes: Buffer): [string, Buffer][] {
  const out: [string, Buffer][] = [];
  for (let at = 0; at + 5 <= bytes.length; ) {
    const end = at + 1 + bytes.readInt32BE(at + 1);
    out.push([String.fromCharCode(bytes[at]!), bytes.subarray(at, end)]);
    at = end;
  }
  return out;
}
/** The ErrorResponse each scenario's client received, for the log phase. */
const bindErrors = new Map<string, Buffer>();

test('client: an error raised at Bind, with the Execute sent with it or after the error arrived', async () => {
  for (const [appName, split] of [['e2e-bind-error', false], ['e2e-bind-error-later', true]] as const) {
    const raw = await RawClient.connect(gw.env, appName);
    const parse = serialize.parse({ text: 'SELECT $1::int AS n' });
    const bind = serialize.bind({ values: ['abc'] });
    const replies = split
      ? [...(await raw.until('error', [parse, bind, serialize.flush()])), ...(await raw.roundTrip([serialize.execute({}), serialize.sync()]))]
      : await raw.roundTrip([parse, bind, serialize.execute({}), serialize.sync()]);
    assert.deepEqual(replies.map((m) => m.name), ['parseComplete', 'error', 'readyForQuery']);
    assert.equal(replies[1]!.code, '22P02');
    const errors = serverMessages(Buffer.concat(raw.received)).filter(([t]) => t === 'E');
    assert.equal(errors.length, 1);
    bindErrors.set(appName, errors[0]![1]);
    await raw.end();
  }
});

// ---- log phase ----

describe('what the sealed log recorded', () => {
  before(async () => {
    await Promise.all([...open].map((c) => c.end().catch(() => undefined)));
    logPath = gw.stop();
    records = readLog(logPath);
  });

  function sessionsOf(applicationName: string): string[] {
    return records.filter((r) => r.type === 'session-open' && r.client?.application_name === applicationName).map((r) => r.session as string);
  }
  /** The commands of the one session opened with this application_name, each with its results. */
  function commandsOf(applicationName: string): { command: LogRecord; results: LogRecord[] }[] {
    const ids = sessionsOf(applicationName);
    assert.equal(ids.length, 1, `one session for ${applicationName}`);
    return records
      .filter((r) => r.type === 'command' && r.session === ids[0])
      .map((command) => ({ command, results: records.filter((r) => r.type === 'result' && r.command === command.command) }));
  }
  function onlyResult(c: { command: LogRecord; results: LogRecord[] }): LogRecord {
    assert.equal(c.results.length, 1, `exactly one result for ${c.command.command}`);
    return c.results[0]!;
  }

  test('log: parameters are recorded as sent, binary ones as hex (cut ones with their length)', () => {
    const cmds = commandsOf('e2e-params');
    assert.equal(cmds.length, 2);
    const [first, second] = cmds as [(typeof cmds)[0], (typeof cmds)[0]];
    assert.equal(first.command.details.protocol, 'extended');
    assert.match(first.command.text, /^SELECT \$1::bytea AS b/);
    assert.deepEqual(first.command.details.params, [
      { format: 'binary', hex: BIN.toString('hex') },
      BIN.toString('hex'),
      TEXT,
      '42',
      null,
      { format: 'binary', hex: BIG.subarray(0, 512).toString('hex'), bytes: BIG.length },
    ]);
    const r1 = onlyResult(first);
    assert.equal(r1.status, 'ok');
    assert.equal(r1.count, 1);
    assert.deepEqual(r1.response.sample[0].slice(0, 5), [`\\x${BIN.toString('hex')}`, 't', TEXT, '43', 't']);

    assert.deepEqual(second.command.details.params, ['7', { format: 'binary', hex: '00ff' }, '\\x00ff']);
    const r2 = onlyResult(second);
    assert.equal(r2.status, 'ok');
    assert.deepEqual(r2.response.sample, [[{ format: 'binary', hex: '00000007' }, { format: 'binary', hex: '01' }]], 'binary results are sampled as hex');
  });

  test('log: each execution of a named prepared statement is its own command with its own values', () => {
    const cmds = commandsOf('e2e-prepared');
    const named = cmds.filter((c) => c.command.text === 'SELECT $1::int * 2 AS doubled, $2::text AS label');
    assert.equal(named.length, 5);
    assert.equal(cmds.length, 10);
    named.forEach((c, i) => {
      assert.equal(c.command.details.protocol, 'extended');
      assert.deepEqual(c.command.details.params, [String(i + 1), `label-${i + 1}`]);
      const r = onlyResult(c);
      assert.equal(r.status, 'ok');
      assert.deepEqual(r.response.sample, [[String((i + 1) * 2), `label-${i + 1}`]]);
    });
    assert.equal(new Set(cmds.map((c) => c.command.command)).size, 10, 'distinct command ids');
  });

  test('log: a failed query with parameters is recorded as an error with the server\'s SQLSTATE', () => {
    const cmds = commandsOf('e2e-errors');
    assert.equal(cmds.length, FAILING.length * 2);
    const actual = FAILING.map((_, i) => {
      const c = cmds[i * 2]!;
      const r = onlyResult(c);
      return { text: c.command.text, params: c.command.details.params, status: r.status, code: r.error?.code };
    });
    const expected = FAILING.map((f) => ({ text: f.text, params: f.values.map(String), status: 'error', code: f.code }));
    assert.deepEqual(actual, expected);
    FAILING.forEach((_, i) => assert.equal(onlyResult(cmds[i * 2 + 1]!).status, 'ok', 'the query after the error succeeded'));
    const close = records.find((r) => r.type === 'session-close' && r.session === cmds[0]!.command.session);
    assert.equal(close?.totals.errors, FAILING.length);
  });

  test('log: every concurrent query is recorded once, in its own session, with its own answer', () => {
    const sessionOfClient = new Map<string, number>();
    for (let c = 0; c < CLIENTS; c++) {
      const ids = sessionsOf(`e2e-c${c}`);
      assert.equal(ids.length, 1, `client ${c} had one session`);
      sessionOfClient.set(ids[0]!, c);
    }
    const commands = records.filter((r) => r.type === 'command' && sessionOfClient.has(r.session));
    assert.equal(commands.length, CLIENTS * QUERIES, 'total command count');
    const results = new Map<string, LogRecord[]>();
    for (const r of records) if (r.type === 'result' && sessionOfClient.has(r.session)) results.set(r.command, [...(results.get(r.command) ?? []), r]);

    const seen = new Map<string, LogRecord[]>();
    for (const cmd of commands) {
      let m: string | undefined;
      if (cmd.details.protocol === 'extended') {
        assert.equal(cmd.text, 'SELECT $1::text AS marker');
        m = cmd.details.params?.[0];
      } else {
        m = /^SELECT '([^']+)' AS marker$/.exec(cmd.text)?.[1];
      }
      assert.ok(m, `command ${cmd.command} carries a marker`);
      seen.set(m, [...(seen.get(m) ?? []), cmd]);
    }
    for (let c = 0; c < CLIENTS; c++) {
      for (let q = 0; q < QUERIES; q++) {
        const m = marker(c, q);
        const cmds = seen.get(m) ?? [];
        assert.equal(cmds.length, 1, `marker ${m} is in exactly one command`);
        const cmd = cmds[0]!;
        assert.equal(cmd.details.protocol, q % 2 === 0 ? 'extended' : 'simple');
        assert.equal(sessionOfClient.get(cmd.session), c, `marker ${m} is in client ${c}'s session`);
        const rs = results.get(cmd.command) ?? [];
        assert.equal(rs.length, 1, `one result for ${m}`);
        assert.equal(rs[0]!.status, 'ok');
        assert.equal(rs[0]!.count, 1);
        assert.deepEqual(rs[0]!.response.sample, [[m]], `the answer recorded for ${m} is its own`);
      }
    }
    assert.equal(seen.size, CLIENTS * QUERIES);
  });

  test('log: a Query message stopped by an error, and a queued query after a failed one', () => {
    const cmds = commandsOf('e2e-pipeline');
    assert.equal(cmds.length, 5);
    const multi = cmds[1]!;
    assert.equal(multi.command.text, 'INSERT INTO pipeline_t VALUES (1); SELECT 1/0; INSERT INTO pipeline_t VALUES (3)');
    assert.equal(multi.command.details.protocol, 'simple');
    const mr = onlyResult(multi);
    assert.equal(mr.status, 'error');
    assert.equal(mr.error.code, '22012');
    assert.deepEqual(mr.details.tags, ['INSERT 0 1'], 'only the statement before the error completed');
    assert.deepEqual(onlyResult(cmds[2]!).response.sample, [['0']]);

    const failed = onlyResult(cmds[3]!);
    assert.equal(cmds[3]!.command.details.protocol, 'extended');
    assert.equal(failed.status, 'error');
    assert.equal(failed.error.code, '22012');
    assert.equal(failed.count, 1, 'the row sent before the error is counted');
    const queued = onlyResult(cmds[4]!);
    assert.equal(queued.status, 'ok');
    assert.deepEqual(cmds[4]!.command.details.params, ['still fine']);
    assert.deepEqual(queued.response.sample, [['still fine']]);
  });

  test('log: an error raised at Bind is the Execute\'s error, with the error\'s bytes as its response', () => {
    for (const appName of ['e2e-bind-error', 'e2e-bind-error-later']) {
      const cmds = commandsOf(appName);
      assert.equal(cmds.length, 1, appName);
      assert.equal(cmds[0]!.command.text, 'SELECT $1::int AS n');
      const r = onlyResult(cmds[0]!);
      assert.equal(r.status, 'error', appName);
      assert.equal(r.error.code, '22P02');
      const bytes = bindErrors.get(appName)!;
      assert.deepEqual(r.response && { bytes: r.response.bytes, sha256: r.response.sha256 }, { bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') }, `${appName}: the response is the ErrorResponse the client received`);
    }
  });

  test('log: in a raw pipeline the failed Execute is an error and the discarded one is skipped', () => {
    const cmds = commandsOf('e2e-raw-pipeline');
    assert.deepEqual(cmds.map((c) => c.command.text), ['SELECT 10 / (i - 2) AS q FROM generate_series(1, 3) AS i', "SELECT 'discarded' AS d", "SELECT 'after sync' AS s"]);
    const [failed, discarded, afterSync] = cmds.map(onlyResult) as [LogRecord, LogRecord, LogRecord];
    assert.equal(failed.status, 'error');
    assert.equal(failed.error.code, '22012');
    assert.equal(discarded.status, 'skipped');
    assert.equal(discarded.response, undefined, 'nothing was sent for the discarded command');
    assert.equal(afterSync.status, 'ok');
    assert.deepEqual(afterSync.response.sample, [['after sync']]);
    const close = records.find((r) => r.type === 'session-close' && r.session === cmds[0]!.command.session);
    assert.deepEqual({ commands: close?.totals.commands, errors: close?.totals.errors, skipped: close?.totals.skipped }, { commands: 3, errors: 1, skipped: 1 });
  });

  test('log: the log verifies and is sealed', () => {
    const r = cli(['verify', logPath]);
    assert.equal(r.status, 0, r.stderr);
  });
});
