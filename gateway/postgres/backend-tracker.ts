// Follows the server's side of a session: which backend message answers which client message,
// and what each command produced (tags, rows, errors, a sample, a digest of the bytes). The
// server answers in order, so a FIFO of what the client sent attributes every message; after an
// error in the extended protocol the server skips everything up to Sync, and so does this.
import { MessageFramer, ProtocolError, type FramedMessage } from './codec/framer.ts';
import { B, type Column, decodeParameterStatus, decodeCommandComplete, decodeDataRow, decodeNotice, decodeReadyForQuery, decodeRowDescription, type NoticeFields } from './codec/backend.ts';
import { binaryValue, wireText, type CommandRecorder, type SessionRecorder } from '../core/recorder.ts';
import type { ResponseMasking } from './response-masking.ts';
import { ResponseQueue, resultColumns, sampleValues, tagRows, type Entry, type RunState } from './response-queue.ts';
import { StatementRegistry } from './statement-registry.ts';
import { CanonicalText, jsonString } from '../evidence/canonical-json.ts';

export type Transaction = 'I' | 'T' | 'E';

/** Largest RowDescription kept for reuse (see describedBy). */
const MAX_KEPT_DESCRIPTION = 4096;

/** A RowDescription read: its bytes, its columns and their names. */
interface Description { bytes: Buffer; cols: Column[]; names: string[] }

export class BackendTracker {
  private readonly rec: SessionRecorder;
  private readonly queue = new ResponseQueue();
  private readonly serverFramer: MessageFramer;
  private copyIn: CommandRecorder | null = null;
  private finishAfterCopy: (() => void) | null = null;
  transaction: Transaction = 'I';
  lastServerWasFatal = false;
  // Attribution of forwarded server bytes to the command they answer (see observe).
  private attributed: ResponseSink | null = null;
  /** An error at Parse, Bind or Describe before the client sent the Execute it fails (see expect). */
  private failure: { error: { severity: string; code: string; message: string }; bytes: KeptBytes } | null = null;
  private rangeStart = 0;

  private readonly masking: ResponseMasking | null;
  /** Statement and portal names as the server's answers confirm them. */
  readonly names: StatementRegistry;

  constructor(rec: SessionRecorder, masking: ResponseMasking | null = null, names: StatementRegistry = new StatementRegistry()) {
    this.rec = rec;
    this.masking = masking;
    this.names = names;
    this.serverFramer = new MessageFramer({ collect: (t) => this.wantServerBody(t), maxCollectedBody: 1 << 30, peer: 'upstream' });
  }

  /** Nothing in flight: no response pending and no COPY data expected from the client. */
  get idle(): boolean {
    return this.queue.length === 0 && !this.copyIn;
  }

  /** Client messages forwarded whose answer has not come back yet (each holds a queue entry). */
  get unanswered(): number {
    return this.queue.length;
  }

  /** How many client messages expecting a response have been seen: what ran in between. */
  expectedCount = 0;

  /** A client message that expects a response; skipped when the server is discarding until Sync. */
  expect(e: Entry): void {
    this.expectedCount++;
    if (!this.queue.skippingUntilSync) this.queue.push(e);
    else if (e.kind === 'execute' && this.failure && !e.run.denied) {
      // The first Execute after a failed Parse or Bind is the command that failed, with the error's bytes.
      const { error, bytes } = this.failure;
      this.failure = null;
      for (const b of bytes.parts) e.cmd.addResponse(b);
      e.run.error = error;
      this.finishRun(e.cmd, e.run, false);
    } else this.skip(e);
  }

  /** The server is about to fail a message of ours: it discards the client's until Sync. */
  skipUntilSync(): void {
    this.queue.skippingUntilSync = true;
  }

  get skipping(): boolean {
    return this.queue.skippingUntilSync;
  }

  sync(): void {
    this.queue.skippingUntilSync = false;
    this.failure = null;
    this.queue.push({ kind: 'sync' });
  }

  /** COPY data from the client, counted into the command that asked for it. */
  copyData(body: Buffer): void {
    this.copyIn?.addInput(body);
  }

