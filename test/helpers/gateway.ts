// Shared test fixtures: real PostgreSQL clusters, the gateway started through the shipped CLI
// (dist/cli.js) as a real detached daemon, and readers for what it logged.
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { after, before } from 'node:test';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startCluster, type Cluster, type ClusterOptions } from '../../gateway/demo/pg-cluster.ts';
import { parseEnvFile } from '../../gateway/cli/env-file.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = path.join(ROOT, 'dist/cli.js');
export type { Cluster };

export function tempDir(prefix = 'gw-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A cluster with role `deployer` (SCRAM password `deployer-pw`) owning database `app`. */
export async function appCluster(opts: ClusterOptions = {}): Promise<Cluster & { password: string }> {
  const cluster = await startCluster(opts);
  cluster.sql(`CREATE ROLE deployer LOGIN PASSWORD 'deployer-pw'`);
  cluster.sql('CREATE DATABASE app OWNER deployer');
  return Object.assign(cluster, { password: 'deployer-pw' });
}

/** Connection settings straight to the cluster, bypassing the gateway. */
export function directEnv(cluster: Cluster, user = 'deployer', password = 'deployer-pw', database = 'app'): Record<string, string> {
  return { PGHOST: '127.0.0.1', PGPORT: String(cluster.port), PGUSER: user, PGPASSWORD: password, PGDATABASE: database, PGSSLMODE: 'disable' };
}

export function policyFor(cluster: Cluster, extra: Record<string, string> = {}): string {
  const fields = { host: '127.0.0.1', port: String(cluster.port), database: 'app', user: 'deployer', tls: 'disable', ...extra };
  return [
    'version: 1',
    'targets:',
    '  app-db:',
    '    kind: postgres',
    ...Object.entries(fields).map(([k, v]) => `    ${k}: ${v}`),
    '    auth: { password-env: APP_DB_PASSWORD }',
    '',
  ].join('\n');
}

export interface RunningGateway {
  env: Record<string, string>;
  stateDir: string;
  logDir: string;
  pid: number;
  /** Graceful stop; returns the sealed log's path. */
  stop(): string;
  /** The current log file (while running or after). */
  logPath(): string;
}

export function cli(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string } = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: opts.env ?? process.env, input: opts.input, cwd: opts.cwd ?? ROOT, timeout: 120_000 });
}

/** `gateway-action` as a child process, without blocking this process's event loop. */
export function cliAsync(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env, cwd: opts.cwd ?? ROOT });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  return new Promise((resolve) => child.on('close', (status) => resolve({ status, stdout, stderr })));
}

/** Starts the gateway daemon with `gateway-action start` for the given policy text. */
export function startGateway(policyText: string, upstreamPassword = 'deployer-pw', extraEnv: Record<string, string> = {}): RunningGateway {
  const dir = tempDir('gw-run-');
  const policy = path.join(dir, 'gateway.yml');
  fs.writeFileSync(policy, policyText);
  const stateDir = path.join(dir, 'state');
  const logDir = path.join(dir, 'logs');
  const r = cli(['start', '--policy', policy, '--state-dir', stateDir, '--log-dir', logDir], { env: { ...process.env, ...extraEnv, APP_DB_PASSWORD: upstreamPassword } });
  if (r.status !== 0) throw new Error(`gateway-action start failed (${r.status}): ${r.stderr}`);
  const env = parseEnv(fs.readFileSync(path.join(stateDir, 'env'), 'utf8'));
  const info = JSON.parse(fs.readFileSync(path.join(stateDir, 'daemon.json'), 'utf8')) as { pid: number; log: string };
  let stopped: string | null = null;
  return {
    env,
    stateDir,
    logDir,
    pid: info.pid,
    logPath: () => info.log,
    stop() {
      if (stopped) return stopped;
      const s = cli(['stop', '--state-dir', stateDir]);
      if (s.status !== 0) throw new Error(`gateway-action stop failed (${s.status}): ${s.stderr}`);
      stopped = s.stdout.trim();
      return stopped;
    },
  };
}

export const parseEnv = parseEnvFile;

/**
 * `gateway-action start` with DIR/gateway.yml, logs in DIR/logs, without blocking this process
 * (stand-ins running in it must answer while the daemon starts); the variables it exported.
 */
export async function startedGatewayEnv(dir: string, stateDir: string, opts: { env?: NodeJS.ProcessEnv } = {}): Promise<Record<string, string>> {
  const r = await cliAsync(['start', '--policy', path.join(dir, 'gateway.yml'), '--state-dir', stateDir, '--log-dir', path.join(dir, 'logs')], opts);
  if (r.status !== 0) throw new Error(`gateway-action start failed (${r.status}): ${r.stderr}`);
  return parseEnv(fs.readFileSync(path.join(stateDir, 'env'), 'utf8'));
}

export type LogRecord = Record<string, any>;

export function readLog(file: string): LogRecord[] {
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as LogRecord);
}

/** Runs psql (no psqlrc) with the given connection environment. */
export function psql(env: Record<string, string>, args: string[], input?: string): SpawnSyncReturns<string> {
  return spawnSync('psql', ['-X', ...args], { encoding: 'utf8', env: { ...process.env, ...env, PGAPPNAME: 'psql' }, input, timeout: 120_000 });
}

/** psql as a child process that can be signalled. */
export function psqlAsync(env: Record<string, string>, args: string[]) {
  const child = spawn('psql', ['-X', ...args], { env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const done = new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => child.on('close', (status) => resolve({ status, stdout, stderr })));
  /** Output so far, for waiting on what the client prints while it runs. */
  const output = { stdout: () => stdout, stderr: () => stderr };
  return { child, done, output };
}

/** Waits until fn returns a truthy value, polling. */
export async function waitFor<T>(fn: () => T | Promise<T>, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The usual fixture of an e2e file: one cluster and one gateway for all its tests, registered
 * with node:test's before/after hooks. Read them through the returned getters inside tests.
 */
export function useClusterAndGateway(policyExtra = '', extraEnv: Record<string, string> = {}): { cluster: () => Cluster & { password: string }; gw: () => RunningGateway } {
  let cluster: (Cluster & { password: string }) | undefined;
  let gw: RunningGateway | undefined;
  before(async () => {
    cluster = await appCluster();
    gw = startGateway(policyFor(cluster) + policyExtra, 'deployer-pw', extraEnv);
  });
  after(() => {
    try {
      gw?.stop();
    } finally {
      cluster?.stop();
    }
  });
  return { cluster: () => cluster!, gw: () => gw! };
}
