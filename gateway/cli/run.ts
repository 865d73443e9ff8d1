import { spawn } from 'node:child_process';
import os, { constants as osConstants } from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs, requireOption, UsageError } from './args.ts';
import { loadPolicy, nodeFlags } from '../adapters.ts';
import { Gateway } from '../daemon/gateway.ts';
import { localClaims } from '../identity/local.ts';
import { runIdentity } from '../identity/github-oidc.ts';
import { confinementSupport } from '../confine/preflight.ts';
import { runConfined, type ConfineHost } from '../confine/run-confined.ts';
import { confinedUser, DEFAULT_CONFINED_USER, type ConfinedUser } from '../confine/user.ts';
import { sudoCaller } from './exec.ts';

export const help = `Usage: gateway-action run --policy FILE [--log-dir DIR] [--confine [--user NAME]] -- COMMAND [ARGS...]

Starts the gateway for the targets in FILE, runs COMMAND with the connection environment
(GATEWAY_<NAME>_URL, and PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE/PGSSLMODE for the first
PostgreSQL target), stops the gateway when COMMAND exits, seals the session log and prints its
path on stderr. The upstream password variables are removed from COMMAND's environment (but
stay readable in /proc/<pid>/environ of this process to the same OS user: in CI, prefer
\`start\` in one step and the commands in later steps).
Exits with COMMAND's exit status; if the session log could not be written or sealed, exits 1
when COMMAND succeeded.

With --confine, COMMAND runs confined as \`gateway-action exec --confine\` runs it (see
gateway-action exec --help): the gateway's listeners are the only endpoints it can reach.

Options:
  --policy FILE    policy file (YAML); see docs/policy.md
  --log-dir DIR    where the session log is written (default ./gateway-logs)
  --confine        run COMMAND confined: its own network and PID namespaces, another user
  --user NAME      the user a confined COMMAND runs as (default gateway-confined)
`;

export async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv, { policy: { type: 'string' }, 'log-dir': { type: 'string' }, confine: { type: 'boolean' }, user: { type: 'string' } }, 'run');
  if (args.values.help) return void process.stdout.write(help), 0;
  const policyFile = requireOption(args, 'policy', 'run');
  if (!args.rest || args.rest.length === 0) throw new UsageError('run: give the command to run after `--` (see gateway-action run --help)');
  if (args.positional.length > 0) throw new UsageError(`run: unexpected argument "${args.positional[0]}"; put the command after \`--\``);
  if (args.values.user !== undefined && !args.values.confine) throw new UsageError('run: --user is for --confine');
  const policy = loadPolicy(policyFile);
  let user: ConfinedUser | null = null;
  if (args.values.confine) {
    // Before the gateway starts: a command that cannot be confined is not run at all.
    const support = confinementSupport();
    if (support.problem) {
      process.stderr.write(`gateway-action: run: ${support.problem}; the command was not run\n`);
      return 125;
    }
    if (support.viaSudo) return relaunch(['sudo', '-n', '--preserve-env', '--', process.execPath, ...process.execArgv, process.argv[1]!, 'run', ...argv], 'sudo');
    try {
      user = confinedUser(String(args.values.user ?? DEFAULT_CONFINED_USER), args.values.user === undefined, sudoCaller());
    } catch (e) {
      process.stderr.write(`gateway-action: run: ${(e as Error).message}; the command was not run\n`);
      return 125;
    }
  }
  const missing = nodeFlags(policy).filter((f) => !process.execArgv.includes(f));
  if (missing.length > 0) {
    return relaunch([...missing, ...process.execArgv, process.argv[1]!, 'run', ...argv]);
  }
  const gw = await Gateway.start({ policy, logDir: args.values['log-dir'] ?? 'gateway-logs', identity: runIdentity(), claims: localClaims() });

  // A private directory for the files adapters export (a kubeconfig, an SSH config): the
  // variables name them, so they must exist for as long as the command runs.
  const connectionDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gateway-run-'));
  const exported = gw.exportConnection(connectionDir);
  if (user) {
    const host: ConfineHost = { open: async (req) => gw.confined.begin(req), close: async (id, end) => gw.confined.end(id, end) };
    const status = await runConfined({ argv: args.rest, cwd: process.cwd(), user, host, connection: { env: exported.env, files: exported.files.map((f) => f.path), stateDir: connectionDir }, secretNames: gw.secretEnvNames(policy), env: process.env, cli: process.argv[1]! });
    return finish(gw, connectionDir, status);
  }
  const env: NodeJS.ProcessEnv = { ...process.env, ...exported.env };
  for (const name of gw.secretEnvNames(policy)) delete env[name];
  const [cmd, ...cmdArgs] = args.rest;
  const child = spawn(cmd!, cmdArgs, { stdio: 'inherit', env });
  // Ctrl-C reaches the whole foreground process group, COMMAND included: stay alive to seal the
  // log, but do not send COMMAND a second SIGINT. SIGTERM is aimed at us alone: pass it on.
  const ignore = (): void => undefined;
  const forward = (sig: NodeJS.Signals): void => void child.kill(sig);
  process.on('SIGINT', ignore);
  process.on('SIGTERM', forward);
  const status = await new Promise<number>((resolve) => {
    child.on('error', (e: NodeJS.ErrnoException) => {
      process.stderr.write(`gateway-action: cannot run ${cmd}: ${e.code === 'ENOENT' ? 'command not found' : e.message}\n`);
      resolve(127);
    });
    child.on('exit', (code, signal) => resolve(code ?? 128 + (signal ? osConstants.signals[signal] : 0)));
  });
  process.off('SIGINT', ignore);
  process.off('SIGTERM', forward);
  return finish(gw, connectionDir, status);
}

/** Stops the gateway, seals the log and says where it is; COMMAND's status unless the evidence is incomplete. */
async function finish(gw: Gateway, connectionDir: string, status: number): Promise<number> {
  const { log, sealError } = await gw.stop('command exited');
  giveBackToCaller(path.dirname(log));
  fs.rmSync(connectionDir, { recursive: true, force: true });
  process.stderr.write(`gateway-action: session log: ${log}\n`);
  if (sealError) {
    // The evidence is incomplete: never let that pass as success.
    process.stderr.write(`gateway-action: error: ${sealError}\n`);
    return status === 0 ? 1 : status;
  }
  return status;
}

/** Run through sudo, the log belongs to whoever ran sudo, so they can read and upload it. */
function giveBackToCaller(logDir: string): void {
  const [uid] = sudoCaller();
  const gid = Number(process.env.SUDO_GID);
  if (uid === undefined || !Number.isInteger(gid)) return;
  try {
    fs.chownSync(logDir, uid, gid);
    for (const f of fs.readdirSync(logDir)) fs.chownSync(path.join(logDir, f), uid, gid);
  } catch {
    // The log is sealed and its path printed: ownership is a convenience, not evidence.
  }
}

/** Runs this CLI again with `args` (Node flags first), passing signals on; resolves to its exit status. */
export function relaunch(args: string[], program = process.execPath): Promise<number> {
  const child = spawn(program, args, { stdio: 'inherit', env: process.env });
  const ignore = (): void => undefined;
  const forward = (sig: NodeJS.Signals): void => void child.kill(sig);
  process.on('SIGINT', ignore);
  process.on('SIGTERM', forward);
  return new Promise((resolve) => {
    child.on('exit', (code, signal) => resolve(code ?? 128 + (signal ? osConstants.signals[signal] : 0)));
  });
}
