// Codec corpus: client messages built by pg-protocol's serializer must decode to what was
// encoded; server messages we synthesize must parse with pg-protocol's parser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { parse, serialize } from 'pg-protocol';
import { MessageFramer, ProtocolError } from '../../gateway/postgres/codec/framer.ts';
import * as fe from '../../gateway/postgres/codec/frontend.ts';
import * as be from '../../gateway/postgres/codec/backend.ts';
import { decodeStartupPacket, startupPacketLength } from '../../gateway/postgres/codec/startup.ts';

function body(msg: Buffer): Buffer {
  const f = new MessageFramer({ collect: () => true, maxCollectedBody: 1 << 20, peer: 'test' });
  let out: Buffer | null = null;
  f.push(msg, (m) => (out = m.body));
  assert.ok(out, 'one whole message');
  return out;
}

async function parseServer(bytes: Buffer): Promise<any[]> {
  const stream = new PassThrough();
  const msgs: any[] = [];
  const done = parse(stream, (m) => msgs.push(m));
  stream.end(bytes);
  await done;
  return msgs;
}

test('decodes client messages serialized by pg-protocol', () => {
  assert.equal(fe.decodeQuery(body(serialize.query('SELECT ünïcode; SELECT 2'))), 'SELECT ünïcode; SELECT 2');
  assert.deepEqual(fe.decodeParse(body(serialize.parse({ name: 'st', text: 'SELECT $1, $2', types: [23, 4294967295] }))), {
    statement: 'st', query: 'SELECT $1, $2', paramTypes: [23, 4294967295],
  });
  const bind = fe.decodeBind(body(serialize.bind({ portal: 'p', statement: 'st', values: ['a', null, Buffer.from([1, 2, 255])] })));
  assert.equal(bind.portal, 'p');
  assert.equal(bind.statement, 'st');
  assert.deepEqual(bind.paramFormats, [0, 0, 1]);
  assert.deepEqual(bind.params.map((p) => (p === null ? null : p.toString('hex'))), ['61', null, '0102ff']);
  assert.deepEqual(fe.decodeBind(body(serialize.bind({ binary: true }))).resultFormats, [1]);
  assert.deepEqual(fe.decodeExecute(body(serialize.execute({ portal: 'p', rows: 50 }))), { portal: 'p', maxRows: 50 });
  assert.deepEqual(fe.decodeTarget(body(serialize.describe({ type: 'S', name: 'st' })), 'Describe'), { kind: 'S', name: 'st' });
  assert.deepEqual(fe.decodeTarget(body(serialize.close({ type: 'P', name: '' })), 'Close'), { kind: 'P', name: '' });
  assert.equal(fe.decodeCopyFail(body(serialize.copyFail('client gave up'))), 'client gave up');
  const sasl = fe.decodeSASLInitialResponse(body(serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', 'n,,n=*,r=abc')));
  assert.deepEqual([sasl.mechanism, sasl.data.toString()], ['SCRAM-SHA-256', 'n,,n=*,r=abc']);
});

test('malformed client message bodies are protocol errors, never crashes', () => {
  const cases: [string, () => unknown][] = [
    ['unterminated query', () => fe.decodeQuery(Buffer.from('SELECT 1'))],
    ['truncated bind', () => fe.decodeBind(Buffer.from([0, 0, 0, 1]))],
    ['bind value longer than the message', () => fe.decodeBind(Buffer.from([0, 0, 0, 0, 0, 1, 0, 0, 0, 9, 1]))],
    ['negative value length', () => fe.decodeBind(Buffer.from([0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xf0, 0, 0]))],
    ['bad format code', () => fe.decodeBind(Buffer.from([0, 0, 0, 1, 0, 7, 0, 0, 0, 0]))],
    ['describe of neither S nor P', () => fe.decodeTarget(Buffer.from('Xname\0'), 'Describe')],
    ['trailing bytes', () => fe.decodeExecute(Buffer.from([0, 0, 0, 0, 0, 9]))],
  ];
  for (const [name, fn] of cases) assert.throws(fn, ProtocolError, name);
});

test('server messages we synthesize parse with pg-protocol', async () => {
  const bytes = Buffer.concat([
    be.encodeAuthentication(be.AUTH.Ok),
    be.encodeParameterStatus('server_version', '15.18'),
    be.encodeBackendKeyData(1234, 5678),
    be.encodeNoticeResponse({ severity: 'NOTICE', code: '00000', message: 'waiting' }),
    be.encodeErrorResponse({ severity: 'ERROR', code: '42501', message: 'denied by rule x', detail: 'd', hint: 'h' }),
    be.encodeReadyForQuery('T'),
    be.encodeAuthenticationSASL(['SCRAM-SHA-256']),
  ]);
  const msgs = await parseServer(bytes);
  assert.deepEqual(msgs.map((m) => m.name), ['authenticationOk', 'parameterStatus', 'backendKeyData', 'notice', 'error', 'readyForQuery', 'authenticationSASL']);
  assert.equal(msgs[1].parameterValue, '15.18');
  assert.deepEqual([msgs[2].processID, msgs[2].secretKey], [1234, 5678]);
  assert.deepEqual([msgs[4].severity, msgs[4].code, msgs[4].message, msgs[4].detail, msgs[4].hint], ['ERROR', '42501', 'denied by rule x', 'd', 'h']);
  assert.equal(msgs[5].status, 'T');
  assert.deepEqual(msgs[6].mechanisms, ['SCRAM-SHA-256']);
});

test('decodes the server messages the session inspects', () => {
  const err = be.decodeNotice(body(be.encodeErrorResponse({ severity: 'FATAL', code: '57P01', message: 'bye' })));
  assert.deepEqual([err.severity, err.code, err.message], ['FATAL', '57P01', 'bye']);
  assert.equal(be.decodeReadyForQuery(body(be.encodeReadyForQuery('E'))), 'E');
  const auth = be.decodeAuthentication(body(be.encodeAuthenticationSASL(['SCRAM-SHA-256', 'SCRAM-SHA-256-PLUS'])));
  assert.deepEqual(auth, { code: 10, mechanisms: ['SCRAM-SHA-256', 'SCRAM-SHA-256-PLUS'] });
  const npv = body(be.encodeNegotiateProtocolVersion(0, ['_pq_.foo']));
  assert.equal(npv.readInt32BE(0), 0);
  assert.equal(npv.readInt32BE(4), 1);
});

test('startup packets: SSLRequest, GSSENCRequest, CancelRequest, 3.0 and 3.2 StartupMessage', () => {
  const startup = serialize.startup({ user: 'deployer', database: 'app', application_name: 'psql' });
  assert.equal(startupPacketLength(startup), startup.length);
  const s = decodeStartupPacket(startup);
  assert.equal(s.kind, 'startup');
  if (s.kind === 'startup') {
    assert.deepEqual([s.major, s.minor], [3, 0]);
    assert.equal(s.parameters.get('application_name'), 'psql');
  }
  assert.deepEqual(decodeStartupPacket(serialize.requestSsl()), { kind: 'ssl-request' });
  const gss = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30]);
  assert.deepEqual(decodeStartupPacket(gss), { kind: 'gssenc-request' });
  const cancel = decodeStartupPacket(serialize.cancel(77, 88));
  assert.equal(cancel.kind, 'cancel');
  if (cancel.kind === 'cancel') assert.deepEqual([cancel.processId, cancel.secretKey.readInt32BE(0)], [77, 88]);
  // Protocol 3.2 with a protocol extension option: accepted, the option is reported back.
  const v32 = Buffer.from(startup);
  v32.writeInt32BE(196610, 4);
  const withOpt = Buffer.concat([v32.subarray(0, v32.length - 1), Buffer.from('_pq_.test\0on\0\0')]);
  withOpt.writeInt32BE(withOpt.length, 0);
  const p = decodeStartupPacket(withOpt);
  assert.ok(p.kind === 'startup' && p.minor === 2 && p.protocolOptions[0] === '_pq_.test');
  // Protocol 2 and absurd lengths are refused.
  const v2 = Buffer.from(startup);
  v2.writeInt32BE(131072, 4);
  assert.throws(() => decodeStartupPacket(v2), /unsupported frontend protocol 2\.0/);
  assert.throws(() => startupPacketLength(Buffer.from([0, 0x10, 0, 0])), /invalid startup packet length/);
});
