// Column masking follows the catalog, not today's names: a masked column stays masked after
// its column or table is renamed, through views and materialized views over it (views of
// views, expressions, unions), in whole-row values of its table, and while a catalog change
// is not read yet. Real cluster, real psql and node-postgres; the log's samples checked too.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { appCluster, policyFor, psql, readLog, startGateway, waitFor, type Cluster, type RunningGateway } from '../helpers/gateway.ts';
import { newPgClient } from '../helpers/pg.ts';

// No detectors: whatever is masked here is masked by column.
const MASKING = `masking:
  columns: ["customers.phone", card_number, "accounts.phone"]
  apply-to: [client, log]
`;
const PHONE = '+1 555 0100';
const CARD = '4111 1111 1111 1111';

let cluster: Cluster;
let gw: RunningGateway;

before(async () => {
  cluster = await appCluster();
  cluster.sql(
    `
    CREATE TABLE customers (id int PRIMARY KEY, phone text, card_number text, notes text);
    INSERT INTO customers VALUES (1, '${PHONE}', '${CARD}', 'likes tea');
    CREATE TABLE suppliers (id int, phone text);
    INSERT INTO suppliers VALUES (7, '+1 555 0199');
    CREATE TABLE renamed_early (id int, card_number text);
    INSERT INTO renamed_early VALUES (1, '${CARD}');
    CREATE VIEW v AS SELECT id, phone AS p, phone || '' AS e, notes FROM customers;
    CREATE VIEW vv AS SELECT p AS q, id FROM v;
    CREATE VIEW u AS SELECT id, notes FROM customers UNION ALL SELECT id, phone FROM suppliers UNION ALL SELECT id, phone FROM customers;
    CREATE VIEW plain AS SELECT id, notes FROM customers;
    CREATE VIEW tricky AS SELECT id AS """", notes AS ":resorigtbl", phone AS "a""b) {x :resorigcol 1}" FROM customers;
    CREATE MATERIALIZED VIEW mv AS SELECT id, phone AS ph FROM customers;
    CREATE TABLE accounts (id int, phone text) PARTITION BY RANGE (id);
    CREATE TABLE accounts_low PARTITION OF accounts FOR VALUES FROM (0) TO (100);
    INSERT INTO accounts SELECT i, '${PHONE}' FROM generate_series(1, 30) i;
    ANALYZE accounts_low;
    CREATE TABLE wrapped (id int, c customers);
    INSERT INTO wrapped SELECT 1, c FROM customers c;
    ALTER TABLE customers OWNER TO deployer; ALTER TABLE suppliers OWNER TO deployer; ALTER TABLE renamed_early OWNER TO deployer;
    ALTER VIEW v OWNER TO deployer; ALTER VIEW vv OWNER TO deployer; ALTER VIEW u OWNER TO deployer; ALTER VIEW plain OWNER TO deployer; ALTER VIEW tricky OWNER TO deployer;
    ALTER MATERIALIZED VIEW mv OWNER TO deployer; ALTER TABLE wrapped OWNER TO deployer;
    ALTER TABLE accounts OWNER TO deployer; ALTER TABLE accounts_low OWNER TO deployer;`,
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

const rows = (args: string[]): string => {
  const r = psql(gw.env, ['-q', '-A', '-t', '-F', '|', ...args]);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
};

/** The log's sample rows of the results with these columns, once `count` of them are written
 * (the log is written in batches: a result may land just after the client has it). */
async function samples(columns: string[], count: number): Promise<unknown[][][]> {
  const found = (): unknown[][][] =>
    readLog(gw.logPath())
      .filter((r) => r.type === 'result' && JSON.stringify(r.response?.columns) === JSON.stringify(columns))
      .map((r) => r.response.sample as unknown[][]);
  await waitFor(() => found().length >= count, `${count} results with columns ${columns.join(', ')} in the log`);
  return found();
}

function assertLogClean(): void {
  const text = fs.readFileSync(gw.logPath(), 'utf8');
  assert.ok(!text.includes(PHONE), 'the log holds no phone number in clear');
  assert.ok(!text.includes(CARD), 'the log holds no card number in clear');
}

/** Waits until the gateway has read the catalog again (a new table's column named like a
 * qualified pattern is masked until the catalog says which table it is in). */
async function catalogReadAgain(probe: string): Promise<void> {
  rows(['-c', `CREATE TABLE ${probe} (phone text); INSERT INTO ${probe} VALUES ('probe')`]);
  await waitFor(() => rows(['-c', `SELECT phone FROM ${probe}`]) === 'probe\n', 'a catalog read');
}

test('a column renamed before the first query, in the same statement, stays masked, also once the catalog holds the new name', async () => {
  // The gateway read the catalog at start; the rename is the first thing this run does.
  assert.equal(rows(['-c', 'ALTER TABLE renamed_early RENAME COLUMN card_number TO cn; SELECT id, cn FROM renamed_early']), '1|****1111\n');
  await catalogReadAgain('probe1');
  assert.equal(rows(['-c', 'SELECT cn, id FROM renamed_early']), '****1111|1\n');
  assert.deepEqual(await samples(['id', 'cn'], 1), [[['1', '****1111']]]);
  assert.deepEqual(await samples(['cn', 'id'], 1), [[['****1111', '1']]]);
  // COPY follows the identity too; a table renamed in the same statement is not known yet: whole.
  assert.equal(rows(['-c', 'COPY renamed_early TO STDOUT']), '1\t****1111\n');
  assert.equal(rows(['-c', 'ALTER TABLE renamed_early RENAME TO early2; COPY early2 (id, cn) TO STDOUT']), '\\N\t\\N\n');
});

test('renaming the column, then the table: the value stays masked, for psql, node-postgres and the log', async () => {
  assert.equal(rows(['-c', 'ALTER TABLE customers RENAME COLUMN phone TO tel', '-c', 'SELECT id, tel, notes FROM customers']), '1|****0100|likes tea\n');
  assert.equal(rows(['-c', 'ALTER TABLE customers RENAME TO clients', '-c', 'SELECT tel AS t, id FROM clients']), '****0100|1\n');
  // Once the catalog says `clients.tel`, no pattern names the column any more: its identity does.
  await catalogReadAgain('probe2');
  assert.equal(rows(['-c', 'SELECT tel AS t, id FROM clients']), '****0100|1\n');
  const client = newPgClient({ connectionString: gw.env.GATEWAY_APP_DB_URL! });
  await client.connect();
  try {
    // Extended protocol, text and binary results.
    assert.deepEqual((await client.query('SELECT id, tel FROM clients WHERE id = $1', [1])).rows, [{ id: 1, tel: '****0100' }]);
    assert.deepEqual((await client.query({ text: 'SELECT tel FROM clients', binary: true })).rows, [{ tel: '****0100' }]);
  } finally {
    await client.end();
  }
  // A column named like the pattern in another table is still not masked.
  assert.equal(rows(['-c', 'SELECT phone FROM suppliers']), '+1 555 0199\n');
  assert.deepEqual(await samples(['id', 'tel', 'notes'], 1), [[['1', '****0100', 'likes tea']]]);
  assert.deepEqual(await samples(['t', 'id'], 2), [[['****0100', '1']], [['****0100', '1']]]);
  assertLogClean();
});

test('views: a view column that is a masked column is masked, through views of views and materialized views', async () => {
  assert.equal(rows(['-c', 'SELECT * FROM v']), '1|****0100|****0100|likes tea\n', 'id and notes are other columns; e is an expression over phone');
  assert.equal(rows(['-c', 'SELECT * FROM vv']), '****0100|1\n');
  assert.equal(rows(['-c', 'SELECT * FROM mv']), '1|****0100\n');
  assert.equal(rows(['-c', 'SELECT q FROM (SELECT * FROM vv) s']), '****0100\n');
  assert.equal(rows(['-c', 'SELECT * FROM plain']), '1|likes tea\n', 'a view over no masked column is left alone');
  // Names that look like the stored query's own syntax do not confuse its reading.
  assert.equal(rows(['-c', 'SELECT * FROM tricky']), '1|likes tea|****0100\n');
  // A union's columns do not resolve to one column: the view reads a masked column, so all are masked.
  assert.deepEqual(rows(['-c', 'SELECT * FROM u']).split('\n').sort(), ['', '|****', '|****0100', '|****0199']);
  assert.deepEqual(await samples(['id', 'p', 'e', 'notes'], 1), [[['1', '****0100', '****0100', 'likes tea']]]);
  assertLogClean();
});

test('whole-row values of a table with a masked column are masked (NULL), and columns of that row type', async () => {
  assert.equal(rows(['-c', 'SELECT c FROM clients c', '-c', 'SELECT array_agg(c) FROM clients c', '-c', 'SELECT (c).notes, (c).tel FROM clients c']), '\n\nlikes tea|****0100\n');
  assert.equal(rows(['-c', 'SELECT id, c FROM wrapped', '-c', 'SELECT s FROM suppliers s']), '1|\n(7,"+1 555 0199")\n', 'suppliers has no masked column');
  // Ranges (and multiranges) of the row type carry it too.
  rows(['-c', 'CREATE TYPE client_range AS RANGE (subtype = clients)']);
  await catalogReadAgain('probe3');
  // (The computed `1` is masked too: the statement reads a whole row with a masked column.)
  assert.equal(rows(['-c', "SELECT 1, client_range(c, c, '[]'), client_multirange(client_range(c, c, '[]')) FROM clients c"]), '||\n');
  const client = newPgClient({ connectionString: gw.env.GATEWAY_APP_DB_URL! });
  await client.connect();
  try {
    assert.deepEqual((await client.query({ text: 'SELECT w FROM wrapped w', binary: true })).rows, [{ w: null }]);
  } finally {
    await client.end();
  }
  assertLogClean();
});

test('a view created and read in the same statement is masked whole until the catalog holds it; then by column', () => {
  assert.equal(rows(['-c', 'CREATE VIEW fresh AS SELECT id, tel AS x, notes FROM clients; SELECT * FROM fresh']), '|****0100|****\n');
  // The CREATE VIEW's ReadyForQuery waited for the catalog read: the next session reads by column.
  assert.equal(rows(['-c', 'SELECT * FROM fresh']), '1|****0100|likes tea\n');
  assertLogClean();
});

test('a view redefined in the same statement as it is read is masked whole; once read again, by column', () => {
  rows(['-c', 'CREATE VIEW shifting AS SELECT id, notes AS p FROM clients']);
  assert.equal(rows(['-c', 'SELECT * FROM shifting']), '1|likes tea\n');
  // The definition changes under a known view OID and column number: until read again, a view's
  // columns are masked whole.
  assert.equal(rows(['-c', 'CREATE OR REPLACE VIEW shifting AS SELECT id, tel AS p FROM clients; SELECT id, p FROM shifting']), '|****0100\n');
  assert.equal(rows(['-c', 'SELECT id, p FROM shifting']), '1|****0100\n');
  // COPY of a query over the view: the same, by column once read, whole while a change is unread.
  assert.equal(rows(['-c', 'COPY (SELECT id, p FROM shifting) TO STDOUT']), '1\t****0100\n');
  rows(['-c', 'CREATE VIEW shifting2 AS SELECT id, notes AS p FROM clients']);
  assert.equal(rows(['-c', 'COPY (SELECT id, p FROM shifting2) TO STDOUT']), '1\tlikes tea\n');
  assert.equal(rows(['-c', 'CREATE OR REPLACE VIEW shifting2 AS SELECT id, tel AS p FROM clients; COPY (SELECT id, p FROM shifting2) TO STDOUT']), '\\N\t****0100\n');
  assertLogClean();
});

test('one session reads a view, redefines it and reads it again: the same columns, now masked', () => {
  // q shows the masked column before and after, so both reads may compute from it alike.
  rows(['-c', 'CREATE VIEW shifting3 AS SELECT id, notes AS p, tel AS q FROM clients']);
  // The second result has the same RowDescription bytes (the view's OID, the column's number)
  // as the first, in the same session: the plan made for the first must not be reused.
  assert.equal(rows(['-c', 'SELECT id, p FROM shifting3', '-c', 'CREATE OR REPLACE VIEW shifting3 AS SELECT id, tel AS p, notes AS q FROM clients', '-c', 'SELECT id, p FROM shifting3']), '1|likes tea\n1|****0100\n');
  assertLogClean();
});

test('DDL in an open transaction: views are masked whole in every session until it commits and the catalog is read', async () => {
  rows(['-c', 'CREATE VIEW later AS SELECT id, notes AS p FROM clients']);
  assert.equal(rows(['-c', 'SELECT * FROM later']), '1|likes tea\n');
  const a = newPgClient({ connectionString: gw.env.GATEWAY_APP_DB_URL! });
  await a.connect();
  try {
    await a.query('BEGIN');
    await a.query('CREATE OR REPLACE VIEW later AS SELECT id, tel AS p FROM clients');
    // Inside the transaction, the catalog connection cannot see the new definition.
    assert.deepEqual((await a.query('SELECT id, p FROM later')).rows, [{ id: null, p: '****0100' }]);
    assert.equal(rows(['-c', 'SELECT id, notes FROM plain']), '|****\n', 'another session: views masked whole meanwhile');
    await a.query('COMMIT');
    // COMMIT's ReadyForQuery waited for the catalog read (extended protocol too).
    assert.deepEqual((await a.query('SELECT id, p FROM later WHERE id = $1', [1])).rows, [{ id: 1, p: '****0100' }]);
    assert.equal(rows(['-c', 'SELECT id, notes FROM plain']), '1|likes tea\n');
  } finally {
    await a.end();
  }
  assertLogClean();
});

test('partitions, fields of row values and statistics views do not show a masked column', () => {
  // accounts.phone is masked; accounts_low is one of its partitions.
  assert.equal(rows(['-c', 'SELECT phone FROM accounts_low WHERE id = 1', '-c', 'SELECT phone FROM accounts WHERE id = 2']), '****0100\n****0100\n');
  // Fields of a row value are computed columns: a name a pattern gives a column is masked, and
  // every one of them is, since the statement reads a whole row with a masked column.
  assert.equal(rows(['-c', 'SELECT (x.a).* FROM (SELECT a FROM accounts a WHERE id = 3) x']), '|****0100\n');
  // A function's result columns are computed: the names masked columns have had count, and a
  // function that is not built in may read any table, so all of them are masked whole.
  rows(['-c', "CREATE FUNCTION all_clients() RETURNS SETOF clients LANGUAGE sql AS 'SELECT * FROM clients'"]);
  assert.equal(rows(['-c', 'SELECT id, tel, notes FROM all_clients()']), '|****0100|****\n');
  // The planner's sample values of the column are in pg_stats.
  const stats = rows(['-c', "SELECT attname, most_common_vals, histogram_bounds FROM pg_stats WHERE tablename = 'accounts_low' AND attname = 'phone'"]);
  assert.equal(stats, 'phone||\n');
  assertLogClean();
});

test('the catalog connection is kept between reads; when the server ends it, the next read logs in again', () => {
  const catalogBackends = (): string => cluster.sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'gateway-action catalog'", 'app').trim();
  assert.equal(catalogBackends(), '1');
  cluster.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'gateway-action catalog'", 'app');
  rows(['-c', 'CREATE VIEW after_restart AS SELECT id, tel AS p, notes FROM clients']);
  assert.equal(rows(['-c', 'SELECT * FROM after_restart']), '1|****0100|likes tea\n', 'read on a new connection, not masked whole for want of one');
  assert.equal(catalogBackends(), '1');
  const errors = readLog(gw.logPath()).filter((r) => r.type === 'gateway-error');
  assert.deepEqual(errors, []);
});
