// The first process inside a confined command's namespaces (PID 1 of its PID namespace, root in
// its own network namespace with nothing but loopback): brings loopback up, listens on the
// gateway's loopback addresses and ports and relays each connection to the gateway's Unix socket
// for that address (Unix sockets cross network namespaces; nothing else here leads out), then
// runs the command as the confined user and reports how it ended. It talks to the process that
// started it over fd 3: one JSON line in (the spec), then signal names in and one exit line out.
// When it exits, the kernel ends every process left in the PID namespace: nothing the command
// started outlives it.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { constants as osConstants } from 'node:os';
import path from 'node:path';

/** What the outside process hands in. */
export interface InsideSpec {
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  uid: number;
  gid: number;
  /** `127.0.0.1:PORT` inside, served by the Unix socket outside. */
  bridges: { host: string; port: number; socket: string }[];
  /** The command's HOME, made inside (under the namespace's own /tmp), and the files put in HOME/.gateway. */
  home: string;
  files: { name: string; content: string; mode: number }[];
}

/**
 * Where Unix sockets live (a database's, D-Bus's, a container engine's): a filesystem socket
 * crosses network namespaces, so each of these gets an empty tmpfs of its own inside. The
 * command's HOME is made in the new /tmp, which no other process can see.
 */
const SOCKET_DIRS = ['/tmp', '/var/tmp', '/run', '/var/run', '/dev/shm'];

/** The line written on fd 3 when the command ended. */
export type InsideExit = { exit: number | null; signal: string | null } | { error: string };

export async function runInside(): Promise<number> {
  const control = new net.Socket({ fd: 3, readable: true, writable: true });
  const lines = lineReader(control);
  const report = (x: InsideExit): Promise<void> => new Promise((resolve) => control.write(`${JSON.stringify(x)}\n`, () => resolve()));
  let spec: InsideSpec;
  try {
    spec = JSON.parse(await lines.next()) as InsideSpec;
  } catch (e) {
    await report({ error: `no confinement spec: ${(e as Error).message}` });
    return 125;
  }
  const lo = spawnSync('ip', ['link', 'set', 'lo', 'up'], { encoding: 'utf8' });
  if (lo.status !== 0) {
    await report({ error: `cannot bring loopback up in the network namespace: ${(lo.stderr || lo.error?.message || '').trim()}` });
    return 125;
  }
  try {
    await Promise.all(spec.bridges.map((b) => bridge(b)));
    hideSocketDirectories(spec.cwd, [...new Set(spec.bridges.map((b) => path.dirname(b.socket)))]);
    makeHome(spec);
  } catch (e) {
    await report({ error: `cannot prepare the namespace: ${(e as Error).message}` });
    return 125;
  }
  // setpriv, not spawn's uid/gid: no-new-privs, so neither sudo nor any setuid program can
  // raise the command back to root; and no supplementary groups.
  const child = spawn('setpriv', ['--no-new-privs', `--reuid=${spec.uid}`, `--regid=${spec.gid}`, '--clear-groups', '--', ...spec.argv], { cwd: spec.cwd, env: spec.env, stdio: 'inherit' });
  const cmd = spec.argv[0];
  // As PID 1 only signals with a handler arrive. A terminal's Ctrl-C reaches the command itself
  // (same process group); a TERM or HUP sent to this process is passed on.
  process.on('SIGINT', () => undefined);
  for (const sig of ['SIGTERM', 'SIGHUP'] as const) process.on(sig, () => void child.kill(sig));
  // Signals the outside passes on (Ctrl-C, a cancelled job) go to the command.
  void (async () => {
    for (;;) {
      const line = await lines.next().catch(() => null);
      // The outside is gone (killed): nothing would record how this ends, so it ends now.
      if (line === null) {
        child.kill('SIGKILL');
        process.exit(137);
      }
      if (/^SIG[A-Z0-9]+$/.test(line)) child.kill(line as NodeJS.Signals);
    }
  })();
  const ended = await new Promise<InsideExit>((resolve) => {
    child.once('error', (e: NodeJS.ErrnoException) => resolve({ error: `cannot run ${cmd} as uid ${spec.uid} in ${spec.cwd}: ${e.code === 'ENOENT' ? 'command not found' : e.code === 'EACCES' ? 'not found on PATH or not permitted to that user (a PATH directory, the program or the working directory it cannot enter)' : e.message}` }));
    child.once('exit', (code, signal) => resolve({ exit: code, signal }));
  });
  await report(ended);
  if ('error' in ended) return 127;
  return ended.exit ?? 128 + (ended.signal ? osConstants.signals[ended.signal as NodeJS.Signals] ?? 0 : 0);
}

