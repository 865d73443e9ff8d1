// The classification cache answers only for texts whose shape vouches for their structure: the
// same statement with other literals. Anything a lexer could read two ways is classified afresh.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { classifyCached, literalShape } from '../../gateway/postgres/classification-cache.ts';
import { classify } from '../../gateway/postgres/sql-classifier.ts';
import { loadSqlParser } from '../../gateway/postgres/pg-parser.ts';

before(() => loadSqlParser());

test('literals are replaced; everything else is kept exactly', () => {
  const L = '\u0000';
  assert.equal(literalShape('SELECT abalance FROM pgbench_accounts WHERE aid = 123;'), `SELECT abalance FROM pgbench_accounts WHERE aid = ${L};`);
  assert.equal(literalShape("UPDATE t SET v = 'it''s', w = 1.5e-3 WHERE \"Id\" = 7"), `UPDATE t SET v = ${L}, w = ${L} WHERE "Id" = ${L}`);
  assert.equal(literalShape('SELECT * FROM t WHERE a = $1 AND b = $12'), 'SELECT * FROM t WHERE a = $1 AND b = $12', 'parameters are kept');
  assert.notEqual(literalShape("SELECT x FROM t WHERE v = 'a'"), literalShape('SELECT x FROM t WHERE v = ?'), 'a literal is not the ? operator');
  assert.equal(literalShape('SELECT "it\'s" FROM t1'), 'SELECT "it\'s" FROM t1', 'a quote inside a quoted identifier is not a string');
});

test('the shape keeping strings differs from the plain one exactly when the text has a string, whichever is asked first', () => {
  const L = '\u0000';
  for (const [text, plain, keeping] of [
    ["SELECT x FROM t WHERE v = 'a' AND n = 1", `SELECT x FROM t WHERE v = ${L} AND n = ${L}`, `SELECT x FROM t WHERE v = 'a' AND n = ${L}`],
    ['SELECT x FROM t WHERE n = 1', `SELECT x FROM t WHERE n = ${L}`, `SELECT x FROM t WHERE n = ${L}`],
    ["SELECT 'only'", `SELECT ${L}`, "SELECT 'only'"],
    ['SELECT x FROM t', 'SELECT x FROM t', 'SELECT x FROM t'],
  ] as const) {
    // Asked in both orders and twice each: the shape of the last text is remembered.
    assert.equal(literalShape(text), plain, text);
    assert.equal(literalShape(text, true), keeping, text);
    assert.equal(literalShape(text), plain, text);
    assert.equal(literalShape(` ${text}`, true), ` ${keeping}`, text);
    assert.equal(literalShape(` ${text}`), ` ${plain}`, text);
    assert.equal(literalShape(` ${text}`, true), ` ${keeping}`, text);
  }
  assert.equal(literalShape("SELECT E'x'", true), null);
  assert.equal(literalShape("SELECT E'x'"), null);
});

test('texts a second lexer could read differently have no shape', () => {
  for (const t of [
    "SELECT E'a\\\\' ; DROP TABLE t; --'", // backslash escapes
    "SELECT 'a\\' ; DROP TABLE t; --'", // standard_conforming_strings off reads this differently
    'SELECT $$x$$', 'SELECT $tag$x$tag$', 'SELECT $1a', 'SELECT 1 -- comment', 'SELECT /* c */ 1', "SELECT U&'d\\0061t'", "SELECT x'1f'", "SELECT n'x'",
    'EXPLAIN (ANALYZE 1) DELETE FROM t', 'PREPARE p AS DELETE FROM t', 'EXECUTE p', 'DEALLOCATE p',
    'SELECT 1.', 'SELECT 1..5', 'SELECT 1e', 'SELECT 1abc', 'SELECT t.1', "SELECT 'unterminated", 'SELECT "unterminated',
    'SELECT \'é\'', 'SELECT 1\u00a0',
    'DELETE FROM public.U&"ac!0063ounts" UESCAPE \'!\' WHERE id = 1', 'SELECT a & b FROM t',
  ]) assert.equal(literalShape(t), null, t);
});

test('a cached classification matches a fresh one, statement text and normalized form included', () => {
  const texts = ['SELECT abalance FROM pgbench_accounts WHERE aid = 1;', 'SELECT abalance FROM pgbench_accounts WHERE aid = 99999;', "  DELETE FROM t WHERE v = 'x' ;  ", "  DELETE FROM t WHERE v = 'yy''z' ;  "];
  for (const t of texts) {
    const cached = classifyCached(t, new Map(), { normalize: true });
    assert.deepEqual(cached, classify(t, new Map(), { normalize: true }), t);
  }
});

test('statements that differ outside literals never share an entry', () => {
  classifyCached('DELETE FROM t WHERE id = 1', new Map(), {});
  const unbounded = classifyCached('DELETE FROM t', new Map(), {});
  assert.ok(unbounded.ok && unbounded.statements[0]!.classes.includes('delete-without-where'));
  classifyCached("SELECT 1 FROM t WHERE v = 'a'", new Map(), {});
  const two = classifyCached("SELECT 1 FROM t WHERE v = 'a'; DROP TABLE t", new Map(), {});
  assert.ok(two.ok && two.statements.length === 2 && two.statements[1]!.classes.includes('drop'));
});
