// No client can exhaust the daemon. One that has not logged in keeps no more than the startup
// exchange needs, at most 64 such connections are served at once, each for a bounded time; one
// that has logged in cannot pile up bytes behind a command held for approval. The daemon's own
// memory (VmRSS in /proc) is read to show nothing piled up.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { appCluster, cli, policyFor, psql, readLog, startGateway, tempDir, waitFor, type Cluster, type RunningGateway } from '../helpers/gateway.ts';
import { newPgClient, type PgError } from '../helpers/pg.ts';
import { RawClient } from '../helpers/raw-pg.ts';

// Gateways and CLIs of this file announce their control sockets here, not in the user's runtime dir.
process.env.GATEWAY_ACTION_RUNTIME_DIR = path.join(tempDir('gw-limits-'), 'run');

let cluster: Cluster;
let gw: RunningGateway;
before(async () => {
  cluster = await appCluster();
  gw = startGateway(policyFor(cluster));
});
after(() => {
  try {
    gw?.stop();
  } finally {
    cluster?.stop();
  }
});

const MiB = 1024 * 1024;

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}

function startupMessage(params: Record<string, string>): Buffer {
  const body = Buffer.concat([int32(196608), ...Object.entries(params).map(([k, v]) => Buffer.from(`${k}\0${v}\0`)), Buffer.from([0])]);
  return Buffer.concat([int32(body.length + 4), body]);
}

/** A typed message: type byte, length, body. */
function message(type: string, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(type), int32(body.length + 4), body]);
}

function vmRssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, 'VmRSS of the daemon');
  return Number(m[1]);
}

/**
 * Connects, sends `opening`, then writes `chunk` over and over as fast as the gateway takes it,
 * until the gateway closes the connection or `cap` bytes were taken. Returns the bytes taken.
 */
function flood(port: number, opening: Buffer, chunk: Buffer, cap: number): Promise<{ taken: number; closed: boolean }> {
  return new Promise((resolve) => {
    // Half-open allowed: the client keeps writing after the gateway closes its side, as an
    // attacker would, instead of stopping politely at the first FATAL.
    const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    s.on('data', () => undefined);
    let done = false;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      const taken = s.bytesWritten - s.writableLength;
      s.destroy();
      resolve({ taken, closed });
    };
    s.on('error', () => finish(true));
    s.on('close', () => finish(true));
    const pump = (): void => {
      while (!done) {
        if (s.bytesWritten - s.writableLength > cap) return finish(false);
        if (!s.write(chunk)) return void s.once('drain', pump);
      }
    };
    s.on('connect', () => {
      s.write(opening);
      pump();
    });
  });
}

test('a client that logs in and then streams without authenticating is cut off, and the daemon keeps nothing', { timeout: 120_000 }, async () => {
  const port = Number(gw.env.PGPORT);
  const startup = startupMessage({ user: gw.env.PGUSER!, database: gw.env.PGDATABASE! });
  const cap = 256 * MiB;
  const rssBefore = vmRssKiB(gw.pid);
  const variants = [
    // password messages, one after another, never waiting for an answer
    { name: 'a stream of password messages', opening: startup, chunk: Buffer.concat(Array.from({ length: 16 }, () => message('p', Buffer.alloc(60_000, 0x41)))) },
    // one password message that says it is 1 GB long, and its body
    { name: 'a 1 GB password message', opening: Buffer.concat([startup, Buffer.from('p'), int32(0x3fffffff)]), chunk: Buffer.alloc(MiB, 0x41) },
    // SSL requests, over and over (each would be answered, and the answers never read)
    { name: 'repeated SSL requests', opening: Buffer.alloc(0), chunk: Buffer.concat(Array.from({ length: 8192 }, () => Buffer.concat([int32(8), int32(80877103)]))) },
    // a startup packet that never ends
    { name: 'an endless startup packet', opening: Buffer.concat([int32(1 << 30), int32(196608)]), chunk: Buffer.alloc(MiB, 0x41) },
  ];
  for (const v of variants) {
    const r = await flood(port, v.opening, v.chunk, cap);
    assert.ok(r.closed, `${v.name}: the gateway closed the connection (it took ${r.taken} bytes)`);
    // What the kernel's socket buffers hold, at most: the gateway itself read no more than a packet.
    assert.ok(r.taken < 32 * MiB, `${v.name}: the gateway took ${(r.taken / MiB).toFixed(1)} MiB before closing`);
  }
  const grown = vmRssKiB(gw.pid) - rssBefore;
  assert.ok(grown < 64 * 1024, `the daemon grew by ${(grown / 1024).toFixed(0)} MiB`);
  assert.equal(psql(gw.env, ['-tA', '-c', 'SELECT 1']).stdout.trim(), '1', 'and it still serves');
});

