// Response masking on real traffic: psql's printed output and node-postgres's typed values, the
// session log's samples, parameters, notices and errors, and memory while masking a big result.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { appCluster, policyFor, psql, readLog, startGateway, type Cluster, type RunningGateway } from '../helpers/gateway.ts';
import { newPgClient, type PgError } from '../helpers/pg.ts';

const MASKING = (applyTo: string): string => `masking:
  columns: [email, ssn, "customers.phone", "*.card_number"]
  detectors: [email, credit-card, iban, jwt, azure-storage-key, azure-sas-token, connection-string, private-key, github-token]
  apply-to: ${applyTo}
`;

const GH_TOKEN = 'ghp_' + 'a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8';
const JWT = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U';

let cluster: Cluster;
let gw: RunningGateway;

before(async () => {
  cluster = await appCluster();
  cluster.sql(`
    CREATE TABLE customers (id int PRIMARY KEY, email text UNIQUE, ssn varchar(11), phone text, card_number text, notes text, profile jsonb, age int);
    CREATE TABLE suppliers (id int, phone text);
    CREATE TABLE orders (id int, card_number bigint, placed date);
    INSERT INTO customers VALUES
      (1, 'alice.smith@example.com', '123-45-6789', '+1 555 0100', '4111 1111 1111 1111', 'paid with 5500-0000-0000-0004; token ${GH_TOKEN}', '{"contact": "bob@example.org", "iban": "DE89370400440532013000"}', 41),
      (2, 'carol@example.net', '987-65-4321', '+44 20 7946 0000', NULL, 'order id 1234567812345678 is not a card', '{"n": 1}', 35);
    INSERT INTO suppliers VALUES (1, '+1 555 0199');
    INSERT INTO orders VALUES (1, 4111111111111111, '2026-01-02');
    ALTER TABLE customers OWNER TO deployer; ALTER TABLE suppliers OWNER TO deployer; ALTER TABLE orders OWNER TO deployer;`, 'app');
  gw = startGateway(policyFor(cluster) + MASKING('[client, log]'));
});
after(() => {
  try {
    gw?.stop();
  } finally {
    cluster?.stop();
  }
});

test('psql: masked columns and detector findings, with every other value intact', () => {
  const r = psql(gw.env, ['-A', '-F', '|', '-c', 'SELECT * FROM customers ORDER BY id']);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines[0], 'id|email|ssn|phone|card_number|notes|profile|age');
  assert.equal(lines[1], `1|a***@***.com|****6789|****0100|****1111|paid with ****0004; token [masked:github-token]|{"iban": "DE****3000", "contact": "b***@***.org"}|41`);
  assert.equal(lines[2], '2|c***@***.net|****4321|****0000||order id 1234567812345678 is not a card|{"n": 1}|35');
});

test('a column named like a qualified pattern is masked only in that table; computed columns by bare name', () => {
  const r = psql(gw.env, ['-A', '-t', '-c', 'SELECT phone FROM suppliers', '-c', "SELECT 'x@example.com' AS email, 'plain' AS other"]);
  assert.equal(r.stdout, '+1 555 0199\nx***@***.com|plain\n');
});

test('an alias does not hide a masked column: the table column behind it counts', () => {
  const r = psql(gw.env, ['-A', '-t', '-c', 'SELECT ssn AS x, phone AS p, id AS n FROM customers WHERE id = 2', '-c', 'SELECT c.phone AS "Phone" FROM customers c JOIN suppliers s ON s.id = c.id']);
  assert.equal(r.stdout, '****4321|****0000|2\n****0100\n');
});

