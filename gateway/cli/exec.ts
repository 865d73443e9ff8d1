// `gateway-action exec`: runs a command with the connection environment of a gateway started
// with `start`, optionally confined (gateway/confine/): its own network namespace where the
// gateway's listeners are the only endpoints, its own PID namespace, another user, no token
// variables. Confinement needs root: without it, sudo -n is used; without that, it is refused.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os, { constants as osConstants } from 'node:os';
import path from 'node:path';
import { parseArgs, requireOption, UsageError } from './args.ts';
import { parseEnvFile } from './env-file.ts';
import { sendControl } from '../daemon/control.ts';
import { confinementSupport } from '../confine/preflight.ts';
import { runConfined, type ConfineHost } from '../confine/run-confined.ts';
import { confinedUser, DEFAULT_CONFINED_USER } from '../confine/user.ts';

export const help = `Usage: gateway-action exec [--state-dir DIR] [--confine [--user NAME]] -- COMMAND [ARGS...]

Runs COMMAND with the connection environment of the gateway started with
\`gateway-action start --state-dir DIR\` (PG*, GATEWAY_*, KUBECONFIG, proxy and CA variables).

With --confine, COMMAND can reach nothing but the gateway: it runs in its own network namespace
with only loopback, where the gateway's listeners appear at their usual 127.0.0.1 ports (and
the forward proxy leads to the policy's declared egress); in its own PID namespace; as the
unprivileged user NAME (default ${DEFAULT_CONFINED_USER}, created on first use), so it cannot read
the session log, the state directory or the control socket; without the GitHub variables that
mint tokens or upload artifacts. The session log records the command (argv, user, start, end,
exit status) and the connections it opened. Needs Linux and root or passwordless sudo;
otherwise it is refused, never run unconfined.
Exits with COMMAND's exit status (128 + N when a signal N ended it; 125 when confinement failed).

Options:
  --state-dir DIR   the gateway's state directory (as given to start; default $GATEWAY_STATE_DIR,
                    which the GitHub Action exports)
  --confine         run COMMAND confined (see above)
  --user NAME       the user a confined COMMAND runs as (an existing unprivileged user)
`;

export async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv, { 'state-dir': { type: 'string' }, confine: { type: 'boolean' }, user: { type: 'string' }, 'environment-file': { type: 'string' } }, 'exec');
  if (args.values.help) return void process.stdout.write(help), 0;
  // In a job, the action's main step exported where its gateway keeps its state.
  const stateDir = path.resolve(args.values['state-dir'] !== undefined ? requireOption(args, 'state-dir', 'exec') : process.env.GATEWAY_STATE_DIR || requireOption(args, 'state-dir', 'exec'));
  if (!args.rest || args.rest.length === 0) throw new UsageError('exec: give the command to run after `--` (see gateway-action exec --help)');
  if (args.positional.length > 0) throw new UsageError(`exec: unexpected argument "${args.positional[0]}"; put the command after \`--\``);
  if (args.values.user !== undefined && !args.values.confine) throw new UsageError('exec: --user is for --confine');
  // Run again through sudo: the caller's environment travels in a file only root and the caller can read.
  const env = args.values['environment-file'] ? takeEnvironment(String(args.values['environment-file'])) : process.env;
  if (!args.values.confine) return runPlain(args.rest, { ...env, ...readConnection(stateDir).env });
  // Checked first: without root the state directory may not even be readable.
  const support = confinementSupport();
  if (support.problem) {
    process.stderr.write(`gateway-action: exec: ${support.problem}; the command was not run\n`);
    return 125;
  }
  // sudo resets the environment: the state directory goes as an argument.
  if (support.viaSudo) return viaSudo(['--state-dir', stateDir, ...argv.filter((a, i) => a !== '--state-dir' && !a.startsWith('--state-dir=') && argv[i - 1] !== '--state-dir')]);
  const connection = readConnection(stateDir);
  let user;
  try {
    user = confinedUser(String(args.values.user ?? DEFAULT_CONFINED_USER), args.values.user === undefined, [fs.statSync(stateDir).uid, ...sudoCaller()]);
  } catch (e) {
    process.stderr.write(`gateway-action: exec: ${(e as Error).message}; the command was not run\n`);
    return 125;
  }
  const host: ConfineHost = {
    async open(req) {
      const r = await sendControl(stateDir, { op: 'confine-open', ...req });
      if (!r.ok) throw new Error(`the gateway refused the confined command: ${r.error}`);
      return r as unknown as Awaited<ReturnType<ConfineHost['open']>>;
    },
    async close(id, end) {
      await sendControl(stateDir, { op: 'confine-close', id, ...end });
    },
  };
  return runConfined({ argv: args.rest, cwd: process.cwd(), user, host, connection: { ...connection, stateDir }, secretNames: [], env, cli: process.argv[1]! });
}

/** The connection environment and the files it names, as `start` wrote them. */
function readConnection(stateDir: string): { env: Record<string, string>; files: string[] } {
  let raw: string;
  try {
    raw = fs.readFileSync(path.join(stateDir, 'connection.json'), 'utf8');
  } catch {
    const env = fs.existsSync(path.join(stateDir, 'env')) ? parseEnvFile(fs.readFileSync(path.join(stateDir, 'env'), 'utf8')) : null;
    if (!env) throw new UsageError(`exec: no gateway was started with --state-dir ${stateDir} (no connection environment there)`);
    return { env, files: [] };
  }
  const c = JSON.parse(raw) as { env: Record<string, string>; files?: { path: string }[] };
  return { env: c.env, files: (c.files ?? []).map((f) => f.path) };
}

function runPlain(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [cmd, ...rest] = argv;
  const child = spawn(cmd!, rest, { stdio: 'inherit', env });
  const forward = (sig: NodeJS.Signals): void => void child.kill(sig);
  process.on('SIGTERM', forward);
  process.on('SIGINT', () => undefined);
  return new Promise((resolve) => {
    child.on('error', (e: NodeJS.ErrnoException) => {
      process.stderr.write(`gateway-action: cannot run ${cmd}: ${e.code === 'ENOENT' ? 'command not found' : e.message}\n`);
      resolve(127);
    });
    child.on('exit', (code, signal) => resolve(code ?? 128 + (signal ? osConstants.signals[signal] : 0)));
  });
}

/** This exec again as root through `sudo -n`, the environment passed in a private file. */
function viaSudo(argv: string[]): Promise<number> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gateway-exec-'));
  const file = path.join(dir, 'environment.json');
  fs.writeFileSync(file, JSON.stringify(process.env), { mode: 0o600 });
  const child = spawn('sudo', ['-n', '--', process.execPath, process.argv[1]!, 'exec', '--environment-file', file, ...argv], { stdio: 'inherit' });
  const forward = (sig: NodeJS.Signals): void => void child.kill(sig);
  process.on('SIGTERM', forward);
  process.on('SIGINT', () => undefined);
  return new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      fs.rmSync(dir, { recursive: true, force: true });
      resolve(code ?? 128 + (signal ? osConstants.signals[signal] : 0));
    });
  });
}

/** The uid that ran sudo, when this runs through sudo. */
export function sudoCaller(env: NodeJS.ProcessEnv = process.env): number[] {
  const uid = Number(env.SUDO_UID);
  return Number.isInteger(uid) && uid > 0 ? [uid] : [];
}

function takeEnvironment(file: string): NodeJS.ProcessEnv {
  const env = JSON.parse(fs.readFileSync(file, 'utf8')) as NodeJS.ProcessEnv;
  fs.rmSync(file, { force: true });
  return env;
}
