// The exec channel codec: frames per direction and protocol, the status channel read exactly as
// client-go's errorDecoderV4 reads it, resize frames as the server decodes them, and a v5 session
// between a real `ws` server and client (compression off, a bounded payload) through the codec.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import {
  CHANNEL_RESIZE, CHANNEL_STATUS, CHANNEL_STDERR, CHANNEL_STDIN, CHANNEL_STDOUT, EXEC_PROTOCOL_V4, EXEC_PROTOCOL_V5, EXEC_PROTOCOLS,
  decodeFrame, encodeClose, encodeFrame, encodeResize, exitStatus, exitStatusJson, failureStatusJson, resize,
} from '../../gateway/kubernetes/exec-channels.ts';

const b = (...bytes: number[]) => Buffer.from(bytes);
const problem = (r: object) => ('problem' in r ? (r as { problem: string }).problem : '');

test('data frames: the first byte is the channel, each written by one end', () => {
  assert.deepEqual(decodeFrame(b(0, 0x6c, 0x73), true, EXEC_PROTOCOL_V5, 'client'), { channel: 0, payload: Buffer.from('ls') });
  assert.deepEqual(decodeFrame(b(4, 0x7b), true, EXEC_PROTOCOL_V4, 'client'), { channel: 4, payload: Buffer.from('{') });
  for (const ch of [1, 2, 3]) assert.deepEqual(decodeFrame(b(ch, 0x41), true, EXEC_PROTOCOL_V5, 'server'), { channel: ch, payload: Buffer.from('A') });
  // The server's first message: an empty frame on the lowest writable channel ("connected").
  assert.deepEqual(decodeFrame(b(1), true, EXEC_PROTOCOL_V5, 'server'), { channel: 1, payload: Buffer.alloc(0) });
  assert.match(problem(decodeFrame(b(1, 0x41), true, EXEC_PROTOCOL_V5, 'client')), /client sent on the stdout channel/);
  assert.match(problem(decodeFrame(b(0, 0x41), true, EXEC_PROTOCOL_V5, 'server')), /server sent on the stdin channel/);
  assert.match(problem(decodeFrame(b(4), true, EXEC_PROTOCOL_V5, 'server')), /resize/);
  assert.match(problem(decodeFrame(b(5, 1), true, EXEC_PROTOCOL_V5, 'client')), /unknown channel 5/);
  assert.match(problem(decodeFrame(Buffer.alloc(0), true, EXEC_PROTOCOL_V5, 'client')), /empty/);
  assert.match(problem(decodeFrame(b(0, 0x41), false, EXEC_PROTOCOL_V5, 'client')), /text WebSocket message/);
});

test('close signal: [255, channel] in v5 only, for a channel the sender writes', () => {
  assert.deepEqual(decodeFrame(b(255, 0), true, EXEC_PROTOCOL_V5, 'client'), { close: 0 });
  assert.deepEqual(decodeFrame(b(255, 4), true, EXEC_PROTOCOL_V5, 'client'), { close: 4 });
  assert.deepEqual(decodeFrame(b(255, 1), true, EXEC_PROTOCOL_V5, 'server'), { close: 1 });
  assert.match(problem(decodeFrame(b(255, 0), true, EXEC_PROTOCOL_V4, 'client')), /v5 only/);
  assert.match(problem(decodeFrame(b(255, 1), true, EXEC_PROTOCOL_V5, 'client')), /closed channel 1/);
  assert.match(problem(decodeFrame(b(255), true, EXEC_PROTOCOL_V5, 'client')), /1 bytes/);
  assert.match(problem(decodeFrame(b(255, 0, 0), true, EXEC_PROTOCOL_V5, 'client')), /3 bytes/);
  assert.deepEqual(encodeClose(CHANNEL_STDIN), b(255, 0));
});

test('encodeFrame is the channel byte then the payload; decodeFrame reads it back', () => {
  const frame = encodeFrame(CHANNEL_STDERR, Buffer.from('oops\n'));
  assert.deepEqual(frame, Buffer.concat([b(2), Buffer.from('oops\n')]));
  assert.deepEqual(decodeFrame(frame, true, EXEC_PROTOCOL_V5, 'server'), { channel: 2, payload: Buffer.from('oops\n') });
  assert.deepEqual(encodeFrame(CHANNEL_STDOUT, new Uint8Array()), b(1));
  assert.throws(() => encodeFrame(255, b()), RangeError);
  assert.throws(() => encodeFrame(5, b()), RangeError);
  assert.deepEqual(EXEC_PROTOCOLS, ['v5.channel.k8s.io', 'v4.channel.k8s.io']);
});