/** Opens a connection that has sent an SSL request and seen the answer: it is then an unauthenticated client of the gateway. */
function idleClient(port: number): Promise<{ socket: net.Socket; answer: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => socket.write(Buffer.concat([int32(8), int32(80877103)])));
    socket.once('data', (d: Buffer) => resolve({ socket, answer: d.toString('latin1') }));
    socket.once('error', reject);
  });
}

test('past 64 connections that have not logged in, more are refused with 53300 until one goes away', { timeout: 60_000 }, async () => {
  const port = Number(gw.env.PGPORT);
  const idle: net.Socket[] = [];
  try {
    for (let i = 0; i < 64; i++) {
      const c = await idleClient(port);
      assert.equal(c.answer, 'N', `connection ${i + 1} is served`);
      idle.push(c.socket);
    }
    const extra = await idleClient(port);
    assert.equal(extra.answer[0], 'E', 'the 65th gets an ErrorResponse instead of an answer');
    assert.match(extra.answer, /C53300\0/);
    assert.match(extra.answer, /too many clients already/);
    extra.socket.destroy();
    // A client that logs in is not held up by them once one of them leaves.
    idle.pop()!.destroy();
    let served = '';
    for (let i = 0; i < 100 && served !== 'N'; i++) {
      const c = await idleClient(port);
      served = c.answer;
      c.socket.destroy();
      if (served !== 'N') await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(served, 'N');
  } finally {
    for (const s of idle) s.destroy();
  }
});

test('a connection that does not complete its login in time is closed, even one that trickles bytes', { timeout: 25_000 }, () => {
  // A short login timeout (the variable exists for tests and slow machines; the default is 10 s).
  const quick = startGateway(policyFor(cluster), 'deployer-pw', { GATEWAY_ACTION_LOGIN_TIMEOUT_MS: '1500' });
  const port = Number(quick.env.PGPORT);
  const closed = (s: net.Socket): Promise<void> => new Promise((resolve) => s.once('close', () => resolve()));
  const startup = startupMessage({ user: quick.env.PGUSER!, database: quick.env.PGDATABASE! });
  return (async () => {
    try {
      // Silent after connecting.
      const silent = net.connect({ host: '127.0.0.1', port });
      silent.on('error', () => undefined);
      // Sends its startup packet one byte at a time, never finishing within the limit.
      const trickle = net.connect({ host: '127.0.0.1', port });
      trickle.on('error', () => undefined);
      let i = 0;
      const timer = setInterval(() => {
        if (i < startup.length - 1 && !trickle.destroyed) trickle.write(startup.subarray(i, ++i));
      }, 100);
      // Logged in as far as the password request, then silent.
      const stalled = net.connect({ host: '127.0.0.1', port }, () => stalled.write(startup));
      stalled.on('error', () => undefined);
      const stalledReply: Buffer[] = [];
      stalled.on('data', (d: Buffer) => stalledReply.push(d));
      await Promise.all([closed(silent), closed(trickle), closed(stalled)]);
      clearInterval(timer);
      assert.equal(String.fromCharCode(Buffer.concat(stalledReply)[0]!), 'R', 'the stalled client was asked for its password first');
      const close = await waitFor(() => readLog(quick.logPath()).find((r) => r.type === 'session-close' && r.reason === 'client authentication timed out'), 'the timed-out session closed in the log');
      assert.equal(close?.timeout_ms, 1500);
      assert.equal(psql(quick.env, ['-tA', '-c', 'SELECT 2']).stdout.trim(), '2', 'a client that logs in promptly is served');
    } finally {
      quick.stop();
    }
  })();
});

test('behind a command held for approval, a logged-in client cannot pile up bytes in the daemon', { timeout: 120_000 }, async () => {
  const holding = startGateway(policyFor(cluster) + 'rules:\n  - name: hold-drops\n    when: { sql: [drop] }\n    action: approve\ndefault: allow\napprovals: { timeout: 10m }\n');
  const client = newPgClient(holding.env);
  client.on('error', () => undefined);
  try {
    await client.connect();
    const held = client.query('DROP TABLE IF EXISTS nothing_here').then(() => null, (e: PgError) => e);
    const request = await waitFor(() => readLog(holding.logPath()).find((r) => r.type === 'approval-request'), 'the approval request');
    const peakBefore = vmHwmKiB(holding.pid);
    // CopyData outside COPY: the server ignores it, so the backlog is cheap to let through later.
    const chunk = message('d', Buffer.alloc(MiB, 0x41));
    const stream = client.connection.stream;
    const total = 200;
    const allWritten = new Promise<boolean>((resolve) => {
      for (let i = 0; i < total; i++) stream.write(chunk, i === total - 1 ? () => resolve(true) : undefined);
    });
    // With the bound the writes stall at a few MiB; without it they all go through quickly.
    // Either way the assertion is about bytes, not time: 3 s only ends the wait for a stall.
    await Promise.race([allWritten, new Promise((r) => setTimeout(r, 3000))]);
    // What left this process (bytesWritten also counts what still waits in its write buffer).
    const taken = stream.bytesWritten - stream.writableLength;
    assert.ok(taken < 64 * MiB, `the daemon took ${(taken / MiB).toFixed(0)} MiB behind the held command`);
    const grown = vmHwmKiB(holding.pid) - peakBefore;
    assert.ok(grown < 64 * 1024, `the daemon's peak memory grew by ${(grown / 1024).toFixed(0)} MiB`);
    const deny = cli(['deny', String(request?.id), '--reason', 'test over']);
    assert.equal(deny.status, 0, deny.stderr);
    assert.equal((await held)?.code, '42501');
    assert.equal(await allWritten, true, 'once the verdict is in, the rest is read');
    assert.deepEqual((await client.query('SELECT 1 AS one')).rows, [{ one: 1 }]);
  } finally {
    await client.end().catch(() => undefined);
    holding.stop();
  }
});

function vmHwmKiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, 'VmHWM of the daemon');
  return Number(m[1]);
}

