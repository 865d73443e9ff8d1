// Computed result columns (expressions, aggregates, functions of row values, scalar subqueries)
// have no table column behind them in RowDescription: a statement that could compute one from a
// masked column has every computed column masked whole, in the simple and the extended protocol,
// for the client and the log's samples; a statement that reads no masked column is left alone.
// Real cluster, real psql and node-postgres.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { appCluster, policyFor, psql, readLog, startGateway, waitFor, type Cluster, type RunningGateway } from '../helpers/gateway.ts';
import { newPgClient } from '../helpers/pg.ts';

// No detectors: a phone number is recognised by none, so whatever is masked is masked by column.
const MASKING = `masking:
  columns: ["customers.phone"]
  apply-to: [client, log]
`;
const PHONE = '+1 555 0100';
const DIGITS = /555/;

let cluster: Cluster;
let gw: RunningGateway;

before(async () => {
  cluster = await appCluster();
  cluster.sql(
    `
    CREATE TABLE customers (id int PRIMARY KEY, phone text, name text);
    INSERT INTO customers VALUES (1, '${PHONE}', 'ada');
    CREATE VIEW v AS SELECT id, phone AS p FROM customers;
    CREATE FUNCTION first_phone() RETURNS text LANGUAGE plpgsql AS $$ BEGIN RETURN (SELECT c.phone FROM customers c LIMIT 1); END $$;
    CREATE FUNCTION noisy() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RAISE NOTICE 'first: %', (SELECT c.phone FROM customers c LIMIT 1); RETURN 1; END $$;
    CREATE FUNCTION open_phones(refcursor) RETURNS refcursor LANGUAGE plpgsql AS $$ BEGIN OPEN $1 FOR SELECT c.phone || '' FROM customers c; RETURN $1; END $$;
    ALTER TABLE customers OWNER TO deployer; ALTER VIEW v OWNER TO deployer; ALTER FUNCTION first_phone() OWNER TO deployer;`,
    'app',
  );
  gw = startGateway(policyFor(cluster) + MASKING);
});
after(() => {
  try {
    gw?.stop();
  } finally {
    cluster?.stop();
  }
});

const run = (args: string[]): string => {
  const r = psql(gw.env, ['-q', '-A', '-t', '-F', '|', ...args]);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
};

/** Statements that compute a value from customers.phone without naming a column that is it. */
const LEAKS = [
  "SELECT phone || '' FROM customers",
  'SELECT upper(phone) AS x FROM customers',
  'SELECT row_to_json(c) FROM customers c',
  'SELECT to_jsonb(c) FROM customers c',
  'SELECT json_agg(c) FROM customers c',
  'SELECT array_agg(phone) FROM customers',
  'SELECT c::text FROM customers c',
  "SELECT concat_ws(',', c.*) FROM customers c",
  "SELECT format('%s', phone) FROM customers",
  'SELECT (SELECT phone FROM customers LIMIT 1)',
  'SELECT (SELECT phone FROM customers LIMIT 1) AS x',
  "WITH t AS (SELECT phone FROM customers) SELECT phone || '' FROM t",
  "SELECT string_agg(phone, ',') FROM customers",
  "SELECT * FROM (SELECT phone || '' AS p FROM customers) s",
  "SELECT l.x FROM customers c, LATERAL (SELECT c.phone || '' AS x) l",
  "SELECT CASE WHEN id > 0 THEN phone ELSE '' END AS x FROM customers",
  'SELECT min(phone) FROM customers',
  "SELECT x || '' FROM customers AS c(i, x)",
  "SELECT 0, 'a', 'b' UNION ALL SELECT * FROM customers",
  "SELECT p || '' FROM v",
  "SELECT query_to_xml('select phone from customers', true, false, '')",
  'SELECT first_phone()',
];

