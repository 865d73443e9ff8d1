// The legacy scp protocol (`scp -O`: the remote runs `scp -t` to receive or `scp -f` to send),
// read from both directions as OpenSSH's own source and sink read it. Pure: bytes in, what to
// forward and what happened out; no streams.
//
// The source sends lines (T times, C file, D directory, E end of directory, \x01/\x02 its own
// errors), each file's bytes after its C line, then \0 (or an error line); the sink answers each
// line and each file with one response: \0, or \x01 message (an error: the source skips that
// file or directory) or \x02 message (fatal). Whether a file's bytes follow its C line depends
// on the sink's answer, so the source's bytes cannot be read without the sink's: a reader that
// saw only one direction would take the next header for file data after a refused open, and let
// everything after it pass unread. Here the source's bytes wait while the source itself would
// wait for an answer, and each answer is taken in order, as the source takes it.
//
// The sink's answers reach the source when the source takes them (it reads only while it waits),
// so an answer injected by the gateway can never be taken in place of another.
//
// Each C and D header is announced (an `entry` event) before its bytes go anywhere; the caller
// then calls allow() (the header goes on to the sink) or refuse() (the source gets the refusal
// as the sink's answer and skips that entry; the sink never hears of it). A T line (times for
// the next entry) is answered by the gateway and sent on with its header, so a refused entry's
// times never reach the sink (it would give them to the next file). Anything that is not the
// protocol as OpenSSH's sink accepts it is a ScpProtocolError, never a guess.
import { createHash, type Hash } from 'node:crypto';
import { ScpProtocolError, parseHeader, parseTimes, type ScpEntry, type ScpTimes } from './scp-lines.ts';

export { ScpProtocolError, type ScpEntry, type ScpTimes } from './scp-lines.ts';

/** OpenSSH reads a line into 2048 bytes: up to 2047 with the newline. A longer one it would cut, and read the rest as something else. */
export const MAX_LINE = 2047;
/** Bytes a source may send ahead of an answer it must wait for, before that is a protocol error. */
export const MAX_AHEAD = 1024 * 1024;
/** Answers a sink may send before the source asks for them (OpenSSH sends none ahead). */
export const MAX_ANSWERS_AHEAD = 16;

export type ScpEvent =
  /** A header: call allow() or refuse() before anything else. `forwarded`: what allow() sends the sink (the T line, the header). */
  | { type: 'entry'; entry: ScpEntry; forwarded: Buffer[] }
  /**
   * An entry that was allowed is over: a file once the sink answered its bytes, a directory once
   * the sink answered its E (or refused the header). `error` is the source's or the sink's error line.
   */
  | { type: 'entry-end'; entry: ScpEntry; bytes: number; sha256?: string; error?: string }
  /** The source's own error line between entries (a file it could not read), passed on to the sink. */
  | { type: 'source-error'; message: string; fatal: boolean };

export type ScpOut = { toSink: Buffer } | { toSource: Buffer } | { event: ScpEvent };

type Response = { raw: Buffer } & ({ ok: true } | { ok: false; fatal: boolean; message: string });

type Waiting =
  | { for: 'start' }
  /** `times`: the held T line went first; its answer (always \0 from a sink that did not exit) is not the source's. */
  | { for: 'header'; entry: ScpEntry; times: boolean }
  | { for: 'file-done'; entry: ScpEntry; sourceError?: string }
  | { for: 'end-of-directory' };

const lenient = new TextDecoder('utf-8');

