// The benchmark's recording floors (bench/lib/recording-floor.ts in Node, native-floor.c in C) are
// yardsticks: their figures mean something only if they relay pgbench as the gateway does and
// write the records the gateway writes, in the same canonical, hash-chained form. This checks
// both, so a broken floor cannot make the gateway look close to it, or native code look cheap.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { startCluster } from '../../gateway/demo/pg-cluster.ts';
import { canonicalJson } from '../../gateway/evidence/canonical-json.ts';
import { startNativeFloor, startRecordingFloor, type Proxy } from '../../bench/lib/proxies.ts';

const floors: [string, typeof startRecordingFloor][] = [['the recording floor', startRecordingFloor], ['the native floor', startNativeFloor]];

for (const [name, start] of floors) test(`${name} relays pgbench and writes one canonical, chained command and result record per query`, async () => {
  const cluster = await startCluster();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-floor-'));
  try {
    const direct = { PGHOST: '127.0.0.1', PGPORT: String(cluster.port), PGUSER: 'postgres', PGDATABASE: 'postgres', PGSSLMODE: 'disable' };
    const pgbench = (env: Record<string, string>, args: string[]) =>
      spawnSync(path.join(cluster.binDir, 'pgbench'), args, { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
    assert.equal(pgbench(direct, ['-i', '-q', '-s', '1']).status, 0);
    const floor: Proxy = await start(direct, cluster.port, work);
    for (const mode of ['simple', 'prepared']) {
      const r = pgbench(floor.env, ['-S', '-n', '-M', mode, '-c', '2', '-j', '2', '-t', '100']);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /number of transactions actually processed: 200\/200/);
    }
    const lines = fs.readFileSync(floor.stop(), 'utf8').trimEnd().split('\n');
    let prev = '0'.repeat(64);
    const results = new Map<string, Record<string, unknown>>();
    let selects = 0;
    for (const [i, line] of lines.entries()) {
      const record = JSON.parse(line) as Record<string, unknown>;
      const { hash, ...body } = record;
      assert.equal(line, canonicalJson(body).slice(0, -1) + `,"hash":"${hash as string}"}`, `record ${i} is canonical JSON with hash last`);
      assert.equal(hash, createHash('sha256').update(canonicalJson(body)).digest('hex'), `record ${i}'s hash`);
      assert.equal(record.prev, prev, `record ${i} chains to the one before`);
      assert.equal(record.seq, i);
      prev = hash as string;
      if (record.type === 'result') results.set(record.command as string, record);
      if (record.type === 'command' && /^SELECT abalance FROM pgbench_accounts WHERE aid = /.test(record.text as string)) selects++;
    }
    assert.equal(selects, 400, 'every query of both modes has its command record, with its text');
    for (const line of lines) {
      const r = JSON.parse(line) as { type: string; command: string };
      if (r.type !== 'command') continue;
      const result = results.get(r.command) as { status: string; response: { sha256: string; bytes: number } } | undefined;
      assert.equal(result?.status, 'ok', `${r.command} has its result`);
      assert.match(result.response.sha256, /^[0-9a-f]{64}$/);
    }
  } finally {
    cluster.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
});
