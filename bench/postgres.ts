// npm run bench: PostgreSQL direct vs through each proxy, in one run on one cluster.
// pgbench -S at 1, 8 and 32 clients in simple and prepared modes, against the server directly,
// through a bare Node socket pipe, pgbouncer (session mode), the recording floor (the bare pipe
// plus the two hash-chained records per command and nothing else: what any Node recording proxy
// pays, lib/recording-floor.ts), the same floor in C (lib/native-floor.c, built with cc and
// OpenSSL: what a hot path outside JavaScript could reach), the gateway, and the gateway with ten rules and masking; each target runs twice per row in alternating order (a b c d e e d c b a) so
// drift during the run weighs on all alike. Prints TPS, the ratio to direct, and the CPU
// microseconds each proxy process spends per transaction (/proc/PID/stat; user-space and kernel
// parts in parentheses), then the cost of
// single policy features at 8 clients, a streamed COPY TO STDOUT with the gateway's peak RSS,
// and (bench/verify.ts) how long verify takes on a 1M-record log.
// Environment: BENCH_SECONDS (per pgbench run, default 5), BENCH_CLIENTS (default 1,8,32),
// BENCH_MODES (default simple,prepared), BENCH_WARMUP (seconds per target and mode before the
// table, default 5), BENCH_VARIANTS=0 skips the single-feature costs,
// BENCH_COPY_GB (default 2; 0 skips the COPY).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { startGateway, startNativeFloor, startPgbouncer, startPipe, startRecordingFloor, type Proxy } from './lib/proxies.ts';
import { RunTotals, copyOut, peakRss, pgbench } from './lib/measure.ts';
import { CHECKPOINTS_OFF, MASKING, TEN_RULES, benchDatabase } from './lib/setup.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const clientCounts = (process.env.BENCH_CLIENTS ?? '1,8,32').split(',').map(Number);
const modes = (process.env.BENCH_MODES ?? 'simple,prepared').split(',');
const copyGB = Number(process.env.BENCH_COPY_GB ?? 2);
const warmup = Number(process.env.BENCH_WARMUP ?? 5);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-bench-'));
const { cluster, direct, target, secrets } = await benchDatabase({ shared_buffers: '256MB' });
const proxies: Proxy[] = [];

