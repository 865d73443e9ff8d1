// Protocol-independent recording of sessions and commands. Adapters describe what they saw;
// this module decides how it is written to the one session log.
import { createHash, hash as oneShotHash, type Hash } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
import type { SessionLogWriter } from '../evidence/log-writer.ts';
import { TerminalRecording, type RecordingOptions } from './terminal-recording.ts';
import { commandRecord, resultRecord, type CommandMembers, type ResultMembers } from './record-templates.ts';
import type { CanonicalText } from '../evidence/canonical-json.ts';

/** Longest command text kept in full; longer texts keep a prefix plus their length and digest. */
export const MAX_TEXT = 64 * 1024;
/** Longest parameter or sampled value kept in full. */
export const MAX_VALUE = 1024;
/** Characters of a text response kept as its sample. */
export const MAX_TEXT_SAMPLE = 4096;

export interface RecorderOptions { sampleRows: number }


export type Value = string | null | { format: 'binary'; hex: string; bytes?: number };

export function textValue(s: string, max = MAX_VALUE): string {
  return s.length <= max ? s : s.slice(0, max) + `…[${Buffer.byteLength(s)} bytes]`;
}
/** A text-format wire value, decoding no more than is kept (a parameter may be megabytes). */
export function wireText(b: Buffer): string {
  return b.length <= MAX_VALUE ? b.toString('utf8') : b.toString('utf8', 0, MAX_VALUE) + `…[${b.length} bytes]`;
}
export function binaryValue(b: Buffer): Value {
  return b.length <= MAX_VALUE / 2
    ? { format: 'binary', hex: b.toString('hex') }
    : { format: 'binary', hex: b.subarray(0, MAX_VALUE / 2).toString('hex'), bytes: b.length };
}

/**
 * A text's sample: its first MAX_TEXT_SAMPLE characters and the byte length of all of it. Bytes
 * past a full sample are counted, not decoded (a large body decoded into strings would cost for
 * nothing); bytes split inside a character wait for the rest.
 */
export class TextSample {
  text: string | null = null;
  bytes = 0;
  private decoder: StringDecoder | null = null;

  get full(): boolean {
    return (this.text?.length ?? 0) >= MAX_TEXT_SAMPLE;
  }

  addText(s: string): void {
    this.bytes += Buffer.byteLength(s);
    const kept = this.text ?? '';
    if (kept.length < MAX_TEXT_SAMPLE) this.text = kept + s.slice(0, MAX_TEXT_SAMPLE - kept.length);
  }

  addBytes(b: Buffer): void {
    if (this.full) this.bytes += b.length;
    else this.addText((this.decoder ??= new StringDecoder('utf8')).write(b));
  }

  /** The end of the text: a character left incomplete is written as U+FFFD. */
  end(): void {
    const tail = this.decoder?.end();
    if (tail) this.addText(tail);
  }
}

/** Whole microseconds since `since` (a performance.now() reading): no BigInt on the hot path. */
function elapsedUs(since: number): number {
  return Math.floor((performance.now() - since) * 1000);
}

export class Recorder {
  readonly writer: SessionLogWriter;
  readonly options: RecorderOptions;
  private sessions = 0;
  readonly open = new Set<SessionRecorder>();
  constructor(writer: SessionLogWriter, options: RecorderOptions) {
    this.writer = writer;
    this.options = options;
  }
  /** Records the session and returns its recorder; throws LogUnavailableError if the log failed. */
  openSession(target: string, protocol: string, fields: Record<string, unknown>): SessionRecorder {
    const id = `s${++this.sessions}`;
    this.writer.append('session-open', { session: id, target, protocol, ...fields });
    const s = new SessionRecorder(this, id, target);
    this.open.add(s);
    this.writer.openSessions = this.open.size;
    return s;
  }
}

/**
 * A command as every protocol records it (format @3). `kind` picks the renderer that shows it
 * (`pg.query`, `ssh.exec`, `http.request`); everything only its protocol understands goes in
 * `details`, so replay, the report, the job summary and totals read one shape.
 */
