// A bare ssh2 relay for the SSH benchmark: an ssh2 server whose exec channels are piped to an
// ssh2 client's exec on the host. No policy, no log, no masking: the library's own floor, so
// the benchmark shows what the gateway adds. Runs as its own process (its RSS is its own), with
// the gateway's ciphers (gateway/ssh/algorithms.ts).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Sshd } from '../../test/helpers/sshd.ts';
import { LISTENER_CIPHERS, UPSTREAM_CIPHERS } from '../../gateway/ssh/algorithms.ts';

export async function startBareRelay(sshd: Sshd, dir: string): Promise<{ config: string; pid: number; stop(): void }> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'serve'], { stdio: ['pipe', 'pipe', 'inherit'] });
  child.stdin.end(JSON.stringify({ port: sshd.port, user: sshd.user, key: sshd.privateKey }));
  const hello = await new Promise<{ port: number; hostKey: string; clientKey: string }>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(JSON.parse(d.toString()))));
  const key = path.join(dir, 'relay_key');
  fs.writeFileSync(key, hello.clientKey, { mode: 0o600 });
  fs.writeFileSync(path.join(dir, 'relay_known_hosts'), `[127.0.0.1]:${hello.port} ${hello.hostKey}\n`);
  const config = path.join(dir, 'relay_config');
  fs.writeFileSync(config, `Host relay\n  HostName 127.0.0.1\n  Port ${hello.port}\n  IdentityFile ${key}\n  IdentitiesOnly yes\n  UserKnownHostsFile ${path.join(dir, 'relay_known_hosts')}\n  StrictHostKeyChecking yes\n`);
  return { config, pid: child.pid!, stop: () => child.kill() };
}

async function serve(): Promise<void> {
  const { default: ssh2 } = await import('ssh2');
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const up = JSON.parse(Buffer.concat(chunks).toString()) as { port: number; user: string; key: string };
  const host = ssh2.utils.generateKeyPairSync('ed25519');
  const client = ssh2.utils.generateKeyPairSync('ed25519');
  const server = new ssh2.Server({ hostKeys: [host.private], algorithms: { cipher: LISTENER_CIPHERS as never } }, (conn) => {
    conn.on('authentication', (ctx) => ctx.accept());
    conn.on('error', () => undefined);
    conn.on('ready', () => {
      const upstream = new ssh2.Client();
      const ready = new Promise<void>((resolve) => upstream.once('ready', () => resolve()));
      upstream.on('error', () => conn.end());
      upstream.connect({ host: '127.0.0.1', port: up.port, username: up.user, privateKey: up.key, algorithms: { cipher: UPSTREAM_CIPHERS as never } });
      conn.once('close', () => upstream.end());
      conn.on('session', (accept) => {
        const session = accept();
        session.on('exec', async (acceptExec, _reject, info) => {
          const stream = acceptExec();
          await ready;
          upstream.exec(info.command, (err, ch) => {
            if (err) return stream.exit(255), stream.end();
            stream.pipe(ch);
            ch.pipe(stream, { end: false });
            ch.stderr.pipe(stream.stderr);
            ch.on('exit', (code: number) => stream.exit(code ?? 255));
            ch.on('close', () => stream.end());
          });
        });
      });
    });
  });
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(JSON.stringify({ port: (server.address() as { port: number }).port, hostKey: host.public.trim().split(' ').slice(0, 2).join(' '), clientKey: client.private }));
  });
}

if (process.argv[2] === 'serve') void serve();
