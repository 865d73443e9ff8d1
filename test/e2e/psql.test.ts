// psql through the gateway must behave exactly as psql straight to the server, and the session log
// must hold every statement psql sent, once, with the outcome the server reported. The server's
// own statement log (log_statement = all) is the independent record of what psql sent.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { SpawnSyncReturns } from 'node:child_process';
import {
  appCluster, cli, directEnv, policyFor, psql, readLog, startGateway, tempDir,
  type Cluster, type LogRecord, type RunningGateway,
} from '../helpers/gateway.ts';

// One script, run twice (through the gateway, then directly). Every object lives in the schema
// named by the psql variable `sch`; the script drops it at its start and end, so both runs start
// from the same state.
const SCRIPT = String.raw`
DROP SCHEMA IF EXISTS :"sch" CASCADE;
CREATE SCHEMA :"sch";
SET search_path TO :"sch";
SHOW application_name;
SHOW client_encoding;
-- DDL spanning several lines
CREATE TABLE items (
  id serial PRIMARY KEY,
  name text NOT NULL,
  price numeric(12,2),
  tags text[],
  doc jsonb,
  blob bytea,
  note text
);
INSERT INTO items (name, price, tags, doc, blob, note) VALUES
  ('widget', 9.99, ARRAY['a', 'b c'], '{"k": [1, 2, {"x": null}], "s": "☃"}', '\xdeadbeef', NULL),
  ('Grüße, 日本 🐘', 12345678.90, '{}', 'null', '', 'ünïcödé')
RETURNING id, name;
SELECT 1 AS one \; SELECT 'two' AS two;
SELECT id, name, price, tags, doc, blob, note, note IS NULL AS no_note FROM items ORDER BY id;
SELECT NULL::int AS nothing, 'naïve ☕'::text AS u, 0.1::numeric + 0.2 AS exact, '\x00ff10'::bytea AS b, '{"a": {"b": [true, false]}}'::jsonb -> 'a' AS j, ARRAY[[1, 2], [3, NULL]] AS arr, '{NULL,"x y",""}'::text[] AS arr2, interval '1 day 2 hours' AS iv, date '2024-02-29' AS d;
SELECT 1/0 AS boom;
SELECT 'still running after the error' AS status;
SELEC 'typo';
SELECT 'first' AS a \; SELECT 1/0 \; SELECT 'never run' AS c;
DO $$
BEGIN
  RAISE NOTICE 'hello from a DO block: % items', (SELECT count(*) FROM items);
END
$$;
LISTEN e2e_channel;
NOTIFY e2e_channel, 'payload ☃';
SELECT count(*) AS n, sum(price) AS total FROM items \gset
\echo gset gave n=:n total=:total
\copy (SELECT id, name, tags, note FROM items ORDER BY id) TO STDOUT
BEGIN;
INSERT INTO items (name) VALUES ('rolled back');
SELECT * FROM no_such_table;
SELECT 'ignored' AS x;
ROLLBACK;
SELECT count(*) AS after_rollback FROM items;
;
SELECT count(*) AS n, sum(i) AS s, md5(string_agg(i::text, ',' ORDER BY i)) AS digest FROM generate_series(1, 20000) AS i;
SELECT i, md5(i::text) AS h, repeat('ü', i % 7) AS u FROM generate_series(1, 5000) AS i;
DROP SCHEMA :"sch" CASCADE;
`;

let cluster: Cluster;
let gw: RunningGateway;
let viaGateway: SpawnSyncReturns<string>;
let direct: SpawnSyncReturns<string>;
let records: LogRecord[];
let logPath: string;
let serverLog: string;
let dir: string;

