// The proxies the PostgreSQL benchmark puts between pgbench and the server, each its own process
// so its CPU time can be read from /proc: a bare Node socket pipe (the floor any Node proxy starts
// from), pgbouncer in session mode (what a user would pick instead) and the gateway itself.
import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../gateway/demo/pg-cluster.ts';

export interface Proxy {
  name: string;
  /** libpq environment that connects through it. */
  env: Record<string, string>;
  pid: number;
  /** Every variable a gateway exported (GATEWAY_SSH_CONFIG, ...). */
  vars?: Record<string, string>;
  /** Stops it; a gateway returns the path of its sealed session log. */
  stop(): string;
}

export type PgEnv = Record<string, string>;

const PIPE_SOURCE = `
const net = require('node:net');
const port = Number(process.argv[1]);
const server = net.createServer((c) => {
  const u = net.connect(port, '127.0.0.1');
  c.setNoDelay(true); u.setNoDelay(true);
  c.pipe(u); u.pipe(c);
  c.on('error', () => u.destroy()); u.on('error', () => c.destroy());
});
server.listen(0, '127.0.0.1', () => process.stdout.write(String(server.address().port)));
`;

export async function startPipe(direct: PgEnv, serverPort: number): Promise<Proxy> {
  const child = spawn(process.execPath, ['-e', PIPE_SOURCE, String(serverPort)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve) => child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString()))));
  return { name: 'bare pipe', env: { ...direct, PGPORT: String(port) }, pid: child.pid!, stop: () => (child.kill(), '') };
}

/**
 * The floor of a Node recording proxy (recording-floor.ts): the bare pipe plus a hash-chained
 * command record before each command is forwarded and a result record after it, nothing else.
 */
export async function startRecordingFloor(direct: PgEnv, serverPort: number, dir: string): Promise<Proxy> {
  const source = path.join(path.dirname(fileURLToPath(import.meta.url)), 'recording-floor.ts');
  return startFloorProcess('recording floor', process.execPath, [source], direct, serverPort, dir);
}

/** Starts a floor (`program ...args <server port> <log file>`), which prints the port it listens on. */
async function startFloorProcess(name: string, program: string, args: string[], direct: PgEnv, serverPort: number, dir: string): Promise<Proxy> {
  fs.mkdirSync(dir, { recursive: true });
  const log = path.join(dir, `${name.replace(/\W+/g, '-')}.jsonl`);
  // Not a test file of its own when a test starts it (node --test marks its children so).
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_TEST_CONTEXT'));
  const child = spawn(program, [...args, String(serverPort), log], { stdio: ['ignore', 'pipe', 'inherit'], env });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString())));
    child.once('exit', (code) => reject(new Error(`the ${name} exited at start (${code})`)));
  });
  const pid = child.pid!;
  return {
    name,
    env: { ...direct, PGPORT: String(port) },
    pid,
    // Returns once it has written what it kept and exited (a zombie until this process reaps
    // it, which it cannot do while it waits here): the log is then whole.
    stop: () => {
      child.kill();
      for (const until = Date.now() + 10_000; Date.now() < until; ) {
        let stat: string;
        try {
          stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
        } catch {
          break;
        }
        if (stat[stat.lastIndexOf(')') + 2] === 'Z') break;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
      }
      return log;
    },
  };
}

/**
 * The recording floor in C (native-floor.c), built here with the system's C compiler and
 * OpenSSL: what the same per-query work costs outside JavaScript.
 */
