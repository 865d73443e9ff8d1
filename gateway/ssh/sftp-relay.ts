// The SFTP subsystem, terminated by the gateway and relayed request by request to the host's
// sftp-server. Every request that names a path passes the FileGate first (one command each);
// READ, WRITE, FSTAT, FSETSTAT, READDIR, CLOSE and the handle extensions act on an open handle
// and belong to that open's command, whose outcome at CLOSE carries the bytes and their SHA-256.
// A refused request is answered PERMISSION_DENIED with the reason and never reaches the host.
// Handles are the gateway's own: the client can only name what an allowed open returned.
//
// Requests are taken in the order they came: one waiting for the gate (or an approval) holds
// the ones behind it, as a single-threaded server would. Requests that need no decision go on
// at once, so pipelined reads and writes stay pipelined. Memory is bounded by construction: the
// client is paused (its SSH window stops) while requests wait beyond QUEUE_HIGH bytes, the host
// is sent no more than MAX_IN_FLIGHT unanswered requests and nothing while its channel pushes
// back, and the host is paused while the client's channel pushes back.
//
// Both sides are plain byte streams (ssh2 `subsystem` channels: the server side accepted with a
// `subsystem` listener, not `sftp`, and `client.subsys('sftp')` upstream), so the relay reads
// every byte itself: paths stay exact bytes, unknown packets and extensions are refused here.
import { passHostExit } from './exit-status.ts';
import type { Duplex } from 'node:stream';
import type { FileGate, FileOperation, GateAnswer } from './file-operation.ts';
import { FX, FXP, SftpFramer, limitsReplyPacket, requestId, statusPacket, versionPacket, withHandle, type HandleRef, type Limits } from './sftp-codec.ts';
import { safeEnd } from './sftp-handle.ts';
import { openHostSession } from './sftp-handshake.ts';
import { HostError, InFlight } from './sftp-in-flight.ts';
import type { Description } from './sftp-operations.ts';
import { Outbox } from './sftp-outbox.ts';
import { requestText, routeRequest, type HandleAction, type HandleUse } from './sftp-route.ts';

/** OpenSSH's sftp-server refuses longer packets; a client sending one is not a client it could serve. */
export const CLIENT_MAX_PACKET = 256 * 1024;
/** Answers may be a little larger than OpenSSH's (another server, a larger read). */
export const HOST_MAX_PACKET = 1024 * 1024;
const QUEUE_HIGH = 1024 * 1024;
const QUEUE_LOW = 256 * 1024;
const MAX_IN_FLIGHT = 1024;

export interface SftpRelayOptions {
  /** Where relative paths start if the host does not answer the gateway's REALPATH "." (normally the login's home). */
  home?: string;
}

export interface SftpRelayEnd {
  /** Who ended the session: the client (EOF or gone), the host (its sftp-server ended), or the gateway (a protocol error). */
  by: 'client' | 'host' | 'gateway';
  /** Why the gateway ended it. */
  error?: string;
}

/** ssh2's server channel can pass an exit status on; a plain stream cannot. */
type ClientStream = Duplex & { exit?: (...args: never[]) => unknown };

/**
 * Relays one SFTP session. `done` resolves once the session is over and the client's channel
 * has been ended (the host's exit status passed on first when the client stream can take it).
 */
export function relaySftp(client: Duplex, upstream: Duplex, gate: FileGate, opts: SftpRelayOptions = {}): { done: Promise<SftpRelayEnd> } {
  const relay = new SftpRelay(client as ClientStream, upstream, gate, opts);
  return { done: relay.done };
}