before(async () => {
  cluster = await appCluster({ settings: { log_statement: 'all', log_line_prefix: '@@[%p] ' } });
  gw = startGateway(policyFor(cluster));
  dir = tempDir('gw-psql-');
  const script = path.join(dir, 'script.sql');
  fs.writeFileSync(script, SCRIPT);
  const args = ['-v', 'ON_ERROR_STOP=0', '-v', 'sch=e2e_psql', '-f', script];
  viaGateway = psql(gw.env, args);
  direct = psql(directEnv(cluster), args);
  logPath = gw.stop();
  records = readLog(logPath);
  serverLog = fs.readFileSync(path.join(path.dirname(cluster.dataDir), 'server.log'), 'utf8');
});

after(() => {
  try {
    gw?.stop();
  } finally {
    cluster?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * Statements the server received from one backend, in order: those it logged (log_statement =
 * all) plus those that failed to parse, which it logs only as the STATEMENT of their error.
 */
function serverStatements(pid: number): string[] {
  const logged = `@@[${pid}] LOG:  statement: `;
  const failed = `@@[${pid}] STATEMENT:  `;
  const entries: { failed: boolean; lines: string[] }[] = [];
  let cur: { failed: boolean; lines: string[] } | null = null;
  for (const line of serverLog.split('\n')) {
    if (line.startsWith('@@[')) {
      cur = null;
      if (line.startsWith(logged)) cur = { failed: false, lines: [line.slice(logged.length)] };
      else if (line.startsWith(failed)) cur = { failed: true, lines: [line.slice(failed.length)] };
      if (cur) entries.push(cur);
    } else if (cur && line.startsWith('\t')) {
      cur.lines.push(line.slice(1)); // the server prefixes continuation lines with a tab
    }
  }
  const out: string[] = [];
  for (const e of entries) {
    const text = e.lines.join('\n');
    // An error in a statement that was logged repeats it; one that never parsed appears only here.
    if (!e.failed || out.at(-1) !== text) out.push(text);
  }
  return out;
}

const NOTIFICATION = /(Asynchronous notification "e2e_channel" with payload "payload ☃" received from server process with PID )(\d+)\./;

function session(): { id: string; backendPid: number; commands: LogRecord[]; results: Map<string, LogRecord[]> } {
  const opens = records.filter((r) => r.type === 'session-open');
  assert.equal(opens.length, 1, 'one psql session went through the gateway');
  const id = opens[0]!.session as string;
  const login = records.find((r) => r.type === 'upstream-login' && r.session === id);
  assert.ok(login?.ok, 'upstream login succeeded');
  const commands = records.filter((r) => r.type === 'command' && r.session === id);
  const results = new Map<string, LogRecord[]>();
  for (const r of records) if (r.type === 'result' && r.session === id) results.set(r.command, [...(results.get(r.command) ?? []), r]);
  return { id, backendPid: login.backend_pid as number, commands, results };
}

function resultOf(s: ReturnType<typeof session>, textStart: string): { command: LogRecord; result: LogRecord } {
  const matching = s.commands.filter((c) => (c.text as string).startsWith(textStart));
  assert.equal(matching.length, 1, `exactly one command starting with ${JSON.stringify(textStart)}`);
  const command = matching[0]!;
  const results = s.results.get(command.command) ?? [];
  assert.equal(results.length, 1, `exactly one result for ${command.command}`);
  return { command, result: results[0]! };
}

test('a varied psql script prints the same stdout and stderr through the gateway as directly', () => {
  assert.equal(viaGateway.error, undefined);
  assert.equal(direct.status, 0, direct.stderr);
  assert.equal(viaGateway.status, direct.status, viaGateway.stderr);

  // The script really exercised what it is meant to (so equal outputs are not trivially equal).
  for (const expected of [
    'still running after the error', 'gset gave n=2 total=12345688.89', '(5000 rows)', '20000 | 200010000',
    'Grüße, 日本 🐘', '\\xdeadbeef', '1\twidget\t{a,"b c"}\t\\N', 'after_rollback', 'first',
  ]) {
    assert.ok(viaGateway.stdout.includes(expected), `stdout through the gateway shows ${JSON.stringify(expected)}`);
  }
  for (const expected of ['ERROR:  division by zero', 'ERROR:  syntax error at or near "SELEC"', 'NOTICE:  hello from a DO block: 2 items', 'ERROR:  relation "no_such_table" does not exist', 'ERROR:  current transaction is aborted']) {
    assert.ok(viaGateway.stderr.includes(expected), `stderr through the gateway shows ${JSON.stringify(expected)}`);
  }
  assert.ok(!viaGateway.stdout.includes('never run'), 'statements after an error in the same Query message do not run');

  // The notification is the session's own: through the gateway it names the upstream backend,
  // whose pid differs between the two runs; that number is the only allowed difference.
  const m = NOTIFICATION.exec(viaGateway.stdout);
  assert.ok(m, 'psql printed the asynchronous notification through the gateway');
  assert.equal(Number(m[2]), session().backendPid, 'the notification comes from the session\'s own upstream backend');
  assert.ok(NOTIFICATION.test(direct.stdout), 'psql printed the asynchronous notification directly');
  const normalize = (s: string): string => s.replace(NOTIFICATION, '$1<pid>.');
  assert.equal(normalize(viaGateway.stdout), normalize(direct.stdout));
  assert.equal(viaGateway.stderr, direct.stderr);
});

test('every statement psql sent is in the log exactly once, in order, with the outcome the server reported', () => {
  const s = session();
  const sent = serverStatements(s.backendPid);
  assert.ok(sent.length >= 25, `the server logged the script's statements (${sent.length})`);
  assert.deepEqual(s.commands.map((c) => c.text), sent, 'command records are exactly the statements the server received');
  assert.deepEqual(s.commands.map((c) => c.command), sent.map((_, i) => `${s.id}.${i + 1}`), 'command ids are sequential');
  for (const c of s.commands) {
    assert.equal(c.details.protocol, 'simple');
    assert.equal(s.results.get(c.command)?.length, 1, `one result for ${c.command} (${c.text})`);
  }

  const failing = new Map<string, string>([
    ['SELECT 1/0 AS boom', '22012'],
    ["SELEC 'typo'", '42601'],
    ["SELECT 'first' AS a ; SELECT 1/0", '22012'],
    ['SELECT * FROM no_such_table', '42P01'],
    ["SELECT 'ignored'", '25P02'],
  ]);
  for (const c of s.commands) {
    const result = s.results.get(c.command)![0]!;
    const code = [...failing].find(([start]) => (c.text as string).startsWith(start))?.[1];
    if (code) {
      assert.equal(result.status, 'error', `${c.text} failed`);
      assert.equal(result.error?.code, code, `${c.text} failed with ${code}`);
      assert.equal(result.error?.severity, 'ERROR');
    } else {
      assert.equal(result.status, 'ok', `${c.text} succeeded (${JSON.stringify(result.error)})`);
    }
  }
  const boom = resultOf(s, 'SELECT 1/0 AS boom').result;
  assert.equal(boom.error.message, 'division by zero');

  // Several statements in one Query message: one command, one tag per statement that completed.
  const multi = resultOf(s, 'SELECT 1 AS one ; SELECT');
  assert.deepEqual(multi.result.details.tags, ['SELECT 1', 'SELECT 1']);
  assert.equal(multi.result.count, 2);
  assert.deepEqual(multi.result.response.sample, [['1'], ['two']]);
  const partial = resultOf(s, "SELECT 'first' AS a ; SELECT 1/0").result;
  assert.deepEqual(partial.details.tags, ['SELECT 1'], 'only the statement before the error completed');

  const insert = resultOf(s, 'INSERT INTO items (name, price').result;
  assert.deepEqual(insert.details.tags, ['INSERT 0 2']);
  assert.equal(insert.count, 2);
  assert.deepEqual(insert.response.columns, ['id', 'name']);
  assert.deepEqual(insert.response.sample, [['1', 'widget'], ['2', 'Grüße, 日本 🐘']]);

  const mixed = resultOf(s, 'SELECT NULL::int AS nothing').result;
  assert.deepEqual(mixed.response.columns, ['nothing', 'u', 'exact', 'b', 'j', 'arr', 'arr2', 'iv', 'd']);
  assert.deepEqual(mixed.response.sample, [[null, 'naïve ☕', '0.3', '\\x00ff10', '{"b": [true, false]}', '{{1,2},{3,NULL}}', '{NULL,"x y",""}', '1 day 02:00:00', '2024-02-29']]);

  assert.deepEqual(resultOf(s, 'SHOW application_name').result.response.sample, [['psql']], 'startup parameters reach the server');
  assert.deepEqual(resultOf(s, 'DO $$').result.details.tags, ['DO']);
  assert.deepEqual(resultOf(s, 'NOTIFY e2e_channel').result.details.tags, ['NOTIFY']);

  const gset = resultOf(s, 'SELECT count(*) AS n, sum(price) AS total FROM items').result;
  assert.deepEqual(gset.response.sample, [['2', '12345688.89']]);

  const copy = resultOf(s, 'COPY  ( SELECT id, name, tags, note FROM items ORDER BY id ) TO STDOUT');
  assert.deepEqual(copy.result.details.tags, ['COPY 2']);
  assert.equal(copy.result.count, 2);
  assert.deepEqual(copy.result.response.sample, [['1\twidget\t{a,"b c"}\t\\N'], ['2\tGrüße, 日本 🐘\t{}\tünïcödé']]);

  const rollback = resultOf(s, 'ROLLBACK').result;
  assert.deepEqual(rollback.details.tags, ['ROLLBACK']);
  assert.equal(rollback.details.transaction, 'I');
  assert.equal(resultOf(s, "SELECT 'ignored'").result.details.transaction, 'E', 'the failed transaction is visible in the log');
  assert.deepEqual(resultOf(s, 'SELECT count(*) AS after_rollback').result.response.sample, [['2']]);

  const empty = resultOf(s, ';').result;
  assert.equal(empty.status, 'ok');
  assert.deepEqual(empty.details.tags, []);

  const aggregate = resultOf(s, 'SELECT count(*) AS n, sum(i)').result;
  assert.equal(aggregate.count, 1);
  assert.deepEqual(aggregate.response.sample[0].slice(0, 2), ['20000', '200010000']);

  const big = resultOf(s, 'SELECT i, md5(i::text)').result;
  assert.deepEqual(big.details.tags, ['SELECT 5000']);
  assert.equal(big.count, 5000);
  assert.deepEqual(big.response.columns, ['i', 'h', 'u']);
  assert.equal(big.response.sample.length, 10, 'the sample holds the default 10 rows');
  assert.deepEqual(big.response.sample[0], ['1', 'c4ca4238a0b923820dcc509a6f75849b', 'ü']);
  assert.ok(big.response.bytes > 5000 * 40, 'the response size covers every row');

  const close = records.find((r) => r.type === 'session-close' && r.session === s.id);
  assert.equal(close?.reason, 'client terminated');
  assert.equal(close?.totals.commands, sent.length);
  assert.equal(close?.totals.errors, failing.size);
});

test('the session log of the run verifies and is sealed', () => {
  const r = cli(['verify', logPath]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /VALID/);
  const j = cli(['verify', logPath, '--json']);
  assert.equal(j.status, 0, j.stderr);
  const summary = JSON.parse(j.stdout) as Record<string, unknown>;
  assert.equal(summary.status, 'valid');
  const totals = summary.totals as Record<string, number>;
  assert.equal(totals.sessions, 1);
  assert.equal(totals.commands, records.filter((r) => r.type === 'command').length);
  assert.equal(totals.errors, records.filter((r) => r.type === 'result' && r.status === 'error').length);
  assert.equal(records.at(-2)?.type, 'run-end');
  assert.equal(records.at(-1)?.type, 'checkpoint');
});
