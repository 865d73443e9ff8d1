// The SSH listener: one loopback SSH server per `kind: ssh` target, all with the run's
// ephemeral host key, each letting in only the run's client key. What later steps get is one
// OpenSSH client config (GATEWAY_SSH_CONFIG) with a `Host <target>` entry per target, the
// client key file and a known_hosts line for the gateway's host key, so `ssh -F ... web-vm`,
// scp, sftp, rsync and git work with no other set-up. The upstream keys never leave the daemon.
import path from 'node:path';
import net from 'node:net';
import ssh2, { type Connection, type ParsedKey, type Server } from 'ssh2';
import type { ConnectionExport, CoreServices, Listener } from '../core/adapter.ts';
import { targetVariable } from '../core/target-variable.ts';
import { LISTENER_CIPHERS } from './algorithms.ts';
import { serveConnection } from './connection.ts';
import { tuneSshSocket } from './socket-writes.ts';
import { holdKeysAsKeyObjects } from './cipher-keys.ts';
import type { SshTarget } from './target.ts';
import type { UpstreamLogin } from './upstream.ts';

/** At most this many SSH connections at once per target (each opens one to the host). */
export const MAX_CONNECTIONS = 256;

/**
 * A fresh ed25519 key pair in OpenSSH format. ssh2's generator drops a leading zero byte of the
 * public key (about one key in 256) and such a key does not parse back (the gateway would fail to
 * start): another is drawn.
 */
function keyPair(comment: string): { private: string; public: string } {
  for (;;) {
    const k = ssh2.utils.generateKeyPairSync('ed25519', { comment });
    if (!(ssh2.utils.parseKey(k.private) instanceof Error)) return k;
  }
}

function parsed(key: string): ParsedKey {
  const k = ssh2.utils.parseKey(key);
  if (k instanceof Error) throw k;
  return Array.isArray(k) ? k[0]! : k;
}

export class SshListener implements Listener {
  readonly targets: readonly string[];
  private readonly list: readonly SshTarget[];
  private readonly core: CoreServices;
  private readonly logins: Map<string, UpstreamLogin>;
  private readonly hostKey = keyPair('gateway-action host key');
  private readonly clientKey = keyPair('gateway-action run key');
  private readonly servers: { target: SshTarget; server: Server; tcp: net.Server; port: number }[] = [];
  private readonly connections = new Set<Connection>();

  constructor(targets: readonly SshTarget[], core: CoreServices, logins: Map<string, UpstreamLogin>) {
    this.list = targets;
    this.targets = targets.map((t) => t.name);
    this.core = core;
    this.logins = logins;
  }

  async listen(): Promise<string> {
    const clientKey = parsed(this.clientKey.private);
    for (const target of this.list) {
      const server: Server = new ssh2.Server({ hostKeys: [this.hostKey.private], ident: 'gateway-action', algorithms: { cipher: LISTENER_CIPHERS as never } }, (client, info) => {
        holdKeysAsKeyObjects(client);
        // Tracked so stop() can end sessions a client keeps open.
        this.connections.add(client);
        client.once('close', () => this.connections.delete(client));
        serveConnection(client, { target, core: this.core, login: this.logins.get(target.name)!, clientKey, address: { ip: info.ip, port: info.port } });
      });
      server.maxConnections = MAX_CONNECTIONS;
      server.on('error', () => undefined);
      // The TCP side is ours, so each socket is set up for SSH (socket-writes.ts) before ssh2 takes it.
      const tcp = net.createServer((socket) => {
        tuneSshSocket(socket);
        server.injectSocket(socket);
      });
      tcp.on('error', () => undefined);
      const port = await new Promise<number>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen(0, '127.0.0.1', () => resolve((tcp.address() as net.AddressInfo).port));
      });
      this.servers.push({ target, server, tcp, port });
    }
    return this.servers.map((s) => `127.0.0.1:${s.port}`).join(', ');
  }

  async stop(graceMs: number): Promise<void> {
    for (const s of this.servers) s.tcp.close();
    const deadline = Date.now() + graceMs;
    while (this.connections.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const c of this.connections) c.end();
  }

  connection(stateDir: string): ConnectionExport {
    const keyFile = path.join(stateDir, 'ssh_client_key');
    const knownHosts = path.join(stateDir, 'ssh_known_hosts');
    const hostLine = this.hostKey.public.trim().split(/\s+/).slice(0, 2).join(' ');
    const config: string[] = ['# gateway-action: every Host here is reached through the gateway on this machine.', ''];
    const known: string[] = [];
    const env: Record<string, string> = { GATEWAY_SSH_CONFIG: path.join(stateDir, 'ssh_config') };
    for (const s of this.servers) {
      config.push(
        `Host ${s.target.name}`,
        '  HostName 127.0.0.1',
        `  Port ${s.port}`,
        `  User ${s.target.user}`,
        `  IdentityFile ${keyFile}`,
        '  IdentitiesOnly yes',
        '  IdentityAgent none',
        `  UserKnownHostsFile ${knownHosts}`,
        '  GlobalKnownHostsFile /dev/null',
        '  StrictHostKeyChecking yes',
        '  CheckHostIP no',
        '  ForwardAgent no',
        '  ForwardX11 no',
        '  ServerAliveInterval 30',
        '',
      );
      known.push(`[127.0.0.1]:${s.port} ${hostLine}`);
      env[targetVariable(s.target.name, 'SSH')] = `127.0.0.1:${s.port}`;
    }
    return {
      env,
      // The run key opens only these loopback listeners; masked wherever it could be printed.
      secrets: [this.clientKey.private.trim()],
      files: [
        { name: 'ssh_config', content: config.join('\n'), mode: 0o600 },
        { name: 'ssh_client_key', content: this.clientKey.private, mode: 0o600 },
        { name: 'ssh_known_hosts', content: known.join('\n') + '\n', mode: 0o600 },
      ],
    };
  }
}
