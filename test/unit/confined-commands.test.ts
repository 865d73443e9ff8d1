// Confined commands' records and bridges (gateway/daemon/confined-commands.ts) when the session log
// fails: a command whose start cannot be written never gets its bridges, and stopping the gateway
// closes every open command's bridges even though none of their ends can be recorded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { SessionLogWriter, LOG_FORMAT } from '../../gateway/evidence/log-writer.ts';
import { ConfinedCommands } from '../../gateway/daemon/confined-commands.ts';
import { tempDir } from '../helpers/gateway.ts';

function breakLog(w: SessionLogWriter): void {
  fs.closeSync((w as unknown as { fd: number }).fd);
}

/** A TCP target for the bridges, a log with its run-start written, and confined commands over both. */
async function setup(name: string): Promise<{ w: SessionLogWriter; runtime: string; confined: ConfinedCommands; target: net.Server }> {
  const target = net.createServer((s) => s.end()).listen(0, '127.0.0.1');
  await new Promise((r) => target.once('listening', r));
  const port = (target.address() as net.AddressInfo).port;
  const w = SessionLogWriter.create(tempDir(), name);
  w.append('run-start', { format: LOG_FORMAT });
  w.flushSync();
  const runtime = tempDir();
  return { w, runtime, confined: new ConfinedCommands(w, runtime, () => [`127.0.0.1:${port}`]), target };
}

test('with the log failed, stopping closes every confined command\'s bridges, and a new one is refused naming the log', async () => {
  const { w, runtime, confined, target } = await setup('confined.jsonl');
  try {
    const a = await confined.begin({ argv: ['sleep', '60'], user: 'u', cwd: '/' } as Parameters<ConfinedCommands['begin']>[0]);
    const b = await confined.begin({ argv: ['sleep', '61'], user: 'u', cwd: '/' } as Parameters<ConfinedCommands['begin']>[0]);
    assert.equal(a.bridges.length, 1);
    assert.ok(fs.existsSync(a.bridges[0]!.socket) && fs.existsSync(b.bridges[0]!.socket), 'both bridges listen');

    breakLog(w);
    w.append('note', {});
    assert.ok(w.flushSync(), 'the log has failed');

    // The gateway's stop: must not throw, and must close both commands' bridges.
    confined.closeAll();
    assert.ok(!fs.existsSync(a.bridges[0]!.socket) && !fs.existsSync(b.bridges[0]!.socket), 'both bridges are gone');
    assert.deepEqual(fs.readdirSync(runtime), [], 'no confined command is left open');

    // A new command cannot have its start recorded: it is refused, and leaves nothing behind.
    await assert.rejects(confined.begin({ argv: ['true'], user: 'u', cwd: '/' } as Parameters<ConfinedCommands['begin']>[0]), /session log cannot be written/);
    assert.deepEqual(fs.readdirSync(runtime), []);
  } finally {
    target.close();
  }
});

test('a start record queued but not written (the write fails): the command is refused and its bridges are closed again', async () => {
  const { w, runtime, confined, target } = await setup('confined-write.jsonl');
  try {
    // The log has not failed yet: the start record is queued, the bridge made, and only the write
    // fails (EBADF, or ENOTCONN when the bridge's socket took the closed descriptor's number).
    breakLog(w);
    assert.equal(w.failed, null);
    await assert.rejects(confined.begin({ argv: ['true'], user: 'u', cwd: '/' } as Parameters<ConfinedCommands['begin']>[0]), /session log cannot be written/);
    assert.deepEqual(fs.readdirSync(runtime), [], 'the bridge and its directory are gone');
    confined.closeAll();
  } finally {
    target.close();
  }
});
