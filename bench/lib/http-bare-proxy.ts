// A bare Node reverse proxy for the HTTP benchmark: plain HTTP in on 127.0.0.1, HTTPS out to the
// upstream over a keep-alive agent, the bearer token added, bodies piped both ways. No policy, no
// log, no masking: the floor any Node HTTP proxy starts from, measured beside the gateway (as
// bench/lib/proxies.ts's bare pipe is for PostgreSQL). Its own process, so its CPU can be read.
//   startBareHttpProxy(upstream, caFile, token) spawns this file; run directly it serves until stdin closes.
import http from 'node:http';
import https from 'node:https';
import fs from 'node:fs';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';

export interface BareHttpProxy {
  /** 'http://127.0.0.1:PORT' */
  url: string;
  pid: number;
  stop(): void;
}

export async function startBareHttpProxy(upstream: string, caFile: string, token: string): Promise<BareHttpProxy> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), upstream, caFile], { env: { ...process.env, BENCH_TOKEN: token }, stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    child.once('exit', (code) => reject(new Error(`the bare HTTP proxy exited at start (${code})`)));
  });
  return { url: `http://127.0.0.1:${port}`, pid: child.pid!, stop: () => child.stdin!.end() };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const target = new URL(process.argv[2]!);
  const agent = new https.Agent({ keepAlive: true, ca: fs.readFileSync(process.argv[3]!, 'utf8') });
  const authorization = `Bearer ${process.env.BENCH_TOKEN ?? ''}`;
  const server = http.createServer((req, res) => {
    const headers = { ...req.headers, host: target.host, authorization };
    delete headers.connection;
    const up = https.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => { if (!res.headersSent) res.writeHead(502); res.end(); });
    req.pipe(up);
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as AddressInfo).port}\n`));
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}