test('status: Success is 0, NonZeroExitCode with the ExitCode cause is N, as kubectl reads it', () => {
  assert.deepEqual(exitStatus(Buffer.from('{"metadata":{},"status":"Success"}')), { code: 0 });
  // client-go: an empty error stream is success.
  assert.deepEqual(exitStatus(Buffer.alloc(0)), { code: 0 });
  const kubelet = '{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}';
  assert.deepEqual(exitStatus(Buffer.from(kubelet)), { code: 3, message: 'command terminated with exit code 3', reason: 'NonZeroExitCode' });
  // The first ExitCode cause counts; other causes are skipped; leading zeros parse (ParseUint).
  assert.deepEqual(exitStatus(Buffer.from('{"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"Other","message":"x"},{"reason":"ExitCode","message":"007"},{"reason":"ExitCode","message":"9"}]}}')), { code: 7, message: 'command terminated with exit code 7', reason: 'NonZeroExitCode' });
  assert.equal((exitStatus(Buffer.from('{"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"255"}]}}')) as { code: number }).code, 255);
  // Go's encoding/json: field names are case-insensitive, null leaves a field unset.
  assert.deepEqual(exitStatus(Buffer.from('{"Status":"Success","message":null}')), { code: 0 });
  // Round trip with the stand-in's encoder.
  assert.deepEqual(exitStatus(exitStatusJson(0)), { code: 0 });
  assert.equal((exitStatus(exitStatusJson(42)) as { code: number }).code, 42);
});

test('status: other failures carry the server message (kubectl exits 1); malformed ones are problems', () => {
  assert.deepEqual(exitStatus(Buffer.from('{"status":"Failure","message":"container not found (\\"c\\")","reason":"NotFound","code":404}')), { code: 1, message: 'container not found ("c")', reason: 'NotFound' });
  assert.deepEqual(exitStatus(failureStatusJson('denied by rule no-rm')), { code: 1, message: 'denied by rule no-rm', reason: 'Forbidden' });
  assert.deepEqual(exitStatus(Buffer.from('{"status":"Failure"}')), { code: 1, message: '' });
  const cases: [string, RegExp][] = [
    ['{"status":"Failure","reason":"NonZeroExitCode"}', /details must be set/],
    ['{"status":"Failure","reason":"NonZeroExitCode","details":{}}', /no ExitCode cause given/],
    ['{"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"256"}]}}', /invalid exit code value "256"/],
    ['{"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"-1"}]}}', /invalid exit code value/],
    ['{"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":" 1"}]}}', /invalid exit code value/],
    ['{"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode"}]}}', /invalid exit code value ""/],
    ['{"status":"Weird"}', /unknown error/],
    ['{}', /unknown error/],
    ['null', /unknown error/],
    ['{"status":1}', /not a JSON string/],
    ['{"status":"Success","code":"x"}', /not a JSON integer/],
    ['{"status":"Success","Status":"Failure"}', /given twice/],
    ['[]', /expected a JSON object/],
    ['{"status":"Success"} trailing', /error stream protocol error/],
    ['not json', /error stream protocol error/],
  ];
  for (const [json, re] of cases) assert.match(problem(exitStatus(Buffer.from(json))), re, json);
  assert.throws(() => exitStatusJson(256), RangeError);
});

test('resize: one {"Width","Height"} object, uint16, names case-insensitive', () => {
  assert.deepEqual(resize(Buffer.from('{"Width":120,"Height":40}\n')), { width: 120, height: 40 });
  assert.deepEqual(resize(Buffer.from('{"width":80,"height":24,"extra":true}')), { width: 80, height: 24 });
  assert.deepEqual(resize(Buffer.from('{"Width":80}')), { width: 80, height: 0 });
  assert.deepEqual(resize(encodeResize({ width: 200, height: 50 })), { width: 200, height: 50 });
  assert.equal(encodeResize({ width: 1, height: 2 }).toString(), '{"Width":1,"Height":2}\n');
  for (const bad of ['{"Width":70000,"Height":1}', '{"Width":-1}', '{"Width":"80"}', '{"Width":1.5}', '[80,24]', '{"Width":1}{"Width":2}', '', '{"Width":1,"width":2}']) {
    assert.ok('problem' in resize(Buffer.from(bad)), bad);
  }
});

