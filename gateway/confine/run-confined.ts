// Runs one command confined: the gateway opens its bridges and records the command; then
// `unshare` makes new network, PID and mount namespaces, in which inside.ts brings the gateway's
// listeners in, hides the directories where Unix sockets live, makes a private HOME holding the
// connection environment's files (the state directory stays closed), and runs the command as the
// confined user with no way back to root. Signals pass in, the exit status comes out, and the end
// is recorded.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import type net from 'node:net';
import { confinedEnvironment } from './environment.ts';
import type { InsideExit, InsideSpec } from './inside.ts';
import type { ConfinedUser } from './user.ts';

/** The gateway's side, over its control socket (exec) or in the same process (run). */
export interface ConfineHost {
  open(req: { argv: string[]; user: string; cwd: string }): Promise<{ id: string; bridges: InsideSpec['bridges'] }>;
  close(id: string, end: { exit: number | null; signal: string | null; error?: string }): Promise<void>;
}

export interface ConfinedRun {
  argv: string[];
  cwd: string;
  user: ConfinedUser;
  host: ConfineHost;
  /** The connection environment and the files it names (in `stateDir`). */
  connection: { env: Record<string, string>; files: string[]; stateDir: string };
  /** Upstream secret variables (never inside). */
  secretNames: readonly string[];
  env: NodeJS.ProcessEnv;
  /** This CLI's entry (dist/cli.js): the namespace's first process runs its `__confined` verb. */
  cli: string;
}

/** The command's HOME inside: in the namespace's own /tmp, which only it sees. */
const HOME_INSIDE = '/tmp/gateway-confined-home';

export async function runConfined(r: ConfinedRun): Promise<number> {
  const { id, bridges } = await r.host.open({ argv: r.argv, user: r.user.name, cwd: r.cwd });
  let end: InsideExit = { error: 'the confined command did not start' };
  try {
    const filesDir = path.join(HOME_INSIDE, '.gateway');
    // The connection's files (an SSH config and key, a kubeconfig, a CA bundle) are read here and
    // written inside, naming each other at their new place; the state directory stays closed.
    const files = r.connection.files.map((f) => ({ name: path.basename(f), content: fs.readFileSync(f, 'utf8').split(r.connection.stateDir).join(filesDir), mode: fs.statSync(f).mode & 0o777 }));
    const env = confinedEnvironment({ env: r.env, connection: r.connection.env, secretNames: r.secretNames, rewrite: { from: r.connection.stateDir, to: filesDir }, home: HOME_INSIDE, user: r.user.name });
    const spec: InsideSpec = { argv: r.argv, cwd: r.cwd, env, uid: r.user.uid, gid: r.user.gid, bridges, home: HOME_INSIDE, files };
    end = await inNamespaces(spec, r.cli);
  } catch (e) {
    end = { error: (e as Error).message };
  } finally {
    const how = 'error' in end ? { exit: null, signal: null, error: end.error } : { exit: end.exit, signal: end.signal };
    await r.host.close(id, how).catch(() => undefined);
  }
  if ('error' in end) {
    process.stderr.write(`gateway-action: --confine: ${end.error}\n`);
    return 125;
  }
  if (end.signal) return 128 + (osConstants.signals[end.signal as NodeJS.Signals] ?? 0);
  return end.exit ?? 1;
}

/**
 * unshare: a network namespace (only loopback), a PID namespace (the daemon cannot be seen or
 * signalled), a mount namespace with its own /proc (no other process's memory or environment).
 * `--kill-child`: if this process dies, the namespace's first process is killed, and with it
 * everything in the namespace.
 */
function inNamespaces(spec: InsideSpec, cli: string): Promise<InsideExit> {
  return new Promise((resolve) => {
    // Through bash (dash cannot name descriptors above 9), which closes every descriptor but
    // stdio and the control channel first: one this process inherited (from the runner, a
    // parent) must not reach the confined command.
    const closeOthers = 'for fd in /proc/self/fd/*; do n=${fd##*/}; [ "$n" -gt 3 ] 2>/dev/null && eval "exec $n>&-"; done; exec "$@"';
    const child = spawn('bash', ['-c', closeOthers, 'bash', 'unshare', '--net', '--pid', '--fork', '--kill-child', '--mount-proc', '--', process.execPath, cli, '__confined'], { stdio: ['inherit', 'inherit', 'inherit', 'pipe'] });
    const control = child.stdio[3] as net.Socket;
    control.write(`${JSON.stringify(spec)}\n`);
    let out = '';
    let reported: InsideExit | null = null;
    control.setEncoding('utf8');
    control.on('data', (d: string) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0 && !reported) {
        try {
          reported = JSON.parse(out.slice(0, nl)) as InsideExit;
        } catch {
          reported = { error: 'the confined process reported an unreadable status' };
        }
      }
    });
    control.on('error', () => undefined);
    // Ctrl-C on a terminal reaches the command itself (same process group): not sent twice.
    // Otherwise (a cancelled job, kill) the signal is passed in.
    const pass = (sig: NodeJS.Signals): void => {
      if (sig === 'SIGINT' && process.stdin.isTTY) return;
      control.write(`${sig}\n`);
    };
    const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
    for (const s of signals) process.on(s, pass);
    child.once('error', (e) => resolve({ error: `cannot run unshare: ${e.message}` }));
    // 'close', not 'exit': the status line on fd 3 is read to its end first.
    child.once('close', (code, signal) => {
      for (const s of signals) process.off(s, pass);
      resolve(reported ?? { error: `the namespace ended before the command did (unshare ${signal ? `killed by ${signal}` : `exit ${code}`})` });
    });
  });
}
