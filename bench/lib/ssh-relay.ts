// A bare ssh2 relay for the SSH benchmark: an ssh2 server whose exec channels are piped to an
// ssh2 client's exec on the host. No policy, no log, no digest, no masking: the floor of the
// library with the gateway's transport, so the benchmark shows what the gateway itself adds.
// Built like the gateway where the library leaves a choice: its ciphers (gateway/ssh/
// algorithms.ts), its sockets (gateway/ssh/socket-writes.ts: no Nagle, one writev per event-loop
// turn), its AES-GCM keys as KeyObjects (gateway/ssh/cipher-keys.ts) and the Node flags its
// daemon gets with an SSH target (gateway/cli/daemon.ts, gateway/ssh/node-flags.ts). A stock
// ssh2 relay spends about twice the CPU per byte and downloads at about half the speed.
// Runs as its own process, so its CPU time and RSS are its own.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ssh2 from 'ssh2';
import type { Sshd } from '../../test/helpers/sshd.ts';
import { LISTENER_CIPHERS, UPSTREAM_CIPHERS } from '../../gateway/ssh/algorithms.ts';
import { connectSshSocket, tuneSshSocket } from '../../gateway/ssh/socket-writes.ts';
import { holdKeysAsKeyObjects } from '../../gateway/ssh/cipher-keys.ts';

export async function startBareRelay(sshd: Sshd, dir: string): Promise<{ config: string; pid: number; stop(): void }> {
  // Imported here, not at the top: the relay's own process needs none of the CLI's modules.
  const { DAEMON_NODE_FLAGS } = await import('../../gateway/cli/daemon.ts');
  const { sshNodeFlags } = await import('../../gateway/ssh/node-flags.ts');
  const child = spawn(process.execPath, [...DAEMON_NODE_FLAGS, ...sshNodeFlags(), fileURLToPath(import.meta.url), 'serve'], { stdio: ['pipe', 'pipe', 'inherit'] });
  child.stdin.end(JSON.stringify({ port: sshd.port, user: sshd.user, key: sshd.privateKey }));
  const hello = await new Promise<{ port: number; hostKey: string; clientKey: string }>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(JSON.parse(d.toString()))));
  const key = path.join(dir, 'relay_key');
  fs.writeFileSync(key, hello.clientKey, { mode: 0o600 });
  fs.writeFileSync(path.join(dir, 'relay_known_hosts'), `[127.0.0.1]:${hello.port} ${hello.hostKey}\n`);
  const config = path.join(dir, 'relay_config');
  fs.writeFileSync(config, `Host relay\n  HostName 127.0.0.1\n  Port ${hello.port}\n  IdentityFile ${key}\n  IdentitiesOnly yes\n  UserKnownHostsFile ${path.join(dir, 'relay_known_hosts')}\n  StrictHostKeyChecking yes\n`);
  return { config, pid: child.pid!, stop: () => child.kill() };
}

/** An ed25519 key pair ssh2 reads back (its generator drops a leading zero byte of about one public key in 256). */
function keyPair(): { private: string; public: string } {
  for (;;) {
    const k = ssh2.utils.generateKeyPairSync('ed25519');
    if (!(ssh2.utils.parseKey(k.private) instanceof Error)) return k;
  }
}

async function serve(): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const up = JSON.parse(Buffer.concat(chunks).toString()) as { port: number; user: string; key: string };
  const host = keyPair();
  const client = keyPair();
  const server = new ssh2.Server({ hostKeys: [host.private], algorithms: { cipher: LISTENER_CIPHERS as never } }, (conn) => {
    holdKeysAsKeyObjects(conn);
    conn.on('authentication', (ctx) => ctx.accept());
    conn.on('error', () => undefined);
    conn.on('ready', () => {
      const upstream = new ssh2.Client();
      holdKeysAsKeyObjects(upstream);
      const ready = new Promise<void>((resolve) => upstream.once('ready', () => resolve()));
      upstream.on('error', () => conn.end());
      upstream.connect({ sock: connectSshSocket('127.0.0.1', up.port), username: up.user, privateKey: up.key, algorithms: { cipher: UPSTREAM_CIPHERS as never } });
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
  const tcp = net.createServer((socket) => {
    tuneSshSocket(socket);
    server.injectSocket(socket);
  });
  tcp.listen(0, '127.0.0.1', () => {
    process.stdout.write(JSON.stringify({ port: (tcp.address() as net.AddressInfo).port, hostKey: host.public.trim().split(' ').slice(0, 2).join(' '), clientKey: client.private }));
  });
}

if (process.argv[2] === 'serve') {
  // A clean exit on stop, so a profile (--cpu-prof in NODE_OPTIONS) is written.
  process.once('SIGTERM', () => process.exit(0));
  void serve();
}