test('every computed column of a statement that reads a masked column is masked, with psql (simple protocol)', async () => {
  for (const sql of LEAKS) {
    const out = run(['-c', sql]);
    assert.ok(!DIGITS.test(out), `${sql}: ${out}`);
    assert.notEqual(out, '', `${sql} returns its row`);
  }
  // DML RETURNING an expression over the masked column (the phone is copied, never written in a text).
  const dml = [
    "INSERT INTO customers SELECT 2, phone, name FROM customers WHERE id = 1 RETURNING phone || ''",
    "UPDATE customers SET name = name WHERE id = 2 RETURNING upper(phone)",
    'UPDATE customers c SET name = name WHERE id = 2 RETURNING c::text',
    "DELETE FROM customers WHERE id = 2 RETURNING 'x' || phone",
  ];
  for (const sql of dml) assert.match(run(["-c", sql]), /^\*\*\*\*(?:0100)?\n$/, sql);
  // What runs from a prepared statement or a cursor is masked as its own text would be.
  assert.equal(run(['-c', "PREPARE p AS SELECT phone || '' FROM customers", '-c', 'EXECUTE p']), '****0100\n');
  assert.equal(run(['-c', 'BEGIN', '-c', "DECLARE cur CURSOR FOR SELECT phone || '' AS x FROM customers", '-c', 'FETCH ALL FROM cur', '-c', 'COMMIT']), '****0100\n');
  // A cursor a function opened under a name the client chose: the gateway never saw its query.
  assert.equal(run(['-c', 'BEGIN', '-c', "SELECT open_phones('pc')", '-c', 'FETCH ALL FROM pc', '-c', 'COMMIT']), '****\n****0100\n', 'the function is not built in: its result is masked too');
  // A cursor DECLAREd over no masked column, then a statement that could reopen it by name unseen.
  assert.equal(run(['-c', 'BEGIN', '-c', 'DECLARE d SCROLL CURSOR FOR SELECT upper(name) FROM customers', '-c', 'FETCH FIRST FROM d', '-c', 'SELECT 1', '-c', 'FETCH FIRST FROM d', '-c', 'COMMIT']), 'ADA\n1\n****\n');
  // A function created by a connection that does not pass through the gateway: not in the
  // catalog yet, so nothing says what it reads.
  cluster.sql("CREATE FUNCTION later_phone() RETURNS text LANGUAGE sql AS 'SELECT phone FROM customers LIMIT 1'; ALTER FUNCTION later_phone() OWNER TO deployer", 'app');
  assert.equal(run(['-c', 'SELECT later_phone()']), '****0100\n');
  // Several statements in one Query are weighed as one text: the computed `1` is masked too.
  assert.equal(run(['-c', "SELECT 1; SELECT lower(phone) FROM customers"]), '\n****0100\n');
  await logClean(LEAKS.length + 9);
});

test('the same through node-postgres (extended protocol), text and binary, prepared and executed twice', async () => {
  const client = newPgClient({ connectionString: gw.env.GATEWAY_APP_DB_URL! });
  await client.connect();
  try {
    for (const sql of LEAKS) {
      for (const binary of [false, true]) {
        const r = await client.query({ text: sql, binary });
        assert.ok(r.rows.length >= 1, sql);
        assert.ok(!DIGITS.test(JSON.stringify(r.rows)), `${sql} (binary ${binary}): ${JSON.stringify(r.rows)}`);
      }
    }
    for (let i = 0; i < 2; i++) {
      const r = await client.query({ name: 'named', text: 'SELECT upper(phone) AS x, id FROM customers WHERE id = $1', values: [1] });
      assert.deepEqual(r.rows, [{ x: '****0100', id: 1 }]);
    }
    // A protocol Bind of a statement SQL PREPAREd, and an EXECUTE of one the protocol prepared.
    await client.query("PREPARE sqlp AS SELECT phone || '' AS x FROM customers");
    assert.deepEqual((await client.query('EXECUTE sqlp')).rows, [{ x: '****0100' }]);
  } finally {
    await client.end();
  }
  await logClean(1);
});

