// Declared egress, as the forward proxy serves it: a CONNECT to a host no target names comes
// here. Each one is a session of its own (target `(egress)`, protocol `egress`) with one command,
// `egress.connect` `CONNECT host:port`, decided by the policy's `egress:` list alone (rule
// `egress`): declared, it is recorded, written to the log, and only then dialled and tunnelled
// unread (tunnel.ts); undeclared, it is recorded as denied and refused, so attempts show in the
// log too. A plain-HTTP request (absolute-form) to such a host is recorded and refused whether
// declared or not: egress is relayed as the client's own TLS only, never as clear text the
// gateway would forward. Names are resolved here, outside any confinement (addresses.ts).
import net from 'node:net';
import type { CommandRecorder, Recorder, SessionRecorder } from '../core/recorder.ts';
import { decisionRecord, type Decision } from '../policy/engine.ts';
import { describeEgress, matchEgress, type EgressEntry } from './allow-list.ts';
import { resolveName, systemLookup, type Lookup } from './addresses.ts';
import { EgressTunnel } from './tunnel.ts';

/** The session target of egress connections: not a target name (those never hold parentheses). */
export const EGRESS_TARGET = '(egress)';
/** The rule egress decisions are recorded under. */
export const EGRESS_RULE = 'egress';

/** A CONNECT (or plain request) no target serves. `host` is canonical (proxy-authority.ts). */
export interface EgressRequest {
  host: string;
  port: number;
  /** The client's address and port, as sessions record it. */
  client: string;
  /** The authorities the gateway's targets serve, named in a refusal. */
  targets: readonly string[];
}

export interface EgressRefusal {
  status: number;
  /** The response body's line. */
  message: string;
  /** A short status-line reason (clients that show only the status line of a failed CONNECT). */
  reason: string;
}

export type EgressAnswer = { tunnel: EgressTunnel } | { refused: EgressRefusal };

export interface EgressOptions {
  /** How names resolve (the system resolver). */
  lookup?: Lookup;
  /** How long dialling one address may take. */
  connectTimeoutMs?: number;
}

const CONNECT_TIMEOUT_MS = 30_000;

const authority = (host: string, port: number): string => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);

export class Egress {
  readonly entries: readonly EgressEntry[];
  readonly #recorder: Recorder;
  readonly #lookup: Lookup;
  readonly #connectTimeoutMs: number;
  readonly #open = new Set<EgressTunnel>();

  constructor(entries: readonly EgressEntry[], recorder: Recorder, options: EgressOptions = {}) {
    this.entries = entries;
    this.#recorder = recorder;
    this.#lookup = options.lookup ?? systemLookup;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
  }

  /** Whether the policy declares any egress (the forward proxy then also takes plain HTTP, to refuse it). */
  get declared(): boolean {
    return this.entries.length > 0;
  }