class SftpRelay {
  readonly done: Promise<SftpRelayEnd>;
  private readonly client: ClientStream;
  private readonly upstream: Duplex;
  private readonly gate: FileGate;
  private readonly opts: SftpRelayOptions;
  private readonly fromClient = new SftpFramer(CLIENT_MAX_PACKET);
  private readonly fromHost = new SftpFramer(HOST_MAX_PACKET);
  private readonly abort = new AbortController();
  private phase: 'init' | 'handshake' | 'open' | 'ended' = 'init';
  private ending: SftpRelayEnd | null = null;
  private resolveDone!: (end: SftpRelayEnd) => void;
  private clientEnded = false;
  /** The client sent EOF: what it asked is still answered, then the session ends. */
  private clientEof = false;
  private hostExit: unknown[] | null = null;
  // Client requests in arrival order (a deque: head index, compacted now and then).
  private queue: Buffer[] = [];
  private head = 0;
  private queuedBytes = 0;
  private pumping = false;
  private clientPaused = false;
  private hostBlocked = false;
  private hostPaused = false;
  private readonly inFlight = new InFlight();
  private readonly toHostBox: Outbox;
  private readonly toClientBox: Outbox;
  private versionWaiter: ((frame: Buffer | null) => void) | null = null;
  private advertised = new Set<string>();
  /** What the gateway answers to limits@openssh.com (when the host offers it). */
  private limits: Limits | null = null;
  /** The sftp-server's start directory: relative paths resolve against it. */
  private start: string | null = null;

  constructor(client: ClientStream, upstream: Duplex, gate: FileGate, opts: SftpRelayOptions) {
    this.client = client;
    this.upstream = upstream;
    this.gate = gate;
    this.opts = opts;
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    this.toHostBox = new Outbox(upstream, () => (this.hostBlocked = true));
    this.toClientBox = new Outbox(client, () => {
      if (!this.hostPaused) {
        this.hostPaused = true;
        this.upstream.pause();
      }
    });

    client.on('data', (chunk: Buffer) => this.onClientData(chunk));
    client.on('end', () => {
      this.clientEof = true;
      this.endIfAnswered();
    });
    client.on('close', () => {
      this.clientEnded = true;
      this.shutdown({ by: 'client' });
      this.endClient();
    });
    client.on('error', () => this.shutdown({ by: 'client' }));
    client.on('drain', () => {
      if (this.hostPaused) {
        this.hostPaused = false;
        this.upstream.resume();
      }
    });

    upstream.on('data', (chunk: Buffer) => this.onHostData(chunk));
    upstream.on('exit', (...args: unknown[]) => (this.hostExit = args));
    upstream.on('end', () => this.shutdown({ by: 'host' }));
    upstream.on('close', () => {
      this.shutdown({ by: 'host' });
      this.endClient();
    });
    upstream.on('error', () => {
      this.shutdown({ by: 'host' });
      this.endClient();
    });
    upstream.on('drain', () => {
      this.hostBlocked = false;
      void this.pump();
    });
  }

  // ---- client -> host ---------------------------------------------------------------------

  private onClientData(chunk: Buffer): void {
    if (this.phase === 'ended') return;
    try {
      this.fromClient.push(chunk, (frame) => {
        this.queue.push(frame);
        this.queuedBytes += frame.length;
      });
    } catch (e) {
      this.fail(`the client sent a byte stream that is not SFTP: ${(e as Error).message}`);
      return;
    }
    this.flow();
    void this.pump();
  }

  private dequeue(): Buffer {
    const frame = this.queue[this.head]!;
    this.queue[this.head++] = undefined as unknown as Buffer;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    this.queuedBytes -= frame.length;
    return frame;
  }

  /** Pauses the client while too much waits; resumes it once the queue has drained enough. */
  private flow(): void {
    if (this.phase === 'ended') return;
    if (!this.clientPaused && this.queuedBytes >= QUEUE_HIGH) {
      this.clientPaused = true;
      this.client.pause();
    } else if (this.clientPaused && this.queuedBytes <= QUEUE_LOW) {
      this.clientPaused = false;
      this.client.resume();
    }
  }

