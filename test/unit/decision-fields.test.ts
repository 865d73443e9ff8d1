// What a PostgreSQL command record says about its decision: the facts text is made once per
// cached classification, and a statement that shares a cached one's arrays but not its classes
// (a prepared statement run by a protocol Bind) still gets its own facts, in either order.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalJson } from '../../gateway/evidence/canonical-json.ts';
import { decisionFields, judge, judgePrepared, policyContext } from '../../gateway/postgres/enforce.ts';
import { decisionRecord, type Decision } from '../../gateway/policy/engine.ts';
import { loadSqlParser } from '../../gateway/postgres/pg-parser.ts';
import { parsePolicy } from '../../gateway/adapters.ts';

before(() => loadSqlParser());

const policy = parsePolicy(
  `version: 1
targets:
  db: { kind: postgres, host: 127.0.0.1, port: 5432, database: app, user: u, auth: { password-env: P }, tls: disable }
rules:
  - { name: reads, when: { sql: [select] }, action: allow }
  - { name: no-prepared-runs, when: { sql: [execute] }, action: deny, reason: not here }
default: deny
`,
  'policy.yml',
);
const ctx = policyContext(policy.rules, {}, 'db');

test('facts and decision are the canonical JSON of what was decided, for cached and prepared runs in either order', () => {
  const fields = (j: ReturnType<typeof judge>): { decision: unknown; facts: unknown } => JSON.parse(canonicalJson(decisionFields(j)));
  const first = judge(ctx, 'SELECT a FROM t WHERE id = 1', new Map());
  const again = judge(ctx, 'SELECT a FROM t WHERE id = 2', new Map());
  assert.deepEqual(fields(first), { decision: { action: 'allow', rule: 'reads' }, facts: [{ classes: ['select'], tables: ['t'] }] });
  assert.equal(again.statements![0]!.tables, first.statements![0]!.tables, 'the second text is answered from the cache');
  for (let round = 0; round < 2; round++) {
    const prepared = judgePrepared(ctx, again.statements![0]!);
    assert.deepEqual(fields(prepared), {
      decision: { action: 'deny', matched: ['reads', 'no-prepared-runs'], reason: 'not here', rule: 'no-prepared-runs' },
      facts: [{ classes: ['execute', 'select'], tables: ['t'] }],
    });
    assert.deepEqual(fields(judge(ctx, `SELECT a FROM t WHERE id = ${round + 3}`, new Map())).facts, [{ classes: ['select'], tables: ['t'] }]);
  }
});

test('a command of several statements writes the facts of each, in order', () => {
  const j = judge(ctx, 'SELECT a FROM t WHERE id = 1; SELECT b FROM u', new Map());
  const fields = JSON.parse(canonicalJson(decisionFields(j))) as { facts: unknown };
  assert.deepEqual(fields.facts, [{ classes: ['select'], tables: ['t'] }, { classes: ['select'], tables: ['u'] }]);
});

test('a decision whose rule and reason hold quotes, escapes and non-ASCII is written exactly as canonical JSON writes it', () => {
  const odd = 'r\u00e9gle "x" \\ \u2028 \u{1F600} \u0007';
  for (const d of [
    { action: 'deny', rule: odd, reason: odd, matched: [odd, 'other'] },
    { action: 'allow', rule: odd, reason: 'ignored for allow', matched: [odd] },
    { action: 'approve', rule: 'a', reason: odd, matched: ['b'] },
  ] as Decision[]) {
    const expected = { action: d.action, ...(d.matched.length > 1 || d.matched[0] !== d.rule ? { matched: d.matched } : {}), ...(d.action !== 'allow' ? { reason: d.reason } : {}), rule: d.rule };
    assert.equal(decisionRecord(d).json, canonicalJson(expected));
    assert.deepEqual(JSON.parse(decisionRecord(d).json), expected);
  }
});
