// The options startup parameter (PGOPTIONS) read as PostgreSQL reads it: every line of
// test/corpus/startup-options.txt, options string => settings or refusal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { asSetStatements, readStartupParameters, splitOptions } from '../../gateway/postgres/startup-settings.ts';
import { describeReading, readOptionsCorpus } from '../helpers/startup-options-corpus.ts';

test('every options string of the corpus reads as the server reads it', () => {
  const cases = readOptionsCorpus();
  assert.ok(cases.length > 60);
  for (const c of cases) {
    const got = describeReading(c.options);
    const where = `startup-options.txt:${c.line} ${JSON.stringify(c.options)}`;
    if (c.expect.startsWith('refused: ')) {
      assert.ok(got.startsWith('refused: '), `${where}: expected a refusal, got ${got}`);
      assert.ok(got.includes(c.expect.slice('refused: '.length)), `${where}: expected the reason to include "${c.expect.slice(9)}", got ${got}`);
    } else assert.equal(got, c.expect, where);
  }
});

test('words split at C whitespace only; a backslash takes the next character; a trailing one is dropped', () => {
  assert.deepEqual(splitOptions(' a\\ b\t\\\\c \\'), ['a b', '\\c', '']);
  assert.deepEqual(splitOptions('a\u00a0b'), ['a\u00a0b']);
});

test('startup parameters: options first, then the others; plain ones are recorded but not decided', () => {
  const r = readStartupParameters(new Map([
    ['user', 'u'], ['database', 'd'], ['application_name', 'psql'], ['ROLE', 'admin'], ['options', '-nc work_mem=1MB'], ['DateStyle', 'ISO'],
  ]));
  assert.equal(r.refusal, null);
  assert.deepEqual(r.settings.map((s) => [s.name, s.value, s.from]), [
    ['work_mem', '1MB', '-c'], ['application_name', 'psql', 'parameter'], ['role', 'admin', 'parameter'], ['datestyle', 'ISO', 'parameter'],
  ]);
  assert.deepEqual(r.decided.map((s) => s.name), ['work_mem', 'role']);
  assert.equal(asSetStatements(r.decided), `SET "work_mem" TO '1MB'; SET "role" TO 'admin'`);
  assert.deepEqual(r.options, [{ switch: '-n', sets: [] }, { switch: '-c', argument: 'work_mem=1MB', sets: [['work_mem', '1MB']] }]);
});

test('a startup parameter whose name is no setting name is refused', () => {
  assert.match(readStartupParameters(new Map([['user', 'u'], ['ro le', 'x']])).refusal ?? '', /"ro le" is not a setting name/);
});
