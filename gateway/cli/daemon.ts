// `start` launches a detached daemon (this same CLI, verb `daemon`) and returns once it accepts
// connections; `stop` asks it over the control socket to stop gracefully.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { operands, parseArgs, requireOption, UsageError } from './args.ts';
import { formatEnv } from './env-file.ts';
import { loadPolicy, nodeFlags, RENDERERS } from '../adapters.ts';
import { Gateway, GITHUB_TOKEN_SECRET, type StopResult } from '../daemon/gateway.ts';
import { serveControl, sendControl } from '../daemon/control.ts';
import { localClaims } from '../identity/local.ts';
import { runIdentity } from '../identity/github-oidc.ts';
import { terminalText } from '../evidence/terminal-text.ts';
import { parsePolicySource, type PolicySource } from '../config/policy-source.ts';

export const startHelp = `Usage: gateway-action start --policy FILE --state-dir DIR [--log-dir DIR]

Starts the gateway as a detached daemon and returns once it accepts connections. Writes the
connection environment to DIR/env as KEY=VALUE lines (mode 0600) and prints it. Use
\`set -a; . DIR/env; set +a\` to load it into a shell. Stop it with \`gateway-action stop\`.

Options:
  --policy FILE     policy file (YAML); see docs/policy.md
  --state-dir DIR   directory for the env file, the control socket and the daemon's output
  --log-dir DIR     where the session log is written (default ./gateway-logs)
`;

export const stopHelp = `Usage: gateway-action stop --state-dir DIR

Stops the daemon started with the same --state-dir: lets in-flight commands finish, closes
sessions, seals the session log, and prints the log's path.
`;

const READY_TIMEOUT_MS = 30_000;

/** The options of `start` and of the daemon it launches. */
const LAUNCH_OPTIONS = { policy: { type: 'string' }, 'state-dir': { type: 'string' }, 'log-dir': { type: 'string' } } as const;
/**
 * The daemon's own, set by launchDaemon only: where the policy's bytes came from (recorded in
 * run-start) and the directory its relative paths resolve against, when the bytes are a copy
 * (a pull request's base version) kept apart from the workspace file they stand for.
 */
const DAEMON_OPTIONS = { ...LAUNCH_OPTIONS, 'policy-source': { type: 'string' }, 'policy-base-dir': { type: 'string' } } as const;

export async function start(argv: string[]): Promise<number> {
  const args = parseArgs(argv, LAUNCH_OPTIONS, 'start');
  if (args.values.help) return void process.stdout.write(startHelp), 0;
  if (operands(args).length > 0) throw new UsageError(`start: unexpected argument "${operands(args)[0]}" (see gateway-action start --help)`);
  const policyFile = path.resolve(requireOption(args, 'policy', 'start'));
  const stateDir = path.resolve(requireOption(args, 'state-dir', 'start'));
  const logDir = path.resolve(args.values['log-dir'] ?? 'gateway-logs');
  const policy = loadPolicy(policyFile); // report policy errors here, not from the daemon's output
  fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  fs.chmodSync(stateDir, 0o700);
  const running = await sendControl(stateDir, { op: 'status' }, 5000).catch(() => null);
  if (running?.ok) throw new Error(`a gateway is already running for ${stateDir} (pid ${String(running.pid)}); stop it first`);
  // Upstream secrets go to the daemon over its IPC channel, never in its environment:
  // /proc/<pid>/environ keeps a process's initial environment for its whole life.
  const secrets: Record<string, string> = {};
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of policy.targets.flatMap((t) => t.secretEnv)) {
    const v = process.env[name];
    if (v !== undefined) secrets[name] = v;
    delete env[name];
  }
  if (process.env[GITHUB_TOKEN_SECRET]) secrets[GITHUB_TOKEN_SECRET] = process.env[GITHUB_TOKEN_SECRET];
  delete env[GITHUB_TOKEN_SECRET];
  await launchDaemon({ cli: process.argv[1]!, policyFile, stateDir, logDir, env, secrets, nodeFlags: nodeFlags(policy) });
  process.stdout.write(fs.readFileSync(path.join(stateDir, 'env'), 'utf8'));
  return 0;
}

