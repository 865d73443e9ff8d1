// What the PostgreSQL benchmark reads: pgbench's TPS and transaction count, a process's CPU time
// from /proc/PID/stat (utime + stime, all its threads, in clock ticks), and its peak RSS.
// CPU per transaction is the headline figure: on a loaded two-core machine TPS drifts from run to
// run, while the CPU a proxy spends on each transaction does not.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** CPU seconds (user + system) the process has used so far. */
export function cpuSeconds(pid: number): number {
  const t = cpuTimes(pid);
  return t.user + t.system;
}

/** CPU seconds the process has used so far in user space and in the kernel, apart. */
export function cpuTimes(pid: number): { user: number; system: number } {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(fields[11]) / CLOCK_TICKS, system: Number(fields[12]) / CLOCK_TICKS };
}

/** `cpu` = `user` + `system`, seconds the proxy spent during the run. */
export interface PgbenchRun { tps: number; transactions: number; cpu: number; user: number; system: number }

/**
 * pgbench -S (select-only) for `seconds`; `cpu` is what process `pid` (the proxy; 0 for none)
 * spent during the run, in seconds.
 */
export function pgbench(binDir: string, env: Record<string, string>, mode: string, clients: number, seconds: number, pid: number): PgbenchRun {
  const before = pid ? cpuTimes(pid) : { user: 0, system: 0 };
  const r = spawnSync(path.join(binDir, 'pgbench'), ['-S', '-n', '-M', mode, '-c', String(clients), '-j', String(Math.min(clients, 2)), '-T', String(seconds)], {
    env: { ...process.env, ...env }, encoding: 'utf8',
  });
  const after = pid ? cpuTimes(pid) : before;
  const user = after.user - before.user;
  const system = after.system - before.system;
  const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(r.stdout);
  const done = /number of transactions actually processed: (\d+)/.exec(r.stdout);
  if (!tps || !done) throw new Error(`pgbench failed: ${r.stderr}${r.stdout}`);
  return { tps: Number(tps[1]), transactions: Number(done[1]), cpu: user + system, user, system };
}

/** Runs summed: mean TPS and CPU microseconds per transaction. */
export class RunTotals {
  private tps = 0;
  private runs = 0;
  private transactions = 0;
  private cpu = 0;
  private user = 0;
  add(r: PgbenchRun): void {
    this.tps += r.tps;
    this.runs++;
    this.transactions += r.transactions;
    this.cpu += r.cpu;
    this.user += r.user;
  }
  get meanTps(): number {
    return this.runs ? this.tps / this.runs : 0;
  }
  get cpuUsPerTransaction(): number {
    return this.transactions ? (this.cpu * 1e6) / this.transactions : 0;
  }
  /** The user-space part of cpuUsPerTransaction (the rest is the kernel's, mostly socket I/O). */
  get userUsPerTransaction(): number {
    return this.transactions ? (this.user * 1e6) / this.transactions : 0;
  }
}

/** VmHWM in MB; with reset, also restarts the peak from the current RSS (Linux clear_refs 5). */
export function peakRss(pid: number, reset: boolean): number {
  const hwm = Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
  if (reset) fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
  return hwm;
}

/** psql COPY ... TO STDOUT into nothing: bytes and seconds. */
export function copyOut(env: Record<string, string>, sql: string): Promise<{ bytes: number; seconds: number }> {
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
