// The one session log writer. Every record is chained to the previous one by hash, and a command
// may be forwarded only once flushSync has handed its record to the OS: this is what makes "no
// unrecorded command reaches a target" true even if the daemon is SIGKILLed.
import { hash as sha256 } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { canonicalJson } from './canonical-json.ts';
import type { CheckpointSigner } from './checkpoint.ts';

export const LOG_FORMAT = 'gateway-action/session-log@3';
/**
 * Every format `verify` reads, oldest first: auditors verify logs months after they were
 * written. The chain, checkpoints and seal are the same in each; docs/session-log.md lists what
 * changed between them.
 */
export const READABLE_FORMATS: readonly string[] = ['gateway-action/session-log@2', LOG_FORMAT];
export const GENESIS_HASH = '0'.repeat(64);
/** The staging buffer records are encoded into until they are written; it grows for a big batch. */
const STAGE_BYTES = 64 * 1024;
const STAGE_KEEP_BYTES = 1024 * 1024;
/** `,"hash":"` + 64 hex digits + `"}` and a newline, less the closing brace they replace. */
const HASH_MEMBER_BYTES = 9 + 64 + 3;
/** Longest a record nobody waits for stays in memory before it is written. */
const LAZY_FLUSH_MS = 20;

export class LogUnavailableError extends Error {
  override readonly cause: Error;
  constructor(cause: Error) {
    super(`session log cannot be written (${cause.message})`);
    this.name = 'LogUnavailableError';
    this.cause = cause;
  }
}

export interface AppendResult { seq: number; hash: string }

/** When signed checkpoints are written; 0 turns a trigger off (the seal is always signed). */
export interface CheckpointSchedule { everyRecords: number; everyMs: number }
export const DEFAULT_CHECKPOINTS: CheckpointSchedule = { everyRecords: 1000, everyMs: 5000 };

interface Signing { run: string; signer: CheckpointSigner; schedule: CheckpointSchedule }

export class SessionLogWriter {
  readonly path: string;
  private fd: number;
  private seq = 0;
  private prev = GENESIS_HASH;
  /**
   * Records queued since the last flush, as the bytes of their lines: each is encoded once, hashed
   * from these bytes and written from them, with no joined string and no second encoding.
   */
  private staged = Buffer.allocUnsafe(STAGE_BYTES);
  private stagedLength = 0;
  private failure: LogUnavailableError | null = null;
  private closed = false;
  private signing: Signing | null = null;
  /** Records appended since the last checkpoint. */
  private unsigned = 0;
  private checkpointTimer: NodeJS.Timeout | null = null;
  /** The final record is being written: the seal, not a count checkpoint, must follow it. */
  private sealing = false;

  private constructor(file: string, fd: number) {
    this.path = file;
    this.fd = fd;
  }