/** One scp transfer seen from the middle. */
export class ScpTransfer {
  private readonly recursive: boolean;
  /** What the source is doing: reading a line, sending a file's bytes, its trailer, or waiting for an answer. */
  private state: 'line' | 'data' | 'trailer' | 'waiting' | 'deciding' | 'over' = 'waiting';
  private waiting: Waiting | null = { for: 'start' };
  private line: Buffer[] = [];
  private lineLength = 0;
  /** The trailer after a file's bytes is an error line being read. */
  private trailerLine = false;
  private remaining = 0;
  private file: { entry: ScpEntry; hash: Hash; bytes: number } | null = null;
  /** A T line answered by the gateway, held for the header that must follow it. */
  private times: { times: ScpTimes; line: Buffer } | undefined;
  private readonly directories: ScpEntry[] = [];
  /** Source bytes held while the source should be waiting. */
  private ahead: Buffer[] = [];
  private aheadBytes = 0;
  /** Answers from the sink not yet taken by the source, and the one being read. */
  private readonly answers: Response[] = [];
  private answerLine: Buffer[] | null = null;
  private answerLength = 0;
  private deciding: { entry: ScpEntry; header: Buffer; times: Buffer | null } | null = null;

  constructor(opts: { recursive: boolean }) {
    this.recursive = opts.recursive;
  }

  /** The directories entered and not yet left (and a file under way): what a channel that ends now leaves unfinished. */
  unfinished(): ScpEntry[] {
    return [...this.directories, ...(this.file ? [this.file.entry] : [])];
  }

  /** The transfer is between entries with nothing held back (a channel ending now ends it cleanly). */
  get atRest(): boolean {
    return (this.state === 'line' || this.state === 'waiting' || this.state === 'over') && this.lineLength === 0 && this.file === null && this.directories.length === 0 && !this.times && this.aheadBytes === 0;
  }

  fromSource(chunk: Buffer): ScpOut[] {
    const out: ScpOut[] = [];
    this.source(chunk, out);
    return out;
  }

  fromSink(chunk: Buffer): ScpOut[] {
    const out: ScpOut[] = [];
    for (let p = 0; p < chunk.length; ) {
      if (this.answers.length > MAX_ANSWERS_AHEAD) throw new ScpProtocolError(`the receiving side sent more than ${MAX_ANSWERS_AHEAD} answers nobody asked for`);
      if (this.answerLine === null) {
        const b = chunk[p]!;
        if (b === 0) {
          this.answers.push({ ok: true, raw: chunk.subarray(p, p + 1) });
          p++;
          continue;
        }
        // \x01 is an error, \x02 fatal; OpenSSH's source reads any other byte as the start of a fatal error line.
        this.answerLine = [];
        this.answerLength = 0;
      }
      const nl = chunk.indexOf(0x0a, p);
      const end = nl === -1 ? chunk.length : nl + 1;
      this.answerLine.push(chunk.subarray(p, end));
      this.answerLength += end - p;
      p = end;
      if (this.answerLength > MAX_LINE) throw new ScpProtocolError(`the receiving side sent an error line longer than ${MAX_LINE} bytes`);
      if (nl !== -1) {
        const line = Buffer.concat(this.answerLine);
        this.answerLine = null;
        this.answers.push({ ok: false, fatal: line[0] !== 1, message: lenient.decode(line.subarray(1, line.length - 1)), raw: line });
      }
    }
    this.takeAnswers(out);
    return out;
  }

  /** The announced entry may go on: its header is sent to the sink. */
  allow(): ScpOut[] {
    const d = this.decided();
    const out: ScpOut[] = d.times ? [{ toSink: d.times }, { toSink: d.header }] : [{ toSink: d.header }];
    this.wait({ for: 'header', entry: d.entry, times: d.times !== null }, out);
    return out;
  }

  /**
   * The announced entry is refused: the source gets `message` as the sink's error answer and skips
   * it (a file's bytes are never sent, a directory's contents neither); the sink never hears of it.
   */
  refuse(message: string): ScpOut[] {
    this.decided();
    const out: ScpOut[] = [{ toSource: Buffer.from(`\x01${message.replace(/\n/g, ' ')}\n`) }];
    this.state = 'line';
    this.replayAhead(out);
    return out;
  }

  private decided(): { entry: ScpEntry; header: Buffer; times: Buffer | null } {
    const d = this.deciding;
    if (!d || this.state !== 'deciding') throw new Error('no entry is waiting for a decision');
    this.deciding = null;
    return d;
  }