  /** The session ended: every command still open is finished with the error that ended it. */
  abandon(error: { severity: string; code: string; message: string }): void {
    this.masking?.catalogChanges?.sessionEnded(this);
    this.copyIn = null;
    this.finishAfterCopy?.();
    for (const e of this.queue.drain()) {
      if ((e.kind === 'query' || e.kind === 'execute') && !e.cmd.finished) {
        e.cmd.finish({ status: 'error', count: e.run.rows, error: e.run.error ?? error, details: { tags: e.run.tags } });
      }
    }
  }

  private wantServerBody(t: number): boolean {
    if (t === B.DataRow || t === B.CopyData) {
      if (this.masking) return true;
      const e = this.queue.peek();
      return e !== undefined && (e.kind === 'query' || e.kind === 'execute') && e.cmd.wantsSample;
    }
    if (t === B.NotificationResponse) return this.masking !== null;
    // A fast-path function's result is masked like any value (response-masking.ts).
    return t !== B.FunctionCallResponse || this.masking !== null;
  }

  /** The command a server message of this type belongs to, for its bytes. */
  private ownerOf(type: number): ResponseSink | null {
    const e = this.queue.peek();
    if (e === undefined) return null;
    if (e.kind === 'query' || e.kind === 'execute') return e.cmd;
    // An error at Parse, Bind or Describe is the failure of the Execute they prepared (see
    // onServerError), or of the one the client has yet to send: its bytes are kept for it.
    if (type === B.ErrorResponse && e.kind !== 'sync') return this.queue.nextExecute()?.cmd ?? new KeptBytes();
    return null;
  }

  /**
   * Follows one chunk of server bytes and returns what the client must receive: the chunk itself,
   * or, when messages are swallowed (answers to the gateway's own messages) or rewritten
   * (masking), the chunk with those edits. A message that may need an edit and is not complete
   * at the end of a chunk is held back until it is.
   */
  observe(chunk: Buffer): Buffer[] {
    this.rangeStart = 0;
    this.chunk = chunk;
    const held = this.heldParts;
    this.heldParts = null;
    this.heldResolved = false;
    this.observedHeld = held;
    this.serverFramer.push(chunk, this.onFramed);
    const partial = this.serverFramer.partialStart;
    const hold = partial !== null && (partial >= 0 || held !== null) && this.mustHold();
    const cut = partial === null ? chunk.length : Math.max(partial, this.rangeStart);
    this.attributed?.addResponse(chunk.subarray(this.rangeStart, cut));
    if (partial !== null) {
      this.attributed = this.ownerOf(this.serverFramer.partialType!);
      if (!hold) this.attributed?.addResponse(chunk.subarray(cut));
    }
    if (held === null && this.edits.length === 0 && !hold) {
      if (this.injections.length === 0) return [chunk];
      // The gateway's own messages go in at the last message boundary of the chunk.
      if (partial === null) return [chunk, ...this.injections.splice(0)];
      if (partial > 0) return [chunk.subarray(0, partial), ...this.injections.splice(0), chunk.subarray(partial)];
    }
    const out = this.edited(chunk, held, partial, hold);
    if (partial === null) out.push(...this.injections.splice(0));
    return out;
  }

  /** The held bytes observe() started with (a partial message from the chunk before). */
  private observedHeld: Buffer[] | null = null;
  /** One framed server message of the chunk observe() is reading (a method: no closure per chunk). */
  private readonly onFramed = (m: FramedMessage): void => {
    // A message belongs to the command at the head of the queue when it starts; responses are
    // hashed in contiguous ranges to keep per-message work small.
    if (m.start >= 0) {
      const owner = this.ownerOf(m.type);
      if (owner !== this.attributed) {
        this.attributed?.addResponse(this.chunk.subarray(this.rangeStart, m.start));
        this.attributed = owner;
        this.rangeStart = m.start;
      }
    }
    let body = m.body;
    if (this.masking && body) {
      const masked = this.masking.message(m.type, body, this.queue.peek());
      if (masked) {
        if (masked.client) this.edit(m.start, m.end, masked.client);
        if (masked.log) body = masked.log;
      }
    }
    // A held message kept as it was: its first bytes are hashed before the rest.
    if (m.start < 0 && this.observedHeld && !this.heldResolved) {
      this.heldResolved = true;
      for (const h of this.observedHeld) this.attributed?.addResponse(h);
    }
    this.onServerMessage(m.type, body, this.chunk, m.end, m.start);
  };

