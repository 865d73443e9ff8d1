// The protocol-neutral evidence pieces on their own: the one totals count (held, approved,
// denied after hold, pending; verdict and result in either order), renderer lookup and code
// fences, terminal recordings (chunks, UTF-8 cut between reads, asciicast), and formats.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TotalsTally, allowedOf, notApprovedOf } from '../../gateway/evidence/log-totals.ts';
import { fenced, genericRenderer, rendererSet, type Renderer } from '../../gateway/evidence/renderers.ts';
import { postgresRenderer } from '../../gateway/postgres/renderer.ts';
import { TerminalRecording } from '../../gateway/core/terminal-recording.ts';
import { addTerminal, asciicast, commandShape, resultShape } from '../../gateway/evidence/record-shapes.ts';
import { SessionLogWriter, LOG_FORMAT } from '../../gateway/evidence/log-writer.ts';
import { verifyChainFile } from '../../gateway/evidence/log-verifier.ts';
import { CheckpointSigner } from '../../gateway/evidence/checkpoint.ts';
import { tempDir } from '../helpers/gateway.ts';

type Rec = Record<string, unknown>;

function tally(records: Rec[]) {
  const t = new TotalsTally();
  t.add({ type: 'run-start', run: 'r', targets: [{ name: 'db' }, { name: 'vm' }] });
  t.add({ type: 'session-open', session: 's1', target: 'db' });
  t.add({ type: 'session-open', session: 's2', target: 'vm' });
  for (const r of records) t.add(r);
  return t.totals;
}
const cmd = (id: string, target = 'db'): Rec => ({ type: 'command', session: id.split('.')[0], command: id, target });
const req = (id: string): Rec => ({ type: 'approval-request', session: id.split('.')[0], command: id, id: `q${id}` });
const verdict = (id: string, outcome: string, by = 'local:alice'): Rec => ({ type: 'approval', session: id.split('.')[0], command: id, id: `q${id}`, outcome, by });
const result = (id: string, status: string): Rec => ({ type: 'result', session: id.split('.')[0], command: id, status });

test('totals: a command held and then denied is denied, held and not approved, whichever of verdict and result comes first', () => {
  const t = tally([
    cmd('s1.1'), result('s1.1', 'ok'),
    cmd('s1.2'), result('s1.2', 'denied'), // denied by a rule
    cmd('s1.3'), req('s1.3'), verdict('s1.3', 'approved'), result('s1.3', 'ok'),
    cmd('s1.4'), req('s1.4'), verdict('s1.4', 'denied'), result('s1.4', 'denied'), // a reviewer
    cmd('s1.5'), req('s1.5'), result('s1.5', 'denied'), verdict('s1.5', 'denied', 'timeout'), // result first
    cmd('s2.1', 'vm'), req('s2.1'), verdict('s2.1', 'denied', 'client'), result('s2.1', 'error'), // the client left
    cmd('s2.2', 'vm'), req('s2.2'), // no verdict yet
  ]);
  assert.deepEqual(
    { commands: t.commands, denied: t.denied, held: t.held, approved: t.approved, deniedAfterHold: t.deniedAfterHold, pending: t.pending, errors: t.errors },
    { commands: 7, denied: 4, held: 5, approved: 1, deniedAfterHold: 3, pending: 1, errors: 1 },
  );
  assert.equal(allowedOf(t), 1);
  assert.equal(notApprovedOf(t), 4);
  assert.deepEqual(Object.fromEntries(t.approvedBy), { 'local:alice': 1 });
  const db = t.byTarget.get('db')!;
  const vm = t.byTarget.get('vm')!;
  assert.deepEqual([db.commands, db.denied, db.held, db.approved, db.deniedAfterHold, db.pending], [5, 3, 3, 1, 2, 0]);
  assert.deepEqual([vm.commands, vm.denied, vm.held, vm.approved, vm.deniedAfterHold, vm.pending], [2, 1, 2, 0, 1, 1]);
  assert.deepEqual([...t.byTarget.keys()], ['db', 'vm'], 'the run-start targets, in order');
});

test('renderers: the longest kind prefix wins; a kind nobody claims is drawn generically with every field', () => {
  const refined: Renderer = { ...postgresRenderer, kinds: 'pg.function-', searchLabel: 'function call' };
  const set = rendererSet([postgresRenderer, refined]);
  assert.equal(set.for('pg.query'), postgresRenderer);
  assert.equal(set.for('pg.function-call'), refined);
  assert.equal(set.for('ssh.exec'), genericRenderer);
  assert.equal(set.for(''), genericRenderer);
  assert.equal(set.for(undefined), genericRenderer);
  assert.equal(set.searchLabel(['pg.query', 'pg.query']), 'SQL');
  assert.equal(set.searchLabel(['pg.query', 'warp.jump']), 'SQL or text');
  assert.equal(rendererSet([postgresRenderer]).searchLabel([]), 'SQL', 'no commands: what the registered renderers search');
  assert.equal(rendererSet([]).searchLabel([]), 'text');
  assert.equal(postgresRenderer.count(1), '1 row');
  assert.equal(postgresRenderer.line({ text: 'SELECT 1\n  FROM t' }), 'SELECT 1 FROM t');
  assert.equal(postgresRenderer.markdown({ kind: 'pg.query', text: 'DROP TABLE t' }), '```sql\nDROP TABLE t\n```');
  // A text with a fence of its own cannot close the block early.
  assert.equal(fenced('a ``` b ```` c', 'sh'), '`````sh\na ``` b ```` c\n`````');
  assert.equal(genericRenderer.markdown({ kind: 'warp.jump', text: 'engage' }), 'kind `warp.jump`:\n\n```\nengage\n```');
  assert.equal(genericRenderer.line({ kind: 'warp.jump', text: 'engage\nnow' }), '[warp.jump] engage now');
});

