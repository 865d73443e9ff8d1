// Large results stream through the gateway: its memory stays flat however much passes, including
// when the client reads slowly and backpressure has to hold the server back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { useClusterAndGateway } from '../helpers/gateway.ts';

const fixture = useClusterAndGateway();

const rssMB = (pid: number, field: 'VmRSS' | 'VmHWM'): number =>
  Number(new RegExp(`${field}:\\s+(\\d+)`).exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

test('a 1 GB result read slowly leaves the gateway at a flat footprint', async () => {
  const gw = fixture.gw();
  const before = rssMB(gw.pid, 'VmRSS');
  fs.writeFileSync(`/proc/${gw.pid}/clear_refs`, '5'); // restart the peak (VmHWM) from now
  const rows = 1_000_000;
  const child = spawn('psql', ['-X', '-q', '-c', `COPY (SELECT repeat('x', 1024) FROM generate_series(1, ${rows})) TO STDOUT`], {
    env: { ...process.env, ...gw.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const hash = createHash('sha256');
  let bytes = 0;
  let reads = 0;
  // A slow reader: pause now and then so the pipe, psql and then the gateway must hold back.
  child.stdout.on('data', (d: Buffer) => {
    hash.update(d);
    bytes += d.length;
    if (++reads % 200 === 0) {
      child.stdout.pause();
      setTimeout(() => child.stdout.resume(), 20);
    }
  });
  const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(status, 0);
  assert.equal(bytes, rows * 1025);
  const expected = createHash('sha256');
  const line = Buffer.from('x'.repeat(1024) + '\n');
  for (let i = 0; i < rows; i++) expected.update(line);
  assert.equal(hash.digest('hex'), expected.digest('hex'), 'every byte arrived intact');
  const peak = rssMB(gw.pid, 'VmHWM');
  assert.ok(peak - before < 100, `the gateway grew by ${(peak - before).toFixed(0)} MB while streaming 1 GB (from ${before.toFixed(0)} MB)`);
});
