// Kubernetes through the gateway against the API server directly, in one run, with the real
// kubectl as the client: the latency of `kubectl get pods -n default` run BENCH_KUBE_GETS times in
// a row (each a fresh kubectl process: TLS, a cached discovery read, one list; what a deploy
// script's many small calls pay), and the throughput of `kubectl exec -i POD -- cat` with
// BENCH_KUBE_MB of random bytes on stdin, stdout read and counted here and its sha256 checked
// equal to the input's, so each run proves the bytes came back intact (through the gateway every
// stdin and stdout frame is decoded, digested, sampled and re-framed on both WebSockets).
// The upstream is the Kubernetes API stand-in (test/helpers/kube-api-stand-in.ts) over HTTPS,
// checking the bearer token on every request: direct, kubectl carries the token itself; through
// the gateway it carries the per-run token of the gateway's KUBECONFIG and the gateway injects
// the real one. The stand-in runs in this process (its `cat` echoes stdin back over the exec
// WebSocket), so kubectl is always spawned asynchronously and the stand-in's cost falls on both
// ways alike. The ways alternate (direct, gateway, gateway, direct) so drift weighs on both alike.
// Printed: median and p90 wall ms per `get` and the ratio gateway/direct (above 1: slower), MB/s
// of the exec and the ratio gateway/direct (below 1: slower), the gateway's CPU time from
// /proc/PID/stat (per get, per exec) and its peak RSS while the exec streams; then the session
// log is sealed and checked with `gateway-action verify`.
//   node bench/kubernetes.ts   BENCH_KUBE_GETS (per way, default 50), BENCH_KUBE_MB (default 100),
//                              BENCH_KUBE_EXECS (execs per way, default 2),
//                              BENCH_DIST_ROOT (a directory holding dist/cli.js; default this checkout)
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseEnvFile } from '../gateway/cli/env-file.ts';
import { startKubeApi } from '../test/helpers/kube-api-stand-in.ts';
import { kubectlPath } from '../test/helpers/kube-api-kubectl.ts';
import { cpuSeconds, peakRss } from './lib/measure.ts';

const GETS = Number(process.env.BENCH_KUBE_GETS ?? 50);
const MB = Number(process.env.BENCH_KUBE_MB ?? 100);
const EXECS = Number(process.env.BENCH_KUBE_EXECS ?? 2);
const POD = 'web-0';
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(process.env.BENCH_DIST_ROOT ? path.resolve(process.env.BENCH_DIST_ROOT) : root, 'dist/cli.js');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-bench-kube-'));
const kubectl = kubectlPath();

interface Ran { code: number | null; stdout: string; stderr: string }

/** A child process run to its end without blocking the event loop (the stand-in answers from it). */
function run(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

interface Timed { seconds: number; bytes: number; sha256: string }

/** kubectl with a kubeconfig; stdin from a file (or nothing), stdout counted and hashed. */
function timedKubectl(kubeconfig: string, args: string[], stdinFile?: string): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const stdin = stdinFile ? fs.openSync(stdinFile, 'r') : 'ignore';
    const t0 = process.hrtime.bigint();
    const child = spawn(kubectl, args, { env: { PATH: process.env.PATH!, HOME: path.dirname(kubeconfig), KUBECONFIG: kubeconfig }, stdio: [stdin, 'pipe', 'pipe'] });
    if (typeof stdin === 'number') fs.closeSync(stdin);
    const hash = createHash('sha256');
    let bytes = 0;
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => { bytes += d.length; hash.update(d); });
    child.stderr!.on('data', (d: Buffer) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      if (code !== 0) reject(new Error(`kubectl ${args.join(' ')} exited ${code}: ${stderr.trim()}`));
      else resolve({ seconds, bytes, sha256: hash.digest('hex') });
    });
  });
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const p90 = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.max(0, Math.ceil(xs.length * 0.9) - 1)]!;

