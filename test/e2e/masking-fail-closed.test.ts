// Masking fails closed on what it was not told about: values of any type in either wire format,
// results whose columns the gateway never saw described, every field of notices and errors,
// parameter statuses, fast-path function results, and COPY with any option the server accepts.
// Each scenario checks what the client receives and, at the end, that the session log holds no
// value in clear.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { serialize } from 'pg-protocol';
import { appCluster, policyFor, psql, readLog, startGateway, type Cluster, type RunningGateway } from '../helpers/gateway.ts';
import { newPgClient, type PgError } from '../helpers/pg.ts';
import { RawClient, functionCall } from '../helpers/raw-pg.ts';

const EMAIL = 'alice.smith@example.com';
const PHONE = '+1 555 0100';
const CARD = '4111 1111 1111 1111';
const AVATAR_EMAIL = 'bob@example.org';
/** Values that must never reach the client or the log in clear (the phone only column masking catches). */
const SECRETS = [EMAIL, PHONE, CARD, CARD.replace(/ /g, ''), AVATAR_EMAIL, Buffer.from(AVATAR_EMAIL).toString('hex')];

let cluster: Cluster;
let gw: RunningGateway;

before(async () => {
  cluster = await appCluster();
  cluster.sql(`
    CREATE TABLE customers (id int PRIMARY KEY, email text, phone text, card_number text, notes text, avatar bytea);
    INSERT INTO customers VALUES (1, '${EMAIL}', '${PHONE}', '${CARD}', 'vip', convert_to('contact ${AVATAR_EMAIL}', 'UTF8'));
    CREATE DOMAIN mail AS text;
    CREATE TYPE mood AS ENUM ('${EMAIL}', 'calm');
    CREATE TYPE textrange AS RANGE (subtype = text);
    CREATE FUNCTION card_of(int) RETURNS text LANGUAGE sql AS 'SELECT card_number FROM customers WHERE id = $1';
    ALTER TABLE customers OWNER TO deployer; ALTER FUNCTION card_of(int) OWNER TO deployer;`, 'app');
  gw = startGateway(policyFor(cluster) + `masking:
  columns: [phone, "customers.card_number"]
  detectors: [email, credit-card]
  apply-to: [client, log]
`);
});
after(() => {
  try {
    gw?.stop();
  } finally {
    cluster?.stop();
  }
});

function assertNoSecret(text: string, where: string): void {
  for (const s of SECRETS) assert.ok(!text.includes(s), `${where} contains ${s}:\n${text.slice(0, 2000)}`);
}

// The card is a literal here, not card_number: a statement that reads a masked column has all its
// computed columns masked whole (masking-expressions.test.ts), and these test what detectors read.
test('text format: detectors read records, whole rows, tsvector, arrays, ranges, domains, enums, json and bytea', () => {
  const r = psql(gw.env, ['-A', '-t', '-F', '|', '-c', `SELECT row(email, '${CARD}'::text), to_tsvector('simple', email), ARRAY[email], ARRAY[row(email)], textrange(email, 'zzz'),
    email::mail, '${EMAIL}'::mood, json_build_array(row('${CARD}'::text)), avatar FROM customers WHERE id = 1`]);
  assert.equal(r.status, 0, r.stderr);
  assertNoSecret(r.stdout, 'psql output');
  const f = r.stdout.trim().split('|');
  assert.equal(f[0], '(a***@***.com,"****1111")');
  assert.equal(f[1], "'a***@***.com':1");
  assert.equal(f[2], '{a***@***.com}');
  assert.equal(f[5], 'a***@***.com');
  assert.equal(f[6], 'a***@***.com');
  assert.equal(Buffer.from(f[8]!.slice(2), 'hex').toString(), 'contact b***@***.org', 'bytea is read as its bytes');
});

