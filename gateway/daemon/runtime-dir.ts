// Where running gateways announce their control sockets, so `gateway-action approve ID` finds
// the gateway holding request ID without being told which one. The directory belongs to the
// user and nobody else may enter it: a socket in it is trusted to be one of that user's gateways.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export function runtimeDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.GATEWAY_ACTION_RUNTIME_DIR) return path.resolve(env.GATEWAY_ACTION_RUNTIME_DIR);
  if (env.XDG_RUNTIME_DIR) return path.join(env.XDG_RUNTIME_DIR, 'gateway-action');
  return path.join(os.tmpdir(), `gateway-action-${os.userInfo().uid}`);
}

/** Creates the directory (0700) or checks that an existing one is ours and private. */
export function ensureRuntimeDir(dir = runtimeDir()): string {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = fs.lstatSync(dir);
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory; set GATEWAY_ACTION_RUNTIME_DIR to a private directory`);
  if (st.uid !== os.userInfo().uid) throw new Error(`${dir} belongs to another user; set GATEWAY_ACTION_RUNTIME_DIR to a private directory`);
  if ((st.mode & 0o077) !== 0) fs.chmodSync(dir, 0o700);
  return dir;
}

export function approvalSocketPath(runId: string, dir = runtimeDir()): string {
  return path.join(dir, `${runId}.sock`);
}

/** Control sockets of the user's gateways; stale ones are found out when they refuse a connection. */
export function announcedSockets(dir = runtimeDir()): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((n) => n.endsWith('.sock')).map((n) => path.join(dir, n));
}
