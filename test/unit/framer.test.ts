// The framer is pure: the same bytes split at any points must give the same messages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serialize } from 'pg-protocol';
import { MessageFramer, ProtocolError, type FramedMessage } from '../../gateway/postgres/codec/framer.ts';
import { isFrontendType } from '../../gateway/postgres/codec/frontend.ts';

const corpus = Buffer.concat([
  serialize.query('SELECT 1'),
  serialize.parse({ name: 's1', text: 'SELECT $1::int', types: [23] }),
  serialize.bind({ statement: 's1', values: ['42'] }),
  serialize.describe({ type: 'P' }),
  serialize.execute({}),
  serialize.sync(),
  serialize.copyData(Buffer.alloc(70_000, 0x61)),
  serialize.copyDone(),
  serialize.flush(),
  serialize.end(),
]);

function frame(chunks: Buffer[], collect: (t: number) => boolean = () => true): { type: string; body: string | null; raw: string }[] {
  const f = new MessageFramer({ collect, maxCollectedBody: 1 << 20, isValidType: isFrontendType, peer: 'client' });
  const out: { type: string; body: string | null; raw: string }[] = [];
  for (const chunk of chunks) {
    f.push(chunk, (m: FramedMessage) => {
      const raw = m.start >= 0 ? chunk.subarray(m.start, m.end) : m.assembled;
      out.push({ type: String.fromCharCode(m.type), body: m.body ? m.body.toString('hex') : null, raw: raw ? raw.toString('hex') : '' });
    });
  }
  assert.ok(f.idle, 'no partial message left');
  return out;
}

test('frames a message stream identically whatever the chunk boundaries', () => {
  const whole = frame([corpus]);
  assert.deepEqual(whole.map((m) => m.type), ['Q', 'P', 'B', 'D', 'E', 'S', 'd', 'c', 'H', 'X']);
  for (const m of whole) assert.ok(m.raw.length > 0 && m.body !== null);
  for (const size of [1, 2, 3, 5, 7, 64, 4096]) {
    const chunks: Buffer[] = [];
    for (let i = 0; i < corpus.length; i += size) chunks.push(corpus.subarray(i, i + size));
    const split = frame(chunks);
    assert.deepEqual(split.map((m) => [m.type, m.body]), whole.map((m) => [m.type, m.body]), `chunk size ${size}`);
    // A message assembled from pieces carries its exact bytes for forwarding.
    assert.deepEqual(split.map((m) => m.raw), whole.map((m) => m.raw), `raw bytes, chunk size ${size}`);
  }
});

test('bodies that are not collected stream through without being assembled', () => {
  const seen: (string | null)[] = [];
  const f = new MessageFramer({ collect: (t) => t !== 0x64, maxCollectedBody: 64, peer: 'upstream' });
  for (let i = 0; i < corpus.length; i += 1000) {
    f.push(corpus.subarray(i, i + 1000), (m) => seen.push(m.body === null ? null : String.fromCharCode(m.type)));
  }
  // The 70 kB CopyData is over the 64-byte collect limit but is not collected, so it is fine.
  assert.deepEqual(seen.filter((s) => s === null).length, 1);
});

test('partialStart tells where an unfinished message began', () => {
  const f = new MessageFramer({ collect: () => true, maxCollectedBody: 1 << 20, peer: 'client' });
  const q = serialize.query('SELECT 42');
  const data = Buffer.concat([q, q.subarray(0, 7)]);
  f.push(data, () => undefined);
  assert.equal(f.partialStart, q.length);
  f.push(q.subarray(7, 9), () => undefined);
  assert.equal(f.partialStart, -1);
  let done = 0;
  f.push(q.subarray(9), () => done++);
  assert.equal(done, 1);
  assert.equal(f.partialStart, null);
});

test('rejects invalid lengths, unknown types and oversized messages with protocol errors', () => {
  const mk = () => new MessageFramer({ collect: () => true, maxCollectedBody: 1024, isValidType: isFrontendType, peer: 'client' });
  const lenTooSmall = Buffer.from([0x51, 0, 0, 0, 2]);
  assert.throws(() => mk().push(lenTooSmall, () => undefined), (e: Error) => e instanceof ProtocolError && /invalid message length 2/.test(e.message));
  const unknown = Buffer.from([0x01, 0, 0, 0, 4]);
  assert.throws(() => mk().push(unknown, () => undefined), (e: Error) => e instanceof ProtocolError && /invalid message type 0x01/.test(e.message));
  const huge = Buffer.from([0x51, 0x0c, 0, 0, 0]);
  assert.throws(() => mk().push(huge, () => undefined), (e: Error) => e instanceof ProtocolError && /over the limit of 1024/.test(e.message) && (e as ProtocolError).sqlState === '54000');
  const negative = Buffer.from([0x51, 0xff, 0xff, 0xff, 0xff]);
  assert.throws(() => mk().push(negative, () => undefined), ProtocolError);
});
