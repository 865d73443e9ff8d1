// The daemon's local control socket: newline-delimited JSON requests and replies, in a state
// directory only its owner can enter.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export type ControlRequest =
  | { op: 'stop' }
  | { op: 'status' }
  | { op: 'pending' }
  | { op: 'approve'; id: string }
  | { op: 'deny'; id: string; reason?: string }
  /** A confined command starts (gateway/confine/): its bridges into the gateway. */
  | { op: 'confine-open'; argv: string[]; user: string; cwd: string }
  | { op: 'confine-close'; id: string; exit: number | null; signal: string | null; error?: string };
export type ControlReply = { ok: true; [k: string]: unknown } | { ok: false; error: string };

export function controlSocketPath(stateDir: string): string {
  return path.join(path.resolve(stateDir), 'control.sock');
}

export function serveControl(stateDir: string, handle: (req: ControlRequest) => Promise<ControlReply>): Promise<net.Server> {
  return serveControlAt(controlSocketPath(stateDir), handle);
}

export function serveControlAt(file: string, handle: (req: ControlRequest) => Promise<ControlReply>): Promise<net.Server> {
  fs.rmSync(file, { force: true });
  const server = net.createServer((sock) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('error', () => sock.destroy());
    sock.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) {
        if (buf.length > 65536) sock.destroy();
        return;
      }
      let req: ControlRequest;
      try {
        req = JSON.parse(buf.slice(0, nl)) as ControlRequest;
      } catch {
        sock.end(JSON.stringify({ ok: false, error: 'malformed request' }) + '\n');
        return;
      }
      handle(req)
        .catch((e: Error): ControlReply => ({ ok: false, error: e.message }))
        .then((reply) => sock.end(JSON.stringify(reply) + '\n'));
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(file, () => {
      fs.chmodSync(file, 0o600);
      resolve(server);
    });
  });
}

export function sendControl(stateDir: string, req: ControlRequest, timeoutMs = 120_000): Promise<ControlReply> {
  return sendControlAt(controlSocketPath(stateDir), req, timeoutMs, `no gateway is running for state directory ${path.resolve(stateDir)}`);
}

export function sendControlAt(file: string, req: ControlRequest, timeoutMs = 120_000, notRunning = `no gateway is listening on ${file}`): Promise<ControlReply> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(file);
    let buf = '';
    const timer = setTimeout(() => sock.destroy(new Error(`no reply from the gateway within ${timeoutMs / 1000}s`)), timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(JSON.stringify(req) + '\n'));
    sock.on('data', (d: string) => (buf += d));
    sock.on('end', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(buf) as ControlReply);
      } catch {
        reject(new Error('the gateway closed the control connection without a reply'));
      }
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED') reject(Object.assign(new Error(notRunning), { code: e.code }));
      else reject(e);
    });
  });
}
