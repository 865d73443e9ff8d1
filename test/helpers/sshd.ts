// A real OpenSSH server for tests: Debian's sshd on a free loopback port with its own config,
// host key and login user, started per test file and stopped after it. The user's private key
// is what a policy's `auth: { key-env: ... }` hands the gateway; tests reach the host directly
// with `ssh -F <directConfig> host` to compare outputs.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../gateway/demo/pg-cluster.ts';

/** The login user sshd serves in tests (created once on the machine; password login locked). */
export const SSH_USER = 'gwssh';

export interface Sshd {
  port: number;
  user: string;
  /** The user's home: files tests put there are reachable by relative paths. */
  home: string;
  /** The user's private key (OpenSSH format), as `key-env` hands it to the gateway. */
  privateKey: string;
  /** `ssh-ed25519 AAAA...`: the server's host key, for `host-key:` in a policy. */
  hostKey: string;
  /** A `known_hosts` file naming the server at 127.0.0.1:port. */
  knownHosts: string;
  /** An OpenSSH client config with `Host direct` reaching this sshd without the gateway. */
  directConfig: string;
  stop(): void;
}

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** The test user, created on first use: a real account whose password login is impossible. */
function ensureUser(): string {
  const r = spawnSync('getent', ['passwd', SSH_USER], { encoding: 'utf8' });
  if (r.status !== 0) run('useradd', ['--create-home', '--shell', '/bin/bash', SSH_USER]);
  // A locked account ('!') cannot log in at all with UsePAM no; '*' allows keys only.
  run('usermod', ['-p', '*', SSH_USER]);
  return spawnSync('getent', ['passwd', SSH_USER], { encoding: 'utf8' }).stdout.split(':')[5]!;
}

export async function startSshd(): Promise<Sshd> {
  const sshdPath = ['/usr/sbin/sshd', '/usr/bin/sshd'].find((p) => fs.existsSync(p));
  if (!sshdPath) throw new Error('sshd is not installed: .ci/run installs openssh-server');
  const home = ensureUser();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-sshd-'));
  fs.chmodSync(dir, 0o755);
  fs.mkdirSync('/run/sshd', { recursive: true });
  run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'host_key')]);
  run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'gateway-test', '-f', path.join(dir, 'user_key')]);
  fs.copyFileSync(path.join(dir, 'user_key.pub'), path.join(dir, 'authorized_keys'));
  fs.chmodSync(path.join(dir, 'authorized_keys'), 0o644);
  const port = await freePort();
  const config = path.join(dir, 'sshd_config');
  fs.writeFileSync(config, [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${path.join(dir, 'host_key')}`,
    `PidFile ${path.join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PubkeyAuthentication yes',
    'PermitRootLogin no',
    `AllowUsers ${SSH_USER}`,
    'UsePAM no',
    'StrictModes no',
    'AllowTcpForwarding yes',
    'AllowAgentForwarding yes',
    'X11Forwarding no',
    'PermitUserEnvironment no',
    'AcceptEnv LANG LC_* GW_TEST_*',
    'Subsystem sftp internal-sftp',
    'MaxStartups 100:30:200',
    'MaxSessions 64',
    'LogLevel ERROR',
    '',
  ].join('\n'));
  const hostKeyLine = fs.readFileSync(path.join(dir, 'host_key.pub'), 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
  const knownHosts = path.join(dir, 'known_hosts');
  fs.writeFileSync(knownHosts, `[127.0.0.1]:${port} ${hostKeyLine}\n`);
  const directConfig = path.join(dir, 'ssh_config');
  fs.writeFileSync(directConfig, [
    'Host direct',
    '  HostName 127.0.0.1',
    `  Port ${port}`,
    `  User ${SSH_USER}`,
    `  IdentityFile ${path.join(dir, 'user_key')}`,
    '  IdentitiesOnly yes',
    `  UserKnownHostsFile ${knownHosts}`,
    '  StrictHostKeyChecking yes',
    '  LogLevel ERROR',
    '',
  ].join('\n'));
  // -D: stays in the foreground as our child; -e: errors to stderr. An absolute -f is required:
  // sshd re-executes itself per connection with the same path.
  const child: ChildProcess = spawn(sshdPath, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d));
  for (let i = 0; ; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (up) break;
    if (child.exitCode !== null || i > 100) throw new Error(`sshd did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    user: SSH_USER,
    home,
    privateKey: fs.readFileSync(path.join(dir, 'user_key'), 'utf8'),
    hostKey: hostKeyLine,
    knownHosts,
    directConfig,
    stop() {
      child.kill('SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs a command on the host directly (no gateway) as the test user; returns its output. */
export function direct(sshd: Sshd, command: string, input?: string | Buffer): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('ssh', ['-F', sshd.directConfig, 'direct', command], { input, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A policy with one SSH target `web-vm` on this sshd (key from DEPLOY_SSH_KEY), plus extra YAML. */
export function sshPolicy(sshd: Sshd, extra = '', hostKey = sshd.hostKey): string {
  return [
    'version: 1',
    'targets:',
    '  web-vm:',
    '    kind: ssh',
    '    host: 127.0.0.1',
    `    port: ${sshd.port}`,
    `    user: ${sshd.user}`,
    '    auth: { key-env: DEPLOY_SSH_KEY }',
    `    host-key: "${hostKey}"`,
    extra,
  ].join('\n');
}

export interface SshRun { status: number | null; signal: NodeJS.Signals | null; stdout: Buffer; stderr: string }

/** Runs a client (`ssh`, `scp`, `sftp`, `rsync`, `git`) with args; binary stdout. */
export function client(cmd: string, args: string[], opts: { input?: string | Buffer; env?: Record<string, string>; cwd?: string } = {}): SshRun {
  const r = spawnSync(cmd, args, { input: opts.input, env: { ...process.env, ...opts.env }, cwd: opts.cwd, timeout: 120_000, maxBuffer: 512 << 20 });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr.toString('utf8') };
}

/** `ssh -F $GATEWAY_SSH_CONFIG web-vm COMMAND` through the gateway (env from the gateway's state). */
export function viaGateway(gwEnv: Record<string, string>, command: string, opts: { input?: string | Buffer; args?: string[]; target?: string } = {}): SshRun {
  return client('ssh', ['-F', gwEnv.GATEWAY_SSH_CONFIG!, ...(opts.args ?? []), opts.target ?? 'web-vm', command], { input: opts.input });
}

/** The same command straight to the host. */
export function viaDirect(sshd: Sshd, command: string, opts: { input?: string | Buffer; args?: string[] } = {}): SshRun {
  return client('ssh', ['-F', sshd.directConfig, ...(opts.args ?? []), 'direct', command], { input: opts.input });
}
