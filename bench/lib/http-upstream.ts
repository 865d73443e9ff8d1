// The HTTP benchmark's upstream: the ARM stand-in (test/helpers/arm-stand-in.ts) in its own
// process, over HTTPS with its throwaway CA, checking the bearer token on every request (so each
// 200 the load generator counts proves the gateway injected the credential) and recording nothing.
// Its own process keeps its CPU apart from the load generator's and the proxy's.
//   startHttpUpstream(token) spawns this file; run directly it serves until stdin closes.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startArmStandIn } from '../../test/helpers/arm-stand-in.ts';

export interface HttpUpstream {
  /** 'https://127.0.0.1:PORT' */
  url: string;
  caFile: string;
  pid: number;
  stop(): void;
}

export async function startHttpUpstream(token: string): Promise<HttpUpstream> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url)], { env: { ...process.env, BENCH_TOKEN: token }, stdio: ['pipe', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => { out += d.toString(); if (out.includes('\n')) resolve(out.trim()); });
    child.once('exit', (code) => reject(new Error(`the HTTP upstream exited at start (${code})`)));
  });
  const { url, caFile } = JSON.parse(line) as { url: string; caFile: string };
  return { url, caFile, pid: child.pid!, stop: () => child.stdin!.end() };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const token = process.env.BENCH_TOKEN ?? '';
  if (!token) throw new Error('BENCH_TOKEN is not set');
  const upstream = await startArmStandIn({ tokenCheck: (t) => t === token, record: false });
  process.stdout.write(`${JSON.stringify({ url: upstream.url, caFile: upstream.caFile })}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => void upstream.stop().then(() => process.exit(0)));
}
