// Throwaway PostgreSQL clusters on free loopback ports, for the demo and the tests. initdb refuses
// to run as root, so as root every server command runs as the `postgres` OS user.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface ClusterOptions {
  /** Extra pg_hba.conf lines, placed before the defaults. */
  hba?: string[];
  /** postgresql.conf settings. */
  settings?: Record<string, string>;
  /** PEM server certificate and key; turns ssl on. */
  tls?: { cert: string; key: string };
}

export interface Cluster {
  host: '127.0.0.1';
  port: number;
  dataDir: string;
  socketDir: string;
  binDir: string;
  /** Runs SQL as the superuser over the Unix socket; returns stdout. */
  sql(sql: string, database?: string): string;
  stop(): void;
}

export function findPostgresBin(): string {
  const env = process.env.GATEWAY_PG_BIN;
  if (env) return env;
  const base = '/usr/lib/postgresql';
  if (fs.existsSync(base)) {
    const versions = fs.readdirSync(base).filter((v) => fs.existsSync(path.join(base, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
    if (versions.length > 0) return path.join(base, versions[0]!, 'bin');
  }
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir && fs.existsSync(path.join(dir, 'initdb'))) return dir;
  }
  throw new Error('PostgreSQL server binaries (initdb, pg_ctl) were not found; install them with `apt-get install postgresql` or set GATEWAY_PG_BIN');
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

const asRoot = process.getuid?.() === 0;

function runAsServerUser(bin: string, args: string[], opts: { cwd?: string } = {}): string {
  const cmd = asRoot ? 'runuser' : bin;
  const argv = asRoot ? ['-u', 'postgres', '--', bin, ...args] : args;
  const r = spawnSync(cmd, argv, { encoding: 'utf8', cwd: opts.cwd ?? os.tmpdir() });
  if (r.status !== 0) throw new Error(`${path.basename(bin)} ${args.join(' ')} failed: ${r.stderr || r.stdout || r.error?.message}`);
  return r.stdout;
}

export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  const binDir = findPostgresBin();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-pg-'));
  const dataDir = path.join(root, 'data');
  const socketDir = path.join(root, 'sock');
  fs.mkdirSync(socketDir);
  if (asRoot) {
    fs.chmodSync(root, 0o755);
    execFileSync('chown', ['-R', 'postgres:postgres', root]);
  }
  runAsServerUser(path.join(binDir, 'initdb'), ['-D', dataDir, '-U', 'postgres', '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--locale=C', '-N']);
  const hba = [
    ...(opts.hba ?? []),
    'local all all trust',
    'host all postgres 127.0.0.1/32 trust',
    'host all all 127.0.0.1/32 scram-sha-256',
  ];
  fs.writeFileSync(path.join(dataDir, 'pg_hba.conf'), hba.join('\n') + '\n');
  const settings: Record<string, string> = { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off', max_connections: '200', ...opts.settings };
  if (opts.tls) {
    fs.copyFileSync(opts.tls.cert, path.join(dataDir, 'server.crt'));
    fs.copyFileSync(opts.tls.key, path.join(dataDir, 'server.key'));
    fs.chmodSync(path.join(dataDir, 'server.key'), 0o600);
    if (asRoot) execFileSync('chown', ['postgres:postgres', path.join(dataDir, 'server.crt'), path.join(dataDir, 'server.key')]);
    settings.ssl = 'on';
  }
  fs.appendFileSync(path.join(dataDir, 'postgresql.conf'), Object.entries(settings).map(([k, v]) => `${k} = '${v}'`).join('\n') + '\n');
  if (asRoot) execFileSync('chown', ['-R', 'postgres:postgres', dataDir]);

  const port = await freePort();
  runAsServerUser(path.join(binDir, 'pg_ctl'), ['-D', dataDir, '-l', path.join(root, 'server.log'), '-w', '-t', '60', '-o', `-p ${port} -k ${socketDir} -c listen_addresses=127.0.0.1`, 'start']);
  let stopped = false;
  const cluster: Cluster = {
    host: '127.0.0.1',
    port,
    dataDir,
    socketDir,
    binDir,
    sql(sql, database = 'postgres') {
      const r = spawnSync('psql', ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', socketDir, '-p', String(port), '-U', 'postgres', '-d', database, '-c', sql], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`psql failed: ${r.stderr}`);
      return r.stdout;
    },
    stop() {
      if (stopped) return;
      stopped = true;
      try {
        runAsServerUser(path.join(binDir, 'pg_ctl'), ['-D', dataDir, '-m', 'immediate', '-w', 'stop']);
      } catch {
        // already gone
      }
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
  return cluster;
}
