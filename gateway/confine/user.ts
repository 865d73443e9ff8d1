// The unprivileged user a confined command runs as: by default `gateway-confined`, created on
// first use as a system user with no login shell and no home; another existing user may be named.
// Being another user is what keeps the command out of the daemon's files (the log, the state
// directory, the control socket) and its memory.
import { spawnSync } from 'node:child_process';

export const DEFAULT_CONFINED_USER = 'gateway-confined';

export interface ConfinedUser { name: string; uid: number; gid: number }

const NAME = /^[a-z_][a-z0-9_-]{0,31}$/;

/**
 * `forbidden`: uids that must not be the confined user: the daemon's (the owner of its state
 * directory and log) and the caller's before sudo, whose files and processes confinement closes.
 */
export function confinedUser(name: string, create: boolean, forbidden: readonly number[] = []): ConfinedUser {
  if (!NAME.test(name)) throw new Error(`--user: "${name}" is not a user name`);
  let found = lookup(name);
  if (!found && create && name === DEFAULT_CONFINED_USER) {
    const r = spawnSync('useradd', ['--system', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', '--user-group', name], { encoding: 'utf8' });
    // Another confined command may have created it at the same moment: what counts is that it exists.
    found = lookup(name);
    if (!found) throw new Error(`cannot create the user ${name}: ${(r.stderr || r.error?.message || '').trim()}`);
  }
  if (!found) throw new Error(`--user: there is no user ${name} on this machine`);
  if (found.uid === 0) throw new Error(`--user: ${name} is root; a confined command runs as an unprivileged user`);
  if (forbidden.includes(found.uid)) throw new Error(`--user: ${name} is the user the gateway or its caller runs as, whose files (the log, the state directory) confinement keeps the command from; name another user`);
  return found;
}

function lookup(name: string): ConfinedUser | null {
  const r = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  const g = spawnSync('id', ['-g', name], { encoding: 'utf8' });
  if (r.status !== 0 || g.status !== 0) return null;
  return { name, uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
}
