// HTTP through the gateway against the upstream directly, in one run: autocannon at 16
// connections for a small JSON body and a 1 MB one, each way twice per row in alternating order
// (a b c c b a) so drift during the run weighs on all alike. Prints requests per second and the
// ratio to direct, p50/p99 latency and what each proxy adds to them, MB/s, the CPU microseconds a
// proxy process spends per request (/proc/PID/stat) and its peak RSS (the 1 MB rows show whether
// memory stays flat while bodies stream).
// The upstream is the ARM stand-in's bench endpoints over HTTPS (bench/lib/http-upstream.ts): the
// production path (ARM is HTTPS, so the gateway's upstream leg pays TLS as it will in a job), and
// it checks the bearer token on every request, so each 2xx counted proves the gateway injected
// it (a run with any non-2xx fails). Direct, the client speaks HTTPS with the token itself; through
// a proxy it speaks plain HTTP without one, as a job step does with GATEWAY_<TARGET>_URL.
// A bare Node reverse proxy (bench/lib/http-bare-proxy.ts: no policy, no log) is measured beside
// the gateway as the floor of any Node HTTP proxy.
//   node bench/http.ts   BENCH_SECONDS (per run, default 5), BENCH_WARMUP (seconds per way and
//                        body before the table, default 3), BENCH_HTTP_CONNECTIONS (default 16),
//                        BENCH_HTTP_MB (the large body, default 1), BENCH_HTTP_GATEWAY=0 (leave the
//                        gateway out), BENCH_DIST_ROOT (a directory holding dist/cli.js; default this checkout)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { startGateway, type Proxy } from './lib/proxies.ts';
import { peakRss } from './lib/measure.ts';
import { startHttpUpstream } from './lib/http-upstream.ts';
import { startBareHttpProxy } from './lib/http-bare-proxy.ts';
import { LoadTotals, loadRun } from './lib/http-load.ts';

const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const warmup = Number(process.env.BENCH_WARMUP ?? 3);
const connections = Number(process.env.BENCH_HTTP_CONNECTIONS ?? 16);
const largeMB = Number(process.env.BENCH_HTTP_MB ?? 1);
const withGateway = process.env.BENCH_HTTP_GATEWAY !== '0';
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const distRoot = process.env.BENCH_DIST_ROOT ? path.resolve(process.env.BENCH_DIST_ROOT) : root;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-bench-http-'));
const token = randomBytes(32).toString('base64url');

/** The policy the gateway runs with: one http target, the token from the environment, everything allowed and recorded. */
const benchPolicy = (upstream: string, caFile: string): string => [
  'version: 1',
  'targets:',
  '  bench:',
  '    kind: http',
  `    url: ${upstream}`,
  '    auth: { bearer-env: BENCH_TOKEN }',
  `    ca-file: ${JSON.stringify(caFile)}`,
  'default: allow',
  '',
].join('\n');

interface Way { name: string; url: string; headers: Record<string, string>; pid: number }
const stops: (() => unknown)[] = [];
try {
  const upstream = await startHttpUpstream(token);
  stops.push(upstream.stop);
  // The gateway reads the CA when it starts; keep a copy the upstream's clean-up cannot take away.
  const caFile = path.join(work, 'upstream-ca.pem');
  fs.copyFileSync(upstream.caFile, caFile);
  const bare = await startBareHttpProxy(upstream.url, caFile, token);
  stops.push(bare.stop);
  const ways: Way[] = [
    { name: 'direct', url: upstream.url, headers: { authorization: `Bearer ${token}` }, pid: 0 },
    { name: 'bare Node proxy', url: bare.url, headers: {}, pid: bare.pid },
  ];
  let gateway: Proxy | null = null;
  if (withGateway) {
    gateway = startGateway('gateway', distRoot, path.join(work, 'gateway'), benchPolicy(upstream.url, caFile), { BENCH_TOKEN: token });
    stops.push(() => gateway!.stop());
    const url = gateway.vars?.GATEWAY_BENCH_URL;
    if (!url) throw new Error(`the gateway exported no GATEWAY_BENCH_URL (it exported ${Object.keys(gateway.vars ?? {}).join(', ')})`);
    ways.push({ name: 'gateway', url, headers: {}, pid: gateway.pid });
  }

  const bodies = [
    { name: 'small JSON', path: '/bench/small' },
    { name: `${largeMB} MB JSON`, path: `/bench/body?bytes=${Math.round(largeMB * 1024 ** 2)}` },
  ];
  const run = (w: Way, p: string, s: number) => loadRun(`${w.url}${p}`, { connections, seconds: s, headers: w.headers, pid: w.pid || undefined });
  if (warmup > 0) for (const w of ways) for (const b of bodies) await run(w, b.path, warmup);

  console.log(`gateway-action HTTP benchmark: ARM stand-in over HTTPS on 127.0.0.1, ${os.cpus().length} cores, node ${process.version}, autocannon at ${connections} connections, ${seconds}s per run, each way twice per row, after ${warmup}s of warm-up per way and body\n`);
  console.log('                              req/s  vs direct   p50 ms (added)   p99 ms (added)     MB/s   CPU µs/req (user + kernel)   peak RSS');
  for (const b of bodies) {
    console.log(`  ${b.name}`);
    const totals = ways.map(() => new LoadTotals());
    const rss = ways.map(() => 0);
    const order = [...ways.keys()];
    for (const i of [...order, ...[...order].reverse()]) {
      const w = ways[i]!;
      if (w.pid) peakRss(w.pid, true);
      totals[i]!.add(await run(w, b.path, seconds));
      if (w.pid) rss[i] = Math.max(rss[i]!, peakRss(w.pid, false));
    }
    const d = totals[0]!;
    ways.forEach((w, i) => {
      const t = totals[i]!;
      const added = (x: number, base: number): string => (i === 0 ? '' : `(+${(x - base).toFixed(2)})`).padEnd(9);
      const cpu = (w.pid ? `${t.cpuUsPerRequest.toFixed(0)} (${t.userUsPerRequest.toFixed(0)} + ${(t.cpuUsPerRequest - t.userUsPerRequest).toFixed(0)})` : '-').padStart(24);
      const mem = w.pid ? `${rss[i]!.toFixed(0)} MB` : '-';
      console.log(`    ${w.name.padEnd(20)} ${t.rps.toFixed(0).padStart(9)}   ${(t.rps / d.rps).toFixed(2)}x   ${t.p50.toFixed(2).padStart(7)} ${added(t.p50, d.p50)} ${t.p99.toFixed(2).padStart(7)} ${added(t.p99, d.p99)} ${t.mbPerSecond.toFixed(0).padStart(7)}     ${cpu}   ${mem.padStart(8)}`);
    });
  }
  console.log('\ntargets: gateway at least 0.5x direct req/s on the small body; peak RSS flat on the large one');
  if (gateway) {
    const log = gateway.stop();
    const records = log ? fs.readFileSync(log, 'utf8').split('\n').filter(Boolean).length : 0;
    console.log(`session log: ${records} records, ${log ? (fs.statSync(log).size / 1024 ** 2).toFixed(1) : 0} MB (${path.basename(log)})`);
  }
} finally {
  for (const stop of stops.reverse()) stop();
  fs.rmSync(work, { recursive: true, force: true });
}