test('binary format: text-like values, records, arrays and bytea are read; values of types the gateway cannot decode are NULL', async () => {
  const client = newPgClient({ connectionString: gw.env.GATEWAY_APP_DB_URL! });
  await client.connect();
  try {
    const r = await client.query({
      text: `SELECT id, email, row(email, '${CARD}'::text) AS r, ARRAY[email] AS a, email::mail AS m, '${EMAIL}'::mood AS e,
        to_tsvector('simple', email) AS v, avatar, jsonb_build_object('e', email) AS j FROM customers WHERE id = $1`,
      values: [1],
      binary: true,
    });
    const row = r.rows[0]!;
    assertNoSecret(JSON.stringify(row, (_k, v) => (v && v.type === 'Buffer' ? Buffer.from(v.data).toString('latin1') : v)), 'binary row');
    assert.equal(row.id, 1);
    assert.equal(row.email, 'a***@***.com');
    assert.ok(Buffer.from(row.r as Buffer).includes('a***@***.com'), 'a record is taken apart by its fields\' types');
    assert.deepEqual(row.a, ['a***@***.com']);
    assert.equal(row.m, 'a***@***.com', 'a domain is described as its base type');
    assert.equal(row.e, null, 'an enum likewise');
    assert.equal(row.v, null, 'tsvector likewise');
    assert.equal(Buffer.from(row.avatar as Buffer).toString(), 'contact b***@***.org');
  } finally {
    await client.end();
  }
});

test('a BINARY cursor: its rows are binary whatever the client asked, and are read the same way', async () => {
  const raw = await RawClient.connect(gw.env, 'binary-cursor');
  try {
    const replies = await raw.roundTrip([serialize.query(`BEGIN; DECLARE c BINARY CURSOR FOR SELECT email, row(email, '${CARD}'::text), '${EMAIL}'::mood, avatar FROM customers; FETCH ALL c; COMMIT`)]);
    assert.equal(replies.filter((m) => m.name === 'dataRow').length, 1);
    const got = Buffer.concat(raw.received).toString('latin1');
    assertNoSecret(got, 'bytes received');
    assert.ok(got.includes('a***@***.com') && got.includes('****1111') && got.includes('contact b***@***.org'));
  } finally {
    await raw.end();
  }
});

test('a result never described (Parse, Bind, Execute, Sync): no masked column or finding passes, in binary or text', async () => {
  const raw = await RawClient.connect(gw.env, 'no-describe');
  try {
    for (const binary of [true, false]) {
      const replies = await raw.roundTrip([
        serialize.parse({ text: 'SELECT id, email, phone, card_number FROM customers WHERE id = 1' }),
        serialize.bind({ binary }),
        serialize.execute({}),
        serialize.sync(),
      ]);
      const rows = replies.filter((m) => m.name === 'dataRow');
      assert.equal(rows.length, 1, JSON.stringify(replies.map((m) => m.name)));
    }
    assertNoSecret(Buffer.concat(raw.received).toString('latin1'), 'bytes received');
  } finally {
    await raw.end();
  }
});

test('every field of errors is read: schema, table, column, data type and constraint names too', async () => {
  cluster.sql(`CREATE TABLE "bob@example.org" (id int CONSTRAINT "carol@example.net" CHECK (id > 0), "dan@example.com" int NOT NULL DEFAULT 1);
    CREATE DOMAIN "erin@example.com" AS int CHECK (VALUE > 0);
    GRANT ALL ON "bob@example.org" TO deployer;`, 'app');
  const client = newPgClient({ connectionString: gw.env.GATEWAY_APP_DB_URL! });
  await client.connect();
  type Fields = PgError & { table?: string; constraint?: string; column?: string; dataType?: string };
  try {
    const check = await client.query('INSERT INTO "bob@example.org" VALUES (-1)').then(() => null, (e: Fields) => e);
    assert.equal(check?.code, '23514');
    assert.equal(check?.table, 'b***@***.org');
    assert.equal(check?.constraint, 'c***@***.net');
    const notNull = await client.query('INSERT INTO "bob@example.org" VALUES (1, NULL)').then(() => null, (e: Fields) => e);
    assert.equal(notNull?.column, 'd***@***.com');
    const domain = await client.query('SELECT (-1)::"erin@example.com"').then(() => null, (e: Fields) => e);
    assert.equal(domain?.dataType, 'e***@***.com');
    assert.ok(!JSON.stringify({ ...check, ...notNull, ...domain, m: [check?.message, notNull?.message, domain?.message] }).match(/(bob|carol|dan|erin)@example/));
  } finally {
    await client.end();
  }
});

