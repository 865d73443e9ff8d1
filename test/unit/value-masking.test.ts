// Values through masking by type and wire format: text forms of every type that can carry text
// are read, textless types are left alone, binary forms are taken apart where their layout is
// known and masked whole (NULL) where it is not; undescribed results; every text the server
// sends in notices, errors and parameter statuses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Masker } from '../../gateway/masking/engine.ts';
import { READ, maskValue, readOf } from '../../gateway/postgres/value-masking.ts';
import { blindPlan, maskRow } from '../../gateway/postgres/row-masking.ts';
import { ResponseMasking } from '../../gateway/postgres/response-masking.ts';
import { B, decodeNoticeFields, decodeParameterStatus, encodeNoticeFields, encodeParameterStatus } from '../../gateway/postgres/codec/backend.ts';

const both = new Masker({ columns: ['phone'], detectors: ['email', 'credit-card'], applyTo: { client: true, log: true } });
const detectOnly = new Masker({ columns: [], detectors: ['email', 'credit-card'], applyTo: { client: true, log: true } });
const columnsOnly = new Masker({ columns: ['phone'], detectors: [], applyTo: { client: true, log: true } });

const i32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const lengthPrefixed = (v: Buffer | null): Buffer => Buffer.concat([i32(v ? v.length : -1), ...(v ? [v] : [])]);
/** array_send of a one-dimensional array. */
const binArray = (elemType: number, elems: (Buffer | null)[]): Buffer =>
  Buffer.concat([i32(1), i32(elems.includes(null) ? 1 : 0), i32(elemType), i32(elems.length), i32(1), ...elems.map(lengthPrefixed)]);
/** record_send. */
const binRecord = (fields: [number, Buffer | null][]): Buffer => Buffer.concat([i32(fields.length), ...fields.map(([t, v]) => Buffer.concat([i32(t), lengthPrefixed(v)]))]);
const masked = (m: Masker, type: number, format: number, v: Buffer): Buffer | null | undefined => {
  const r = maskValue(m, readOf(m, type, format), v);
  return r === null ? undefined : r.value;
};

test('text format: every type that can carry text is read, whatever its OID; textless types are not', () => {
  for (const type of [25, 2249, 16390, 3614, 1009, 3904 + 100000, 0]) {
    assert.equal(masked(both, type, 0, Buffer.from('(1,alice@example.com)'))?.toString(), '(1,a***@***.com)', `type ${type}`);
  }
  for (const type of [23, 20, 1700, 1114, 2950, 16, 1007, 3904]) assert.equal(readOf(both, type, 0), READ.none, `type ${type}`);
  assert.equal(readOf(columnsOnly, 25, 0), READ.none, 'no detectors: text needs no reading');
});

test('bytea: the bytes behind the hex text form, and the binary bytes, are read and written back', () => {
  const bytes = Buffer.concat([Buffer.from([0, 0xff]), Buffer.from(' mail bob@example.org')]);
  const out = masked(both, 17, 0, Buffer.from(`\\x${bytes.toString('hex')}`))!.toString();
  assert.ok(out.startsWith('\\x'));
  assert.deepEqual(Buffer.from(out.slice(2), 'hex'), Buffer.concat([Buffer.from([0, 0xff]), Buffer.from(' mail b***@***.org')]));
  assert.deepEqual(masked(both, 17, 1, bytes), Buffer.concat([Buffer.from([0, 0xff]), Buffer.from(' mail b***@***.org')]));
});

