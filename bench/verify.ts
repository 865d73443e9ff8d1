// npm run bench (second part): how long `gateway-action verify` takes on a big log. Writes a
// signed log of BENCH_VERIFY_RECORDS records (default 1,000,000) with the real writer, shaped like
// a pgbench run through the gateway (command and result pairs, checkpoints every 1000 records),
// then times the shipped CLI verifying it. The target is under 20 seconds for a million records.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SessionLogWriter, LOG_FORMAT } from '../gateway/evidence/log-writer.ts';
import { CheckpointSigner } from '../gateway/evidence/checkpoint.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const total = Number(process.env.BENCH_VERIFY_RECORDS ?? 1_000_000);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-bench-verify-'));
try {
  const t0 = process.hrtime.bigint();
  const w = SessionLogWriter.create(work, 'big.jsonl');
  const signer = new CheckpointSigner();
  w.signWith('bench', signer, { everyRecords: 1000, everyMs: 0 });
  w.append('run-start', { format: LOG_FORMAT, run: 'bench', identity: { kind: 'local', user: 'bench', host: os.hostname() }, targets: [{ name: 'app-db', kind: 'postgres' }], key: { alg: 'EdDSA', jwk: signer.jwk, thumbprint: signer.thumbprint }, attestation: 'unattested' });
  w.append('session-open', { session: 's1', target: 'app-db', protocol: 'postgres', client: { user: 'deployer', database: 'app', application_name: 'pgbench' } });
  for (let n = 1; w.nextSeq < total - 3; n++) {
    const id = 100000 + ((n * 7919) % 900000);
    w.append('command', { session: 's1', command: `s1.${n}`, target: 'app-db', kind: 'pg.query', text: 'SELECT abalance FROM pgbench_accounts WHERE aid = $1;', details: { protocol: 'extended', params: [String(id)] }, decision: { action: 'allow', rule: 'reads-ok' }, facts: [{ classes: ['select'], tables: ['pgbench_accounts'] }] });
    w.append('result', { session: 's1', command: `s1.${n}`, status: 'ok', count: 1, duration_us: 80 + (n % 50), details: { tags: ['SELECT 1'], transaction: 'I' }, response: { bytes: 54, sha256: 'f'.repeat(64), columns: ['abalance'], sample: [[String(n % 5000)]] } });
    if (n % 1000 === 0) w.flushSync();
  }
  w.append('session-close', { session: 's1', reason: 'client terminated', totals: { commands: 0 } });
  w.close('run-end', { run: 'bench', reason: 'bench', duration_ms: 0, records: w.nextSeq + 1 });
  const written = Number(process.hrtime.bigint() - t0) / 1e9;
  const size = fs.statSync(w.path).size;
  console.log(`\nverify: a signed log of ${w.nextSeq} records (${(size / 1024 ** 2).toFixed(0)} MB), written in ${written.toFixed(1)}s (${((written / w.nextSeq) * 1e6).toFixed(1)} µs per record: hashing, canonical JSON and signing)`);
  const t1 = process.hrtime.bigint();
  const v = spawnSync(process.execPath, [path.join(root, 'dist/cli.js'), 'verify', '--json', w.path], { encoding: 'utf8', maxBuffer: 1 << 24 });
  const seconds = Number(process.hrtime.bigint() - t1) / 1e9;
  const j = JSON.parse(v.stdout) as { status: string; totals: { records: number }; signing: { checkpoints: number } };
  console.log(`  gateway-action verify: ${j.status} (exit ${v.status}), ${j.totals.records} records and ${j.signing.checkpoints} checkpoint signatures in ${seconds.toFixed(1)}s (${(j.totals.records / seconds / 1000).toFixed(0)}k records/s; target: 1M records under 20s)`);
  // The report streams the log and keeps a bounded timeline, so it works on the same log.
  const t2 = process.hrtime.bigint();
  const out = path.join(work, 'report.html');
  const rep = spawnSync(process.execPath, [path.join(root, 'dist/cli.js'), 'report', w.path, '-o', out], { encoding: 'utf8' });
  const rs = Number(process.hrtime.bigint() - t2) / 1e9;
  console.log(`  gateway-action report: exit ${rep.status} in ${rs.toFixed(1)}s, ${(fs.statSync(out).size / 1024 ** 2).toFixed(1)} MB of HTML${rep.status === 0 ? '' : `: ${rep.stderr.trim()}`}`);
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