test('COPY TO STDOUT of a table (psql \\copy, CSV, pg_dump) or a query masks its columns too', () => {
  const text = psql(gw.env, ['-c', '\\copy customers to stdout']);
  assert.equal(text.status, 0, text.stderr);
  assert.equal(text.stdout.split('\n')[0], '1\ta***@***.com\t****6789\t****0100\t****1111\tpaid with ****0004; token [masked:github-token]\t{"iban": "DE****3000", "contact": "b***@***.org"}\t41');
  const csv = psql(gw.env, ['-c', 'COPY orders (id, card_number, placed) TO STDOUT WITH (FORMAT csv)', '-c', 'COPY suppliers TO STDOUT (FORMAT csv, DELIMITER \';\')']);
  assert.equal(csv.stdout, '1,,2026-01-02\n1;+1 555 0199\n', 'a bigint card_number is NULL; suppliers.phone is not customers.phone');
  const dump = spawnSync('pg_dump', ['--data-only', '-t', 'customers'], { env: { ...process.env, ...gw.env }, encoding: 'utf8' });
  assert.equal(dump.status, 0, dump.stderr);
  assert.match(dump.stdout, /\n1\ta\*\*\*@\*\*\*\.com\t\*\*\*\*6789\t\*\*\*\*0100\t\*\*\*\*1111\t/);
  assert.ok(!dump.stdout.includes('+1 555 0100') && !dump.stdout.includes('123-45-6789'));
  const query = psql(gw.env, ['-c', 'COPY (SELECT email, phone, upper(notes) FROM customers WHERE id = 1) TO STDOUT']);
  assert.equal(query.stdout, 'a***@***.com\t****0100\t\\N\n', 'a query\'s plain columns are its table\'s; an expression is masked whole');
});

test('node-postgres: typed values stay valid; a masked non-text column is NULL', async () => {
  const client = newPgClient({ connectionString: gw.env.GATEWAY_APP_DB_URL! });
  await client.connect();
  try {
    const c = await client.query('SELECT email, profile, age FROM customers WHERE id = $1', [1]);
    assert.deepEqual(c.rows, [{ email: 'a***@***.com', profile: { iban: 'DE****3000', contact: 'b***@***.org' }, age: 41 }]);
    const o = await client.query({ text: 'SELECT id, card_number, placed FROM orders', binary: true });
    assert.equal(o.rows[0]!.card_number, null, 'bigint cannot hold a mask: NULL');
    assert.equal(o.rows[0]!.id, 1);
    const p = await client.query('SELECT $1::text AS echoed', [`key ${JWT}`]);
    assert.deepEqual(p.rows, [{ echoed: 'key [masked:jwt]' }]);
    const err = await client.query("INSERT INTO customers (id, email) VALUES (3, 'alice.smith@example.com')").then(() => null, (e: PgError & { detail?: string }) => e);
    assert.equal(err?.code, '23505');
    // email is masked by name: a key of a masked column is masked whole (masking-variants.test.ts)
    assert.equal((err as { detail?: string }).detail, '[masked: it may show values of masked columns]');
  } finally {
    await client.end();
  }
});

test('a client encoding other than UTF-8 is refused, at login and when SET later: values are never passed unmasked', () => {
  const atLogin = psql({ ...gw.env, PGCLIENTENCODING: 'LATIN1' }, ['-c', 'SELECT email FROM customers']);
  assert.notEqual(atLogin.status, 0);
  assert.match(atLogin.stderr, /masking reads values as UTF-8, and this session asked for client_encoding LATIN1/);
  const later = psql(gw.env, ['-c', "SET client_encoding = 'LATIN1'", '-c', 'SELECT email FROM customers']);
  assert.notEqual(later.status, 0);
  assert.match(later.stderr, /the session set client_encoding to LATIN1; the session is closed rather than pass values unmasked/);
  assert.ok(!later.stdout.includes('alice'));
});

test('NOTIFY payloads are masked for listeners', async () => {
  const client = newPgClient({ connectionString: gw.env.GATEWAY_APP_DB_URL! });
  await client.connect();
  try {
    const got = new Promise<string>((resolve) => (client as unknown as { on(e: 'notification', f: (n: { payload: string }) => void): void }).on('notification', (n) => resolve(n.payload)));
    await client.query('LISTEN payments');
    psql(gw.env, ['-c', "NOTIFY payments, 'paid with 4111 1111 1111 1111 by alice@example.com'"]);
    assert.equal(await got, 'paid with ****1111 by a***@***.com');
  } finally {
    await client.end();
  }
});