test('record shapes: a @2 command and result read into the @3 shape; unknown members are kept apart', () => {
  const v2 = 'gateway-action/session-log@2';
  const c = commandShape({ type: 'command', command: 's1.1', text: 'SELECT $1', protocol: 'extended', params: ['7'], portal: 'p', statements: [{ classes: ['select'], tables: ['t'] }], odd: 1 }, v2);
  assert.deepEqual(c, { kind: 'pg.query', text: 'SELECT $1', facts: [{ classes: ['select'], tables: ['t'] }], details: { protocol: 'extended', params: ['7'], portal: 'p' }, unclassified: null, extra: { odd: 1 } });
  assert.equal(commandShape({ text: '-- function call oid 1', protocol: 'function-call' }, v2).kind, 'pg.function-call');
  const r = resultShape({ type: 'result', status: 'ok', rows: 2, tags: ['SELECT 2'], transaction: 'I', response: { columns: ['a'], sample: [['1'], ['2']] } }, v2);
  assert.deepEqual([r.count, r.details, r.sample], [2, { tags: ['SELECT 2'], transaction: 'I' }, { kind: 'rows', columns: ['a'], rows: [['1'], ['2']] }]);
  // @3: a command without a kind is not guessed to be PostgreSQL.
  assert.equal(commandShape({ text: 'x', protocol: 'simple' }, LOG_FORMAT).kind, '');
  assert.deepEqual(resultShape({ status: 'ok', count: 3, response: { text: 'hi', text_bytes: 2 } }, LOG_FORMAT).sample, { kind: 'text', text: 'hi', bytes: 2 });
});

test('a terminal recording: chunks by size, a UTF-8 character cut between reads stays whole, asciicast events in seconds', () => {
  const written: Rec[] = [];
  const rec = new TerminalRecording((f) => written.push(f), { width: 100, height: 30 }, { maxChars: 8, maxDelayMs: 60_000 });
  const euro = Buffer.from('€', 'utf8');
  rec.input('ls\r');
  rec.output(Buffer.concat([Buffer.from('a'), euro.subarray(0, 1)]));
  rec.output(euro.subarray(1));
  rec.resize(120, 40);
  rec.output('0123456789');
  rec.output('tail');
  rec.close();
  assert.deepEqual(written.map((w) => w.chunk), [0, 1, 2]);
  assert.deepEqual([written[0]!.width, written[0]!.height, written[1]!.width], [100, 30, undefined]);
  const events = written.flatMap((w) => w.events as [number, string, string][]);
  assert.deepEqual(events.map((e) => [e[1], e[2]]), [['i', 'ls\r'], ['o', 'a'], ['o', '€'], ['r', '120x40'], ['o', '0123456789'], ['o', 'tail']]);
  assert.ok(events.every((e) => Number.isInteger(e[0]) && e[0] >= 0));
  assert.deepEqual(rec.summary(), { chunks: 3, events: 6, duration_ms: events.at(-1)![0] });
  let sample = addTerminal(null, written[0]!);
  for (const w of written.slice(1)) sample = addTerminal(sample, w);
  assert.equal(sample.kind, 'terminal');
  const cast = asciicast(sample as Extract<typeof sample, { kind: 'terminal' }>).trimEnd().split('\n').map((l) => JSON.parse(l) as unknown);
  assert.deepEqual(cast[0], { version: 2, width: 100, height: 30 });
  assert.deepEqual(cast.slice(1).map((e) => (e as unknown[]).slice(1)), events.map((e) => [e[1], e[2]]));
  assert.equal((cast[1] as number[])[0], events[0]![0] / 1000);
});

test('a log of a format this version does not know is unreadable, naming the formats it reads', async () => {
  const w = SessionLogWriter.create(tempDir(), 'future.jsonl');
  const signer = new CheckpointSigner();
  w.signWith('r1', signer, { everyRecords: 0, everyMs: 0 });
  w.append('run-start', { format: 'gateway-action/session-log@4', run: 'r1', key: { alg: 'EdDSA', jwk: signer.jwk, thumbprint: signer.thumbprint }, attestation: 'unattested' });
  w.close('run-end', { run: 'r1' });
  const r = await verifyChainFile(w.path);
  assert.equal(r.status, 'unreadable');
  assert.match(r.problem!, /format is gateway-action\/session-log@4; this verifier reads gateway-action\/session-log@2, gateway-action\/session-log@3/);
});
