// Where the gateway's CPU goes under pgbench -S: starts a cluster and one gateway, then runs
// pgbench through it while a profiler watches the daemon. Not part of `npm run bench`.
//   node bench/profile.ts [simple|prepared] [clients] [plain|ruled|rules|masking]
// PROFILE=perf (default): `perf record -e cpu-clock` (CPU time only, not time descheduled in a
// syscall) with the daemon started under --perf-basic-prof; prints perf report's top symbols.
// PROFILE=cpu-prof: V8's --cpu-prof; prints the .cpuprofile path (open it in Chrome DevTools).
// PROFILE_SECONDS (default 10).
import { spawnSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startGateway } from './lib/proxies.ts';
import { pgbench } from './lib/measure.ts';
import { MASKING, TEN_RULES, benchDatabase } from './lib/setup.ts';

const [mode = 'simple', clientsArg = '8', variant = 'plain'] = process.argv.slice(2);
const seconds = Number(process.env.PROFILE_SECONDS ?? 10);
const profiler = process.env.PROFILE ?? 'perf';
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const extra = { plain: '', ruled: TEN_RULES + MASKING, rules: TEN_RULES, masking: MASKING }[variant];
if (extra === undefined) throw new Error(`unknown variant ${variant}`);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-profile-'));
const { cluster, target, secrets } = await benchDatabase();
try {
  const nodeArgs = profiler === 'perf' ? ['--perf-basic-prof-only-functions', '--interpreted-frames-native-stack'] : ['--cpu-prof', `--cpu-prof-dir=${work}/prof`];
  const gw = startGateway(variant, root, path.join(work, 'gw'), target + extra, secrets, nodeArgs);
  pgbench(cluster.binDir, gw.env, mode, Number(clientsArg), Number(process.env.PROFILE_WARMUP ?? 8), gw.pid); // warm-up: the JIT settles
  const rec = profiler === 'perf' ? spawn('perf', ['record', '-e', 'cpu-clock', '-F', '2000', '-g', '-p', String(gw.pid), '-o', path.join(work, 'perf.data')], { stdio: 'ignore' }) : null;
  const r = pgbench(cluster.binDir, gw.env, mode, Number(clientsArg), seconds, gw.pid);
  console.log(`${variant} ${mode} ${clientsArg} clients: ${r.tps.toFixed(0)} TPS, ${((r.cpu * 1e6) / r.transactions).toFixed(1)} CPU µs/txn`);
  if (rec) {
    rec.kill('SIGINT');
    await new Promise((res) => rec.once('close', res));
  }
  gw.stop();
  // The daemon writes its profile as it exits, which may be after stop returns.
  for (let i = 0; i < 100 && fs.existsSync(`/proc/${gw.pid}`); i++) await new Promise((res) => setTimeout(res, 100));
  if (rec) {
    const children = process.env.PROFILE_CHILDREN === '1';
    const report = spawnSync('perf', ['report', '-i', path.join(work, 'perf.data'), children ? '--children' : '--no-children', '--sort', 'symbol', '--stdio', '-g', 'none', '--percent-limit', children ? '1.5' : '0.25'], { encoding: 'utf8', maxBuffer: 256 << 20 });
    if (process.env.PROFILE_KEEP) fs.copyFileSync(path.join(work, 'perf.data'), process.env.PROFILE_KEEP);
    console.log(report.stdout.split('\n').filter((l) => l.trim() && !l.startsWith('#')).map((l) => l.trimEnd().replace(/\s+-\s+-$/, '')).slice(0, 110).join('\n'));
  } else {
    const dir = path.join(work, 'prof');
    const out = path.join(os.tmpdir(), `gateway-${variant}-${mode}-${clientsArg}.cpuprofile`);
    // The daemon's is the biggest (the start and stop commands write theirs too).
    const biggest = fs.readdirSync(dir).map((f) => path.join(dir, f)).sort((a, b) => fs.statSync(b).size - fs.statSync(a).size)[0]!;
    fs.copyFileSync(biggest, out);
    console.log(`profile: ${out}`);
  }
} finally {
  cluster.stop();
  fs.rmSync(work, { recursive: true, force: true });
}