export interface LaunchOptions {
  /** The CLI script the daemon runs (dist/cli.js). */
  cli: string;
  policyFile: string;
  stateDir: string;
  logDir: string;
  /** The daemon's whole environment: nothing else is inherited. */
  env: NodeJS.ProcessEnv;
  /** Upstream passwords by variable name, sent over IPC (never in the environment). */
  secrets: Record<string, string>;
  /** Node flags the policy's adapters need (gateway/adapters.ts nodeFlags). */
  nodeFlags: string[];
  /** Where the policy file's bytes came from; default the workspace (the file itself). */
  policySource?: PolicySource;
  /** Where the policy's relative paths resolve; default the policy file's directory. */
  policyBaseDir?: string;
}

/**
 * Starts `cli daemon` detached (stdio to STATE/daemon.log, so no pipe keeps the caller alive) and
 * resolves once it accepts connections; STATE/env then holds the connection environment.
 */
/**
 * V8 sizes the young generation by the machine's memory (on a 24 GiB runner, semi-spaces of tens
 * of MB): a daemon holding many short-lived per-command objects then promotes and keeps far more
 * than it needs, and its RSS climbs past 200 MB under load. 4 MB semi-spaces hold what is in
 * flight between a command and its answer; measured (bench/postgres.ts), RSS stays about 135 MB
 * after mixed pgbench runs and a streamed COPY, at no cost in CPU per query. SSH streaming
 * (bench/ssh.ts) was measured too: 16 MB or V8's default gained nothing there, 1 MB saved a little
 * CPU per byte and pgbench nothing; what streaming spent on GC was full collections that ssh2's
 * packet buffers (external memory) start, whatever the semi-space size, which the SSH adapter's
 * flag answers (gateway/ssh/node-flags.ts; for pgbench it gained nothing, so it is SSH's only).
 * Exported for the bench's bare relay, which runs with the daemon's flags.
 */
export const DAEMON_NODE_FLAGS = ['--max-semi-space-size=4'];

export async function launchDaemon(o: LaunchOptions): Promise<{ pid: number }> {
  fs.mkdirSync(o.stateDir, { recursive: true, mode: 0o700 });
  fs.chmodSync(o.stateDir, 0o700);
  const out = fs.openSync(path.join(o.stateDir, 'daemon.log'), 'a', 0o600);
  const policyArgs = [...(o.policySource ? ['--policy-source', JSON.stringify(o.policySource)] : []), ...(o.policyBaseDir ? ['--policy-base-dir', o.policyBaseDir] : [])];
  const child = spawn(process.execPath, [...process.execArgv, ...DAEMON_NODE_FLAGS, ...o.nodeFlags, o.cli, 'daemon', '--policy', o.policyFile, ...policyArgs, '--state-dir', o.stateDir, '--log-dir', o.logDir], {
    detached: true,
    stdio: ['ignore', out, out, 'ipc'],
    env: o.env,
  });
  fs.closeSync(out);
  child.send({ secrets: o.secrets });
  const reply = await new Promise<{ ready?: boolean; error?: string }>((resolve) => {
    const timer = setTimeout(() => resolve({ error: `the daemon did not become ready within ${READY_TIMEOUT_MS / 1000}s; see ${path.join(o.stateDir, 'daemon.log')}` }), READY_TIMEOUT_MS);
    child.once('message', (m) => (clearTimeout(timer), resolve(m as { ready?: boolean; error?: string })));
    child.once('exit', (code) => (clearTimeout(timer), resolve({ error: `the daemon exited (status ${code}); see ${path.join(o.stateDir, 'daemon.log')}` })));
  });
  if (!reply.ready) {
    child.kill();
    throw new Error(reply.error ?? 'the daemon failed to start');
  }
  child.disconnect();
  child.unref();
  return { pid: child.pid! };
}

