// The daemon's side of confined commands (gateway/confine/): for each one, a Unix socket per
// loopback address the gateway listens on, in a directory only the daemon's user (and root) can
// enter, relaying to that address; the confined command's namespace reaches the gateway through
// them and nothing else. Each confined command is recorded (argv, user, working directory, start,
// end, exit status), and so is every connection it opens, with the local address the gateway's
// session sees as its client: that ties the sessions to the command that opened them.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { SessionLogWriter } from '../evidence/log-writer.ts';

export interface ConfinedOpen { argv: string[]; user: string; cwd: string }
export interface ConfinedBridge { host: string; port: number; socket: string }
export interface ConfinedEnd { exit: number | null; signal: string | null; error?: string }

interface Open { started: number; dir: string; servers: net.Server[]; connections: Set<net.Socket> }

export class ConfinedCommands {
  private readonly writer: SessionLogWriter;
  private readonly dir: string;
  /** The loopback addresses (`127.0.0.1:PORT`) the gateway's listeners serve. */
  private readonly addresses: () => string[];
  private readonly open = new Map<string, Open>();

  constructor(writer: SessionLogWriter, dir: string, addresses: () => string[]) {
    this.writer = writer;
    this.dir = dir;
    this.addresses = addresses;
  }

  async begin(req: ConfinedOpen): Promise<{ id: string; bridges: ConfinedBridge[] }> {
    if (!Array.isArray(req.argv) || req.argv.length === 0 || !req.argv.every((a) => typeof a === 'string')) throw new Error('a confined command needs its argv');
    const id = `c${randomBytes(4).toString('hex')}`;
    // Recorded before anything of the command exists: nothing it does precedes its record, and a
    // log that cannot take the record leaves nothing behind.
    this.writer.append('confined-start', { confined: id, argv: req.argv, user: String(req.user), cwd: String(req.cwd) });
    const dir = path.join(this.dir, `confined-${id}`);
    const entry: Open = { started: Date.now(), dir, servers: [], connections: new Set() };
    this.open.set(id, entry);
    const bridges: ConfinedBridge[] = [];
    try {
      fs.mkdirSync(dir, { mode: 0o700 });
      for (const address of this.addresses()) {
        const m = /^(127\.0\.0\.1|\[::1\]):(\d+)$/.exec(address);
        if (!m) continue;
        const host = m[1]!.replace(/^\[|\]$/g, '');
        const port = Number(m[2]);
        const socket = path.join(dir, `${port}.sock`);
        entry.servers.push(await this.serve(id, entry, socket, host, port));
        bridges.push({ host, port, socket });
      }
    } catch (e) {
      this.end(id, { exit: null, signal: null, error: `the bridges could not be set up: ${(e as Error).message}` });
      throw e;
    }
    // On disk before the command starts: a log that cannot take its record runs nothing (and
    // cannot take its end either: the bridges are closed, nothing more is recorded).
    const failure = this.writer.flushSync();
    if (failure) {
      this.release(id);
      throw failure;
    }
    return { id, bridges };
  }

  /**
   * Closes the command's bridges (connections still open are cut), then records its end. The
   * bridges close even when the end cannot be recorded (the log failed): then this throws.
   */
  end(id: string, how: ConfinedEnd): void {
    const entry = this.release(id);
    this.writer.append('confined-end', {
      confined: id,
      ...(how.exit !== null && how.exit !== undefined ? { exit_code: how.exit } : {}),
      ...(how.signal ? { signal: how.signal } : {}),
      ...(how.error ? { error: how.error } : {}),
      duration_ms: Date.now() - entry.started,
    });
    // On disk before the caller hears the command ended: once `exec` returns, its end is in the log.
    const failure = this.writer.flushSync();
    if (failure) throw failure;
  }

  /** The gateway stops: every command's bridges close, whether or not its end can be recorded. */
  closeAll(): void {
    for (const id of [...this.open.keys()]) {
      try {
        this.end(id, { exit: null, signal: null, error: 'the gateway stopped while the command ran' });
      } catch {
        // The log failed: the end cannot be recorded, and the run ends unsealed and says so.
      }
    }
  }

  /** Forgets the command and closes its bridges. */
  private release(id: string): Open {
    const entry = this.open.get(id);
    if (!entry) throw new Error(`no confined command ${id}`);
    this.open.delete(id);
    for (const s of entry.servers) s.close();
    for (const c of entry.connections) c.destroy();
    fs.rmSync(entry.dir, { recursive: true, force: true });
    return entry;
  }

  private serve(id: string, entry: Open, socket: string, host: string, port: number): Promise<net.Server> {
    const server = net.createServer({ pauseOnConnect: true }, (inner) => {
      entry.connections.add(inner);
      inner.once('close', () => entry.connections.delete(inner));
      inner.on('error', () => inner.destroy());
      const outer = net.connect({ host, port });
      entry.connections.add(outer);
      outer.once('close', () => entry.connections.delete(outer));
      outer.on('error', () => inner.destroy());
      inner.once('close', () => outer.destroy());
      outer.once('connect', () => {
        try {
          this.writer.append('confined-connection', { confined: id, listener: `${host}:${port}`, client: `${outer.localAddress}:${outer.localPort}` });
        } catch {
          // The log failed: the connection is not passed on.
          inner.destroy();
          return;
        }
        inner.pipe(outer);
        outer.pipe(inner);
        inner.resume();
      });
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(socket, () => {
        fs.chmodSync(socket, 0o600);
        resolve(server);
      });
    });
  }
}