  // ---- the source's bytes ----------------------------------------------------------------------

  private source(chunk: Buffer, out: ScpOut[]): void {
    let p = 0;
    while (p < chunk.length) {
      switch (this.state) {
        case 'waiting':
        case 'deciding':
          this.holdAhead(chunk.subarray(p));
          return;
        case 'over':
          throw new ScpProtocolError('the sending side went on after a fatal error');
        case 'data': {
          const n = Math.min(this.remaining, chunk.length - p);
          const piece = chunk.subarray(p, p + n);
          this.file!.hash.update(piece);
          this.file!.bytes += n;
          out.push({ toSink: piece });
          this.remaining -= n;
          p += n;
          if (this.remaining === 0) this.state = 'trailer';
          break;
        }
        case 'trailer':
          if (!this.trailerLine) {
            const b = chunk[p]!;
            if (b === 0) {
              out.push({ toSink: chunk.subarray(p, p + 1) });
              p++;
              this.wait({ for: 'file-done', entry: this.file!.entry }, out);
              break;
            }
            if (b !== 1 && b !== 2) throw new ScpProtocolError(`a file's bytes are followed by 0x${b.toString(16)}, not \\0 or an error line`);
            this.trailerLine = true;
          }
          p = this.readLine(chunk, p, out);
          break;
        case 'line':
          p = this.readLine(chunk, p, out);
          break;
      }
    }
  }

  /** Reads up to the end of a line; a whole line is handled (and may change the state). Returns the new position. */
  private readLine(chunk: Buffer, p: number, out: ScpOut[]): number {
    const nl = chunk.indexOf(0x0a, p);
    const end = nl === -1 ? chunk.length : nl + 1;
    this.line.push(chunk.subarray(p, end));
    this.lineLength += end - p;
    if (this.lineLength > MAX_LINE) throw new ScpProtocolError(`the sending side sent a line longer than ${MAX_LINE} bytes`);
    if (nl === -1) return end;
    const line = this.line.length === 1 ? this.line[0]! : Buffer.concat(this.line);
    this.line = [];
    this.lineLength = 0;
    if (this.state === 'trailer') {
      this.trailerLine = false;
      out.push({ toSink: line });
      const message = lenient.decode(line.subarray(1, line.length - 1));
      if (line[0] === 2) this.fatal();
      else this.wait({ for: 'file-done', entry: this.file!.entry, sourceError: message }, out);
    } else {
      this.onLine(line, out);
    }
    // What came after the line is read in the new state (held if the source must now wait).
    if (end < chunk.length && this.blocked()) {
      this.holdAhead(chunk.subarray(end));
      return chunk.length;
    }
    return end;
  }

  private onLine(line: Buffer, out: ScpOut[]): void {
    const kind = line[0]!;
    const body = line.subarray(1, line.length - 1);
    switch (kind) {
      case 0x01:
      case 0x02: {
        const message = lenient.decode(body);
        if (this.times) throw new ScpProtocolError('a time line not followed by a file or directory');
        out.push({ event: { type: 'source-error', message, fatal: kind === 0x02 } }, { toSink: line });
        if (kind === 0x02) this.fatal();
        return;
      }
      case 0x54: // T
        if (this.times) throw new ScpProtocolError('two time lines in a row');
        this.times = { times: parseTimes(body), line };
        // OpenSSH's sink answers every well-formed time line with \0: the gateway answers for it.
        out.push({ toSource: Buffer.from([0]) });
        return;
      case 0x43: // C
      case 0x44: {
        // D
        if (kind === 0x44 && !this.recursive) throw new ScpProtocolError('a directory was sent without -r');
        const entry = parseHeader(kind === 0x43 ? 'file' : 'directory', body, this.directories);
        if (this.times) entry.times = this.times.times;
        this.deciding = { entry, header: line, times: this.times?.line ?? null };
        this.times = undefined;
        this.state = 'deciding';
        out.push({ event: { type: 'entry', entry, forwarded: this.deciding.times ? [this.deciding.times, line] : [line] } });
        return;
      }
      case 0x45: // E
        if (line.length !== 2) throw new ScpProtocolError('an end-of-directory line with more than E');
        if (this.directories.length === 0) throw new ScpProtocolError('an end of directory outside any directory');
        if (this.times) throw new ScpProtocolError('a time line not followed by a file or directory');
        out.push({ toSink: line });
        this.wait({ for: 'end-of-directory' }, out);
        return;
      default:
        throw new ScpProtocolError(`the sending side sent a line starting with 0x${kind.toString(16)}, not T, C, D, E or an error`);
    }
  }

