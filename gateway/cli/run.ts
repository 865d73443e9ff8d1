import { spawn } from 'node:child_process';
import os, { constants as osConstants } from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs, requireOption, UsageError } from './args.ts';
import { loadPolicy, nodeFlags } from '../adapters.ts';
import { Gateway } from '../daemon/gateway.ts';
import { localClaims } from '../identity/local.ts';
import { runIdentity } from '../identity/github-oidc.ts';

export const help = `Usage: gateway-action run --policy FILE [--log-dir DIR] -- COMMAND [ARGS...]

Starts the gateway for the targets in FILE, runs COMMAND with the connection environment
(GATEWAY_<NAME>_URL, and PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE/PGSSLMODE for the first
PostgreSQL target), stops the gateway when COMMAND exits, seals the session log and prints its
path on stderr. The upstream password variables are removed from COMMAND's environment (but
stay readable in /proc/<pid>/environ of this process to the same OS user: in CI, prefer
\`start\` in one step and the commands in later steps).
Exits with COMMAND's exit status; if the session log could not be written or sealed, exits 1
when COMMAND succeeded.

Options:
  --policy FILE    policy file (YAML); see docs/policy.md
  --log-dir DIR    where the session log is written (default ./gateway-logs)
`;

export async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv, { policy: { type: 'string' }, 'log-dir': { type: 'string' } }, 'run');
  if (args.values.help) return void process.stdout.write(help), 0;
  const policyFile = requireOption(args, 'policy', 'run');
  if (!args.rest || args.rest.length === 0) throw new UsageError('run: give the command to run after `--` (see gateway-action run --help)');
  if (args.positional.length > 0) throw new UsageError(`run: unexpected argument "${args.positional[0]}"; put the command after \`--\``);
  const policy = loadPolicy(policyFile);
  const missing = nodeFlags(policy).filter((f) => !process.execArgv.includes(f));
  if (missing.length > 0) {
    return relaunch([...missing, ...process.execArgv, process.argv[1]!, 'run', ...argv]);
  }
  const gw = await Gateway.start({ policy, logDir: args.values['log-dir'] ?? 'gateway-logs', identity: runIdentity(), claims: localClaims() });

  // A private directory for the files adapters export (a kubeconfig, an SSH config): the
  // variables name them, so they must exist for as long as the command runs.
  const connectionDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gateway-run-'));
  const env: NodeJS.ProcessEnv = { ...process.env, ...gw.exportConnection(connectionDir).env };
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
  const { log, sealError } = await gw.stop('command exited');
  fs.rmSync(connectionDir, { recursive: true, force: true });
  process.stderr.write(`gateway-action: session log: ${log}\n`);
  if (sealError) {
    // The evidence is incomplete: never let that pass as success.
    process.stderr.write(`gateway-action: error: ${sealError}\n`);
    return status === 0 ? 1 : status;
  }
  return status;
}

/** Runs this CLI again with `args` (Node flags first), passing signals on; resolves to its exit status. */
export function relaunch(args: string[]): Promise<number> {
  const child = spawn(process.execPath, args, { stdio: 'inherit', env: process.env });
  const ignore = (): void => undefined;
  const forward = (sig: NodeJS.Signals): void => void child.kill(sig);
  process.on('SIGINT', ignore);
  process.on('SIGTERM', forward);
  return new Promise((resolve) => {
    child.on('exit', (code, signal) => resolve(code ?? 128 + (signal ? osConstants.signals[signal] : 0)));
  });
}
