// One recorded session per client connection (an HTTP/1.1 keep-alive connection, an HTTP/2
// session, a forward proxy's TLS tunnel): opened at its first request, closed when the
// connection closes, so every request of a connection is a command of one session.
import { CommandGate } from '../core/command-gate.ts';
import type { CoreServices } from '../core/adapter.ts';
import type { SessionRecorder } from '../core/recorder.ts';

export interface ClientSession { rec: SessionRecorder; gate: CommandGate }

interface Closable { once(event: 'close', cb: () => void): unknown }

export class ClientSessions {
  private readonly core: CoreServices;
  private readonly sessions = new WeakMap<object, ClientSession>();
  readonly open = new Set<ClientSession>();

  /** The adapter whose sessions these are (`http`, `kubernetes`): the log's protocol and the conditions' kind. */
  private readonly protocol: string;

  constructor(core: CoreServices, protocol = 'http') {
    this.core = core;
    this.protocol = protocol;
  }

  /**
   * The session of a connection (`key`: the socket or the HTTP/2 session), opened now if this is
   * its first request. Throws LogUnavailableError when the log cannot record it.
   */
  of(key: Closable, target: string, fields: Record<string, unknown>): ClientSession {
    const known = this.sessions.get(key);
    if (known) return known;
    const rec = this.core.recorder.openSession(target, this.protocol, fields);
    const s = { rec, gate: new CommandGate(this.core, rec, target, this.protocol) };
    this.sessions.set(key, s);
    this.open.add(s);
    key.once('close', () => this.close(s, 'client closed the connection'));
    return s;
  }

  close(s: ClientSession, reason: string): void {
    if (!this.open.delete(s)) return;
    try {
      s.rec.close(reason);
    } catch {
      // The log failed: nothing more can be recorded, and nothing more is forwarded.
    }
  }

  closeAll(reason: string): void {
    for (const s of [...this.open]) this.close(s, reason);
  }
}
