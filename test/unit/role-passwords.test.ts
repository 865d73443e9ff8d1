// Where the real parser and scanner put a password in SQL text, and what is masked when they
// cannot say exactly (more, never less).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { loadSqlParser } from '../../gateway/postgres/pg-parser.ts';
import { maskPasswords } from '../../gateway/postgres/role-passwords.ts';

before(() => loadSqlParser());

const M = '[masked:password]';

test('each way of writing a role password is found by the parser and masked as a literal', () => {
  const cases: [string, string][] = [
    ["CREATE ROLE a LOGIN PASSWORD 'p1'", `CREATE ROLE a LOGIN PASSWORD '${M}'`],
    ["create user a with password 'p1' valid until 'infinity'", `create user a with password '${M}' valid until 'infinity'`],
    ["ALTER USER a WITH ENCRYPTED PASSWORD 'SCRAM-SHA-256$4096:c2FsdA==$a:b'", `ALTER USER a WITH ENCRYPTED PASSWORD '${M}'`],
    ["ALTER ROLE a PASSWORD /* why */ -- not here\n 'p1'", `ALTER ROLE a PASSWORD /* why */ -- not here\n '${M}'`],
    ['ALTER ROLE a PASSWORD $x$p;1$x$; SELECT 1', `ALTER ROLE a PASSWORD '${M}'; SELECT 1`],
    ["ALTER ROLE a PASSWORD E'p''1'", `ALTER ROLE a PASSWORD '${M}'`],
    ["ALTER GROUP a RENAME TO b; CREATE ROLE \"Pw\" PASSWORD 'p1' IN ROLE x", `ALTER GROUP a RENAME TO b; CREATE ROLE "Pw" PASSWORD '${M}' IN ROLE x`],
    ["CREATE USER MAPPING FOR a SERVER s OPTIONS (user 'u', \"password\" 'p1')", `CREATE USER MAPPING FOR a SERVER s OPTIONS (user 'u', "password" '${M}')`],
    ["ALTER SERVER s OPTIONS (SET password 'p1', DROP password)", `ALTER SERVER s OPTIONS (SET password '${M}', DROP password)`],
    // The option's name spelt with Unicode escapes: the parser reads it as password.
    ['CREATE USER MAPPING FOR a SERVER s OPTIONS (U&"p\\0061ssword" \'p1\')', `CREATE USER MAPPING FOR a SERVER s OPTIONS (U&"p\\0061ssword" '${M}')`],
  ];
  for (const [sql, logged] of cases) assert.deepEqual(maskPasswords(sql), { text: logged, params: [] }, sql);
});

test('what the parser cannot place exactly is masked to the end of its statement or string', () => {
  const cases: [string, string, number[]][] = [
    // A Unicode-escaped string: not a plain literal.
    ["CREATE ROLE a PASSWORD U&'p!0031' UESCAPE '!' LOGIN; SELECT 1", `CREATE ROLE a PASSWORD ${M}; SELECT 1`, []],
    // A parameter: it and its bound value.
    ['CREATE ROLE a PASSWORD $2 LOGIN', `CREATE ROLE a PASSWORD ${M}`, [2]],
    // Does not parse.
    ["ALTER ROLE a PASSWORD 'p1' 'p2'; SELECT 1", `ALTER ROLE a PASSWORD ${M}; SELECT 1`, []],
    ["SELECT 1; ALTER ROLE a PASSWORD 'p1", `SELECT 1; ALTER ROLE a PASSWORD ${M}`, []],
    // A string the parser does not read into: a DO body, dynamic SQL.
    ["DO $$BEGIN EXECUTE 'ALTER ROLE a PASSWORD ''p1'''; END$$", `DO $$BEGIN EXECUTE 'ALTER ROLE a PASSWORD ${M}$$`, []],
    ["SELECT dblink_exec('alter role a password ''p1''')", `SELECT dblink_exec('alter role a password ${M}')`, []],
    // A backslash whose reading depends on standard_conforming_strings: from the first mention on.
    ["ALTER ROLE a PASSWORD 'p1\\'; SELECT 'x'", `ALTER ROLE a PASSWORD ${M}`, []],
  ];
  for (const [sql, logged, params] of cases) assert.deepEqual(maskPasswords(sql), { text: logged, params }, sql);
});

test('texts with no password option are left as written', () => {
  for (const sql of ['SELECT password FROM users WHERE id = 1', "SET password_encryption = 'scram-sha-256'", 'ALTER ROLE a PASSWORD NULL', "UPDATE t SET password_hash = 'x'", 'SELECT 1']) {
    assert.deepEqual(maskPasswords(sql), { text: sql, params: [] }, sql);
  }
});
