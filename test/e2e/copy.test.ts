// COPY through the gateway with psql: large payloads both ways arrive unchanged, the log's input
// and response digests describe them, and a COPY that fails leaves the session usable.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { parse, serialize } from 'pg-protocol';
import { appCluster, cli, directEnv, policyFor, psql, readLog, startGateway, tempDir, type Cluster, type LogRecord, type RunningGateway } from '../helpers/gateway.ts';

let cluster: Cluster;
let gw: RunningGateway;
let dir: string;
let records: LogRecord[] | null = null;

before(async () => {
  cluster = await appCluster();
  gw = startGateway(policyFor(cluster));
  dir = tempDir('gw-copy-');
});

after(() => {
  try {
    gw?.stop();
  } finally {
    cluster?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** The sealed log, read once after every test that produces traffic has run. */
function log(): LogRecord[] {
  records ??= readLog(gw.stop());
  return records;
}

interface Run { status: number | null; bytes: number; sha256: string; stdout: string; stderr: string }

/** Runs psql asynchronously, hashing its stdout as it streams (keeping only its first 4 KiB). */
function psqlStream(env: Record<string, string>, args: string[], stdinFile?: string): Promise<Run> {
  const stdin = stdinFile ? fs.openSync(stdinFile, 'r') : 'ignore';
  const child = spawn('psql', ['-X', ...args], { env: { ...process.env, ...env, PGAPPNAME: 'psql' }, stdio: [stdin, 'pipe', 'pipe'] });
  if (typeof stdin === 'number') fs.closeSync(stdin);
  const hash = createHash('sha256');
  let bytes = 0;
  let head = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => {
    hash.update(d);
    bytes += d.length;
    if (head.length < 4096) head += d.toString('utf8');
  });
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, bytes, sha256: hash.digest('hex'), stdout: head, stderr }));
  });
}

function commandResult(pattern: RegExp): { command: LogRecord; result: LogRecord } {
  const records = log();
  const commands = records.filter((r) => r.type === 'command' && pattern.test(r.text));
  assert.equal(commands.length, 1, `exactly one command matches ${pattern}`);
  const results = records.filter((r) => r.type === 'result' && r.command === commands[0]!.command);
  assert.equal(results.length, 1, `exactly one result for ${commands[0]!.command}`);
  return { command: commands[0]!, result: results[0]! };
}

