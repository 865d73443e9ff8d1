// What an SFTP session has going on with the host: the requests sent and not yet answered (each
// with what its answer means for the record), and the open handles. The host's answers are
// matched here: an open's HANDLE becomes a handle of the gateway's own, a read's DATA is
// digested, a CLOSE ends its open's command. An answer to nothing, or of a type its request
// cannot have, is a HostError: the session ends.
import type { FileOperation, GateAnswer } from './file-operation.ts';
import { FX, FXP, handlePacket, parseStatus, requestId, responseString } from './sftp-codec.ts';
import { OpenHandle, safeEnd, statusOutcome } from './sftp-handle.ts';

type End = Extract<GateAnswer, { allowed: true }>['end'];

export type Pending =
  /** The gateway's own request (the start directory, the host's limits): the answer goes to it, not to the client. */
  | { kind: 'own'; resolve: (frame: Buffer | null) => void }
  | { kind: 'open'; end: End; directory: boolean; mode: FileOperation['mode'] }
  | { kind: 'path'; end: End }
  | { kind: 'read'; h: OpenHandle; offset: number }
  | { kind: 'write' | 'close' | 'handle'; h: OpenHandle };

/** The host answered what the gateway cannot match: the session ends. */
export class HostError extends Error {}

export class InFlight {
  private readonly pending = new Map<number, Pending>();
  private readonly handles = new Map<string, OpenHandle>();
  private handleCount = 0;

  get size(): number {
    return this.pending.size;
  }

  waiting(id: number): boolean {
    return this.pending.has(id);
  }

  track(id: number, p: Pending): void {
    this.pending.set(id, p);
  }

  handle(own: Buffer): OpenHandle | undefined {
    return this.handles.get(own.toString('latin1'));
  }

  /** A CLOSE was sent: the handle is no longer the client's to use. */
  forget(h: OpenHandle): void {
    this.handles.delete(h.own.toString('latin1'));
  }

  /**
   * The host's answer to request `id`: what to send the client (the frame itself, or a HANDLE
   * naming the gateway's own handle), or null when the request was the gateway's.
   */
  answer(frame: Buffer): Buffer | null {
    const type = frame[4]!;
    const id = requestId(frame);
    if (id === null) throw new HostError('the host sent a packet too short to hold a request id');
    const p = this.pending.get(id);
    if (!p) throw new HostError(`the host answered request ${id}, which is not waiting (packet type ${type})`);
    this.pending.delete(id);
    switch (p.kind) {
      case 'own':
        p.resolve(frame);
        return null;
      case 'open':
        if (type === FXP.HANDLE) {
          const own = Buffer.alloc(4);
          own.writeUInt32BE(++this.handleCount >>> 0);
          this.handles.set(own.toString('latin1'), new OpenHandle(own, Buffer.from(responseString(frame)), p.directory, p.mode, p.end));
          return handlePacket(id, own);
        }
        if (type !== FXP.STATUS) throw new HostError(`the host answered an open with packet type ${type}`);
        safeEnd(p.end, statusOutcome(parseStatus(frame)));
        return frame;
      case 'path':
        safeEnd(p.end, type === FXP.STATUS ? statusOutcome(parseStatus(frame)) : { status: 'ok' });
        return frame;
      case 'read':
        if (type === FXP.DATA) p.h.read.add(p.offset, responseString(frame));
        else if (type === FXP.STATUS) p.h.noteStatus(parseStatus(frame));
        else throw new HostError(`the host answered a read with packet type ${type}`);
        return frame;
      case 'write':
        if (type !== FXP.STATUS) throw new HostError(`the host answered a write with packet type ${type}`);
        p.h.noteStatus(parseStatus(frame));
        return frame;
      case 'close':
        p.h.finish(type === FXP.STATUS ? parseStatus(frame) : { code: FX.FAILURE, message: `the host answered CLOSE with packet type ${type}` });
        return frame;
      case 'handle':
        return frame;
    }
  }

  /** The session ended: every command still open ends as an error saying so. */
  loseAll(why: string): void {
    for (const p of this.pending.values()) {
      if (p.kind === 'own') p.resolve(null);
      else if (p.kind === 'open' || p.kind === 'path') safeEnd(p.end, { status: 'error', error: { code: 'connection-lost', message: `${why} before the host answered` } });
      else p.h.finish({ lost: `${why} before CLOSE` });
    }
    this.pending.clear();
    for (const h of this.handles.values()) h.finish({ lost: `${why} before CLOSE` });
    this.handles.clear();
  }
}
