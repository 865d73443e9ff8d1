// One load run of the HTTP benchmark: autocannon (as a library, in this process) against a URL for
// a number of seconds at a number of connections, and the CPU a proxy process spent meanwhile.
// A run that saw any non-2xx answer or connection error throws: a rate of failed requests says
// nothing about a proxy's cost (and a 401 means the credential was not injected).
import autocannon from 'autocannon';
import { cpuTimes } from './measure.ts';

export interface LoadRun {
  /** Completed 2xx responses per second. */
  rps: number;
  requests: number;
  /** Latency percentiles, milliseconds. */
  p50: number;
  p99: number;
  /** Response bytes per second. */
  bytesPerSecond: number;
  /** CPU seconds the watched process spent during the run (0 with no process)... */
  cpu: number;
  /** ... of which in user space (the rest in the kernel, mostly socket I/O). */
  user: number;
}

export async function loadRun(url: string, opts: { connections: number; seconds: number; headers?: Record<string, string>; pid?: number }): Promise<LoadRun> {
  const before = opts.pid ? cpuTimes(opts.pid) : { user: 0, system: 0 };
  const r = await autocannon({ url, connections: opts.connections, duration: opts.seconds, headers: opts.headers ?? {}, timeout: 30 });
  const after = opts.pid ? cpuTimes(opts.pid) : before;
  const user = after.user - before.user;
  const cpu = user + after.system - before.system;
  if (r.non2xx > 0 || r.errors > 0) {
    throw new Error(`${url}: ${r.non2xx} non-2xx answers and ${r.errors} errors (${r.timeouts} timeouts) in ${r['2xx']} requests`);
  }
  return { rps: r['2xx'] / r.duration, requests: r['2xx'], p50: r.latency.p50, p99: r.latency.p99, bytesPerSecond: r.throughput.average, cpu, user };
}

/** Runs summed: mean requests per second, median-free latency (mean of the runs' percentiles), CPU µs per request. */
export class LoadTotals {
  private runs: LoadRun[] = [];
  add(r: LoadRun): void {
    this.runs.push(r);
  }
  private mean(f: (r: LoadRun) => number): number {
    return this.runs.length ? this.runs.reduce((s, r) => s + f(r), 0) / this.runs.length : 0;
  }
  get rps(): number { return this.mean((r) => r.rps); }
  get p50(): number { return this.mean((r) => r.p50); }
  get p99(): number { return this.mean((r) => r.p99); }
  get mbPerSecond(): number { return this.mean((r) => r.bytesPerSecond) / 1024 ** 2; }
  get cpuUsPerRequest(): number {
    return this.perRequest((r) => r.cpu);
  }
  /** The user-space part of cpuUsPerRequest. */
  get userUsPerRequest(): number {
    return this.perRequest((r) => r.user);
  }
  private perRequest(f: (r: LoadRun) => number): number {
    const requests = this.runs.reduce((s, r) => s + r.requests, 0);
    return requests ? (this.runs.reduce((s, r) => s + f(r), 0) * 1e6) / requests : 0;
  }
}