try {
  const gateway = (name: string, extra: string): Proxy => {
    const p = startGateway(name, root, path.join(work, name.replace(/\W+/g, '-')), target + extra, secrets);
    proxies.push(p);
    return p;
  };

  const pipe = await startPipe(direct, cluster.port);
  proxies.push(pipe);
  const bouncer = await startPgbouncer(direct, cluster.port);
  proxies.push(bouncer);
  const floor = await startRecordingFloor(direct, cluster.port, path.join(work, 'floor'));
  proxies.push(floor);
  const nativeFloor = await startNativeFloor(direct, cluster.port, path.join(work, 'native-floor'));
  proxies.push(nativeFloor);
  const plain = gateway('gateway', '');
  const ruled = gateway('gateway, 10 rules + masking', TEN_RULES + MASKING);
  const targets: { name: string; env: Record<string, string>; pid: number }[] = [{ name: 'direct', env: direct, pid: 0 }, pipe, bouncer, floor, nativeFloor, plain, ruled];

  // Warm-up: a long-running daemon has its hot paths compiled; the first seconds of a fresh one
  // (V8 tiering up) are not what a job's queries see after its first few hundred.
  for (const t of targets) for (const mode of modes) pgbench(cluster.binDir, t.env, mode, 8, warmup, t.pid);
  console.log(`gateway-action benchmark: PostgreSQL on ${cluster.port}, ${os.cpus().length} cores, node ${process.version}, ${seconds}s per pgbench run, each target twice per row, after ${warmup}s of warm-up per target and mode\n`);
  console.log('pgbench -S                                         TPS  vs direct   CPU µs/txn (user + kernel)');
  const summary: string[] = [];
  const floorSummary: string[] = [];
  for (const mode of modes) {
    for (const clients of clientCounts) {
      const totals = targets.map(() => new RunTotals());
      const order = [...targets.keys()];
      for (const i of [...order, ...order.reverse()]) totals[i]!.add(pgbench(cluster.binDir, targets[i]!.env, mode, clients, seconds, targets[i]!.pid));
      const d = totals[0]!.meanTps;
      targets.forEach((t, i) => {
        const tot = totals[i]!;
        const head = i === 0 ? `  ${mode.padEnd(8)} ${String(clients).padStart(2)} client(s)  ` : ' '.repeat(26);
        const cpu = t.pid ? `${tot.cpuUsPerTransaction.toFixed(1).padStart(8)} (${tot.userUsPerTransaction.toFixed(1)} + ${(tot.cpuUsPerTransaction - tot.userUsPerTransaction).toFixed(1)})` : '       -';
        console.log(`${head}${t.name.padEnd(28)}${tot.meanTps.toFixed(0).padStart(8)}   ${(tot.meanTps / d).toFixed(2)}x   ${cpu}`);
      });
      const cpuOf = (p: Proxy): number => totals[targets.indexOf(p)]!.cpuUsPerTransaction;
      const ratio = (a: Proxy, b: Proxy): string => `${(cpuOf(a) / cpuOf(b)).toFixed(2)}x`;
      summary.push(`  ${mode.padEnd(8)} ${String(clients).padStart(2)} client(s)   gateway/pgbouncer ${ratio(plain, bouncer)}   gateway/bare pipe ${ratio(plain, pipe)}   with 10 rules + masking/gateway ${ratio(ruled, plain)}`);
      floorSummary.push(`  ${mode.padEnd(8)} ${String(clients).padStart(2)} client(s)   recording floor/pgbouncer ${ratio(floor, bouncer)}   recording floor/bare pipe ${ratio(floor, pipe)}   gateway/recording floor ${ratio(plain, floor)}   native floor/pgbouncer ${ratio(nativeFloor, bouncer)}`);
    }
  }
  console.log('\nCPU per transaction, ratios (targets: gateway/pgbouncer <= 2, gateway/bare pipe <= 1.3, 10 rules + masking/gateway <= 1.2)');
  for (const line of summary) console.log(line);
  console.log('\nThe recording floors: what the two records per command alone cost a proxy in Node and in C, against the same ratios');
  for (const line of floorSummary) console.log(line);
  ruled.stop();
  floor.stop();
  nativeFloor.stop();
  pipe.stop();
  bouncer.stop();

  // Single features against the plain gateway at 8 clients, alternated (g v v g g v v g).
  // "no checkpoints" signs only the seal: its CPU ratio below 1 is what signing checkpoints (every
  // 1000 records or 5s, the default) costs the plain gateway.
  if (process.env.BENCH_VARIANTS !== '0') {
    console.log('\nfeature cost (8 clients)        gateway TPS  with it TPS   TPS ratio   CPU µs/txn   CPU ratio');
    for (const [name, extra] of [['10 rules', TEN_RULES], ['masking', MASKING], ['no checkpoints', CHECKPOINTS_OFF]] as const) {
      const variant = gateway(name, extra);
      for (const mode of modes) pgbench(cluster.binDir, variant.env, mode, 8, warmup, variant.pid);
      for (const mode of modes) {
        const g = new RunTotals();
        const v = new RunTotals();
        for (let round = 0; round < 2; round++) {
          g.add(pgbench(cluster.binDir, plain.env, mode, 8, seconds, plain.pid));
          v.add(pgbench(cluster.binDir, variant.env, mode, 8, seconds, variant.pid));
          v.add(pgbench(cluster.binDir, variant.env, mode, 8, seconds, variant.pid));
          g.add(pgbench(cluster.binDir, plain.env, mode, 8, seconds, plain.pid));
        }
        console.log(`  ${name.padEnd(16)} ${mode.padEnd(8)} ${g.meanTps.toFixed(0).padStart(9)}  ${v.meanTps.toFixed(0).padStart(11)}   ${(v.meanTps / g.meanTps).toFixed(2)}x     ${g.cpuUsPerTransaction.toFixed(1).padStart(5)} → ${v.cpuUsPerTransaction.toFixed(1).padStart(5)}   ${(v.cpuUsPerTransaction / g.cpuUsPerTransaction).toFixed(2)}x`);
      }
      variant.stop();
    }
  }

  const pgbenchPeak = peakRss(plain.pid, true);
  if (copyGB > 0) {
    const rows = Math.round((copyGB * 1024 ** 3) / 1001);
    const sql = `COPY (SELECT repeat('x', 1000) FROM generate_series(1, ${rows})) TO STDOUT`;
    console.log(`\nCOPY TO STDOUT of ${copyGB} GB (${rows} rows of 1000 bytes) into /dev/null:`);
    const cd = await copyOut(direct, sql);
    const cg = await copyOut(plain.env, sql);
    console.log(`  direct   ${(cd.bytes / 1024 ** 2 / cd.seconds).toFixed(0).padStart(6)} MB/s  (${(cd.bytes / 1024 ** 3).toFixed(2)} GB in ${cd.seconds.toFixed(1)}s)`);
    console.log(`  gateway  ${(cg.bytes / 1024 ** 2 / cg.seconds).toFixed(0).padStart(6)} MB/s  (${(cg.bytes / 1024 ** 3).toFixed(2)} GB in ${cg.seconds.toFixed(1)}s)   ratio ${(cd.seconds / cg.seconds).toFixed(2)}x`);
    const copyPeak = peakRss(plain.pid, false);
    console.log(`\ngateway peak RSS: ${pgbenchPeak.toFixed(0)} MB during the pgbench runs, ${copyPeak.toFixed(0)} MB while streaming the COPY (target < 150 MB)`);
  } else {
    console.log(`\ngateway peak RSS: ${pgbenchPeak.toFixed(0)} MB during the pgbench runs`);
  }
  const log = plain.stop();
  const verify = spawnSync(process.execPath, [path.join(root, 'dist/cli.js'), 'verify', '--json', log], { encoding: 'utf8' });
  const v = JSON.parse(verify.stdout) as { status: string; totals: { commands: number; records: number }; signing: { checkpoints: number } };
  console.log(`session log: ${v.status}, ${v.totals.commands} commands in ${v.totals.records} records (${v.signing.checkpoints} signed checkpoints), ${(fs.statSync(log).size / 1024 ** 2).toFixed(1)} MB`);
} finally {
  for (const p of proxies) p.stop();
  cluster.stop();
  fs.rmSync(work, { recursive: true, force: true });
}