// A minimal raw protocol client: psql decides itself how much COPY data it sends once the server
// has failed the COPY; this client sends exactly what the test gives it.
type Msg = { name: string; [k: string]: unknown };
async function rawSession(env: Record<string, string>): Promise<{ send(b: Buffer[]): void; until(name: string): Promise<Msg[]>; end(): void }> {
  const socket = net.connect({ host: env.PGHOST, port: Number(env.PGPORT) });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const inbox: Msg[] = [];
  let wake: (() => void) | null = null;
  void parse(socket, (m) => {
    inbox.push(m as unknown as Msg);
    wake?.();
  });
  /** Replies up to and including the next message called `name`; during login an error throws. */
  const until = async (name: string, login = false): Promise<Msg[]> => {
    const out: Msg[] = [];
    for (;;) {
      while (inbox.length === 0) {
        if (socket.destroyed) throw new Error('connection closed');
        await new Promise<void>((resolve, reject) => {
          const onClose = (): void => reject(new Error('connection closed'));
          socket.once('close', onClose);
          wake = () => (socket.off('close', onClose), resolve());
        });
      }
      const m = inbox.shift()!;
      out.push(m);
      if (login && m.name === 'error') throw new Error(`login failed: ${String(m.message)}`);
      if (m.name === name) return out;
    }
  };
  const hmac = (key: Buffer, data: string): Buffer => createHmac('sha256', key).update(data).digest();
  const clientFirstBare = `n=*,r=${randomBytes(18).toString('base64')}`;
  socket.write(serialize.startup({ user: env.PGUSER!, database: env.PGDATABASE!, application_name: 'raw-copy' }));
  await until('authenticationSASL', true);
  socket.write(serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', `n,,${clientFirstBare}`));
  const serverFirst = (await until('authenticationSASLContinue', true)).at(-1)!.data as string;
  const attrs = new Map(serverFirst.split(',').map((p) => [p[0]!, p.slice(2)] as const));
  const salted = pbkdf2Sync(env.PGPASSWORD!, Buffer.from(attrs.get('s')!, 'base64'), Number(attrs.get('i')), 32, 'sha256');
  const clientKey = hmac(salted, 'Client Key');
  const withoutProof = `c=biws,r=${attrs.get('r')}`;
  const signature = hmac(createHash('sha256').update(clientKey).digest(), `${clientFirstBare},${serverFirst},${withoutProof}`);
  socket.write(serialize.sendSCRAMClientFinalMessage(`${withoutProof},p=${Buffer.from(clientKey.map((b, i) => b ^ signature[i]!)).toString('base64')}`));
  await until('readyForQuery', true);
  return {
    send: (bufs) => void socket.write(Buffer.concat(bufs)),
    until,
    end: () => void (socket.destroyed || socket.end(serialize.end())),
  };
}

// ---- the data sets ----

const IN_ROWS = 1_000_000;
const inLine = (i: number): string => `${i}\tGrüße ☃ ${i % 1000}-${'x'.repeat(60 + (i % 41))}\n`;
const inPayload = (i: number): string => inLine(i).slice(String(i).length + 1, -1);

/** Writes the COPY FROM input (about 100 MB); returns its size, SHA-256 and summed payload length. */
function writeInput(file: string): { bytes: number; sha256: string; chars: number } {
  const fd = fs.openSync(file, 'w');
  const hash = createHash('sha256');
  let bytes = 0;
  let chars = 0;
  for (let start = 1; start <= IN_ROWS; start += 10_000) {
    let chunk = '';
    for (let i = start; i < start + 10_000 && i <= IN_ROWS; i++) {
      chunk += inLine(i);
      chars += inPayload(i).length;
    }
    const buf = Buffer.from(chunk);
    hash.update(buf);
    bytes += buf.length;
    fs.writeSync(fd, buf);
  }
  fs.closeSync(fd);
  return { bytes, sha256: hash.digest('hex'), chars };
}

const OUT_ROWS = 1_000_000;
const OUT_QUERY = `COPY (SELECT i, repeat('x', 200) FROM generate_series(1, ${OUT_ROWS}) i) TO STDOUT`;
const outLine = (i: number): string => `${i}\t${'x'.repeat(200)}\n`;

let expectedOut: { bytes: number; sha256: string } | null = null;
function expectedOutput(): { bytes: number; sha256: string } {
  if (expectedOut) return expectedOut;
  const hash = createHash('sha256');
  let bytes = 0;
  for (let start = 1; start <= OUT_ROWS; start += 10_000) {
    let chunk = '';
    for (let i = start; i < start + 10_000 && i <= OUT_ROWS; i++) chunk += outLine(i);
    hash.update(chunk);
    bytes += chunk.length;
  }
  expectedOut = { bytes, sha256: hash.digest('hex') };
  return expectedOut;
}

// ---- traffic ----

let input: { bytes: number; sha256: string; chars: number };

test('COPY FROM STDIN of about 100 MB goes through whole', async () => {
  const file = path.join(dir, 'input.tsv');
  input = writeInput(file);
  assert.ok(input.bytes > 95_000_000, `the input is about 100 MB (${input.bytes})`);

  const create = psql(gw.env, ['-v', 'ON_ERROR_STOP=1', '-c', 'CREATE UNLOGGED TABLE big_in (id int, payload text)']);
  assert.equal(create.status, 0, create.stderr);
  const r = await psqlStream(gw.env, ['-v', 'ON_ERROR_STOP=1', '-c', '\\copy big_in from pstdin'], file);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
  assert.equal(r.stdout, `COPY ${IN_ROWS}\n`);

  const check = psql(gw.env, ['-A', '-t', '-v', 'ON_ERROR_STOP=1', '-c', 'SELECT count(*), sum(char_length(payload)), sum(id) FROM big_in', '-c', 'SELECT payload FROM big_in WHERE id IN (1, 777777, 1000000) ORDER BY id']);
  assert.equal(check.status, 0, check.stderr);
  assert.equal(check.stdout, [`${IN_ROWS}|${input.chars}|${(IN_ROWS * (IN_ROWS + 1)) / 2}`, inPayload(1), inPayload(777_777), inPayload(1_000_000), ''].join('\n'));
});

test('COPY TO STDOUT of about 200 MB is byte-identical through the gateway and directly', async () => {
  const expected = expectedOutput();
  const [viaGateway, direct] = await Promise.all([psqlStream(gw.env, ['-c', OUT_QUERY]), psqlStream(directEnv(cluster), ['-c', OUT_QUERY])]);
  assert.equal(direct.status, 0, direct.stderr);
  assert.equal(viaGateway.status, 0, viaGateway.stderr);
  assert.equal(viaGateway.stderr, '');
  assert.equal(direct.bytes, expected.bytes);
  assert.equal(direct.sha256, expected.sha256);
  assert.equal(viaGateway.bytes, expected.bytes, 'every byte arrived through the gateway');
  assert.equal(viaGateway.sha256, expected.sha256, 'the bytes through the gateway are the server\'s');
});

const BAD_SCRIPT = [
  'CREATE TABLE copy_err (id int, note text);',
  'COPY copy_err FROM STDIN;',
  '1\tone',
  '2\ttwo',
  'three\t3',
  '4\tfour',
  '\\.',
  'SELECT count(*) AS rows_after_error FROM copy_err;',
  'COPY copy_err FROM STDIN;',
  '10\tten',
  '11\televen',
  '\\.',
  'SELECT id, note FROM copy_err ORDER BY id;',
  'DROP TABLE copy_err;',
  '',
].join('\n');
// psql 15 sends every data line it reads from a script as CopyData, the end-of-data line `\.`
// included (the server treats it as the end marker); that is the client's input to the COPY.
const BAD_INPUT = '1\tone\n2\ttwo\nthree\t3\n4\tfour\n\\.\n';
const GOOD_INPUT = '10\tten\n11\televen\n\\.\n';

test('a COPY with bad data reports the server\'s error and the session keeps working', () => {
  const script = path.join(dir, 'bad.sql');
  fs.writeFileSync(script, BAD_SCRIPT);
  const r = psql(gw.env, ['-v', 'ON_ERROR_STOP=0', '-f', script]);
  assert.equal(r.status, 0, r.stderr);
  // psql names the script line it had reached (the `\.`) when the server's error arrived.
  assert.equal(
    r.stderr,
    `psql:${script}:7: ERROR:  invalid input syntax for type integer: "three"\nCONTEXT:  COPY copy_err, line 3, column id: "three"\n`,
  );
  assert.equal(
    r.stdout,
    'CREATE TABLE\n rows_after_error \n------------------\n                0\n(1 row)\n\nCOPY 2\n id |  note  \n----+--------\n 10 | ten\n 11 | eleven\n(2 rows)\n\nDROP TABLE\n',
  );
  // The same script straight to the server prints exactly the same.
  const direct = psql(directEnv(cluster), ['-v', 'ON_ERROR_STOP=0', '-f', script]);
  assert.equal(direct.stdout, r.stdout);
  assert.equal(direct.stderr, r.stderr);
});

const RAW_LINES = 200_000;
let rawInput: { bytes: number; sha256: string };

test('a COPY whose data fails early still takes all the data the client sends, then the session goes on', async () => {
  const create = psql(gw.env, ['-v', 'ON_ERROR_STOP=1', '-c', 'CREATE TABLE raw_copy (id int, note text)']);
  assert.equal(create.status, 0, create.stderr);
  const raw = await rawSession(gw.env);
  try {
    raw.send([serialize.query('COPY raw_copy FROM STDIN')]);
    await raw.until('copyInResponse');
    // About 20 MB in 8 KiB CopyData messages, sent in one go; line 2 is bad, so the server fails
    // the COPY long before the data ends and discards the rest up to CopyDone.
    const lines = ['1\tone', 'two\t2'];
    for (let i = 3; i <= RAW_LINES; i++) lines.push(`${i}\t${'y'.repeat(95)}`);
    const data = Buffer.from(lines.join('\n') + '\n');
    rawInput = { bytes: data.length, sha256: createHash('sha256').update(data).digest('hex') };
    const messages: Buffer[] = [];
    for (let off = 0; off < data.length; off += 8192) messages.push(serialize.copyData(data.subarray(off, off + 8192)));
    messages.push(serialize.copyDone());
    raw.send(messages);
    const replies = await raw.until('readyForQuery');
    assert.deepEqual(replies.map((m) => m.name), ['error', 'readyForQuery']);
    assert.equal(replies[0]!.code, '22P02');
    raw.send([serialize.query('SELECT count(*) FROM raw_copy')]);
    const after = await raw.until('readyForQuery');
    assert.deepEqual(after.map((m) => m.name), ['rowDescription', 'dataRow', 'commandComplete', 'readyForQuery']);
    assert.deepEqual(after[1]!.fields, ['0']);
  } finally {
    raw.end();
  }
});

// ---- what the log recorded ----

test('log: the COPY FROM record carries the input\'s exact size and SHA-256', () => {
  const { command, result } = commandResult(/^COPY\s+big_in FROM STDIN/);
  assert.equal(command.details.protocol, 'simple');
  assert.equal(result.status, 'ok');
  assert.deepEqual(result.details.tags, [`COPY ${IN_ROWS}`]);
  assert.equal(result.count, IN_ROWS);
  assert.deepEqual(result.input, { bytes: input.bytes, sha256: input.sha256 });
});

test('log: the COPY TO record counts every row and samples the first 10 lines', () => {
  const { command, result } = commandResult(/^COPY \(SELECT i, repeat\('x', 200\)/);
  assert.equal(command.text, OUT_QUERY);
  assert.equal(result.status, 'ok');
  assert.deepEqual(result.details.tags, [`COPY ${OUT_ROWS}`]);
  assert.equal(result.count, OUT_ROWS);
  assert.deepEqual(result.response.sample, Array.from({ length: 10 }, (_, i) => [outLine(i + 1).slice(0, -1)]));
  assert.ok(result.response.bytes > expectedOutput().bytes, 'the response size covers all the data');
  assert.equal(result.input, undefined);
});

test('log: the failed COPY is an error with its input, and the session went on', () => {
  const records = log();
  const failedCopy = records.find((r) => r.type === 'command' && r.text === 'COPY copy_err FROM STDIN;');
  assert.ok(failedCopy, 'the failed COPY is recorded');
  const session = records.filter((r) => r.type === 'command' && r.session === failedCopy.session);
  assert.deepEqual(session.map((c) => c.text), [
    'CREATE TABLE copy_err (id int, note text);',
    'COPY copy_err FROM STDIN;',
    'SELECT count(*) AS rows_after_error FROM copy_err;',
    'COPY copy_err FROM STDIN;',
    'SELECT id, note FROM copy_err ORDER BY id;',
    'DROP TABLE copy_err;',
  ]);
  const results = session.map((c) => {
    const rs = records.filter((r) => r.type === 'result' && r.command === c.command);
    assert.equal(rs.length, 1, `one result for ${c.command}`);
    return rs[0]!;
  });
  const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
  const bad = results[1]!;
  assert.equal(bad.status, 'error');
  assert.equal(bad.error.code, '22P02');
  assert.equal(bad.error.message, 'invalid input syntax for type integer: "three"');
  assert.deepEqual(bad.input, { bytes: Buffer.byteLength(BAD_INPUT), sha256: sha(BAD_INPUT) });
  assert.deepEqual(results[2]!.response.sample, [['0']]);
  const good = results[3]!;
  assert.equal(good.status, 'ok');
  assert.deepEqual(good.details.tags, ['COPY 2']);
  assert.deepEqual(good.input, { bytes: Buffer.byteLength(GOOD_INPUT), sha256: sha(GOOD_INPUT) });
  assert.deepEqual(results[4]!.response.sample, [['10', 'ten'], ['11', 'eleven']]);
  assert.equal(results.filter((r) => r.status === 'error').length, 1);
});

test('log: the failed COPY\'s input is all the data the client sent for it', () => {
  const { result } = commandResult(/^COPY raw_copy FROM STDIN$/);
  assert.equal(result.status, 'error');
  assert.equal(result.error.code, '22P02');
  assert.deepEqual(result.input, rawInput);
  assert.deepEqual(commandResult(/^SELECT count\(\*\) FROM raw_copy$/).result.response.sample, [['0']]);
});

test('log: the log verifies and is sealed', () => {
  log();
  const r = cli(['verify', gw.stop()]);
  assert.equal(r.status, 0, r.stderr);
});
