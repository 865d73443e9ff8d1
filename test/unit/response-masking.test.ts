// Masking rewrites server messages wherever the chunk boundaries fall: the client receives
// exactly the masked stream, with correct lengths, for every way the bytes can be split, and
// the response digest in the log covers the bytes the client received.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BackendTracker } from '../../gateway/postgres/backend-tracker.ts';
import { ResponseMasking } from '../../gateway/postgres/response-masking.ts';
import { Masker } from '../../gateway/masking/engine.ts';
import { Recorder } from '../../gateway/core/recorder.ts';
import { SessionLogWriter } from '../../gateway/evidence/log-writer.ts';
import { B, encodeDataRow, encodeNoticeFields, encodeReadyForQuery } from '../../gateway/postgres/codec/backend.ts';
import { MessageWriter } from '../../gateway/postgres/codec/reader.ts';
import { newRun } from '../../gateway/postgres/response-queue.ts';
import { ColumnMasking } from '../../gateway/postgres/column-identity.ts';

const masker = new Masker({ columns: ['email', 'customers.phone'], detectors: ['email', 'credit-card'], applyTo: { client: true, log: true } });

function rowDescription(cols: [name: string, tableOid: number, typeOid: number][]): Buffer {
  const w = new MessageWriter().int16(cols.length);
  cols.forEach(([name, table, type], i) => w.cstring(name).int32(table).int16(i + 1).int32(type).int16(-1).int32(-1).int16(0));
  return w.finish(B.RowDescription);
}
const text = (s: string | null): Buffer | null => (s === null ? null : Buffer.from(s));
const commandComplete = (tag: string): Buffer => new MessageWriter().cstring(tag).finish(B.CommandComplete);

// customers (OID 100) has phone masked; suppliers (OID 200) does not.
const lookup = new ColumnMasking(masker);
lookup.update({
  relations: new Map([
    [100, { schema: 'public', name: 'customers', kind: 'r', columns: new Map([[1, { name: 'email', typeOid: 25 }], [2, { name: 'phone', typeOid: 25 }]]) }],
    [200, { schema: 'public', name: 'suppliers', kind: 'r', columns: new Map([[3, { name: 'phone2', typeOid: 25 }]]) }],
  ]),
  types: new Map(),
  viewOrigins: new Map(),
  viewDependencies: new Map(),
  parents: new Map(),
});
const server = Buffer.concat([
  rowDescription([['email', 100, 25], ['phone', 100, 25], ['phone2', 200, 25], ['note', 0, 1043], ['n', 0, 23]]),
  encodeDataRow([text('alice@example.com'), text('+1 555 0100'), text('+1 555 0199'), text('card 4111 1111 1111 1111'), text('7')]),
  encodeDataRow([null, text('x'.repeat(3000)), text('y'), text('nothing here'), text('8')]),
  encodeNoticeFields(B.NoticeResponse, [['S', 'NOTICE'], ['V', 'NOTICE'], ['C', '00000'], ['M', 'mail bob@example.org']]),
  commandComplete('SELECT 2'),
  // A second statement's result that masks nothing, then a third that does again.
  rowDescription([['n', 0, 23]]),
  encodeDataRow([text('5')]),
  commandComplete('SELECT 1'),
  rowDescription([['email', 100, 25]]),
  encodeDataRow([text('zed@example.com')]),
  commandComplete('SELECT 1'),
  encodeReadyForQuery('I'),
]);
const expected = Buffer.concat([
  rowDescription([['email', 100, 25], ['phone', 100, 25], ['phone2', 200, 25], ['note', 0, 1043], ['n', 0, 23]]),
  encodeDataRow([text('a***@***.com'), text('****0100'), text('+1 555 0199'), text('card ****1111'), text('7')]),
  encodeDataRow([null, text('****'), text('y'), text('nothing here'), text('8')]),
  encodeNoticeFields(B.NoticeResponse, [['S', 'NOTICE'], ['V', 'NOTICE'], ['C', '00000'], ['M', 'mail b***@***.org']]),
  commandComplete('SELECT 2'),
  rowDescription([['n', 0, 23]]),
  encodeDataRow([text('5')]),
  commandComplete('SELECT 1'),
  rowDescription([['email', 100, 25]]),
  encodeDataRow([text('z***@***.com')]),
  commandComplete('SELECT 1'),
  encodeReadyForQuery('I'),
]);

function run(splits: number[]): { out: Buffer; log: Record<string, any>[] } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-mask-'));
  const writer = SessionLogWriter.create(dir, 'x.jsonl');
  const rec = new Recorder(writer, { sampleRows: 5 }).openSession('db', 'postgres', {});
  const tracker = new BackendTracker(rec, new ResponseMasking(masker, lookup));
  const cmd = rec.beginCommand({ kind: 'pg.query', text: 'SELECT ...' });
  // A text that reads no masked column, so its computed columns are read by detectors (a run
  // whose source is not known has every computed column masked whole: computed-columns.ts).
  const r = newRun();
  r.computed = { facts: { opaque: false, identifiers: [], words: [], relations: [], rowUse: false, routines: [], executes: [], fetches: [], declares: [], cursorsOnly: false }, runs: [] };
  tracker.expect({ kind: 'query', cmd, run: r });
  const out: Buffer[] = [];
  let pos = 0;
  for (const at of [...splits, server.length]) {
    out.push(...tracker.observe(server.subarray(pos, at)));
    pos = at;
  }
  writer.flushSync();
  const log = fs.readFileSync(writer.path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>);
  fs.rmSync(dir, { recursive: true });
  return { out: Buffer.concat(out), log };
}

test('the masked stream is the same for every split point, and the digest is of what the client got', () => {
  for (let at = 1; at < server.length; at += 1) {
    const { out, log } = run([at]);
    assert.ok(out.equals(expected), `split at byte ${at}`);
    const result = log.find((r) => r.type === 'result')!;
    assert.equal(result.response.sha256, createHash('sha256').update(expected).digest('hex'), `digest, split at ${at}`);
    assert.equal(result.response.bytes, expected.length);
  }
});

test('byte-by-byte delivery and a masked row spanning many chunks', () => {
  const every = Array.from({ length: server.length - 1 }, (_, i) => i + 1);
  const { out, log } = run(every);
  assert.ok(out.equals(expected));
  const result = log.find((r) => r.type === 'result')!;
  assert.deepEqual(result.response.sample[0], ['a***@***.com', '****0100', '+1 555 0199', 'card ****1111', '7']);
  assert.deepEqual(result.masked, { values: 6, detectors: ['credit-card', 'email'] });
});