  /** Creates a new log file in dir; never appends to an existing one. */
  static create(dir: string, name: string): SessionLogWriter {
    const file = path.resolve(dir, name);
    try {
      makeDirs(path.resolve(dir));
      return new SessionLogWriter(file, fs.openSync(file, 'wx', 0o600));
    } catch (e) {
      throw new Error(`cannot create the session log ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
  }

  /**
   * From now on, a checkpoint signed by `signer` follows every `everyRecords` records, and any
   * unsigned records are signed every `everyMs`; close() signs the seal.
   */
  signWith(run: string, signer: CheckpointSigner, schedule: CheckpointSchedule = DEFAULT_CHECKPOINTS): void {
    this.signing = { run, signer, schedule };
    if (schedule.everyMs > 0) {
      this.checkpointTimer = setInterval(() => {
        if (this.unsigned > 0 && !this.failure && !this.closed) {
          this.signNow();
          this.flushSync();
        }
      }, schedule.everyMs);
      this.checkpointTimer.unref();
    }
  }

  get failed(): LogUnavailableError | null {
    return this.failure;
  }

  /** The hash of the last record appended: after close(), the seal's. */
  get head(): string {
    return this.prev;
  }

  get nextSeq(): number {
    return this.seq;
  }

  /**
   * Queues a record; it reaches the file at the next flush. Throws once the log has failed.
   * Takes ownership of `fields` (it becomes the record). Records nobody waits for are flushed
   * with the next durable flush or within LAZY_FLUSH_MS, which halves the writes per command.
   */
  append(type: string, fields: Record<string, unknown>): AppendResult {
    return this.appendAt(type, fields, this.now());
  }

  private appendAt(type: string, fields: Record<string, unknown>, time: string): AppendResult {
    this.check();
    fields.type = type;
    fields.seq = this.seq;
    fields.prev = this.prev;
    fields.time = time;
    return this.queue(canonicalJson(fields), type);
  }

  /**
   * Queues a record serialized by its caller: the hot records (a command and its result) are
   * written from templates whose members are already in canonical order, with no intermediate
   * object and no sort. `build` gets the members the writer owns and must return exactly the
   * canonical JSON (RFC 8785) of the whole record without `hash`, `"type"` included; the tests
   * compare each template with canonicalJson of the same record.
   */
  appendBuilt(type: string, build: (seq: number, prev: string, time: string) => string): AppendResult {
    this.check();
    return this.queue(build(this.seq, this.prev, this.now()), type);
  }

  /** Makes room for `room` more bytes after what is staged. */
  private growStage(room: number): void {
    const grown = Buffer.allocUnsafe(Math.max(this.staged.length * 2, this.stagedLength + room));
    this.staged.copy(grown, 0, 0, this.stagedLength);
    this.staged = grown;
  }

  private check(): void {
    if (this.failure) throw this.failure;
    if (this.closed) throw new LogUnavailableError(new Error('the log is sealed'));
  }

  private queue(body: string, type: string): AppendResult {
    const seq = this.seq;
    // Room for the body at 3 bytes per UTF-16 unit (the most UTF-8 takes) and the hash member.
    const room = body.length * 3 + HASH_MEMBER_BYTES;
    if (this.stagedLength + room > this.staged.length) this.growStage(room);
    const stage = this.staged;
    const start = this.stagedLength;
    const n = stage.write(body, start, 'utf8');
    const hash = sha256('sha256', stage.subarray(start, start + n), 'hex');
    // The hash member goes last so a verifier without a JCS library can strip it textually: it
    // takes the place of the body's closing brace.
    let at = start + n - 1;
    at += stage.write(',"hash":"', at, 'latin1');
    at += stage.write(hash, at, 'latin1');
    at += stage.write('"}\n', at, 'latin1');
    this.stagedLength = at;
    this.seq = seq + 1;
    this.prev = hash;
    if (!this.lazyTimer) this.lazyTimer = setTimeout(this.lazyFlush, LAZY_FLUSH_MS);
    if (this.signing && type !== 'checkpoint' && ++this.unsigned === this.signing.schedule.everyRecords && !this.sealing) this.checkpoint(false);
    return { seq, hash };
  }

  /**
   * Calls `then` once every record queued so far is written (with null), or the log failed (with
   * the failure). Writes are batched per event-loop turn: the records of every session that
   * queued one in this turn go to the file in one write(2) (setImmediate runs after the turn's
   * reads), and only then does each session forward what waited for its record. This is the
   * "recorded before forwarded" rule with one system call per turn instead of one per command.
   */
  whenWritten(then: (failure: LogUnavailableError | null) => void): void {
    if (this.failure) return then(this.failure);
    // Sealed: no record can be appended any more, so nothing may be forwarded on its strength.
    if (this.closed) return then(new LogUnavailableError(new Error('the log is sealed')));
    // One session alone has nobody to share the turn's write with: it writes now, and spares the
    // deferral (a job's single psql or pg_dump is the common case).
    if (this.openSessions <= 1 && !this.turnFlushScheduled) return then(this.flushSync());
    this.waiting.push(then);
    if (!this.turnFlushScheduled) {
      this.turnFlushScheduled = true;
      setImmediate(this.turnFlush);
    }
  }

  /** Sessions open now (Recorder keeps it): with one, whenWritten writes at once. */
  openSessions = 0;
  private waiting: ((failure: LogUnavailableError | null) => void)[] = [];
  private turnFlushScheduled = false;
  private readonly turnFlush = (): void => {
    this.turnFlushScheduled = false;
    const failure = this.flushSync();
    const waiting = this.waiting;
    this.waiting = [];
    for (const then of waiting) then(failure);
  };

  /** Signs what has been written so far now (the gateway does so right after run-start). */
  signNow(): void {
    if (this.signing && this.unsigned > 0 && !this.failure && !this.closed) this.checkpoint(false);
  }

  /** Appends a checkpoint record whose JWS signs the current chain head and its own time. */
  private checkpoint(seal: boolean): void {
    const s = this.signing!;
    this.unsigned = 0;
    const time = this.now();
    const payload = { run: s.run, seq: this.seq - 1, head: this.prev, seal, time };
    this.appendAt('checkpoint', { covers: payload.seq, seal, jws: s.signer.sign(payload) }, time);
  }

  private lazyTimer: NodeJS.Timeout | null = null;
  private readonly lazyFlush = (): void => {
    this.lazyTimer = null;
    if (this.stagedLength > 0) this.flushSync();
  };

  private lastMs = 0;
  private lastIso = '';
  /** ISO time, formatted once per millisecond at most. */
  private now(): string {
    const ms = Date.now();
    if (ms !== this.lastMs) {
      this.lastMs = ms;
      this.lastIso = new Date(ms).toISOString();
    }
    return this.lastIso;
  }

  /**
   * Writes every pending record now and returns the failure that stops the log, if any. Rare
   * records that must be durable at once (a held command's request, a cancel) call this before
   * acting; the hot path waits with whenWritten instead. One write(2) covers every record queued
   * since the last flush.
   */
  flushSync(): LogUnavailableError | null {
    // The lazy timer stays armed (re-arming per command costs more than a spare wake-up).
    if (this.stagedLength > 0 && !this.failure) {
      const length = this.stagedLength;
      this.stagedLength = 0;
      try {
        let off = 0;
        while (off < length) off += fs.writeSync(this.fd, this.staged, off, length - off);
      } catch (e) {
        this.failure = new LogUnavailableError(e as Error);
      }
      // A batch that held a huge record does not keep its buffer.
      if (this.staged.length > STAGE_KEEP_BYTES) this.staged = Buffer.allocUnsafe(STAGE_BYTES);
    }
    return this.failure;
  }

  /**
   * Appends the final record and, when signing, the seal (a final checkpoint); flushes, fsyncs
   * and closes. Throws if the log is not sealed.
   */
  close(type: string, fields: Record<string, unknown>): void {
    if (this.closed) return;
    if (!this.failure) {
      this.sealing = true;
      this.append(type, fields);
      if (this.signing) this.checkpoint(true);
    }
    this.flushSync();
    this.closed = true;
    if (this.lazyTimer) clearTimeout(this.lazyTimer);
    if (this.checkpointTimer) clearInterval(this.checkpointTimer);
    try {
      if (!this.failure) fs.fsyncSync(this.fd);
    } catch (e) {
      this.failure = new LogUnavailableError(e as Error);
    } finally {
      fs.closeSync(this.fd);
    }
    if (this.failure) throw new LogUnavailableError(new Error(`${this.failure.cause.message}; the log ends unsealed`));
  }
}

/**
 * mkdir -p, one level at a time: Node's recursive mkdirSync loops forever on some paths under
 * /proc (a log dir there must fail with a message, not hang).
 */
function makeDirs(dir: string): void {
  try {
    if (fs.statSync(dir).isDirectory()) return;
    throw new Error(`${dir} exists and is not a directory`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const parent = path.dirname(dir);
  if (parent !== dir) makeDirs(parent);
  fs.mkdirSync(dir, { mode: 0o700 });
}