  private chunk: Buffer = Buffer.alloc(0);
  private edits: { from: number; to: number; with: Buffer | null }[] = [];
  /** Bytes of a partial message held back from the client until it is complete. */
  private heldParts: Buffer[] | null = null;
  private heldResolved = false;
  private injections: Buffer[] = [];

  /**
   * A message of the gateway's own for the client (a NOTICE): returned to send now when the
   * server's stream is between messages, else kept for the next boundary.
   */
  inject(message: Buffer): Buffer[] {
    if (this.serverFramer.idle && this.heldParts === null && this.injections.length === 0) return [message];
    this.injections.push(message);
    return [];
  }

  private swallowDue(): boolean {
    const e = this.queue.peek();
    return e !== undefined && (e.kind === 'parse' || e.kind === 'bind' || e.kind === 'describe') && e.swallow === true;
  }

  private mustHold(): boolean {
    if (this.swallowDue()) return true;
    return this.masking !== null && this.masking.rewrites(this.serverFramer.partialType!, this.queue.peek());
  }

  /** Replaces (or with null, removes) a whole message; start < 0: it began in held bytes. */
  private edit(start: number, end: number, replacement: Buffer | null): void {
    if (start < 0) this.heldResolved = true;
    else this.attributed?.addResponse(this.chunk.subarray(this.rangeStart, start));
    if (replacement) this.attributed?.addResponse(replacement);
    this.rangeStart = end;
    this.edits.push({ from: start, to: end, with: replacement });
  }

  private edited(chunk: Buffer, held: Buffer[] | null, partial: number | null, hold: boolean): Buffer[] {
    const edits = this.edits;
    this.edits = [];
    if (hold && partial! < 0) {
      // The held message goes on past this chunk too.
      this.heldParts = [...held!, chunk];
      return [];
    }
    const out: Buffer[] = [];
    if (held && !(edits.length > 0 && edits[0]!.from < 0)) out.push(...held);
    let pos = 0;
    for (const e of edits) {
      const from = Math.max(e.from, 0);
      if (from > pos) out.push(chunk.subarray(pos, from));
      if (e.with) out.push(e.with);
      pos = e.to;
    }
    let end = chunk.length;
    if (hold) {
      end = Math.max(partial!, pos);
      this.heldParts = [Buffer.from(chunk.subarray(end))];
    }
    if (end > pos) out.push(chunk.subarray(pos, end));
    return out;
  }