  /** The other side exits on a fatal line; whatever is open stays unfinished. */
  private fatal(): void {
    this.state = 'over';
    this.waiting = null;
  }

  // ---- waiting for the sink's answers -------------------------------------------------------------

  private wait(w: Waiting, out: ScpOut[]): void {
    this.state = 'waiting';
    this.waiting = w;
    this.takeAnswers(out);
  }

  /** Gives the waiting source the next answer, as often as it waits and answers are there. */
  private takeAnswers(out: ScpOut[]): void {
    while (this.state === 'waiting' && this.answers.length > 0) {
      const answer = this.answers.shift()!;
      const w = this.waiting!;
      if (w.for === 'header' && w.times) {
        // The answer to the held T line, which the gateway gave the source already.
        w.times = false;
        if (answer.ok) continue;
      }
      out.push({ toSource: answer.raw });
      this.waiting = null;
      this.state = 'line';
      this.answered(w, answer, out);
      if (!answer.ok && answer.fatal) return this.fatal();
      this.replayAhead(out);
    }
  }

  private answered(w: Waiting, a: Response, out: ScpOut[]): void {
    const error = a.ok ? undefined : a.message;
    switch (w.for) {
      case 'start':
        return;
      case 'header': {
        const entry = w.entry;
        if (!a.ok) {
          out.push({ event: { type: 'entry-end', entry, bytes: 0, error } });
          return;
        }
        if (entry.kind === 'directory') {
          this.directories.push(entry);
          return;
        }
        this.file = { entry, hash: createHash('sha256'), bytes: 0 };
        this.remaining = entry.size;
        this.state = entry.size === 0 ? 'trailer' : 'data';
        return;
      }
      case 'file-done': {
        const f = this.file!;
        this.file = null;
        out.push({ event: { type: 'entry-end', entry: f.entry, bytes: f.bytes, sha256: f.hash.digest('hex'), ...(w.sourceError !== undefined || error !== undefined ? { error: w.sourceError ?? error } : {}) } });
        return;
      }
      case 'end-of-directory': {
        const dir = this.directories.pop()!;
        out.push({ event: { type: 'entry-end', entry: dir, bytes: 0, ...(error !== undefined ? { error } : {}) } });
        return;
      }
    }
  }

  /** The source must be waiting (for an answer, or for the caller's decision): its bytes are held. */
  private blocked(): boolean {
    return this.state === 'waiting' || this.state === 'deciding';
  }

  private holdAhead(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.aheadBytes += bytes.length;
    if (this.aheadBytes > MAX_AHEAD) throw new ScpProtocolError(`the sending side sent more than ${MAX_AHEAD} bytes without waiting for an answer`);
    this.ahead.push(bytes);
  }

  /** The source's held bytes, read now that it has its answer. */
  private replayAhead(out: ScpOut[]): void {
    while (this.ahead.length > 0 && !this.blocked()) {
      const held = this.ahead;
      this.ahead = [];
      this.aheadBytes = 0;
      for (let i = 0; i < held.length; i++) {
        if (this.blocked()) {
          for (const rest of held.slice(i)) this.holdAhead(rest);
          break;
        }
        this.source(held[i]!, out);
      }
    }
  }
}