export interface CommandFields {
  /** `<protocol>.<what>`: pg.query, pg.function-call, ssh.exec, http.request. */
  kind: string;
  /** What a person reads and approves: the SQL, the command line, the request line. */
  text: string;
  /** What the policy matched on, one entry per unit (statement, exec, request); with rules only. */
  facts?: readonly object[] | CanonicalText;
  /** Protocol specifics (PostgreSQL: protocol, params, portal, max_rows, phase, statement). */
  details?: Record<string, unknown> | CanonicalText;
  /** The policy's decision (action, rule, reason, matched); with rules only. */
  decision?: Record<string, unknown> | CanonicalText;
  /** Why the adapter could not know what the command runs (then decided as unclassified). */
  unclassified?: string;
}

export class SessionRecorder {
  readonly id: string;
  readonly target: string;
  private readonly recorder: Recorder;
  private readonly openedAt = performance.now();
  private commandCount = 0;
  totals = { commands: 0, errors: 0, skipped: 0, denied: 0, approved: 0, masked: 0, bytes_from_client: 0, bytes_to_client: 0 };
  closed = false;

  constructor(recorder: Recorder, id: string, target: string) {
    this.recorder = recorder;
    this.id = id;
    this.target = target;
  }

  get writer(): SessionLogWriter {
    return this.recorder.writer;
  }

  event(type: string, fields: Record<string, unknown>): void {
    this.recorder.writer.append(type, { session: this.id, ...fields });
  }

  /**
   * Appends the command record. The caller forwards the command only once it is written
   * (writer.whenWritten, or writer.flushSync for a rare command).
   */
  beginCommand(fields: CommandFields): CommandRecorder {
    const id = `${this.id}.${++this.commandCount}`;
    const text = fields.text;
    const long = text.length > MAX_TEXT;
    const m: CommandMembers = {
      command: id,
      decision: fields.decision,
      details: fields.details,
      facts: fields.facts,
      kind: fields.kind,
      session: this.id,
      target: this.target,
      text: long ? textValue(text, MAX_TEXT) : text,
      textBytes: long ? Buffer.byteLength(text) : undefined,
      textSha256: long ? createHash('sha256').update(text).digest('hex') : undefined,
      unclassified: fields.unclassified,
    };
    this.recorder.writer.appendBuilt('command', (seq, prev, time) => commandRecord(m, seq, prev, time));
    this.totals.commands++;
    return new CommandRecorder(this, id, fields.kind, this.recorder.options.sampleRows);
  }

  close(reason: string, fields: Record<string, unknown> = {}): void {
    if (this.closed) return;
    this.closed = true;
    this.recorder.open.delete(this);
    this.recorder.writer.openSessions = this.recorder.open.size;
    const durationUs = elapsedUs(this.openedAt);
    if (this.recorder.writer.failed) return;
    this.recorder.writer.append('session-close', { session: this.id, reason, duration_us: durationUs, totals: this.totals, ...fields });
  }
}

/** How a command ended (the `result` record), in the shape every protocol shares. */
export interface Outcome {
  /** `approved`: a statement approved where it was decided, before it ran (PostgreSQL's Parse). */
  status: 'ok' | 'error' | 'skipped' | 'denied' | 'approved';
  /** How many units the command returned or affected, in its renderer's unit (rows for PostgreSQL). */
  count?: number;
  /** What went wrong; `code` is the protocol's (SQLSTATE, exit status, HTTP status). */
  error?: { code: string; message: string; severity?: string };
  /** Protocol specifics (PostgreSQL: tags, transaction, suspended). */
  details?: Record<string, unknown> | CanonicalText;
  /** The rule that denied it (denied), or why it did not run (skipped, denied). */
  rule?: string;
  reason?: string;
}

export class CommandRecorder {
  readonly id: string;
  /** The command's kind (pg.query): approvers render a held command by it. */
  readonly kind: string;
  private readonly session: SessionRecorder;
  private readonly started = performance.now();
  private readonly sampleLimit: number;
  // Most responses are small: keep their pieces and hash them once at the end; switch to an
  // incremental hash past 4 pieces or 64 KiB (pieces pin the chunks they come from).
  private pieces: Buffer[] = [];
  private piecesLength = 0;
  private hash: Hash | null = null;
  private bytes = 0;
  private inputHash: Hash | null = null;
  private inputBytes = 0;
  private columns: string[] | null = null;
  private sample: Value[][] = [];
  private recording: TerminalRecording | null = null;
  finished = false;

  constructor(session: SessionRecorder, id: string, kind: string, sampleLimit: number) {
    this.session = session;
    this.id = id;
    this.kind = kind;
    this.sampleLimit = sampleLimit;
  }