export async function stop(argv: string[]): Promise<number> {
  const args = parseArgs(argv, { 'state-dir': { type: 'string' } }, 'stop');
  if (args.values.help) return void process.stdout.write(stopHelp), 0;
  if (operands(args).length > 0) throw new UsageError(`stop: unexpected argument "${operands(args)[0]}" (see gateway-action stop --help)`);
  const stateDir = requireOption(args, 'state-dir', 'stop');
  const reply = await sendControl(stateDir, { op: 'stop' }).catch((e: Error) => {
    const info = path.join(stateDir, 'daemon.json');
    const log = fs.existsSync(info) ? (JSON.parse(fs.readFileSync(info, 'utf8')) as { log?: string }).log : undefined;
    throw new Error(log ? `${e.message}; its last session log, ${log}, was not sealed by a clean stop (check it with gateway-action verify)` : e.message);
  });
  if (!reply.ok) throw new Error(`the gateway stopped, but the session log is not sealed: ${reply.error}`);
  process.stdout.write(`${terminalText(String(reply.log))}\n`);
  return 0;
}

/** The detached process itself (internal verb). */
export async function daemon(argv: string[]): Promise<number> {
  const args = parseArgs(argv, DAEMON_OPTIONS, 'daemon');
  const stateDir = requireOption(args, 'state-dir', 'daemon');
  const report = (m: object): void => void (process.send ? process.send(m) : undefined);
  let gw: Gateway;
  try {
    const source = args.values['policy-source'] === undefined ? undefined : parsePolicySource(args.values['policy-source']);
    const policy = loadPolicy(requireOption(args, 'policy', 'daemon'), { source, baseDir: args.values['policy-base-dir'] });
    const secrets = process.send
      ? await new Promise<Record<string, string>>((resolve) => process.once('message', (m) => resolve((m as { secrets: Record<string, string> }).secrets ?? {})))
      : process.env;
    gw = await Gateway.start({ policy, logDir: requireOption(args, 'log-dir', 'daemon'), identity: runIdentity(), claims: localClaims(), env: secrets as NodeJS.ProcessEnv, renderers: RENDERERS });
  } catch (e) {
    report({ error: (e as Error).message });
    process.stderr.write(`gateway-action daemon: ${(e as Error).message}\n`);
    return 1;
  }
  let stopping: Promise<StopResult> | null = null;
  const stopGateway = (reason: string): Promise<StopResult> => (stopping ??= gw.stop(reason));
  const server = await serveControl(stateDir, async (req) => {
    if (req.op === 'status') return { ok: true, pid: process.pid, log: gw.logPath, run: gw.runId, memory: process.memoryUsage() };
    if (req.op === 'stop') {
      const { log, sealError, head, records } = await stopGateway('stopped by request');
      if (!sealError) fs.rmSync(path.join(stateDir, 'daemon.json'), { force: true });
      setImmediate(() => server.close(() => process.exit(sealError ? 1 : 0)));
      return sealError ? { ok: false, error: `${sealError} (${log})`, log, head, records } : { ok: true, log, head, records };
    }
    return gw.answerControl(req);
  });
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.on(sig, () => void stopGateway(`signal ${sig}`).then((r) => process.exit(r.sealError ? 1 : 0)));
  }
  // The connection environment: KEY=VALUE lines (env), and the whole export with the secret
  // values the adapters declare and the files they wrote (connection.json), for the action.
  const connection = gw.exportConnection(stateDir);
  for (const [name, text] of [['env', formatEnv(connection.env)], ['connection.json', JSON.stringify({ env: connection.env, secrets: connection.secrets, files: connection.files.map((f) => ({ name: f.name, path: f.path, mode: f.mode })) }) + '\n']] as const) {
    const file = path.join(stateDir, name);
    fs.writeFileSync(file, text, { mode: 0o600 });
    fs.chmodSync(file, 0o600); // an older file keeps its mode otherwise
  }
  fs.writeFileSync(path.join(stateDir, 'daemon.json'), JSON.stringify({ pid: process.pid, log: gw.logPath, run: gw.runId, key: gw.key.thumbprint, attested: gw.key.attested }) + '\n', { mode: 0o600 });
  process.stdout.write(`gateway-action daemon: pid ${process.pid}, session log ${gw.logPath}\n`);
  report({ ready: true });
  process.disconnect?.();
  return new Promise<number>(() => undefined); // runs until stopped
}
