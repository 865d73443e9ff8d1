// npm run bench: PostgreSQL direct vs through the gateway, in one run on one cluster.
// pgbench -S at 1 and 8 clients in simple and prepared modes, then a streamed multi-GB
// COPY TO STDOUT. Prints TPS ratios, added latency per query and the gateway's peak RSS, and the
// cost of policy rules and masking at 8 clients against the gateway without them, and of signed
// checkpoints (on, the default, vs off). bench/verify.ts then times verify on a 1M-record log.
// Environment: BENCH_SECONDS (per pgbench run, default 10), BENCH_COPY_GB (default 2);
// BENCH_POLICY_ONLY=1 skips the direct/pipe/gateway table, BENCH_MODES=simple limits the policy
// runs to one mode, BENCH_MASKING_ONLY=1 adds a variant with masking and no rules.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startCluster } from '../gateway/demo/pg-cluster.ts';

const PIPE_SOURCE = `
const net = require('node:net');
const port = Number(process.argv[1]);
const server = net.createServer((c) => {
  const u = net.connect(port, '127.0.0.1');
  c.setNoDelay(true); u.setNoDelay(true);
  c.pipe(u); u.pipe(c);
  c.on('error', () => u.destroy()); u.on('error', () => c.destroy());
});
server.listen(0, '127.0.0.1', () => process.stdout.write(String(server.address().port)));
`;

const TEN_RULES = `rules:
  - { name: no-unbounded-writes, when: { sql: [delete-without-where, update-without-where] }, action: deny }
  - { name: no-privileges, when: { sql: [grant, revoke, role] }, action: deny }
  - { name: ddl-on-main, when: { sql: [ddl], ref-not: refs/heads/main }, action: deny }
  - { name: no-programs, when: { sql: [copy-to-program, copy-from-program] }, action: deny }
  - { name: no-do, when: { sql: [do-block] }, action: deny }
  - { name: no-functions, when: { sql: [function-definition] }, action: deny }
  - { name: audit-read-only, when: { tables: ["audit.*"], sql: [insert, update, delete, truncate] }, action: deny }
  - { name: no-truncate, when: { sql: [truncate] }, action: deny }
  - { name: no-terminate, when: { text-matches: "pg_terminate_backend|pg_cancel_backend" }, action: deny }
  - { name: reads-ok, when: { sql: [select] }, action: allow }
default: allow
unclassified: deny
`;

// pgbench -S reads abalance: one masked column is in every result, so each row is rewritten.
const MASKING = `masking:
  columns: [email, ssn, "customers.phone", "*.card_number", "pgbench_accounts.abalance"]
  detectors: [email, credit-card, iban, jwt, azure-storage-key, azure-sas-token, connection-string, private-key, github-token]
  apply-to: [client, log]
`;

const CHECKPOINTS_OFF = 'checkpoints off';
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const copyGB = Number(process.env.BENCH_COPY_GB ?? 2);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-bench-'));
const cluster = await startCluster({ settings: { max_connections: '100', shared_buffers: '256MB' } });
const password = 'bench-password';
const stateDir = path.join(work, 'state');
let daemonPid = 0;

