// The gateway's SSH transport set-up, on real loopback sockets and a real ssh2 server and client
// (and the Node flags a daemon with an SSH target starts with):
// sockets whose writes are coalesced deliver every byte in order (also when ended or destroyed
// in the same turn), and the AES-GCM keys of an ssh2 connection become KeyObjects after each key
// exchange, with the bytes through its channels unchanged (cipher-keys.ts reaches into ssh2's
// fields: this is what says it still applies to the installed ssh2).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, KeyObject, randomBytes } from 'node:crypto';
import net from 'node:net';
import ssh2, { type Client, type Connection } from 'ssh2';
import { LISTENER_CIPHERS, UPSTREAM_CIPHERS } from '../../gateway/ssh/algorithms.ts';
import { holdKeysAsKeyObjects, keysAsKeyObjects } from '../../gateway/ssh/cipher-keys.ts';
import { connectSshSocket, tuneSshSocket } from '../../gateway/ssh/socket-writes.ts';
import { BASELINE_WASM_FLAG, EXTERNAL_MEMORY_FLAG, sshNodeFlags } from '../../gateway/ssh/node-flags.ts';
import { spawnSync } from 'node:child_process';

/** A loopback server handing each accepted socket to `onSocket`; resolves with its port. */
function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

test('a tuned socket delivers every write in order, ended in the same turn', async () => {
  const received: Buffer[] = [];
  let done!: () => void;
  const all = new Promise<void>((r) => (done = r));
  const server = net.createServer((s) => {
    s.on('data', (d: Buffer) => received.push(d));
    s.on('end', () => done());
  });
  const port = await listen(server);
  const socket = connectSshSocket('127.0.0.1', port);
  tuneSshSocket(socket); // a second call changes nothing
  await new Promise((r) => socket.once('connect', r));
  const pieces = Array.from({ length: 500 }, (_, i) => randomBytes(1 + (i % 37) * 100));
  for (const p of pieces) socket.write(p);
  socket.end(Buffer.from('last'));
  await all;
  server.close();
  assert.deepEqual(Buffer.concat(received), Buffer.concat([...pieces, Buffer.from('last')]));
});

test('a tuned socket destroyed while corked raises nothing', async () => {
  const server = net.createServer((s) => s.on('error', () => undefined));
  const port = await listen(server);
  const socket = connectSshSocket('127.0.0.1', port);
  await new Promise((r) => socket.once('connect', r));
  socket.write('a');
  socket.destroy();
  socket.write('b', () => undefined);
  await new Promise((r) => setImmediate(r));
  server.close();
  assert.equal(socket.destroyed, true);
});