test('statements that read no masked column are not masked', async () => {
  assert.equal(run(['-c', 'SELECT id, upper(name) FROM customers']), '1|ADA\n');
  assert.equal(run(['-c', 'SELECT 1 + 1']), '2\n');
  assert.match(run(['-c', 'SELECT now()']), /^\d{4}-\d\d-\d\d /);
  assert.equal(run(['-c', "SELECT count(*), max(id), string_agg(name, ',') FROM customers"]), '1|1|ada\n');
  assert.equal(run(['-c', 'SELECT * FROM customers']), '1|****0100|ada\n', 'direct columns are planned by the catalog');
  assert.equal(run(['-c', "SELECT 'x' || name AS n FROM customers c WHERE c.id = 1"]), 'xada\n');
  // psql's FETCH_COUNT reads through a cursor it DECLAREs: weighed by the DECLARE's query.
  assert.equal(run(['-v', 'FETCH_COUNT=1', '-c', 'SELECT id, upper(name) FROM customers']), '1|ADA\n');
  assert.equal(run(['-v', 'FETCH_COUNT=1', '-c', "SELECT id, phone || '' FROM customers"]), '1|****0100\n');
  assert.equal(run(['-c', 'EXPLAIN (COSTS OFF) SELECT phone FROM customers']).includes('Seq Scan on customers'), true, 'a plan is not data');
  // psql's \d names the table in a string constant; its computed columns (the types) stay.
  assert.match(run(['-c', '\\d customers']), /^phone\|text\|/m);
  const client = newPgClient({ connectionString: gw.env.GATEWAY_APP_DB_URL! });
  await client.connect();
  try {
    assert.deepEqual((await client.query('SELECT id, upper(name) AS u FROM customers WHERE id = $1', [1])).rows, [{ id: 1, u: 'ADA' }]);
    assert.deepEqual((await client.query({ text: 'SELECT 1 + 1 AS two', binary: true })).rows, [{ two: 2 }]);
  } finally {
    await client.end();
  }
});

test('errors and notices of such a statement that may quote a computed value are masked; others are not', async () => {
  const failing = psql(gw.env, ['-q', '-A', '-t', '-c', 'SELECT phone::int FROM customers']);
  assert.notEqual(failing.status, 0);
  assert.ok(!DIGITS.test(failing.stderr), failing.stderr);
  assert.match(failing.stderr, /masked: it may quote a value computed from a masked column/);
  const notice = psql(gw.env, ['-q', '-A', '-t', '-c', 'SELECT noisy()']);
  assert.ok(!DIGITS.test(notice.stderr), notice.stderr);
  assert.match(notice.stderr, /NOTICE: +\[masked/);
  const block = psql(gw.env, ['-q', '-c', "DO $$BEGIN RAISE NOTICE '%', (SELECT c.phone FROM customers c LIMIT 1); END$$"]);
  assert.equal(block.status, 0, block.stderr);
  assert.ok(!DIGITS.test(block.stderr), block.stderr);
  // A statement that reads no masked column, and an error that names objects only, stay readable.
  assert.match(psql(gw.env, ['-q', '-c', "SELECT 'abc'::int"]).stderr, /invalid input syntax for type integer: "abc"/);
  assert.match(psql(gw.env, ['-q', '-c', 'SELECT phone FROM customers WHERE nosuch = 1']).stderr, /column "nosuch" does not exist/);
  const client = newPgClient({ connectionString: gw.env.GATEWAY_APP_DB_URL! });
  await client.connect();
  try {
    const err = await client.query('SELECT upper(phone)::int FROM customers WHERE id = $1', [1]).then(() => null, (e: Error & { code?: string }) => e);
    assert.equal(err?.code, '22P02');
    assert.ok(!DIGITS.test(err!.message), err!.message);
  } finally {
    await client.end();
  }
  const text = fs.readFileSync(gw.logPath(), 'utf8');
  assert.ok(!text.includes('555 0100'), 'the log holds no phone number in clear');
});

/** The log holds the results (their samples masked) and no phone number in clear. */
async function logClean(results: number): Promise<void> {
  await waitFor(() => readLog(gw.logPath()).filter((r) => r.type === 'result' && Array.isArray(r.response?.sample)).length >= results, `${results} results in the log`);
  const text = fs.readFileSync(gw.logPath(), 'utf8');
  assert.ok(!text.includes(PHONE), 'the log holds no phone number in clear');
  assert.ok(!text.includes('+1 555'), 'nor a part of it');
}