  private canForward(): boolean {
    return this.phase !== 'ended' && this.head < this.queue.length && !this.hostBlocked && this.inFlight.size < MAX_IN_FLIGHT;
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.canForward()) {
        const waiting = this.onClientFrame(this.dequeue());
        if (waiting) await waiting;
        this.flow();
      }
    } catch (e) {
      if (e instanceof HostError) this.fail(e.message);
      else this.fail(`internal error: ${(e as Error).message}`);
    } finally {
      this.pumping = false;
    }
    this.flow();
    this.endIfAnswered();
  }

  /** After the client's EOF, the session ends once every request it sent has its answer. */
  private endIfAnswered(): void {
    if (this.clientEof && !this.pumping && this.head >= this.queue.length && this.inFlight.size === 0) this.shutdown({ by: 'client' });
  }

  private onClientFrame(frame: Buffer): Promise<void> | void {
    const type = frame[4]!;
    if (this.phase === 'init') {
      if (type !== FXP.INIT) return this.fail(`the client's first packet is type ${type}, not INIT`);
      return this.handshake(frame);
    }
    if (type === FXP.INIT) return this.fail('the client sent INIT twice');
    const id = requestId(frame);
    if (id === null) return this.fail('the client sent a request too short to hold its id');
    if (this.inFlight.waiting(id)) return this.fail(`the client reused request id ${id} before the host answered it`);
    const r = routeRequest(frame, this.start, this.advertised);
    switch (r.route) {
      case 'answer':
        return this.refuseHere(frame, id, r.code, r.message);
      case 'limits':
        return this.toClient(limitsReplyPacket(id, this.limits!));
      case 'handle':
        return this.onHandle(frame, id, r.ref, r.use, r.action);
      case 'gate':
        return this.gated(frame, id, r.description, r.opens);
    }
  }

  /** A request naming paths: the gate decides, then it goes to the host as the client sent it. */
  private gated(frame: Buffer, id: number, d: Description, opens: 'open' | 'opendir' | null): Promise<void> | void {
    if ('refuse' in d) return this.refuseHere(frame, id, d.refuse.code, d.refuse.message);
    const op: FileOperation = { ...d.operation, forwarded: [frame] };
    return this.begin(op).then((answer) => {
      if (!answer.allowed) return this.answer(id, FX.PERMISSION_DENIED, answer.reason);
      if (this.phase === 'ended') {
        safeEnd(answer.end, { status: 'error', error: { code: 'connection-lost', message: 'the session ended before the operation reached the host' } });
        return;
      }
      this.inFlight.track(id, opens ? { kind: 'open', end: answer.end, directory: opens === 'opendir', mode: op.mode } : { kind: 'path', end: answer.end });
      this.toHost(frame);
    });
  }

  private async begin(op: FileOperation): Promise<GateAnswer> {
    try {
      return await this.gate.begin(op, this.abort.signal);
    } catch (e) {
      return { allowed: false, reason: `the gateway could not decide: ${(e as Error).message}` };
    }
  }

  /**
   * A request on an open handle: swapped to the host's handle and sent on, under the open's
   * command. What the open was decided for bounds it: a file opened for read is not written to
   * nor has its attributes changed through the handle (the host would allow the latter).
   */
  private onHandle(frame: Buffer, id: number, ref: HandleRef, wants: HandleUse, action: HandleAction): void {
    const h = this.inFlight.handle(ref.handle);
    if (!h) return this.refuseHere(frame, id, FX.FAILURE, 'no such handle');
    if (wants === 'directory') {
      if (!h.directory) return this.refuseHere(frame, id, FX.FAILURE, 'the handle is not a directory');
    } else if (wants !== 'any' && h.directory) return this.refuseHere(frame, id, FX.FAILURE, 'the handle is a directory');
    if (wants === 'reading' && h.mode === 'write') return this.refuseHere(frame, id, FX.PERMISSION_DENIED, 'the file was opened for write only');
    if (wants === 'writing' && h.mode === 'read') return this.refuseHere(frame, id, FX.PERMISSION_DENIED, 'the file was opened for read only: writing or changing it needs an open for write');
    switch (action.kind) {
      case 'read':
        this.inFlight.track(id, { kind: 'read', h, offset: action.offset });
        break;
      case 'write':
        // Hashed as relayed: a write the host then refuses makes the outcome an error.
        h.written.add(action.offset, action.data);
        this.inFlight.track(id, { kind: 'write', h });
        break;
      case 'close':
        this.inFlight.forget(h);
        this.inFlight.track(id, { kind: 'close', h });
        break;
      case 'handle':
        this.inFlight.track(id, { kind: 'handle', h });
        break;
    }
    this.toHost(withHandle(frame, ref, h.host));
  }

  private answer(id: number, code: number, message: string): void {
    this.toClient(statusPacket(id, code, message));
  }

  /** A request the gateway answers itself, before any decision: answered, and told to the gate for the record. */
  private refuseHere(frame: Buffer, id: number, code: number, message: string): void {
    this.answer(id, code, message);
    try {
      this.gate.refusedHere?.(requestText(frame), message);
    } catch {
      // The record is the session's to keep; its failure does not change the answer.
    }
  }

  private toHost(frame: Buffer): void {
    this.toHostBox.add(frame);
  }

  // ---- handshake --------------------------------------------------------------------------

  /** The client's INIT: answered once the host's session is open (sftp-handshake.ts). */
  private async handshake(init: Buffer): Promise<void> {
    this.phase = 'handshake';
    let host;
    try {
      host = await openHostSession(init, {
        hello: (frame) =>
          new Promise((resolve) => {
            this.versionWaiter = resolve;
            this.toHost(frame);
            this.toHostBox.flush();
          }),
        ask: (id, frame) => {
          const answer = this.ask(id, frame);
          this.toHostBox.flush();
          return answer;
        },
      }, { clientMaxPacket: CLIENT_MAX_PACKET, hostMaxPacket: HOST_MAX_PACKET, home: this.opts.home });
    } catch (e) {
      return this.fail((e as Error).message);
    }
    if (!host || this.ending) return;
    this.start = host.start;
    this.limits = host.limits;
    this.advertised = new Set(host.extensions.map(([n]) => n));
    this.phase = 'open';
    this.toClient(versionPacket(3, host.extensions));
    this.toClientBox.flush();
  }

  private ask(id: number, frame: Buffer): Promise<Buffer | null> {
    return new Promise((resolve) => {
      this.inFlight.track(id, { kind: 'own', resolve });
      this.toHost(frame);
    });
  }

  // ---- host -> client ---------------------------------------------------------------------

  private onHostData(chunk: Buffer): void {
    if (this.phase === 'ended') return;
    try {
      this.fromHost.push(chunk, (frame) => this.onHostFrame(frame));
    } catch (e) {
      this.fail(`the host sent what the gateway cannot relay: ${(e as Error).message}`);
      return;
    }
    if (this.head < this.queue.length) void this.pump();
    else this.endIfAnswered();
  }

  private onHostFrame(frame: Buffer): void {
    if (this.phase === 'ended') return;
    if (this.versionWaiter) {
      const w = this.versionWaiter;
      this.versionWaiter = null;
      return w(frame);
    }
    const toClient = this.inFlight.answer(frame);
    if (toClient) this.toClient(toClient);
  }

  private toClient(frame: Buffer): void {
    if (this.phase === 'ended' && this.clientEnded) return;
    this.toClientBox.add(frame);
  }

  // ---- the end ------------------------------------------------------------------------------

  private fail(message: string): void {
    this.shutdown({ by: 'gateway', error: message });
    this.endClient();
  }

  /**
   * Ends every command still open (its outcome says the session ended first), and tells the host
   * the session is over. Idempotent: the first reason is the one reported.
   */
  private shutdown(why: SftpRelayEnd): void {
    if (this.ending) return;
    this.ending = why;
    this.phase = 'ended';
    this.abort.abort();
    const lost = why.by === 'client' ? 'the client ended the session' : why.by === 'host' ? 'the host ended the session' : `the gateway ended the session: ${why.error}`;
    this.inFlight.loseAll(lost);
    this.versionWaiter?.(null);
    this.versionWaiter = null;
    this.queue = [];
    this.head = 0;
    this.queuedBytes = 0;
    // Whatever the client still sends is read and dropped, so its channel can close.
    if (this.clientPaused) this.client.resume();
    if (this.hostPaused) this.upstream.resume();
    this.toHostBox.drop();
    this.upstream.end();
  }

  /** Ends the client's channel once: the host's exit status first, when there is one to pass on. */
  private endClient(): void {
    if (!this.ending) return;
    if (!this.clientEnded) {
      this.clientEnded = true;
      // Answers the client is owed go first (requests waiting for the host do not: they are lost).
      this.toClientBox.flush();
      passHostExit(this.client, this.hostExit);
      this.client.end();
    }
    this.resolveDone(this.ending);
  }
}