  private onServerMessage(type: number, body: Buffer | null, chunk: Buffer, end: number, start: number): void {
    const e = this.queue.peek();
    const run = e && (e.kind === 'query' || e.kind === 'execute') ? e.run : null;
    switch (type) {
      case B.DataRow:
        if (run) {
          run.rows++;
          if (body && (e as { cmd: CommandRecorder }).cmd.wantsSample) {
            const portal = e!.kind === 'execute' ? e!.portal : null;
            const cols = resultColumns(e as Entry & { run: RunState });
            (e as { cmd: CommandRecorder }).cmd.addSampleRow(sampleValues(decodeDataRow(body), cols, portal ? portal.resultFormats : null));
          }
        }
        return;
      case B.RowDescription: {
        const described = this.describedBy(body!);
        const cols = described.cols;
        if (e?.kind === 'describe') {
          if (e.target) e.target.columns = cols;
          if (e.swallow) this.edit(start, end, null);
          this.queue.shift();
        } else if (run) {
          run.columns = cols;
          (e as { cmd: CommandRecorder }).cmd.setColumns(described.names);
        }
        return;
      }
      case B.NoData:
        if (e?.kind === 'describe') {
          if (e.target) e.target.noData = true;
          if (e.swallow) this.edit(start, end, null);
          this.queue.shift();
        }
        return;
      case B.ParameterDescription:
        return;
      case B.ParseComplete:
      case B.BindComplete:
      case B.CloseComplete:
        if (e && (e.kind === 'parse' || e.kind === 'bind' || e.kind === 'close')) {
          if (e.swallow) this.edit(start, end, null);
          for (const c of e.changes ?? []) this.names.confirm(c);
          this.queue.shift();
        }
        return;
      case B.CommandComplete:
      case B.EmptyQueryResponse:
      case B.PortalSuspended:
        const tag = type === B.CommandComplete ? decodeCommandComplete(body!) : null;
        // Column masking reads the catalog again after DDL (table-names.ts).
        if (tag !== null) this.masking?.catalogChanges?.commandCompleted(this, tag);
        if (run) {
          if (tag !== null) {
            run.tags.push(tag);
            this.names.completed(run.effects[run.completed++], tag);
          }
          if (type === B.PortalSuspended) run.tags.push('(portal suspended)');
          if (e!.kind === 'execute') {
            this.afterShift(chunk, end);
            this.finishRun(e!.cmd, run, type === B.PortalSuspended);
            this.queue.shift();
          } else run.columns = null;
        }
        return;
      case B.CopyInResponse:
        if (run) {
          this.copyIn = (e as { cmd: CommandRecorder }).cmd;
          this.copyIn.addInput(Buffer.alloc(0));
        }
        return;
      case B.CopyOutResponse:
      case B.CopyBothResponse:
        if (run) {
          run.copyBinary = body![0] === 1;
          if (this.masking && type === B.CopyOutResponse) this.masking.startCopy(run, body!);
        }
        return;
      case B.CopyData:
        if (run && body && (e as { cmd: CommandRecorder }).cmd.wantsSample) {
          (e as { cmd: CommandRecorder }).cmd.addSampleRow([run.copyBinary ? binaryValue(body) : wireText(body.at(-1) === 0x0a ? body.subarray(0, -1) : body)]);
        }
        return;
      case B.ErrorResponse:
        this.onServerError(decodeNotice(body!), chunk, end);
        return;
      case B.ReadyForQuery:
        this.transaction = decodeReadyForQuery(body!);
        // Outside a transaction block the implicit transaction has ended; in a failed one no portal runs.
        if (this.transaction !== 'T') this.names.endPortals();
        if (this.transaction === 'I') this.names.transactionIdle();
        this.masking?.catalogChanges?.readyForQuery(this, this.transaction);
        if (e?.kind === 'query') {
          this.afterShift(chunk, end);
          this.finishRun(e.cmd, e.run, false);
          this.queue.shift();
        } else if (e?.kind === 'sync') this.queue.shift();
        return;
      case B.ParameterStatus: {
        const [name, value] = decodeParameterStatus(body!);
        // Statement names are keyed by their bytes in the server's encoding (statement-registry.ts).
        this.names.parameterStatus(name, value);
        if (this.masking) {
          if (name === 'client_encoding' && value !== 'UTF8') {
            throw new ProtocolError(`masking reads values as UTF-8, and the session set client_encoding to ${value}; the session is closed rather than pass values unmasked`, '0A000');
          }
        }
        return;
      }
      default:
        return; // NoticeResponse, NotificationResponse, CopyDone, ...: relayed as they are
    }
  }

  /**
   * A RowDescription's columns. A session tends to run the same statements over and over, so the
   * last one read is kept: the same bytes again reuse its columns (never changed once read).
   */
  private describedBy(body: Buffer): Description {
    const last = this.lastDescription;
    if (last && last.bytes.equals(body)) return last;
    const cols = decodeRowDescription(body);
    // Copied: the body is a view of a read buffer.
    const d = { bytes: Buffer.from(body), cols, names: cols.map((c) => c.name) };
    this.lastDescription = body.length <= MAX_KEPT_DESCRIPTION ? d : null;
    return d;
  }

  private lastDescription: Description | null = null;