  /** Bytes of the response as the client receives them, for the digest. */
  addResponse(chunk: Buffer): void {
    if (chunk.length === 0 || this.finished) return;
    this.bytes += chunk.length;
    if (this.hash) {
      this.hash.update(chunk);
      return;
    }
    this.pieces.push(chunk);
    this.piecesLength += chunk.length;
    if (this.pieces.length > 4 || this.piecesLength > 65536) {
      this.hash = createHash('sha256');
      for (const p of this.pieces) this.hash.update(p);
      this.pieces = [];
    }
  }

  /** Bytes the client streams as input to this command (COPY FROM STDIN data, a request body). */
  addInput(chunk: Buffer): void {
    if (this.finished) return;
    (this.inputHash ??= createHash('sha256')).update(chunk);
    this.inputBytes += chunk.length;
  }

  /** The input's text sample (an HTTP request body), masked as the log needs it by the caller. */
  get inputSample(): TextSample {
    return (this.input ??= new TextSample());
  }
  // Made when first used: most commands have neither (PostgreSQL's never do).
  private input: TextSample | null = null;
  private response: TextSample | null = null;

  private masked: { values: number; detectors: string[] } | null = null;

  /** Values masked in this command's response: by column name, and which detectors fired. */
  noteMasked(columns: number, detectors: readonly string[]): void {
    const m = (this.masked ??= { values: 0, detectors: [] });
    m.values += columns + detectors.length;
    for (const d of detectors) if (!m.detectors.includes(d)) m.detectors.push(d);
    this.session.totals.masked += columns + detectors.length;
  }

  get wantsSample(): boolean {
    return this.sample.length < this.sampleLimit;
  }

  setColumns(names: string[]): void {
    if (this.columns === null) this.columns = names;
  }

  addSampleRow(values: Value[]): void {
    if (this.sample.length < this.sampleLimit) this.sample.push(values);
  }

  /**
   * A response that is text (an exec's output, an HTTP body), already masked: its first
   * MAX_TEXT_SAMPLE characters are the sample, with the length of all of it.
   */
  get responseSample(): TextSample {
    return (this.response ??= new TextSample());
  }

  addSampleText(text: string): void {
    this.responseSample.addText(text);
  }

  /**
   * Starts the command's terminal recording (`terminal` records, asciicast-compatible events).
   * What is passed to it must be masked already: it is written as given.
   */
  startRecording(size: { width: number; height: number }, options?: Partial<RecordingOptions>): TerminalRecording {
    if (this.recording) return this.recording;
    this.recording = new TerminalRecording((fields) => {
      if (this.session.writer.failed) return;
      try {
        this.session.event('terminal', { command: this.id, ...fields });
      } catch {
        // A chunk written from its timer after the log failed or closed: the session refuses
        // what comes next on its own; a timer must never take the daemon down.
      }
    }, size, options);
    return this.recording;
  }

  finish(outcome: Outcome): void {
    if (this.finished) return;
    this.finished = true;
    const t = this.session.totals;
    if (outcome.status === 'error') t.errors++;
    if (outcome.status === 'skipped') t.skipped++;
    if (outcome.status === 'denied') t.denied++;
    // The recording's last events are written before the result that ends it.
    this.recording?.close();
    const text = this.response?.text ?? null;
    const m: ResultMembers = {
      command: this.id,
      durationUs: elapsedUs(this.started),
      outcome,
      response: outcome.status === 'skipped' ? null : {
        bytes: this.bytes,
        sha256: this.hash ? this.hash.digest('hex') : oneShotHash('sha256', this.pieces.length === 1 ? this.pieces[0]! : Buffer.concat(this.pieces, this.piecesLength), 'hex'),
        columns: this.columns,
        // A sample is rows (with columns), text, or the command's terminal recording.
        sample: text !== null || this.recording ? null : this.sample,
        text,
        textBytes: this.response?.bytes ?? 0,
        recording: text === null && this.recording ? this.recording.summary() : null,
      },
      masked: this.masked,
      input: this.inputHash ? { bytes: this.inputBytes, sha256: this.inputHash.digest('hex'), ...(this.input && this.input.text !== null ? { text: this.input.text, textBytes: this.input.bytes } : {}) } : null,
      session: this.session.id,
    };
    this.pieces = [];
    if (this.session.writer.failed) return;
    this.session.writer.appendBuilt('result', (seq, prev, time) => resultRecord(m, seq, prev, time));
  }
}