test('a logged-in client pipelining messages the server discards, with no Sync, cannot pile up memory in the daemon', { timeout: 180_000 }, async () => {
  const client = await RawClient.connect(gw.env, 'no-sync');
  try {
    const socket = client['socket'] as net.Socket;
    const peakBefore = vmHwmKiB(gw.pid);
    // The server fails this Parse and discards every message after it until a Sync; the gateway
    // must not keep a change per discarded message (statement-registry.ts).
    socket.write(message('P', Buffer.from('\0SELECT * FROM no_such_table\0\0\0')));
    const parse = message('P', Buffer.from('n\0\0\0\0'));
    const chunk = Buffer.concat(Array(Math.ceil(MiB / parse.length)).fill(parse));
    for (let sent = 0; sent < 24 * MiB; sent += chunk.length) {
      if (!socket.write(chunk)) await new Promise((r) => socket.once('drain', r));
    }
    const answers = await client.roundTrip([message('S', Buffer.alloc(0))]);
    assert.deepEqual(answers.map((m) => m.name), ['error', 'readyForQuery']);
    const grown = vmHwmKiB(gw.pid) - peakBefore;
    assert.ok(grown < 256 * 1024, `the daemon's peak memory grew by ${(grown / 1024).toFixed(0)} MiB for 24 MiB of discarded messages`);
    const after = await client.roundTrip([message('Q', Buffer.from("SELECT 'still here'\0"))]);
    assert.ok(after.some((m) => m.name === 'dataRow'));
  } finally {
    await client.end();
  }
});