const mount = (args: string[], what: string): void => {
  const r = spawnSync('mount', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cannot ${what}: ${(r.stderr || r.error?.message || '').trim()}`);
};

/**
 * An empty tmpfs over every socket directory. The daemon's bridge sockets may be in one of them
 * (its runtime directory is under /tmp by default): their directory is set aside on /mnt (a mount
 * seen only here) and moved back to its place on the new tmpfs, still closed to the command.
 */
function hideSocketDirectories(cwd: string, bridgeDirs: string[]): void {
  const under = (p: string, dir: string): boolean => p === dir || p.startsWith(`${dir}/`);
  const keep = bridgeDirs.filter((b) => SOCKET_DIRS.some((d) => under(fs.realpathSync(b), d) || under(b, d)));
  if (keep.length > 1) throw new Error(`the gateway's bridges are in ${keep.length} directories`);
  const aside = '/mnt';
  if (keep.length) {
    fs.mkdirSync(aside, { recursive: true });
    mount(['--bind', keep[0]!, aside], `set ${keep[0]} aside`);
  }
  for (const dir of SOCKET_DIRS) {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(dir);
    } catch {
      continue;
    }
    // /var/run is a symlink to /run on most systems: covered there.
    if (!st.isDirectory()) continue;
    if (cwd === dir || cwd.startsWith(`${dir}/`)) throw new Error(`the working directory ${cwd} is under ${dir}, which is hidden inside (its Unix sockets would lead out); run from another directory`);
    mount(['-t', 'tmpfs', '-o', `nosuid,nodev,mode=${dir === '/run' ? '755' : '1777'}`, 'tmpfs', dir], `hide ${dir}`);
  }
  if (keep.length) {
    fs.mkdirSync(keep[0]!, { recursive: true, mode: 0o700 });
    mount(['--move', aside, keep[0]!], `put ${keep[0]} back`);
  }
}

/** HOME and its .gateway files, owned by the confined user; made after the tmpfs, so private. */
function makeHome(spec: InsideSpec): void {
  fs.mkdirSync(spec.home, { recursive: true, mode: 0o700 });
  const files = path.join(spec.home, '.gateway');
  fs.mkdirSync(files, { mode: 0o700 });
  for (const f of spec.files) fs.writeFileSync(path.join(files, f.name), f.content, { mode: f.mode });
  for (const p of [spec.home, files, ...spec.files.map((f) => path.join(files, f.name))]) fs.lchownSync(p, spec.uid, spec.gid);
}

/** Listens on host:port inside and relays every connection to the Unix socket outside. */
function bridge(b: InsideSpec['bridges'][number]): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = net.createServer({ pauseOnConnect: true }, (inner) => {
      const outer = net.connect(b.socket);
      inner.on('error', () => outer.destroy());
      outer.on('error', () => inner.destroy());
      outer.once('connect', () => {
        inner.pipe(outer);
        outer.pipe(inner);
        inner.resume();
      });
    });
    server.once('error', reject);
    server.listen(b.port, b.host, () => resolve());
  });
}

/** Newline-separated lines of a stream, one at a time. */
function lineReader(s: net.Socket): { next(): Promise<string> } {
  let buf = '';
  const waiting: ((l: string | null) => void)[] = [];
  const queued: string[] = [];
  let ended = false;
  s.setEncoding('utf8');
  s.on('data', (d: string) => {
    buf += d;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const w = waiting.shift();
      if (w) w(line);
      else queued.push(line);
    }
  });
  const end = (): void => {
    ended = true;
    for (const w of waiting.splice(0)) w(null);
  };
  s.on('end', end);
  s.on('close', end);
  s.on('error', end);
  return {
    next: () => new Promise((resolve, reject) => {
      const q = queued.shift();
      if (q !== undefined) return resolve(q);
      if (ended) return reject(new Error('the control channel closed'));
      waiting.push((l) => (l === null ? reject(new Error('the control channel closed')) : resolve(l)));
    }),
  };
}