test('binary: text types, jsonb, arrays and records are taken apart; unknown types are NULL', () => {
  assert.equal(masked(both, 1043, 1, Buffer.from('alice@example.com'))!.toString(), 'a***@***.com');
  assert.deepEqual(masked(both, 3802, 1, Buffer.from('\x01{"e": "alice@example.com"}')), Buffer.from('\x01{"e": "a***@***.com"}'));
  assert.equal(masked(both, 23, 1, i32(5)), undefined);
  assert.equal(masked(both, 16390, 1, Buffer.from('alice@example.com')), null, 'an enum, a domain, a composite: NULL');
  assert.equal(masked(columnsOnly, 16390, 1, Buffer.from('x')), null, 'also with no detector: nothing in it could be read');
  // text[] with an email and a NULL; the result keeps the layout with the new lengths.
  assert.deepEqual(masked(both, 1009, 1, binArray(25, [Buffer.from('alice@example.com'), null, Buffer.from('x')])),
    binArray(25, [Buffer.from('a***@***.com'), null, Buffer.from('x')]));
  assert.equal(masked(both, 1007, 1, binArray(23, [i32(1)])), undefined, 'int4[]: textless');
  // record(int4, text, an unknown type, a nested record)
  const rec = binRecord([[23, i32(1)], [25, Buffer.from('4111 1111 1111 1111')], [16390, Buffer.from('secret')], [2249, binRecord([[25, Buffer.from('bob@example.org')]])]]);
  assert.deepEqual(masked(both, 2249, 1, rec),
    binRecord([[23, i32(1)], [25, Buffer.from('****1111')], [16390, null], [2249, binRecord([[25, Buffer.from('b***@***.org')]])]]));
  // An array of records of a named type (the element type is unknown): each element NULL.
  assert.deepEqual(masked(both, 2287, 1, binArray(16400, [Buffer.from('x')])), binArray(16400, [null]));
  assert.equal(masked(both, 1009, 1, Buffer.from([0, 0, 0, 1, 0])), null, 'a malformed array: NULL');
});

test('a result never described: masked whole with columns, read as text or NULL in binary with detectors only', () => {
  const fields = [Buffer.from('1'), Buffer.from('alice@example.com'), Buffer.from('+1 555 0100')];
  assert.deepEqual(maskRow(both, blindPlan(both, 3, null), fields)!.fields, [null, null, null]);
  assert.deepEqual(maskRow(detectOnly, blindPlan(detectOnly, 3, null), fields)!.fields, [fields[0], Buffer.from('a***@***.com'), fields[2]]);
  assert.deepEqual(maskRow(detectOnly, blindPlan(detectOnly, 3, [1]), [i32(1), Buffer.from('alice@example.com'), null])!.fields, [null, null, null]);
});

test('notices and errors: every field but the fixed codes is read; parameter statuses are read', () => {
  const catalog = { columnMasked: () => ({ masked: false, settled: true }), generation: 0 };
  const rm = new ResponseMasking(both, catalog as never);
  const fields: [string, string][] = [['S', 'ERROR'], ['V', 'ERROR'], ['C', '23514'], ['M', 'm alice@example.com'], ['s', 'bob@example.org'],
    ['t', 'bob@example.org'], ['c', 'bob@example.org'], ['d', 'bob@example.org'], ['n', 'bob@example.org'], ['W', 'bob@example.org'],
    ['q', 'bob@example.org'], ['Z', 'a field added later: bob@example.org'], ['P', '12'], ['F', 'execMain.c'], ['L', '2000'], ['R', 'ExecConstraints']];
  const out = rm.message(B.ErrorResponse, encodeNoticeFields(B.ErrorResponse, fields).subarray(5), undefined)!;
  const got = decodeNoticeFields(out.client!.subarray(5));
  assert.deepEqual(got.filter(([, v]) => v.includes('@')).map(([c, v]) => `${c}=${v}`), [
    'M=m a***@***.com', 's=b***@***.org', 't=b***@***.org', 'c=b***@***.org', 'd=b***@***.org', 'n=b***@***.org', 'W=b***@***.org',
    'q=b***@***.org', 'Z=a field added later: b***@***.org']);
  assert.deepEqual(got.filter(([c]) => 'SVCPFLR'.includes(c)), fields.filter(([c]) => 'SVCPFLR'.includes(c)));
  const ps = rm.message(B.ParameterStatus, encodeParameterStatus('application_name', 'alice@example.com').subarray(5), undefined)!;
  assert.deepEqual(decodeParameterStatus(ps.client!.subarray(5)), ['application_name', 'a***@***.com']);
  assert.deepEqual(decodeParameterStatus(ps.log!), ['application_name', 'a***@***.com']);
  assert.equal(rm.message(B.ParameterStatus, encodeParameterStatus('TimeZone', 'UTC').subarray(5), undefined), null);
  assert.ok(rm.rewrites(B.ParameterStatus, undefined) && rm.rewrites(B.FunctionCallResponse, undefined));
});