  private onServerError(err: NoticeFields, chunk: Buffer, end: number): void {
    const e = this.queue.peek();
    const error = { severity: err.severity, code: err.code, message: err.message };
    this.lastServerWasFatal = err.severity === 'FATAL' || err.severity === 'PANIC';
    // The transaction failed: none of its portals can run any more.
    this.names.endPortals();
    if (!e) {
      this.rec.event('server-error', { error });
      return;
    }
    if (e.kind === 'query') {
      e.run.error ??= error;
      return;
    }
    if (e.kind === 'sync') return;
    // Extended protocol: this message failed and the server discards everything up to Sync.
    this.queue.shift();
    if (e.kind === 'execute') {
      e.run.error = error;
      this.afterShift(chunk, end);
      this.finishRun(e.cmd, e.run, false);
    } else if (e.kind !== 'describe') {
      for (const c of e.changes ?? []) this.names.drop(c, true);
    }
    const discarded = this.queue.discardUntilSync();
    // A failed Parse or Bind is the failure of the Execute it was preparing.
    const failed = e.kind === 'execute' ? undefined : discarded.find((d) => d.kind === 'execute');
    if (this.attributed instanceof KeptBytes) {
      const bytes = this.attributed;
      this.afterShift(chunk, end);
      if (this.queue.skippingUntilSync) this.failure = { error, bytes };
    }
    for (const d of discarded) {
      if (d === failed && d.kind === 'execute') {
        d.run.error = error;
        // The error's bytes are this command's (see ownerOf).
        this.afterShift(chunk, end);
        this.finishRun(d.cmd, d.run, false);
      } else this.skip(d);
    }
  }

  /** A command completed mid-chunk: bytes after this message belong to the next owner. */
  private afterShift(chunk: Buffer, end: number): void {
    this.attributed?.addResponse(chunk.subarray(this.rangeStart, end));
    this.attributed = null;
    this.rangeStart = end;
  }

  /**
   * The client ended its COPY data. A server that failed mid-COPY answered before the client
   * stopped sending; the command's record waited here so its input covers every byte sent.
   */
  endCopyIn(): void {
    this.copyIn = null;
    const finish = this.finishAfterCopy;
    this.finishAfterCopy = null;
    finish?.();
  }

  private finishRun(cmd: CommandRecorder, run: RunState, suspended: boolean): void {
    if (run.pendingNames) this.names.drop(run.pendingNames, false);
    if (cmd === this.copyIn) {
      this.finishAfterCopy = () => this.finishRun(cmd, run, suspended);
      return;
    }
    let rows: number | null = null;
    for (const t of run.tags) {
      const n = tagRows(t);
      if (n !== null) rows = (rows ?? 0) + n;
    }
    cmd.finish({
      status: run.denied ? 'denied' : run.error ? 'error' : 'ok',
      rule: run.denied ? run.denied.rule : undefined,
      count: rows ?? run.rows,
      error: run.error ?? undefined,
      details: resultDetails(run.tags, this.transaction, suspended),
    });
  }

  private skip(e: Entry): void {
    if (e.kind === 'parse' || e.kind === 'bind' || e.kind === 'close') for (const c of e.changes ?? []) this.names.skip(c);
    if (e.kind === 'execute' || e.kind === 'query') {
      if (e.run.pendingNames) this.names.drop(e.run.pendingNames, false);
      if (e.run.denied) e.cmd.finish({ status: 'denied', rule: e.run.denied.rule, reason: e.run.denied.reason });
      else e.cmd.finish({ status: 'skipped', reason: 'an earlier message in the same pipeline failed; the server discarded this one until Sync' });
    }
  }
}

/**
 * A result's `details` as canonical JSON, `{"suspended":true,"tags":[…],"transaction":"I"}`, built
 * directly: every command writes one (test/unit/record-templates.test.ts compares it with
 * canonicalJson).
 */
export function resultDetails(tags: readonly string[], transaction: Transaction, suspended: boolean): CanonicalText {
  let out = suspended ? '{"suspended":true,"tags":[' : '{"tags":[';
  for (let i = 0; i < tags.length; i++) out += (i > 0 ? ',' : '') + jsonString(tags[i]!);
  return new CanonicalText(out + '],"transaction":' + jsonString(transaction) + '}');
}

/** Where a server message's bytes are counted: a command, or bytes kept for a command to come. */
interface ResponseSink { addResponse(chunk: Buffer): void }

class KeptBytes implements ResponseSink {
  readonly parts: Buffer[] = [];
  addResponse(chunk: Buffer): void {
    // Copied: the chunk's memory is reused once it is forwarded.
    if (chunk.length > 0) this.parts.push(Buffer.from(chunk));
  }
}
