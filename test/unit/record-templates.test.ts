// The command and result records are written from templates (gateway/core/record-templates.ts);
// each must be byte-identical to canonicalJson of the same record, whichever optional members it
// has, or `verify` would reject the log.
import test from 'node:test';
import assert from 'node:assert/strict';
import { commandRecord, resultRecord, type CommandMembers, type ResultMembers } from '../../gateway/core/record-templates.ts';
import { canonicalJson, jsonString } from '../../gateway/evidence/canonical-json.ts';
import { resultDetails } from '../../gateway/postgres/backend-tracker.ts';
import type { Outcome } from '../../gateway/core/recorder.ts';

const PREV = 'ab'.repeat(32);
const TIME = '2026-12-04T12:00:00.000Z';

function* subsets<T>(items: T[]): Generator<T[]> {
  for (let mask = 0; mask < 1 << items.length; mask++) yield items.filter((_, i) => mask & (1 << i));
}

test('a command record from its template equals the canonical JSON of the same record, for every combination of optional members', () => {
  const optional = ['decision', 'details', 'facts', 'long', 'unclassified'] as const;
  let n = 0;
  for (const set of subsets([...optional])) {
    const has = (k: string): boolean => (set as string[]).includes(k);
    const m: CommandMembers = {
      command: 's1.7',
      decision: has('decision') ? { rule: 'no-ddl', action: 'deny', reason: 'ddl "on" main\n', matched: ['sql'] } : undefined,
      details: has('details') ? { protocol: 'extended', phase: 'bind', params: ['a', null, { format: 'binary', hex: '00ff' }], statement: 'S_1' } : undefined,
      facts: has('facts') ? [{ sql: ['select'], tables: ['public.t'] }, {}] : undefined,
      kind: 'pg.query',
      session: 's1',
      target: 'app-db',
      text: 'SELECT \'é\u2028\\u0000"\' -- \u{1F600}',
      textBytes: has('long') ? 70000 : undefined,
      textSha256: has('long') ? 'cd'.repeat(32) : undefined,
      unclassified: has('unclassified') ? 'a FETCH of a protocol portal' : undefined,
    };
    const reference: Record<string, unknown> = {
      session: m.session, command: m.command, target: m.target, kind: m.kind, text: m.text,
      decision: m.decision, details: m.details, facts: m.facts, unclassified: m.unclassified,
      text_bytes: m.textBytes, text_sha256: m.textSha256, type: 'command', seq: 41, prev: PREV, time: TIME,
    };
    assert.equal(commandRecord(m, 41, PREV, TIME), canonicalJson(reference), `members: ${set.join(', ') || 'none'}`);
    n++;
  }
  assert.equal(n, 32);
});

test('a result record from its template equals the canonical JSON of the same record, for every combination of optional members', () => {
  const optional = ['count', 'details', 'error', 'input', 'inputText', 'masked', 'reason', 'rule', 'response', 'columns', 'text', 'recording'] as const;
  let n = 0;
  for (const set of subsets([...optional])) {
    const has = (k: string): boolean => (set as string[]).includes(k);
    if ((has('columns') || has('text') || has('recording')) && !has('response')) continue;
    if (has('text') && has('recording')) continue;
    if (has('inputText') && !has('input')) continue;
    const outcome: Outcome = {
      status: has('rule') ? 'denied' : has('error') ? 'error' : 'ok',
      ...(has('count') ? { count: 3 } : {}),
      ...(has('error') ? { error: { severity: 'ERROR', code: '42P01', message: 'relation "x" does not exist' } } : {}),
      ...(has('details') ? { details: { transaction: 'I', tags: ['SELECT 3'], suspended: true } } : {}),
      ...(has('rule') ? { rule: 'no-ddl' } : {}),
      ...(has('reason') ? { reason: 'why\tnot' } : {}),
    };
    const m: ResultMembers = {
      command: 's2.1',
      durationUs: 1234,
      outcome,
      response: has('response') ? {
        bytes: 99,
        sha256: 'ef'.repeat(32),
        columns: has('columns') ? ['a', 'b"c'] : null,
        sample: has('text') || has('recording') ? null : [['1', null, { format: 'binary', hex: '01', bytes: 9 }]],
        text: has('text') ? 'out\u0001put' : null,
        textBytes: 8,
        recording: has('recording') ? { events: 3, bytes: 12, width: 80, height: 24 } : null,
      } : null,
      masked: has('masked') ? { values: 2, detectors: ['email', 'jwt'] } : null,
      input: has('input') ? { bytes: 5, sha256: '12'.repeat(32), ...(has('inputText') ? { text: '{"a":"\u2028"}', textBytes: 5 } : {}) } : null,
      session: 's2',
    };
    const r = m.response;
    const reference: Record<string, unknown> = {
      session: m.session, command: m.command, duration_us: m.durationUs, ...outcome,
      ...(r ? { response: { bytes: r.bytes, sha256: r.sha256, ...(r.columns ? { columns: r.columns } : {}), ...(r.text !== null ? { text: r.text, text_bytes: r.textBytes } : r.recording ? { recording: r.recording } : { sample: r.sample }) } } : {}),
      ...(m.masked ? { masked: m.masked } : {}),
      ...(m.input ? { input: { bytes: m.input.bytes, sha256: m.input.sha256, ...(m.input.text !== undefined ? { text: m.input.text, text_bytes: m.input.textBytes } : {}) } } : {}),
      type: 'result', seq: 7, prev: PREV, time: TIME,
    };
    assert.equal(resultRecord(m, 7, PREV, TIME), canonicalJson(reference), `members: ${set.join(', ') || 'none'}`);
    n++;
  }
  assert.ok(n > 300, `${n} combinations`);
});

test('a template refuses a number JSON cannot hold, as canonicalJson does', () => {
  const m: ResultMembers = { command: 's1.1', durationUs: Number.NaN, outcome: { status: 'ok' }, response: null, masked: null, input: null, session: 's1' };
  assert.throws(() => resultRecord(m, 0, PREV, TIME), /no representation for NaN/);
});

test('jsonString writes every string as JSON.stringify does', () => {
  const cases = ['', 'plain text 123', 'a"b', 'back\\slash', 'tab\there', 'nl\n', '\u0000\u001f\u007f', 'é', '\u2028\u2029', '\u{1F600}', '\ud800', 'x\udfffy', '<script>'];
  for (const s of cases) assert.equal(jsonString(s), JSON.stringify(s), JSON.stringify(s));
});

test("PostgreSQL's result details, built directly, equal canonicalJson of the same object", () => {
  for (const tags of [[], ['SELECT 1'], ['BEGIN', 'INSERT 0 3', 'COMMIT'], ['weird "tag"\n']]) {
    for (const transaction of ['I', 'T', 'E'] as const) {
      for (const suspended of [false, true]) {
        const object = { tags, transaction, ...(suspended ? { suspended: true } : {}) };
        assert.equal(resultDetails(tags, transaction, suspended).json, canonicalJson(object));
        assert.equal(canonicalJson({ details: resultDetails(tags, transaction, suspended) }), canonicalJson({ details: object }));
      }
    }
  }
});
