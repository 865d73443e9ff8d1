// The statement registry's keys and bounds: names as the server keys them (first 63 bytes, or
// unknown when the gateway cannot know the server's bytes), and what it keeps for a client that
// never lets a block or transaction end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_BOUND_NAMES, MAX_KEPT_SKIPPED, serverKey, StatementRegistry } from '../../gateway/postgres/statement-registry.ts';
import type { Portal } from '../../gateway/postgres/response-queue.ts';

const portal = (): Portal => ({ statement: null, params: [], resultFormats: [], columns: null });
const internals = (r: StatementRegistry): { pending: unknown[]; bound: Map<string, Set<unknown>> } => r as unknown as { pending: unknown[]; bound: Map<string, Set<unknown>> };

test('names are keyed by the first 63 bytes the server compares', () => {
  const a63 = 'a'.repeat(63);
  assert.equal(serverKey(`${a63}x`, false), a63);
  assert.equal(serverKey('short', false), 'short');
  assert.equal(serverKey('café', true), 'café');
  // Not ASCII while an encoding is not UTF8, or bytes that were not UTF-8: never matched.
  assert.equal(serverKey('café', false), null);
  assert.equal(serverKey('\ufffd', true), null);
  // Cut inside a character: a key no SQL identifier (cut at a character boundary) equals.
  const cut = serverKey(`${'b'.repeat(62)}éx`, true)!;
  assert.equal(cut, serverKey(`${'b'.repeat(62)}éy`, true));
  assert.notEqual(cut, 'b'.repeat(62));
});

test('a block the server discards keeps at most MAX_KEPT_SKIPPED changes, then every name is unknown', () => {
  const r = new StatementRegistry();
  for (let i = 0; i < 100_000; i++) r.skip(r.expect('statement', `s${i}`, { text: 'SELECT 1', paramTypes: [], columns: null }));
  assert.ok(internals(r).pending.length <= MAX_KEPT_SKIPPED + 2, `${internals(r).pending.length} changes kept`);
  assert.ok('unknown' in r.statement('s5'));
  r.nextBlock();
  assert.equal(internals(r).pending.length, 0);
});

test('Binds of ever new names in one transaction keep at most MAX_BOUND_NAMES names, then FETCH of any name is unclassified', () => {
  const r = new StatementRegistry();
  for (let i = 0; i < 100_000; i++) r.confirm(r.expect('portal', `p${i}`, portal()));
  assert.ok(internals(r).bound.size <= MAX_BOUND_NAMES + 1, `${internals(r).bound.size} names kept`);
  assert.ok(r.fetchHazard('p5'));
  assert.ok(r.fetchHazard('never_bound'));
  // Repeated Binds of one name keep only the unanswered ones.
  const one = new StatementRegistry();
  for (let i = 0; i < 10_000; i++) one.confirm(one.expect('portal', 'p', portal()));
  assert.ok(internals(one).bound.get('p')!.size <= 1);
  // The transaction ended: no portal a Bind made is left.
  r.transactionIdle();
  assert.equal(r.fetchHazard('p5'), null);
  assert.equal(internals(r).bound.size, 0);
});
