// One direction of a channel's output (stdout or stderr, host to client): relayed with
// backpressure (the host is paused while the client is slow, so memory stays flat), masked as
// the policy says (for the client, for the log, or both: streaming, so a secret cut across
// chunks is still found), and handed to the recorder: what the client got (for the digest) and
// what the log keeps (the masked text sample, or a terminal recording).
import { createHash, type Hash } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';
import type { Masker } from '../masking/engine.ts';
import { idleFlush, type MaskedChunk } from '../masking/stream-masker.ts';

/** An interactive stream's held-back tail is released after this long without output. */
export const IDLE_FLUSH_MS = 20;

export interface RelaySinks {
  /** Bytes as the client received them; without it the relay keeps its own count and digest. */
  sent?(bytes: Buffer): void;
  /** Bytes as the log may keep them (masked when masking applies to the log). */
  logged(bytes: Buffer): void;
  /** Values and detectors masking replaced. */
  masked(values: number, detectors: string[]): void;
}

export interface RelayTotals { bytes: number; sha256: string }

type Feed = { push(chunk: Buffer): void; end(): void };

export class OutputRelay {
  private readonly hash: Hash | null;
  private bytes = 0;
  readonly done: Promise<RelayTotals>;

  /** Relays src to dst until src ends or closes; dst is not ended (the exit status comes after). */
  constructor(src: Readable, dst: Writable, masker: Masker | null, sinks: RelaySinks) {
    this.hash = sinks.sent ? null : createHash('sha256');
    const note = (r: MaskedChunk): void => {
      if (r.values > 0 || r.detectors.length > 0) sinks.masked(r.values, r.detectors);
    };
    let waiting = false;
    const send = (bytes: Buffer): void => {
      if (bytes.length === 0) return;
      this.bytes += bytes.length;
      if (sinks.sent) sinks.sent(bytes);
      else this.hash!.update(bytes);
      // One drain listener at a time: chunks already read arrive after pause() too.
      if (!dst.write(bytes) && !waiting) {
        waiting = true;
        src.pause();
        dst.once('drain', () => {
          waiting = false;
          src.resume();
        });
      }
    };
    const log = (bytes: Buffer): void => {
      if (bytes.length > 0) sinks.logged(bytes);
    };
    let toClient: Feed;
    let toLog: Feed | null;
    const clientStream = masker?.applyTo.client ? masker.stream() : null;
    if (clientStream) {
      // One masking serves both when the log is masked too: the log keeps what the client saw.
      const shared = masker!.applyTo.log;
      toClient = idleFlush(clientStream, IDLE_FLUSH_MS, (r) => {
        note(r);
        send(r.bytes);
        if (shared) log(r.bytes);
      });
      toLog = shared ? null : { push: log, end: () => undefined };
    } else {
      toClient = { push: send, end: () => undefined };
      const logStream = masker?.applyTo.log ? masker.stream() : null;
      toLog = logStream ? idleFlush(logStream, IDLE_FLUSH_MS, (r) => {
        note(r);
        log(r.bytes);
      }) : { push: log, end: () => undefined };
    }
    this.done = new Promise((resolve) => {
      src.on('data', (chunk: Buffer) => {
        toClient.push(chunk);
        toLog?.push(chunk);
      });
      // A channel that closes without EOF (the host dropped) ends the output as well.
      let ended = false;
      const end = (): void => {
        if (ended) return;
        ended = true;
        toClient.end();
        toLog?.end();
        resolve({ bytes: this.bytes, sha256: this.hash ? this.hash.digest('hex') : '' });
      };
      src.once('end', end);
      src.once('close', end);
    });
  }
}

/** The first characters of a text stream, for the command's sample. */
export class TextSample {
  text = '';
  bytes = 0;
  private readonly max: number;
  constructor(max: number) {
    this.max = max;
  }
  add(b: Buffer): void {
    this.bytes += b.length;
    if (this.text.length < this.max) this.text += b.toString('utf8', 0, Math.min(b.length, this.max * 4)).slice(0, this.max - this.text.length);
  }
}