test('ParameterStatus echoes a value a query set: masked', async () => {
  const raw = await RawClient.connect(gw.env, 'parameter-status');
  try {
    const replies = await raw.roundTrip([serialize.query("SELECT set_config('application_name', email, false) FROM customers WHERE id = 1")]);
    const status = replies.find((m) => m.name === 'parameterStatus' && m.parameterName === 'application_name');
    assert.equal(status?.parameterValue, 'a***@***.com');
    assertNoSecret(Buffer.concat(raw.received).toString('latin1'), 'bytes received');
  } finally {
    await raw.end();
  }
});

test('a fast-path FunctionCall result of a function that may read a masked column is NULL', async () => {
  const oid = Number(psql(gw.env, ['-A', '-t', '-c', "SELECT 'card_of(int)'::regprocedure::oid"]).stdout.trim());
  assert.ok(oid > 0);
  const raw = await RawClient.connect(gw.env, 'function-call');
  try {
    for (const format of [0, 1] as const) {
      const replies = await raw.roundTrip([functionCall(oid, ['1'], format)]);
      // pg-protocol does not know FunctionCallResponse ('V'): the bytes are checked below.
      assert.deepEqual(replies.map((m) => m.name), ['error', 'readyForQuery']);
    }
    const got = Buffer.concat(raw.received).toString('latin1');
    assertNoSecret(got, 'bytes received');
    // `columns` is set: a function called by OID may compute from a masked column, so its result
    // is NULL (masking-variants.test.ts: large-object reads are read by detectors instead).
    assert.equal(got.split('V\0\0\0\x08\xff\xff\xff\xffZ').length, 3, 'both results, masked');
  } finally {
    await raw.end();
  }
});

test('COPY follows every option: CSV delimiter, quote and escape, header, old syntax, binary, queries; what it cannot split is masked', () => {
  const run = (sql: string): string => {
    const r = psql(gw.env, ['-c', sql]);
    assert.equal(r.status, 0, r.stderr);
    assertNoSecret(r.stdout, sql);
    return r.stdout;
  };
  assert.equal(run("COPY customers (id, email, phone, card_number) TO STDOUT (FORMAT csv, DELIMITER 'e', QUOTE 'D', ESCAPE '!')"), '1eDa***@***.comDeD****0100DeD****1111D\n');
  assert.equal(run("COPY customers (id, phone, notes) TO STDOUT WITH CSV HEADER DELIMITER AS '|' FORCE QUOTE *"), 'id|phone|notes\n"1"|"****0100"|"vip"\n');
  assert.equal(run("COPY customers (id, phone) TO STDOUT (DELIMITER '*', NULL 'nothing')"), '1*\\*\\*\\*\\*0100\n');
  assert.equal(run('COPY (SELECT id, c.phone, card_of(id), upper(phone) FROM customers c) TO STDOUT'), '1\t****0100\t\\N\t\\N\n', 'expressions are masked whole');
  const all = run("COPY (SELECT * FROM customers WHERE id = 1) TO STDOUT (FORMAT csv)").trim().split(',');
  assert.deepEqual(all.slice(0, 5), ['1', '"a***@***.com"', '"****0100"', '"****1111"', 'vip'], 'the table\'s columns through *');
  assert.equal(Buffer.from(all[5]!.slice(3, -1), 'hex').toString(), 'contact b***@***.org', 'bytea read as its bytes in COPY too');
  assert.equal(run("COPY customers (id, phone) TO STDOUT (ENCODING 'LATIN1')"), '\\N\t\\N\n', 'an encoding other than UTF-8 is not read');
  const bin = spawnSync('psql', ['-X', '-c', 'COPY customers (id, phone, card_number, avatar) TO STDOUT (FORMAT binary)'], { env: { ...process.env, ...gw.env } });
  assert.equal(bin.status, 0, String(bin.stderr));
  assertNoSecret(bin.stdout.toString('latin1'), 'binary COPY');
  assert.ok(bin.stdout.includes('****0100') && bin.stdout.includes('contact b***@***.org'));
});

test('the session log holds none of these values in clear', () => {
  const text = fs.readFileSync(gw.logPath(), 'utf8');
  assertNoSecret(text, 'the session log');
  const log = readLog(gw.logPath());
  const noDescribe = log.filter((r) => r.type === 'result' && r.response?.sample?.length && /SELECT id, email, phone, card_number FROM customers WHERE id = 1/.test(JSON.stringify(r)));
  assert.ok(noDescribe.length > 0 || log.some((r) => r.type === 'command' && r.text === 'SELECT id, email, phone, card_number FROM customers WHERE id = 1'));
});
