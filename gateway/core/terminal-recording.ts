// A command's terminal I/O as `terminal` records: asciicast v2 events ([time, code, data]) in
// chunks, so a shell session of hours is neither held in memory nor written record by keystroke.
// What it is given is masked already (the adapter's stream masker runs first); it is written as
// given. Times are integer milliseconds since the recording started (asciicast counts seconds
// as a float: divide by 1000); the log holds no fractions, so every verifier reads it alike.
import { StringDecoder } from 'node:string_decoder';

/** `o` output to the client, `i` input from the client, `r` a resize (`COLSxROWS`). */
export type TerminalCode = 'o' | 'i' | 'r';
export type TerminalEvent = [ms: number, code: TerminalCode, data: string];

export interface RecordingOptions {
  /** A chunk is written once its events hold this many characters of data. */
  maxChars: number;
  /** ... or this long after its first event (what a crash can lose of an interactive session). */
  maxDelayMs: number;
}

export const DEFAULT_RECORDING: RecordingOptions = { maxChars: 16 * 1024, maxDelayMs: 500 };

/** What the result record says of the recording: how much there is and how long it ran. */
export interface RecordingSummary { chunks: number; events: number; duration_ms: number }

export class TerminalRecording {
  private readonly write: (fields: Record<string, unknown>) => void;
  private readonly options: RecordingOptions;
  private readonly started = process.hrtime.bigint();
  private readonly size: { width: number; height: number };
  // Each direction has its own decoder: a UTF-8 sequence cut between two reads stays whole.
  private readonly decoders = { o: new StringDecoder('utf8'), i: new StringDecoder('utf8') };
  private events: TerminalEvent[] = [];
  private chars = 0;
  private chunks = 0;
  private total = 0;
  private lastMs = 0;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(write: (fields: Record<string, unknown>) => void, size: { width: number; height: number }, options: Partial<RecordingOptions> = {}) {
    this.write = write;
    this.size = { width: size.width, height: size.height };
    this.options = { ...DEFAULT_RECORDING, ...options };
  }

  output(data: Buffer | string): void {
    this.add('o', typeof data === 'string' ? data : this.decoders.o.write(data));
  }

  input(data: Buffer | string): void {
    this.add('i', typeof data === 'string' ? data : this.decoders.i.write(data));
  }

  resize(width: number, height: number): void {
    this.add('r', `${width}x${height}`);
  }

  /** Writes what is pending as a chunk now. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.events.length === 0 && this.chunks > 0) return;
    const first = this.chunks === 0 ? { width: this.size.width, height: this.size.height } : {};
    this.write({ chunk: this.chunks++, ...first, events: this.events });
    this.events = [];
    this.chars = 0;
  }

  /** Ends the recording: what the decoders still hold, then the last chunk. */
  close(): void {
    if (this.closed) return;
    const o = this.decoders.o.end();
    const i = this.decoders.i.end();
    if (o) this.add('o', o);
    if (i) this.add('i', i);
    this.closed = true;
    this.flush();
  }

  summary(): RecordingSummary {
    return { chunks: this.chunks, events: this.total, duration_ms: this.lastMs };
  }

  private add(code: TerminalCode, data: string): void {
    if (this.closed || data === '') return;
    const ms = Number((process.hrtime.bigint() - this.started) / 1_000_000n);
    this.lastMs = ms;
    this.events.push([ms, code, data]);
    this.total++;
    this.chars += data.length;
    if (this.chars >= this.options.maxChars) this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), this.options.maxDelayMs);
      this.timer.unref();
    }
  }
}

