// What goes out of a session: client messages coalesced into as few slices of their chunk as
// possible, and pieces written with one system call.
import type { Socket } from 'node:net';
import type { FramedMessage } from './codec/framer.ts';

/**
 * Writes the pieces with one system call rather than one each (small pieces copied into one
 * buffer, which costs less than writev's bookkeeping); false when the socket buffered them.
 */
export function writeAll(socket: Socket, bufs: Buffer[]): boolean {
  if (bufs.length === 1) return socket.write(bufs[0]!);
  if (bufs.length === 0) return true;
  let total = 0;
  for (const b of bufs) total += b.length;
  if (total <= 16384) return socket.write(Buffer.concat(bufs, total));
  socket.cork();
  let ok = true;
  for (const b of bufs) ok = socket.write(b);
  socket.uncork();
  return ok;
}

/** Collects what goes upstream from one chunk, coalescing adjacent messages into one slice. */
export class Outbox {
  readonly chunk: Buffer | null;
  private readonly bufs: Buffer[] = [];
  private runStart = -1;
  private runEnd = -1;
  /** Some message in it is a new command whose record must be written first. */
  recorded = false;

  constructor(chunk: Buffer | null) {
    this.chunk = chunk;
  }

  message(m: FramedMessage, recorded: boolean): void {
    if (recorded) this.recorded = true;
    if (m.start >= 0 && m.start === this.runEnd) {
      this.runEnd = m.end;
      return;
    }
    this.endRun();
    if (m.start >= 0 && this.chunk) {
      this.runStart = m.start;
      this.runEnd = m.end;
    } else this.bufs.push(m.assembled!);
  }

  replace(bufs: Buffer[]): void {
    this.recorded = true;
    this.endRun();
    this.bufs.push(...bufs);
  }

  /** The message's own bytes. */
  raw(m: FramedMessage): Buffer {
    return m.start >= 0 ? this.chunk!.subarray(m.start, m.end) : m.assembled!;
  }

  take(): Buffer[] {
    this.endRun();
    return this.bufs.splice(0);
  }

  private endRun(): void {
    if (this.runStart < 0) return;
    const c = this.chunk!;
    this.bufs.push(this.runStart === 0 && this.runEnd === c.length ? c : c.subarray(this.runStart, this.runEnd));
    this.runStart = this.runEnd = -1;
  }
}

/** A message kept past its chunk: whole, as if assembled. */
export function detached(m: FramedMessage, chunk: Buffer): FramedMessage {
  return m.start >= 0 ? { type: m.type, body: m.body, start: -1, end: -1, assembled: chunk.subarray(m.start, m.end) } : m;
}
