// Which statements could compute a value from a masked column (their computed result columns are
// then masked whole): read with the real parser, weighed against a catalog where customers.phone
// is masked, v.p is a view column over it, and suppliers has nothing masked.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { loadSqlParser } from '../../gateway/postgres/pg-parser.ts';
import { CursorSources, computesFromMasked, statementFacts, type ComputedCatalog } from '../../gateway/postgres/computed-columns.ts';

const relations: Record<string, { masked: boolean; maskedNames: string[] }> = {
  customers: { masked: true, maskedNames: ['phone'] },
  v: { masked: true, maskedNames: ['p'] },
  suppliers: { masked: false, maskedNames: [] },
};
const catalog: ComputedCatalog = {
  nameMasked: (n) => n.toLowerCase() === 'phone',
  relationsNamed: (_schema, name) => (relations[name] ? [relations[name]!] : name.startsWith('pg_') ? [{ masked: false, maskedNames: [] }] : []),
  userRoutine: (n) => n === 'my_fn' || !['upper', 'now', 'count', 'row_to_json', 'concat_ws', 'lower', 'generate_series', 'query_to_xml', 'max'].includes(n),
  stale: false,
  generation: 1,
};
const weigh = (sql: string): boolean => computesFromMasked(statementFacts(sql), catalog, []);

before(() => loadSqlParser());

test('statements that name, or read whole rows or stars of, a relation with a masked column', () => {
  for (const sql of [
    "SELECT phone || '' FROM customers",
    'SELECT upper("PHONE") FROM customers',
    'SELECT upper(U&"ph\\006Fne") FROM customers',
    'SELECT row_to_json(c) FROM customers c',
    'SELECT (c).id FROM customers c',
    "SELECT concat_ws(',', c.*) FROM customers c",
    "SELECT 1, 'a', 'b' UNION ALL SELECT * FROM customers",
    "SELECT x || '' FROM customers AS c(i, x)",
    'WITH t(a, b) AS (SELECT * FROM customers) SELECT b FROM t',
    'SELECT length(s::text) FROM (SELECT * FROM customers) s',
    "SELECT p || '' FROM v",
    "SELECT query_to_xml('select phone from customers', true, false, '')",
    "SELECT query_to_xml('select * from ' || 'x', true, false, '')",
    "SELECT lower(x) FROM xmltable('/a' PASSING xmlparse(document '<a/>') COLUMNS x text PATH 'phone')",
    'SELECT my_fn()',
    'CALL my_proc()',
    'UPDATE customers c SET name = name RETURNING row_to_json(c)',
    'DELETE FROM customers RETURNING customers::text',
    'SELECT upper(x) FROM not_in_catalog',
    'SELECT upper(name) FROM suppliers; SELECT phone FROM customers',
    'SELECT * FROM (SELECT',
    'FETCH ALL FROM somewhere',
    'EXECUTE unknown_statement',
    "DO $$BEGIN RAISE NOTICE '%', (SELECT c.phone FROM customers c LIMIT 1); END$$",
  ]) assert.equal(weigh(sql), true, sql);
});

test('statements that read no masked column', () => {
  for (const sql of [
    'SELECT id, upper(name) FROM customers',
    'SELECT * FROM customers',
    'SELECT c.*, upper(c.name) FROM customers c',
    'SELECT count(*), max(id) FROM customers',
    'SELECT 1 + 1',
    'SELECT now()',
    'SELECT row_to_json(s) FROM suppliers s',
    'SELECT upper(relname) FROM pg_class',
    "WITH t AS (SELECT * FROM customers) SELECT * FROM t",
    'SELECT * FROM generate_series(1, 3)',
    'EXPLAIN SELECT upper(phone) FROM customers',
    'INSERT INTO customers (id, name) VALUES (1, $1) RETURNING *',
    "DO $$BEGIN RAISE NOTICE 'hello'; END$$",
  ]) assert.equal(weigh(sql), false, sql);
});

test('a FETCH is weighed by the DECLARE that opened the cursor, until something could reopen it unseen', () => {
  const cursors = new CursorSources();
  const send = (sql: string): boolean => {
    const facts = statementFacts(sql);
    return computesFromMasked(facts, catalog, cursors.sent(facts));
  };
  assert.equal(send('DECLARE a CURSOR FOR SELECT upper(name) FROM customers'), false);
  assert.equal(send("DECLARE b CURSOR FOR SELECT phone || '' FROM customers"), true);
  assert.equal(send('FETCH 10 FROM a'), false);
  assert.equal(send('FETCH 10 FROM b'), true);
  assert.equal(send('FETCH 10 FROM c'), true, 'never declared here');
  assert.equal(send('SELECT 1'), false);
  assert.equal(send('FETCH 10 FROM a'), true, 'a statement that is not cursor control ran since');
  assert.equal(send('BEGIN; DECLARE d CURSOR FOR SELECT upper(name) FROM customers; FETCH ALL d'), false);
});

test('an EXECUTE is weighed by the prepared statement it runs', () => {
  const facts = statementFacts('EXECUTE p(1)');
  assert.equal(computesFromMasked(facts, catalog, [{ facts: statementFacts('PREPARE p AS SELECT upper(name) FROM customers WHERE id = $1'), cursor: false }]), false);
  assert.equal(computesFromMasked(facts, catalog, [{ facts: statementFacts("PREPARE p AS SELECT phone || '' FROM customers"), cursor: false }]), true);
  assert.equal(computesFromMasked(facts, catalog, [null]), true);
  assert.equal(computesFromMasked(facts, catalog, [{ facts: statementFacts('EXECUTE q'), cursor: false }]), true, 'what that one runs is not resolved again');
});

test('texts that differ only in their numbers share one reading; a different string or name never does', () => {
  const a = statementFacts('SELECT abalance FROM pgbench_accounts WHERE aid = 17');
  assert.equal(statementFacts('SELECT abalance FROM pgbench_accounts WHERE aid = 912345'), a, 'the same shape is read once');
  // The words of a string count (dynamic SQL), so strings are part of the key.
  const x = statementFacts("SELECT query_to_xml('select 1 from t', true, true, '')");
  const y = statementFacts("SELECT query_to_xml('select ssn from customers', true, true, '')");
  assert.notEqual(x, y);
  assert.ok(y.words.includes('ssn') && !x.words.includes('ssn'));
  // A digit inside a name is part of the name.
  assert.notDeepEqual(statementFacts('SELECT * FROM t1').relations, statementFacts('SELECT * FROM t2').relations);
  // A text the plain lexer cannot vouch for (a comment) is read on its own.
  assert.ok(statementFacts('SELECT phone FROM customers -- 1').identifiers.includes('phone'));
});