test('a statement too long to parse is unclassified, and parsing it does not blow up the daemon', { timeout: 180_000 }, async () => {
  const parsing = startGateway(policyFor(cluster) + 'rules:\n  - name: no-drops\n    when: { sql: [drop] }\n    action: deny\ndefault: allow\nunclassified: deny\n');
  const client = await RawClient.connect(parsing.env, 'long-text');
  try {
    const peakBefore = vmHwmKiB(parsing.pid);
    // 4 MiB of select list: a parse tree hundreds of times the text (1.3 GB without the bound).
    const answers = await client.roundTrip([message('Q', Buffer.from(`SELECT ${'1,'.repeat(2 * MiB)}1\0`))]);
    const error = answers.find((m) => m.name === 'error') as { code?: string; message?: string } | undefined;
    assert.equal(error?.code, '42501', JSON.stringify(error));
    assert.match(String(error?.message), /unclassified.*parses at most 1048576/);
    const grown = vmHwmKiB(parsing.pid) - peakBefore;
    assert.ok(grown < 256 * 1024, `the daemon's peak memory grew by ${(grown / 1024).toFixed(0)} MiB for a 4 MiB statement`);
    const after = await client.roundTrip([message('Q', Buffer.from("SELECT 'still parsed'\0"))]);
    assert.ok(after.some((m) => m.name === 'dataRow'));
  } finally {
    await client.end();
    parsing.stop();
  }
});

test('a logged-in client pipelining tiny messages and reading no answer cannot pile up memory in the daemon', { timeout: 180_000 }, async (t) => {
  // A gateway of its own with a 48 MB heap: what it keeps per unanswered message (a response-
  // queue entry) must stay bounded, or the daemon runs out of memory (without the bound it did at times,
  // with 4 MiB taken per session; the peak RSS alone is dominated by garbage awaiting collection).
  const piping = startGateway(policyFor(cluster), 'deployer-pw', { NODE_OPTIONS: '--max-old-space-size=48' });
  const clients = await Promise.all([1, 2, 3, 4].map((i) => RawClient.connect(piping.env, `unread-${i}`)));
  try {
    const peakBefore = vmHwmKiB(piping.pid);
    const bind = message('B', Buffer.from('\0s\0\0\0\0\0\0\0'));
    const execute = message('E', Buffer.from('\0\0\0\0\0'));
    const sync = message('S', Buffer.alloc(0));
    // Two kinds of tiny messages: Bind/Execute/Sync of a prepared statement, and bare Syncs.
    const chunks = [Buffer.concat(Array(4096).fill(Buffer.concat([bind, execute, sync]))), Buffer.concat(Array(32768).fill(sync))];
    const budget = 30 * MiB;
    const flooded = clients.map(async (client, i) => {
      const socket = client['socket'] as net.Socket;
      await client.roundTrip([message('P', Buffer.from('s\0SELECT 1\0\0\0')), sync]);
      // Reads no answer: the server's answers pile up in the kernel's buffers, then its own.
      socket.pause();
      const chunk = chunks[i % 2]!;
      let sent = 0;
      // Writes until the budget is spent, or until the writes stall (with the bound, TCP's
      // buffers fill); the assertion is about memory, the 5 s only ends the wait for a stall.
      const deadline = Date.now() + 5000;
      while (sent < budget && Date.now() < deadline) {
        sent += chunk.length;
        if (!socket.write(chunk)) await Promise.race([new Promise((r) => socket.once('drain', r)), new Promise((r) => setTimeout(r, 500))]);
      }
      return socket;
    });
    const sockets = await Promise.all(flooded);
    const grown = vmHwmKiB(piping.pid) - peakBefore;
    t.diagnostic(`peak memory grew by ${(grown / 1024).toFixed(0)} MiB; sent ${sockets.map((s) => ((s.bytesWritten - s.writableLength) / MiB).toFixed(1)).join(', ')} MiB`);
    // Then every client reads everything, and its session still answers.
    for (const s of sockets) s.resume();
    for (const [i, client] of clients.entries()) {
      sockets[i]!.write(message('Q', Buffer.from("SELECT 'still here' AS answer\0")));
      const row = await client.skipUntil((m) => (m.name === 'dataRow' && (m.fields as string[])[0] !== '1') || m.name === 'error');
      assert.deepEqual(row.fields, ['still here'], 'the session still answers');
    }
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    piping.stop();
  }
  const verify = cli(['verify', piping.logPath()]);
  assert.equal(verify.status, 0, verify.stdout + verify.stderr);
});