const token = randomBytes(32).toString('base64url');
const kube = await startKubeApi({ token });
let stateDir = '';
try {
  // Random bytes: nothing on the path can compress them away.
  const input = path.join(work, 'input.bin');
  const inputHash = createHash('sha256');
  const fd = fs.openSync(input, 'w');
  for (let left = MB * 1024 ** 2; left > 0; left -= 1 << 20) {
    const chunk = randomBytes(Math.min(left, 1 << 20));
    inputHash.update(chunk);
    fs.writeSync(fd, chunk);
  }
  fs.closeSync(fd);
  const inputSha = inputHash.digest('hex');

  // The gateway reads the CA when it starts; keep a copy the stand-in's clean-up cannot take away.
  const gwDir = path.join(work, 'gateway');
  fs.mkdirSync(gwDir);
  fs.copyFileSync(kube.caFile, path.join(gwDir, 'kube-ca.pem'));
  // No rules: everything allowed and recorded.
  fs.writeFileSync(path.join(gwDir, 'gateway.yml'), [
    'version: 1',
    'targets:',
    '  k:',
    '    kind: kubernetes',
    `    server: ${kube.server}`,
    '    ca-file: kube-ca.pem',
    '    auth: { token-env: KT }',
    '',
  ].join('\n'));
  stateDir = path.join(gwDir, 'state');
  const started = await run(process.execPath, [cli, 'start', '--policy', path.join(gwDir, 'gateway.yml'), '--state-dir', stateDir, '--log-dir', path.join(gwDir, 'logs')], { ...process.env, KT: token, GITHUB_REF: 'refs/heads/main' });
  if (started.code !== 0) throw new Error(`gateway-action start failed (${started.code}): ${started.stderr}`);
  const pid = JSON.parse(fs.readFileSync(path.join(stateDir, 'daemon.json'), 'utf8')).pid as number;
  const gatewayKubeconfig = parseEnvFile(fs.readFileSync(path.join(stateDir, 'env'), 'utf8')).KUBECONFIG;
  if (!gatewayKubeconfig) throw new Error('the gateway exported no KUBECONFIG');

  // Each way gets its own HOME, so kubectl's discovery cache is its own and warm for both.
  const ways = [
    { name: 'direct', kubeconfig: '', pid: 0 },
    { name: 'gateway', kubeconfig: path.join(work, 'home-gateway', 'kubeconfig'), pid },
  ];
  for (const w of ways) fs.mkdirSync(path.join(work, `home-${w.name}`));
  ways[0]!.kubeconfig = await kube.writeKubeconfig({ file: path.join(work, 'home-direct', 'kubeconfig') });
  fs.copyFileSync(gatewayKubeconfig, ways[1]!.kubeconfig);
  const order = [0, 1, 1, 0];

  const get = ['get', 'pods', '-n', 'default'];
  const exec = ['exec', '-i', POD, '-n', 'default', '--', 'cat'];
  for (const w of ways) await timedKubectl(w.kubeconfig, get); // warm-up: discovery cached

  const getMs: number[][] = [[], []];
  let getCpu = 0;
  for (const [k, i] of order.entries()) {
    const w = ways[i]!;
    const n = k < 2 ? Math.floor(GETS / 2) : GETS - Math.floor(GETS / 2);
    const cpu0 = w.pid ? cpuSeconds(w.pid) : 0;
    for (let j = 0; j < n; j++) getMs[i]!.push((await timedKubectl(w.kubeconfig, get)).seconds * 1000);
    if (w.pid) getCpu += cpuSeconds(w.pid) - cpu0;
  }

  const mbps: number[][] = [[], []];
  let execCpu = 0;
  let rss = 0;
  const execOrder = Array.from({ length: EXECS }, (_, r) => (r % 2 === 0 ? [0, 1] : [1, 0])).flat();
  for (const i of execOrder) {
    const w = ways[i]!;
    const cpu0 = w.pid ? cpuSeconds(w.pid) : 0;
    if (w.pid) peakRss(w.pid, true);
    const r = await timedKubectl(w.kubeconfig, exec, input);
    if (w.pid) {
      execCpu += cpuSeconds(w.pid) - cpu0;
      rss = Math.max(rss, peakRss(w.pid, false));
    }
    if (r.bytes !== MB * 1024 ** 2 || r.sha256 !== inputSha) throw new Error(`${w.name}: exec cat returned ${r.bytes} bytes with sha256 ${r.sha256}, not the ${MB * 1024 ** 2} bytes sent (${inputSha})`);
    mbps[i]!.push(MB / r.seconds);
  }

  const version = (await run(kubectl, ['version', '--client', '-o', 'json'], process.env)).stdout;
  const gitVersion = (JSON.parse(version) as { clientVersion?: { gitVersion?: string } }).clientVersion?.gitVersion ?? '?';
  console.log(`gateway-action Kubernetes benchmark: kubectl ${gitVersion} against the API stand-in over HTTPS on 127.0.0.1 (in the bench process), ${os.cpus().length} cores, node ${process.version}; ${GETS} gets and ${EXECS} execs of ${MB} MB per way, in the order direct, gateway, gateway, direct\n`);
  const [dGet, gGet] = getMs as [number[], number[]];
  const [dMb, gMb] = mbps as [number[], number[]];
  console.log('                                              direct    gateway    gateway/direct');
  console.log(`  \`kubectl get pods\` median ms per call   ${median(dGet).toFixed(1).padStart(9)}  ${median(gGet).toFixed(1).padStart(9)}    ${(median(gGet) / median(dGet)).toFixed(2)}x`);
  console.log(`  \`kubectl get pods\` p90 ms per call      ${p90(dGet).toFixed(1).padStart(9)}  ${p90(gGet).toFixed(1).padStart(9)}    ${(p90(gGet) / p90(dGet)).toFixed(2)}x`);
  console.log(`  \`kubectl exec -i ${POD} -- cat\` MB/s    ${median(dMb).toFixed(1).padStart(9)}  ${median(gMb).toFixed(1).padStart(9)}    ${(median(gMb) / median(dMb)).toFixed(2)}x   (${MB} MB in and out, sha256 equal on every run)`);
  console.log(`\ngateway process: ${((getCpu / GETS) * 1000).toFixed(2)} ms CPU per get; ${(execCpu / EXECS).toFixed(2)} s CPU per ${MB} MB exec (${((execCpu / EXECS / MB) * 1000).toFixed(1)} ms per MB); peak RSS while an exec streams ${rss.toFixed(0)} MB`);
  console.log(`each exec run (MB/s): direct ${dMb.map((x) => x.toFixed(1)).join(', ')}; gateway ${gMb.map((x) => x.toFixed(1)).join(', ')}`);

  const stopped = await run(process.execPath, [cli, 'stop', '--state-dir', stateDir], process.env);
  stateDir = '';
  const log = stopped.stdout.trim();
  if (stopped.code !== 0 || !log) throw new Error(`gateway-action stop failed (${stopped.code}): ${stopped.stderr}`);
  const records = fs.readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>);
  const execIds = new Set(records.filter((r) => r.type === 'command' && r.details?.kube?.subresource === 'exec').map((r) => r.command as string));
  const execResults = records.filter((r) => r.type === 'result' && execIds.has(r.command));
  const verified = await run(process.execPath, [cli, 'verify', '--json', log], process.env);
  const status = (JSON.parse(verified.stdout) as { status: string }).status;
  console.log(`session log: ${records.length} records, ${(fs.statSync(log).size / 1024).toFixed(0)} KB; ${execIds.size} execs recorded, ${execResults.filter((r) => r.status === 'ok').length} with result ok; gateway-action verify: ${status} (exit ${verified.code})`);
  if (verified.code !== 0) throw new Error(`the session log does not verify: ${verified.stdout}${verified.stderr}`);
} finally {
  if (stateDir) await run(process.execPath, [cli, 'stop', '--state-dir', stateDir], process.env);
  await kube.close();
  fs.rmSync(work, { recursive: true, force: true });
}
