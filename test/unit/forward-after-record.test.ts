// What carries a new command waits for its record; what follows waits behind it, in order; a
// failed log write or an ended session forwards nothing.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { SessionLogWriter, LOG_FORMAT } from '../../gateway/evidence/log-writer.ts';
import { ForwardAfterRecord } from '../../gateway/core/forward-after-record.ts';
import { tempDir } from '../helpers/gateway.ts';

function setup(): { w: SessionLogWriter; sent: string[][]; refused: string[]; state: { open: boolean }; f: ForwardAfterRecord<string> } {
  const w = SessionLogWriter.create(tempDir(), 'f.jsonl');
  w.append('run-start', { format: LOG_FORMAT });
  w.flushSync();
  // Other sessions are open, so records wait for the turn's shared write.
  w.openSessions = 3;
  const sent: string[][] = [];
  const refused: string[] = [];
  const state = { open: true };
  const lines = (): number => fs.readFileSync(w.path, 'utf8').split('\n').filter(Boolean).length;
  const f = new ForwardAfterRecord<string>(w, {
    isOpen: () => state.open,
    write: (items) => sent.push([...items, `lines on disk: ${lines()}`]),
    refuse: (failure) => refused.push(failure.message),
  });
  return { w, sent, refused, state, f };
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

test('a command waits for its record, and what the client sends after it waits behind it, in order', async () => {
  const { w, sent, f } = setup();
  f.send(['before'], false);
  assert.deepEqual(sent, [['before', 'lines on disk: 1']], 'nothing to record: forwarded at once');
  w.append('command', { command: 's1.1', text: 'SELECT 1' });
  f.send(['SELECT 1'], true);
  f.send(['Flush'], false);
  assert.equal(f.waiting, true);
  assert.equal(sent.length, 1, 'held until the record is written');
  await turn();
  assert.deepEqual(sent[1], ['SELECT 1', 'Flush', 'lines on disk: 2']);
  assert.equal(f.waiting, false);
});

test('a log that cannot be written forwards nothing and refuses; an ended session forwards nothing', async () => {
  const a = setup();
  fs.closeSync((a.w as unknown as { fd: number }).fd);
  a.w.append('command', { command: 's1.1', text: 'DROP TABLE t' });
  a.f.send(['DROP TABLE t'], true);
  await turn();
  assert.deepEqual(a.sent, []);
  assert.match(a.refused[0]!, /session log cannot be written/);

  const b = setup();
  b.w.append('command', { command: 's1.1', text: 'SELECT 1' });
  b.f.send(['SELECT 1'], true);
  b.state.open = false;
  await turn();
  assert.deepEqual(b.sent, []);
  assert.deepEqual(b.refused, []);
});
