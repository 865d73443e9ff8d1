// Reads whole typed messages from a socket during the short login phases, where simplicity beats
// the zero-copy path used once a session is running. It holds at most what one read brings: while
// a message waits to be taken, the socket is paused, so a peer that streams cannot fill memory.
import type { Socket } from 'node:net';
import { MessageFramer, ProtocolError } from './codec/framer.ts';

export interface Message { type: number; body: Buffer }

export class MessageQueue {
  private readonly framer: MessageFramer;
  private readonly queue: Message[] = [];
  private waiter: { resolve: (m: Message) => void; reject: (e: Error) => void } | null = null;
  private error: Error | null = null;
  private readonly socket: Socket;
  private readonly onData = (chunk: Buffer): void => {
    // After an error nothing more is read into memory; the owner closes the socket.
    if (this.error) return;
    try {
      this.framer.push(chunk, (m) => this.deliver({ type: m.type, body: Buffer.from(m.body!) }));
    } catch (e) {
      this.fail(e as Error);
    }
  };
  private readonly onEnd = (): void => this.fail(new ProtocolError(`${this.peer} closed the connection`, '08006'));
  private readonly onError = (e: Error): void => this.fail(e);
  private readonly peer: string;

  /** maxBody: the largest message body accepted (PostgreSQL takes authentication messages up to 65535 bytes). */
  constructor(socket: Socket, peer: string, opts: { maxBody?: number } = {}) {
    this.socket = socket;
    this.peer = peer;
    this.framer = new MessageFramer({ collect: () => true, maxCollectedBody: opts.maxBody ?? 1 << 20, peer });
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
    socket.resume();
  }

  next(timeoutMs: number, what: string): Promise<Message> {
    const m = this.queue.shift();
    if (this.queue.length === 0 && !this.error && !this.socket.destroyed) this.socket.resume();
    if (m) return Promise.resolve(m);
    if (this.error) return Promise.reject(this.error);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new ProtocolError(`timed out after ${timeoutMs / 1000}s waiting for ${what} from ${this.peer}`, '08006'));
      }, timeoutMs);
      this.waiter = {
        resolve: (v) => (clearTimeout(timer), resolve(v)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      };
    });
  }

  /** Stops reading (the socket stays paused for its next owner); leftover data is an error. */
  detach(): void {
    this.socket.pause();
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
    this.socket.off('error', this.onError);
    if (this.queue.length > 0 || !this.framer.idle) {
      throw new ProtocolError(`${this.peer} sent unexpected data during startup`);
    }
  }

  private deliver(m: Message): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.resolve(m);
    } else {
      this.queue.push(m);
      this.socket.pause();
    }
  }

  private fail(e: Error): void {
    if (this.error) return;
    this.error = e;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.reject(e);
    }
  }
}