try {
  cluster.sql(`CREATE ROLE deployer LOGIN PASSWORD '${password}'`);
  cluster.sql('CREATE DATABASE app OWNER deployer');
  const direct = { PGHOST: '127.0.0.1', PGPORT: String(cluster.port), PGUSER: 'deployer', PGPASSWORD: password, PGDATABASE: 'app', PGSSLMODE: 'disable' };
  execFileSync(path.join(cluster.binDir, 'pgbench'), ['-i', '-q', '-s', '10'], { env: { ...process.env, ...direct }, stdio: 'ignore' });

  const policy = path.join(work, 'gateway.yml');
  fs.writeFileSync(policy, `version: 1\ntargets:\n  app-db:\n    kind: postgres\n    host: 127.0.0.1\n    port: ${cluster.port}\n    database: app\n    user: deployer\n    auth: { password-env: APP_DB_PASSWORD }\n    tls: disable\n`);
  const started = spawnSync(process.execPath, [path.join(root, 'dist/cli.js'), 'start', '--policy', policy, '--state-dir', stateDir, '--log-dir', path.join(work, 'logs')], {
    env: { ...process.env, APP_DB_PASSWORD: password }, encoding: 'utf8',
  });
  if (started.status !== 0) throw new Error(`gateway start failed: ${started.stderr}`);
  const gw: Record<string, string> = Object.fromEntries(started.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  daemonPid = JSON.parse(fs.readFileSync(path.join(stateDir, 'daemon.json'), 'utf8')).pid as number;
  const through = { PGHOST: gw.PGHOST!, PGPORT: gw.PGPORT!, PGUSER: gw.PGUSER!, PGPASSWORD: gw.PGPASSWORD!, PGDATABASE: gw.PGDATABASE!, PGSSLMODE: 'disable' };

  // A bare Node socket pipe: the floor any Node proxy starts from, measured in the same run.
  const pipe = spawn(process.execPath, ['-e', PIPE_SOURCE, String(cluster.port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const pipePort = await new Promise<number>((resolve) => pipe.stdout.once('data', (d: Buffer) => resolve(Number(d.toString()))));
  const piped = { ...direct, PGPORT: String(pipePort) };

  console.log(`gateway-action benchmark: PostgreSQL ${cluster.port}, gateway pid ${daemonPid}, ${os.cpus().length} cores, ${seconds}s per pgbench run\n`);
  console.log('pgbench -S (select-only)   direct TPS   bare pipe TPS (ratio)   gateway TPS (ratio)   gateway added latency/query');
  for (const mode of process.env.BENCH_POLICY_ONLY ? [] : ['simple', 'prepared']) {
    for (const clients of [1, 8]) {
      const d = pgbench(direct, mode, clients);
      const p = pgbench(piped, mode, clients);
      const g = pgbench(through, mode, clients);
      const added = clients === 1 ? `${(1e6 / g - 1e6 / d).toFixed(0)} µs` : '-';
      console.log(`  ${mode.padEnd(8)} ${String(clients).padStart(2)} client(s)  ${d.toFixed(0).padStart(9)}   ${p.toFixed(0).padStart(9)} (${(p / d).toFixed(2)}x)      ${g.toFixed(0).padStart(9)} (${(g / d).toFixed(2)}x)     ${added}`);
    }
  }
  pipe.kill();

  // The same load through gateways whose policies add ten rules (every statement parsed,
  // classified and decided), then also masking (five masked columns, every detector on every
  // text value), each against the gateway without them, measured in this same run.
  // The last variant turns signed checkpoints off (only the seal is signed): the ratio of the
  // default gateway (checkpoints every 1000 records or 5s) to it is the cost of signing.
  const variants: [string, string][] = [['10 rules', TEN_RULES], ['10 rules + masking', TEN_RULES + MASKING]];
  if (process.env.BENCH_MASKING_ONLY) variants.push(['masking', MASKING]);
  variants.push([CHECKPOINTS_OFF, 'session-log:\n  checkpoints: { every-records: 0, every: 0s }\n']);
  console.log('\npolicy cost (8 clients)              gateway TPS   with policy TPS   ratio');
  for (const [name, extra] of variants) {
    const dir = path.join(work, name.replace(/\W+/g, '-'));
    fs.mkdirSync(dir);
    const variantPolicy = path.join(dir, 'gateway.yml');
    fs.writeFileSync(variantPolicy, fs.readFileSync(policy, 'utf8') + extra);
    const started2 = spawnSync(process.execPath, [path.join(root, 'dist/cli.js'), 'start', '--policy', variantPolicy, '--state-dir', path.join(dir, 'state'), '--log-dir', path.join(dir, 'logs')], {
      env: { ...process.env, APP_DB_PASSWORD: password, GITHUB_REF: 'refs/heads/main' }, encoding: 'utf8',
    });
    if (started2.status !== 0) throw new Error(`gateway start (${name}) failed: ${started2.stderr}`);
    const gw2: Record<string, string> = Object.fromEntries(started2.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    const ruled = { ...through, PGPORT: gw2.PGPORT!, PGPASSWORD: gw2.PGPASSWORD! };
    for (const mode of process.env.BENCH_MODES?.split(',') ?? ['simple', 'prepared']) {
      // Alternated (g r r g g r r g) so drift during the run weighs on both sides alike.
      let g = 0;
      let r = 0;
      for (let round = 0; round < 2; round++) {
        g += pgbench(through, mode, 8) / 4;
        r += pgbench(ruled, mode, 8) / 4;
        r += pgbench(ruled, mode, 8) / 4;
        g += pgbench(through, mode, 8) / 4;
      }
      if (name === CHECKPOINTS_OFF) {
        console.log(`  checkpoints on vs off ${mode.padEnd(8)} on ${g.toFixed(0).padStart(9)}   off ${r.toFixed(0).padStart(11)}   on/off ${(g / r).toFixed(2)}x`);
      } else {
        console.log(`  ${name.padEnd(20)} ${mode.padEnd(8)}  ${g.toFixed(0).padStart(9)}   ${r.toFixed(0).padStart(15)}   ${(r / g).toFixed(2)}x`);
      }
    }
    spawnSync(process.execPath, [path.join(root, 'dist/cli.js'), 'stop', '--state-dir', path.join(dir, 'state')]);
  }

  const pgbenchPeak = peakRss(daemonPid, true);
  const rows = Math.round((copyGB * 1024 ** 3) / 1001);
  const sql = `COPY (SELECT repeat('x', 1000) FROM generate_series(1, ${rows})) TO STDOUT`;
  console.log(`\nCOPY TO STDOUT of ${copyGB} GB (${rows} rows of 1000 bytes) into /dev/null:`);
  const cd = await copyOut(direct, sql);
  const cg = await copyOut(through, sql);
  console.log(`  direct   ${(cd.bytes / 1024 ** 2 / cd.seconds).toFixed(0).padStart(6)} MB/s  (${(cd.bytes / 1024 ** 3).toFixed(2)} GB in ${cd.seconds.toFixed(1)}s)`);
  console.log(`  gateway  ${(cg.bytes / 1024 ** 2 / cg.seconds).toFixed(0).padStart(6)} MB/s  (${(cg.bytes / 1024 ** 3).toFixed(2)} GB in ${cg.seconds.toFixed(1)}s)   ratio ${(cd.seconds / cg.seconds).toFixed(2)}x`);
  const copyPeak = peakRss(daemonPid, false);
  console.log(`\ngateway peak RSS: ${pgbenchPeak.toFixed(0)} MB during the pgbench runs, ${copyPeak.toFixed(0)} MB while streaming the COPY`);
  const stop = spawnSync(process.execPath, [path.join(root, 'dist/cli.js'), 'stop', '--state-dir', stateDir], { encoding: 'utf8' });
  daemonPid = 0;
  const log = stop.stdout.trim();
  const verify = spawnSync(process.execPath, [path.join(root, 'dist/cli.js'), 'verify', '--json', log], { encoding: 'utf8' });
  const v = JSON.parse(verify.stdout) as { status: string; totals: { commands: number; records: number }; signing: { checkpoints: number } };
  console.log(`session log: ${v.status}, ${v.totals.commands} commands in ${v.totals.records} records (${v.signing.checkpoints} signed checkpoints), ${(fs.statSync(log).size / 1024 ** 2).toFixed(1)} MB`);
} finally {
  if (daemonPid) spawnSync(process.execPath, [path.join(root, 'dist/cli.js'), 'stop', '--state-dir', stateDir]);
  cluster.stop();
  fs.rmSync(work, { recursive: true, force: true });
}


/** VmHWM in MB; with reset, also restarts the peak from the current RSS (Linux clear_refs 5). */
function peakRss(pid: number, reset: boolean): number {
  const hwm = Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
  if (reset) fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
  return hwm;
}

function pgbench(env: Record<string, string>, mode: string, clients: number): number {
  const r = spawnSync(path.join(cluster.binDir, 'pgbench'), ['-S', '-n', '-M', mode, '-c', String(clients), '-j', String(Math.min(clients, 2)), '-T', String(seconds)], {
    env: { ...process.env, ...env }, encoding: 'utf8',
  });
  const m = /tps = ([\d.]+) \(without initial connection time\)/.exec(r.stdout);
  if (!m) throw new Error(`pgbench failed: ${r.stderr}${r.stdout}`);
  return Number(m[1]);
}

function copyOut(env: Record<string, string>, sql: string): Promise<{ bytes: number; seconds: number }> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn('psql', ['-X', '-q', '-c', sql], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    let bytes = 0;
    child.stdout.on('data', (d: Buffer) => (bytes += d.length));
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`psql COPY exited ${code}`));
      resolve({ bytes, seconds: Number(process.hrtime.bigint() - t0) / 1e9 });
    });
  });
}
