// The normalized text `text-matches` rules see, checked against the corpus (test/corpus/sql-normalize.txt):
// a lexer that drifts by one space or one lower-cased letter changes what a rule matches.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { normalizeSql } from '../../gateway/postgres/sql-normalize.ts';

const corpus = fs
  .readFileSync(new URL('../corpus/sql-normalize.txt', import.meta.url), 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '' && !l.startsWith('#'))
  .map((l) => JSON.parse(l) as [string, string]);

test('every corpus text normalizes to its recorded form', () => {
  assert.ok(corpus.length > 1000, 'the corpus is read');
  const wrong = corpus.filter(([text, want]) => normalizeSql(text) !== want).map(([text, want]) => `${JSON.stringify(text)}: got ${JSON.stringify(normalizeSql(text))}, want ${JSON.stringify(want)}`);
  assert.deepEqual(wrong, []);
});

test('a rule pattern sees keywords folded, comments gone and literals as written', () => {
  assert.equal(normalizeSql('SeLeCt PG_Terminate_Backend/**/(1)'), 'select pg_terminate_backend ( 1 )');
  assert.equal(normalizeSql("select 'PG_TERMINATE_BACKEND'"), "select 'PG_TERMINATE_BACKEND'");
  assert.equal(normalizeSql('select a.b . c'), 'select a.b.c');
});