test('ssh2 AES-GCM keys are KeyObjects after the handshake and a rekey, and bytes pass unchanged', async () => {
  const hostKey = ssh2.utils.generateKeyPairSync('ecdsa', { bits: 256 });
  const clientKey = ssh2.utils.generateKeyPairSync('ecdsa', { bits: 256 });
  const payload = randomBytes(3 * 1024 * 1024 + 123);
  let serverConn!: Connection;
  const serverKeys: unknown[][] = [];
  const server = new ssh2.Server({ hostKeys: [hostKey.private], algorithms: { cipher: LISTENER_CIPHERS as never } }, (conn) => {
    serverConn = conn;
    holdKeysAsKeyObjects(conn);
    conn.on('handshake', () => serverKeys.push(keyFields(conn)));
    conn.on('authentication', (ctx) => ctx.accept());
    conn.on('ready', () => {
      conn.on('session', (accept) => {
        accept().on('exec', (acceptExec) => {
          // Echoes what it gets, with its SHA-256 on stderr.
          const ch = acceptExec();
          const hash = createHash('sha256');
          ch.on('data', (d: Buffer) => {
            hash.update(d);
            ch.write(d);
          });
          ch.on('end', () => {
            ch.stderr.write(hash.digest('hex'));
            ch.exit(0);
            ch.end();
          });
        });
      });
    });
  });
  const tcp = net.createServer((socket) => {
    tuneSshSocket(socket);
    server.injectSocket(socket);
  });
  const port = await listen(tcp);
  const client: Client = new ssh2.Client();
  holdKeysAsKeyObjects(client);
  const clientKeys: unknown[][] = [];
  client.on('handshake', () => clientKeys.push(keyFields(client)));
  await new Promise<void>((resolve, reject) => {
    client.once('ready', resolve).once('error', reject);
    client.connect({ sock: connectSshSocket('127.0.0.1', port), username: 'u', privateKey: clientKey.private, algorithms: { cipher: UPSTREAM_CIPHERS as never } });
  });
  const roundTrip = (): Promise<{ out: Buffer; err: string }> => new Promise((resolve, reject) => {
    client.exec('echo', (e, ch) => {
      if (e) return reject(e);
      const out: Buffer[] = [];
      let err = '';
      ch.on('data', (d: Buffer) => out.push(d));
      ch.stderr.on('data', (d: Buffer) => (err += d.toString()));
      ch.on('close', () => resolve({ out: Buffer.concat(out), err }));
      ch.end(payload);
    });
  });
  const first = await roundTrip();
  // A rekey (the server asks) installs a new cipher and decipher on both sides: swapped again.
  const rekeyed = new Promise((r) => client.once('handshake', r));
  serverConn.rekey();
  await rekeyed;
  const second = await roundTrip();
  client.end();
  serverConn.end();
  tcp.close();
  const digest = createHash('sha256').update(payload).digest('hex');
  for (const r of [first, second]) {
    assert.ok(r.out.equals(payload), 'the bytes came back unchanged');
    assert.equal(r.err, digest);
  }
  assert.equal(clientKeys.length, 2);
  assert.equal(serverKeys.length, 2);
  for (const fields of [...clientKeys, ...serverKeys]) {
    // ssh2's node:crypto AES-GCM classes keep these fields; with its native addon built (which
    // dist/ never carries) the classes are others and there is nothing to swap.
    if (fields.length === 0) continue;
    for (const f of fields) assert.ok(f instanceof KeyObject, 'the key is a KeyObject');
  }
  assert.ok(nativeAddon() || [...clientKeys, ...serverKeys].every((f) => f.length === 2), 'without the addon both keys of every exchange were found');
  // Swapping again finds nothing left to swap.
  assert.equal(keysAsKeyObjects(client), 0);
});

/** The key fields cipher-keys.ts swaps, as the connection holds them now (the addon's classes have none). */
function keyFields(conn: object): unknown[] {
  const p = (conn as { _protocol: { _cipher: Record<string, unknown>; _decipher: Record<string, unknown> } })._protocol;
  return [p._cipher._encKey, p._decipher._decipherKey].filter((k) => k !== undefined);
}

/** Whether ssh2 loaded its native crypto addon (then it encrypts without node:crypto ciphers). */
function nativeAddon(): boolean {
  try {
    process.getBuiltinModule('node:module').createRequire(import.meta.url)('ssh2/lib/protocol/crypto/build/Release/sshcrypto.node');
    return true;
  } catch {
    return false;
  }
}

test('the Node flags for an SSH target are ones this Node starts with', () => {
  const flags = sshNodeFlags();
  assert.ok(flags.includes(BASELINE_WASM_FLAG));
  // Node 24 knows the GC flag (Node 20 does not): a Node that does not gets it left out, and starts.
  const known = spawnSync(process.execPath, [EXTERNAL_MEMORY_FLAG, '-e', ''], { stdio: 'ignore' }).status === 0;
  assert.equal(flags.includes(EXTERNAL_MEMORY_FLAG), known);
  const r = spawnSync(process.execPath, [...flags, '-e', 'process.stdout.write("up")'], { encoding: 'utf8' });
  assert.equal(r.stdout, 'up', r.stderr);
});