test('a ws server and client exchange a v5 session through the codec (no compression, bounded payload)', async () => {
  const maxPayload = 1 << 20;
  const server = new WebSocketServer({
    host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload,
    handleProtocols: (offered) => EXEC_PROTOCOLS.find((p) => offered.has(p)) ?? false,
  });
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const serverSaw: unknown[] = [];
  const serverDone = new Promise<string>((resolve) => {
    server.on('connection', (ws, req) => {
      // Compression was offered by nobody and accepted by nobody: the recorded bytes are the bytes.
      assert.equal(req.headers['sec-websocket-extensions'], undefined);
      assert.equal(ws.extensions, '');
      const protocol = ws.protocol as typeof EXEC_PROTOCOL_V5;
      ws.send(encodeFrame(CHANNEL_STDOUT, Buffer.alloc(0)));
      let stdin = '';
      ws.on('message', (data, isBinary) => {
        const frame = decodeFrame(data as Buffer, isBinary, protocol, 'client');
        serverSaw.push(frame);
        if ('channel' in frame && frame.channel === CHANNEL_STDIN) stdin += frame.payload.toString();
        if ('channel' in frame && frame.channel === CHANNEL_RESIZE) serverSaw.push(resize(frame.payload));
        if ('close' in frame && frame.close === CHANNEL_STDIN) {
          ws.send(encodeFrame(CHANNEL_STDOUT, Buffer.from(stdin.toUpperCase())));
          ws.send(encodeFrame(CHANNEL_STDERR, Buffer.from('warning\n')));
          ws.send(encodeFrame(CHANNEL_STATUS, exitStatusJson(3)));
          ws.close(1000);
          resolve(protocol);
        }
      });
    });
  });

  const client = new WebSocket(`ws://127.0.0.1:${port}/api/v1/namespaces/default/pods/p/exec?command=tr&stdin=true&stdout=true&stderr=true`,
    [EXEC_PROTOCOL_V5, EXEC_PROTOCOL_V4], { perMessageDeflate: false, maxPayload });
  const clientSaw: unknown[] = [];
  let status = Buffer.alloc(0);
  client.on('message', (data, isBinary) => {
    const frame = decodeFrame(data as Buffer, isBinary, EXEC_PROTOCOL_V5, 'server');
    clientSaw.push(frame);
    if ('channel' in frame && frame.channel === CHANNEL_STATUS) status = Buffer.concat([status, frame.payload]);
  });
  await once(client, 'open');
  assert.equal(client.protocol, EXEC_PROTOCOL_V5);
  client.send(encodeFrame(CHANNEL_RESIZE, encodeResize({ width: 100, height: 30 })));
  client.send(encodeFrame(CHANNEL_STDIN, Buffer.from('hello ')));
  client.send(encodeFrame(CHANNEL_STDIN, Buffer.from('world\n')));
  client.send(encodeClose(CHANNEL_STDIN));
  const [code] = await once(client, 'close');
  assert.equal(code, 1000);
  assert.equal(await serverDone, EXEC_PROTOCOL_V5);
  server.close();

  assert.deepEqual(serverSaw, [
    { channel: CHANNEL_RESIZE, payload: Buffer.from('{"Width":100,"Height":30}\n') },
    { width: 100, height: 30 },
    { channel: CHANNEL_STDIN, payload: Buffer.from('hello ') },
    { channel: CHANNEL_STDIN, payload: Buffer.from('world\n') },
    { close: CHANNEL_STDIN },
  ]);
  assert.deepEqual(clientSaw.slice(0, 3), [
    { channel: CHANNEL_STDOUT, payload: Buffer.alloc(0) },
    { channel: CHANNEL_STDOUT, payload: Buffer.from('HELLO WORLD\n') },
    { channel: CHANNEL_STDERR, payload: Buffer.from('warning\n') },
  ]);
  assert.deepEqual(exitStatus(status), { code: 3, message: 'command terminated with exit code 3', reason: 'NonZeroExitCode' });
});

test('ws refuses a message above maxPayload instead of buffering it', async () => {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 1024, handleProtocols: () => EXEC_PROTOCOL_V5 });
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const serverSide = new Promise<{ error: string; close: number }>((resolve) => server.on('connection', (ws) => {
    let error = '';
    ws.on('error', (e: Error & { code?: string }) => { error = e.code ?? e.message; });
    ws.on('close', (close) => resolve({ error, close }));
  }));
  const client = new WebSocket(`ws://127.0.0.1:${port}/`, [EXEC_PROTOCOL_V5], { perMessageDeflate: false });
  client.on('error', () => {});
  await once(client, 'open');
  const clientClosed = once(client, 'close');
  client.send(encodeFrame(CHANNEL_STDIN, Buffer.alloc(2048)));
  // The receiver stops at the frame header's length, tells the peer 1009 ("Message Too Big") and
  // drops the connection.
  assert.equal((await serverSide).error, 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH');
  assert.equal((await clientClosed)[0], 1009);
  server.close();
});
