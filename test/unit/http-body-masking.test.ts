// What an HTTP body is, from its declared type and its first bytes, and what masking then does:
// JSON however it is labelled, text when declared or when it reads as text, binary refused with
// masking on for the client unless there is nothing in it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BodyMasking, bodyKind } from '../../gateway/http/body-masking.ts';
import { Masker } from '../../gateway/masking/engine.ts';

const masker = new Masker({ columns: [], detectors: [], jsonFields: ['$..primaryKey'], applyTo: { client: true, log: true } });
const json = Buffer.from('{"primaryKey":"SECRET-KEY-1","x":1}');

test('a body that starts like JSON is JSON whatever its type says; other bodies by type, then by their bytes', () => {
  for (const t of [undefined, 'application/json', 'text/plain', 'application/x-json', 'application/octet-stream', 'application/x-msgpack', '']) {
    assert.equal(bodyKind(t, json), 'json', String(t));
  }
  assert.equal(bodyKind('text/plain', Buffer.from('\ufeff  [1]')), 'json');
  assert.equal(bodyKind('text/plain', Buffer.from('hello')), 'text');
  assert.equal(bodyKind(undefined, Buffer.from('hello')), 'text');
  assert.equal(bodyKind(undefined, Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1])), 'binary');
  assert.equal(bodyKind('application/octet-stream', Buffer.from('plain words')), 'binary');
});

test('json-fields mask a JSON body labelled as text; the client copy changes length', () => {
  const m = new BodyMasking(masker, 'text/plain', json);
  assert.equal(m.changesClientBody, true);
  const out = Buffer.concat([m.push(json).client, m.flush().client]).toString();
  assert.ok(!out.includes('SECRET-KEY-1'), out);
});

test('a binary body is refused with masking on for the client, but not an empty one, and not with masking only in the log', () => {
  const bytes = Buffer.from([0, 1, 2, 3]);
  assert.equal(new BodyMasking(masker, 'application/octet-stream', bytes).refusesBinary, true);
  assert.equal(new BodyMasking(masker, 'application/octet-stream', Buffer.alloc(0)).refusesBinary, false);
  const logOnly = new Masker({ columns: [], detectors: [], jsonFields: ['$..primaryKey'], applyTo: { client: false, log: true } });
  const m = new BodyMasking(logOnly, 'application/octet-stream', bytes);
  assert.equal(m.refusesBinary, false);
  assert.equal(m.push(bytes).log, null, 'the log keeps no sample of a binary body');
  assert.equal(new BodyMasking(null, 'application/octet-stream', bytes).refusesBinary, false);
});
