// SSH through the gateway against direct OpenSSH, in one run: 300 MB up (`ssh host 'cat >
// /dev/null'`) and down (`ssh host 'cat bigfile'`), with the gateway recording (digests, output
// samples), its peak RSS while streaming, and the latency of 20 sequential `ssh host true`.
// A bare ssh2 relay (no policy, no log; the gateway's transport set-up) is measured beside them
// as the floor of the library (bench/lib/ssh-relay.ts).
//   node bench/ssh.ts        BENCH_SSH_MB (default 300), BENCH_SSH_ROUNDS (default 2),
//                            BENCH_DIST_ROOT (a directory holding dist/cli.js; default this checkout)
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startSshd, sshPolicy } from '../test/helpers/sshd.ts';
import { startGateway } from './lib/proxies.ts';
import { peakRss } from './lib/measure.ts';
import { startBareRelay } from './lib/ssh-relay.ts';

const MB = Number(process.env.BENCH_SSH_MB ?? 300);
const ROUNDS = Number(process.env.BENCH_SSH_ROUNDS ?? 2);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-bench-ssh-'));
fs.chmodSync(work, 0o755);
const sshd = await startSshd();
const big = path.join(work, 'big.bin');
// Random bytes: nothing on the path can compress them away.
spawnSync('sh', ['-c', `head -c ${MB}M /dev/urandom > ${big} && chmod 644 ${big}`]);

interface Way { name: string; config: string; host: string; pid: number | null }
const gw = startGateway('gateway', process.env.BENCH_DIST_ROOT ? path.resolve(process.env.BENCH_DIST_ROOT) : root, path.join(work, 'gw'), sshPolicy(sshd, 'default: allow\n'), { DEPLOY_SSH_KEY: sshd.privateKey });
const relay = await startBareRelay(sshd, work);
const ways: Way[] = [
  { name: 'direct', config: sshd.directConfig, host: 'direct', pid: null },
  { name: 'bare ssh2 relay', config: relay.config, host: 'relay', pid: relay.pid },
  { name: 'gateway', config: gw.vars!.GATEWAY_SSH_CONFIG!, host: 'web-vm', pid: gw.pid },
];

function timed(shell: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const p = spawn('sh', ['-c', shell], { stdio: ['ignore', 'ignore', 'inherit'] });
    p.on('close', (code) => (code === 0 ? resolve(Number(process.hrtime.bigint() - t0) / 1e9) : reject(new Error(`${shell} exited ${code}`))));
  });
}

const results = new Map<string, { up: number[]; down: number[]; rssUp: number; rssDown: number; latency: number[] }>();
for (const w of ways) results.set(w.name, { up: [], down: [], rssUp: 0, rssDown: 0, latency: [] });
const order = [...ways, ...[...ways].reverse()];
for (let round = 0; round < ROUNDS; round++) {
  for (const w of order.slice(round % 2 === 0 ? 0 : ways.length).slice(0, ways.length)) {
    const r = results.get(w.name)!;
    const ssh = `ssh -F ${w.config} ${w.host}`;
    if (w.pid) peakRss(w.pid, true);
    r.up.push(MB / (await timed(`${ssh} 'cat > /dev/null' < ${big}`)));
    if (w.pid) r.rssUp = Math.max(r.rssUp, peakRss(w.pid, true));
    r.down.push(MB / (await timed(`${ssh} 'cat ${big}' > /dev/null`)));
    if (w.pid) r.rssDown = Math.max(r.rssDown, peakRss(w.pid, true));
    for (let i = 0; i < 10; i++) r.latency.push(await timed(`${ssh} true`));
  }
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const d = results.get('direct')!;
console.log(`gateway-action SSH benchmark: OpenSSH ${spawnSync('ssh', ['-V'], { encoding: 'utf8' }).stderr.trim()}, ${os.cpus().length} cores, node ${process.version}, ${MB} MB each way, ${ROUNDS} rounds (median)\n`);
console.log('                         upload MB/s  ratio   download MB/s  ratio   peak RSS up/down   `ssh host true` ms  ratio');
for (const w of ways) {
  const r = results.get(w.name)!;
  const up = median(r.up);
  const down = median(r.down);
  const lat = median(r.latency) * 1000;
  const rss = w.pid ? `${r.rssUp.toFixed(0)} / ${r.rssDown.toFixed(0)} MB` : '-';
  console.log(`  ${w.name.padEnd(22)} ${up.toFixed(0).padStart(8)}  ${(up / median(d.up)).toFixed(2).padStart(6)}x   ${down.toFixed(0).padStart(10)}  ${(down / median(d.down)).toFixed(2).padStart(6)}x   ${rss.padStart(16)}   ${lat.toFixed(1).padStart(12)}  ${(lat / (median(d.latency) * 1000)).toFixed(2).padStart(6)}x`);
}
console.log('\ntargets: gateway at least 0.6x of direct both ways; peak RSS flat while streaming');
const log = gw.stop();
relay.stop();
sshd.stop();
const records = fs.readFileSync(log, 'utf8').split('\n').filter(Boolean).length;
console.log(`session log: ${records} records (${path.basename(log)})`);
fs.rmSync(work, { recursive: true, force: true });