  /**
   * A CONNECT to host:port: a tunnel already dialled (the caller answers 200, then relays), or a
   * refusal to write. Either way it is in the log before the answer.
   */
  async connect(req: EgressRequest): Promise<EgressAnswer> {
    const auth = authority(req.host, req.port);
    const text = `CONNECT ${auth}`;
    const details: Record<string, unknown> = { host: req.host, port: req.port };
    const m = matchEgress(this.entries, req.host, req.port);
    if (!m.declared) {
      const why = m.hostDeclared
        ? `${req.host} is declared egress on port${m.hostDeclared.length > 1 ? 's' : ''} ${m.hostDeclared.join(', ')} only`
        : `${auth} is not declared egress (${net.isIP(req.host) ? 'an IP address is reached only when an entry names it; ' : ''}declared: ${describeEgress(this.entries)})`;
      return this.#deny(req, 'egress.connect', text, details, why, 'is not declared egress or a gateway target');
    }
    details.entry = m.entry.host;
    let addresses = [req.host];
    if (m.entry.match.kind !== 'ip') {
      const r = await resolveName(req.host, this.#lookup);
      if ('refused' in r) return this.#deny(req, 'egress.connect', text, details, r.refused, 'resolves to an address a name never leads to');
      if ('error' in r) return this.#fail(req, text, details, 'dns', r.error, 502);
      addresses = r.addresses;
      details.addresses = addresses;
    }
    const opened = this.#begin(req, 'egress.connect', text, details, { action: 'allow', rule: EGRESS_RULE, reason: `declared egress ${m.entry.host}`, matched: [] });
    if ('refused' in opened) return opened;
    const { session, cmd } = opened;
    const failure = await new Promise<Error | null>((resolve) => this.#recorder.writer.whenWritten((e) => resolve(e)));
    if (failure) {
      session.close('the session log cannot be written');
      return { refused: logRefusal(failure) };
    }
    const errors: string[] = [];
    for (const address of addresses) {
      try {
        const socket = await dial(address, req.port, this.#connectTimeoutMs);
        const tunnel = new EgressTunnel(socket, address, cmd, session, (t) => this.#open.delete(t));
        this.#open.add(tunnel);
        return { tunnel };
      } catch (e) {
        errors.push(`${address}: ${(e as Error).message}`);
      }
    }
    const message = `${auth} could not be reached (${errors.join('; ')})`;
    cmd.finish({ status: 'error', error: { code: 'upstream', message } });
    session.close('the host could not be reached');
    return { refused: { status: 502, message: `gateway: ${message}`, reason: 'Bad Gateway' } };
  }

  /** A plain absolute-form request to host:port no target serves: recorded, then refused. */
  async refusePlain(req: EgressRequest & { method: string }): Promise<EgressRefusal> {
    const origin = `http://${authority(req.host, req.port)}`;
    const m = matchEgress(this.entries, req.host, req.port);
    const why = m.declared
      ? `plain http:// is not relayed as egress (the gateway relays the client's own TLS only); use https:// to ${req.host}`
      : `${authority(req.host, req.port)} is not declared egress (declared: ${describeEgress(this.entries)}), and plain http:// is never relayed as egress`;
    // The path and query are not recorded: a refused request's URL may carry what it tried to send.
    const answer = await this.#deny(req, 'egress.http', `${req.method} ${origin}`, { host: req.host, port: req.port, method: req.method }, why, 'plain http egress is not relayed');
    return answer.refused;
  }

  /** Ends every open tunnel (the gateway stops: a tunnel's bytes have no boundary to wait for). */
  closeAll(reason: string): void {
    for (const t of [...this.#open]) t.close(reason);
  }

  #begin(req: EgressRequest, kind: string, text: string, details: Record<string, unknown>, d: Decision): { session: SessionRecorder; cmd: CommandRecorder } | { refused: EgressRefusal } {
    let session: SessionRecorder;
    try {
      session = this.#recorder.openSession(EGRESS_TARGET, 'egress', { client: req.client, via: 'forward-proxy' });
    } catch (e) {
      return { refused: logRefusal(e as Error) };
    }
    try {
      return { session, cmd: session.beginCommand({ kind, text, details, decision: decisionRecord(d) }) };
    } catch (e) {
      session.close('the session log cannot be written');
      return { refused: logRefusal(e as Error) };
    }
  }

  async #deny(req: EgressRequest, kind: string, text: string, details: Record<string, unknown>, why: string, short: string): Promise<{ refused: EgressRefusal }> {
    const d: Decision = { action: 'deny', rule: EGRESS_RULE, reason: why, matched: [] };
    const opened = this.#begin(req, kind, text, details, d);
    if ('refused' in opened) return opened;
    opened.cmd.finish({ status: 'denied', rule: EGRESS_RULE, reason: why });
    opened.session.close('refused');
    const failure = await new Promise<Error | null>((resolve) => this.#recorder.writer.whenWritten((e) => resolve(e)));
    if (failure) return { refused: logRefusal(failure) };
    const targets = req.targets.length ? req.targets.join(', ') : 'none';
    return {
      refused: {
        status: 403,
        message: `gateway: denied by rule "${EGRESS_RULE}": ${why}; it is not a target of this gateway either (targets: ${targets}); nothing was sent`,
        reason: `Forbidden: ${authority(req.host, req.port)} ${short}`,
      },
    };
  }

  /** A declared connection that failed before it was dialled (its name does not resolve). */
  #fail(req: EgressRequest, text: string, details: Record<string, unknown>, code: string, message: string, status: number): EgressAnswer {
    const opened = this.#begin(req, 'egress.connect', text, details, { action: 'allow', rule: EGRESS_RULE, reason: 'declared egress', matched: [] });
    if ('refused' in opened) return opened;
    opened.cmd.finish({ status: 'error', error: { code, message } });
    opened.session.close('the host could not be reached');
    return { refused: { status, message: `gateway: ${message}`, reason: 'Bad Gateway' } };
  }
}

function logRefusal(e: Error): EgressRefusal {
  return { status: 503, message: `gateway: the session log cannot be written (${e.message}); nothing was sent`, reason: 'Service Unavailable' };
}

/** A TCP connection to address:port, or the reason it could not be made within timeoutMs. */
function dial(address: string, port: number, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: address, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within ${timeoutMs / 1000}s`));
    }, timeoutMs);
    const failed = (e: NodeJS.ErrnoException): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(new Error(e.code ?? e.message));
    };
    socket.once('error', failed);
    socket.once('connect', () => {
      clearTimeout(timer);
      // The tunnel listens for errors from here on (it is made before any can be emitted).
      socket.off('error', failed);
      resolve(socket);
    });
  });
}