test('notices that echo values are masked', () => {
  const r = psql(gw.env, ['-c', "DO $$ BEGIN RAISE NOTICE 'charging 4111-1111-1111-1111 for alice@example.com'; END $$"]);
  assert.match(r.stderr, /NOTICE: {2}charging \*\*\*\*1111 for a\*\*\*@\*\*\*\.com/);
});

test('the session log: samples, parameters and command texts masked; counts recorded; no value leaks', () => {
  psql(gw.env, ['-c', "SELECT email FROM customers WHERE email = 'carol@example.net'"]);
  const text = fs.readFileSync(gw.logPath(), 'utf8');
  for (const secret of ['alice.smith@example.com', '123-45-6789', '4111 1111 1111 1111', GH_TOKEN, JWT, 'DE89370400440532013000', 'carol@example.net', 'bob@example.org']) {
    assert.ok(!text.includes(secret), `the log must not contain ${secret}`);
  }
  const log = readLog(gw.logPath());
  const result = log.find((r) => r.type === 'result' && r.response?.columns?.[1] === 'email' && r.count === 2)!;
  assert.deepEqual(result.response.sample[0].slice(0, 5), ['1', 'a***@***.com', '****6789', '****0100', '****1111']);
  assert.ok(result.masked.values >= 8);
  assert.deepEqual(result.masked.detectors.sort(), ['credit-card', 'email', 'github-token', 'iban']);
  const bind = log.find((r) => r.type === 'command' && r.text === 'SELECT $1::text AS echoed')!;
  assert.deepEqual(bind.details.params, ['key [masked:jwt]']);
  assert.ok(log.some((r) => r.type === 'command' && r.text === "SELECT email FROM customers WHERE email = 'c***@***.net'"));
  const start = log.find((r) => r.type === 'run-start')!;
  assert.deepEqual(start.masking.apply_to, ['client', 'log']);
  assert.ok(log.some((r) => r.type === 'gateway-query' && /pg_class/.test(r.text)), 'the gateway records its own catalog query');
});

test('apply-to [log]: the client sees the data, the record is masked', () => {
  const logOnly = startGateway(policyFor(cluster) + MASKING('[log]'));
  try {
    const r = psql(logOnly.env, ['-A', '-t', '-c', 'SELECT email, ssn FROM customers WHERE id = 1']);
    assert.equal(r.stdout, 'alice.smith@example.com|123-45-6789\n');
  } finally {
    logOnly.stop();
  }
  const text = fs.readFileSync(logOnly.logPath(), 'utf8');
  assert.ok(!text.includes('alice.smith@example.com'));
  assert.ok(text.includes('"a***@***.com","****6789"'));
});

test('masking a 280 MB result streams: rows rewritten on the fly, memory stays flat', async () => {
  const rssMB = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(fs.readFileSync(`/proc/${gw.pid}/status`, 'utf8'))![1]) / 1024;
  const before = rssMB('VmRSS');
  fs.writeFileSync(`/proc/${gw.pid}/clear_refs`, '5');
  const rows = 1_000_000;
  // FETCH_COUNT makes psql read through a cursor in batches, so neither psql nor the test holds it all.
  const child = spawn('psql', ['-X', '-q', '-A', '-t', '-F', '\t', '-v', 'FETCH_COUNT=20000', '-c', `SELECT 'user' || i || '@example.com' AS email, repeat('z', 250) AS pad, 'card 4111111111111111' AS note FROM generate_series(1, ${rows}) i`], { env: { ...process.env, ...gw.env }, stdio: ['ignore', 'pipe', 'inherit'] });
  let count = 0;
  let bad = 0;
  let rest = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d: string) => {
    const lines = (rest + d).split('\n');
    rest = lines.pop()!;
    for (const l of lines) {
      count++;
      if (!/^u\*\*\*@\*\*\*\.com\tz{250}\tcard \*\*\*\*1111$/.test(l)) bad++;
    }
  });
  assert.equal(await new Promise((resolve) => child.on('close', resolve)), 0);
  assert.equal(count, rows);
  assert.equal(bad, 0, 'every row masked');
  const peak = rssMB('VmHWM');
  assert.ok(peak - before < 120, `the gateway grew by ${(peak - before).toFixed(0)} MB while masking ${rows} rows`);
});