export async function startNativeFloor(direct: PgEnv, serverPort: number, dir: string): Promise<Proxy> {
  fs.mkdirSync(dir, { recursive: true });
  const binary = path.join(dir, 'native-floor');
  const source = path.join(path.dirname(fileURLToPath(import.meta.url)), 'native-floor.c');
  const built = spawnSync('cc', ['-O2', '-o', binary, source, '-lcrypto'], { encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`cannot build the native floor (apt-get install gcc libssl-dev): ${built.error?.message ?? built.stderr}`);
  return startFloorProcess('native floor', binary, [], direct, serverPort, dir);
}

/**
 * Debian's pgbouncer in session mode, with SCRAM for its clients as the gateway has, and a pool
 * large enough that no pgbench client waits for a server connection. It refuses to run as root,
 * so as root it runs as the postgres user (like the cluster).
 */
export async function startPgbouncer(direct: PgEnv, serverPort: number): Promise<Proxy> {
  const bin = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer'].find((p) => fs.existsSync(p));
  if (!bin) throw new Error('pgbouncer is not installed (apt-get install pgbouncer)');
  // Its own directory, which the postgres user can reach (the bench's work dir is private).
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-bench-pgbouncer-'));
  fs.chmodSync(dir, 0o755);
  const port = await freePort();
  fs.writeFileSync(path.join(dir, 'userlist.txt'), `"${direct.PGUSER}" "${direct.PGPASSWORD}"\n`);
  fs.writeFileSync(path.join(dir, 'pgbouncer.ini'), [
    '[databases]',
    `${direct.PGDATABASE} = host=127.0.0.1 port=${serverPort} dbname=${direct.PGDATABASE}`,
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${port}`,
    'unix_socket_dir =',
    'auth_type = scram-sha-256',
    `auth_file = ${path.join(dir, 'userlist.txt')}`,
    'pool_mode = session',
    'max_client_conn = 200',
    'default_pool_size = 64',
    'log_connections = 0',
    'log_disconnections = 0',
    '',
  ].join('\n'));
  const asRoot = process.getuid?.() === 0;
  if (asRoot) execFileSync('chown', ['-R', 'postgres:postgres', dir]);
  const argv = [path.join(dir, 'pgbouncer.ini')];
  const child: ChildProcess = asRoot ? spawn('runuser', ['-u', 'postgres', '--', bin, ...argv], { stdio: ['ignore', 'ignore', 'pipe'] }) : spawn(bin, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const pid = await waitForListener(port, () => child.exitCode !== null, () => `pgbouncer: ${stderr}`);
  return {
    name: 'pgbouncer',
    env: { ...direct, PGPORT: String(port) },
    pid,
    stop: () => {
      spawnSync('kill', [String(pid)]);
      fs.rmSync(dir, { recursive: true, force: true });
      return '';
    },
  };
}

/** The process that listens on port (runuser's child, for pgbouncer), once it listens. */
async function waitForListener(port: number, exited: () => boolean, what: () => string): Promise<number> {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  for (let i = 0; i < 200; i++) {
    if (exited()) throw new Error(`exited at start: ${what()}`);
    const inode = fs.readFileSync('/proc/net/tcp', 'utf8').split('\n').map((l) => l.trim().split(/\s+/)).find((f) => f[1]?.endsWith(`:${hex}`) && f[3] === '0A')?.[9];
    if (inode) {
      for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
        try {
          for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === `socket:[${inode}]`) return Number(pid);
        } catch {
          // a process that ended meanwhile
        }
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`did not start listening on ${port}: ${what()}`);
}

/** A gateway daemon started with the shipped CLI (`dist/cli.js start`) and the given policy. */
export function startGateway(name: string, root: string, dir: string, policyText: string, secrets: PgEnv, nodeArgs: string[] = []): Proxy {
  fs.mkdirSync(dir, { recursive: true });
  const policy = path.join(dir, 'gateway.yml');
  fs.writeFileSync(policy, policyText);
  const stateDir = path.join(dir, 'state');
  const cli = path.join(root, 'dist/cli.js');
  const started = spawnSync(process.execPath, [...nodeArgs, cli, 'start', '--policy', policy, '--state-dir', stateDir, '--log-dir', path.join(dir, 'logs')], {
    env: { ...process.env, ...secrets, GITHUB_REF: 'refs/heads/main' }, encoding: 'utf8',
  });
  if (started.status !== 0) throw new Error(`gateway start (${name}) failed: ${started.stderr}`);
  const vars = Object.fromEntries(started.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  const pid = JSON.parse(fs.readFileSync(path.join(stateDir, 'daemon.json'), 'utf8')).pid as number;
  let stopped = false;
  return {
    name,
    env: { PGHOST: vars.PGHOST!, PGPORT: vars.PGPORT!, PGUSER: vars.PGUSER!, PGPASSWORD: vars.PGPASSWORD!, PGDATABASE: vars.PGDATABASE!, PGSSLMODE: 'disable' },
    vars,
    pid,
    stop() {
      if (stopped) return '';
      stopped = true;
      return spawnSync(process.execPath, [cli, 'stop', '--state-dir', stateDir], { encoding: 'utf8' }).stdout.trim();
    },
  };
}
