// One client session after login: frames both directions, records every command before it is
// forwarded, and follows the responses to record outcomes. Server bytes are forwarded as they
// arrive (zero copy); client messages are forwarded whole, after their records are in the log.
import type { Socket } from 'node:net';
import { MessageFramer, ProtocolError, type FramedMessage } from './codec/framer.ts';
import { F, decodeBind, decodeCopyFail, decodeExecute, decodeFunctionCall, decodeParse, decodeQuery, decodeTarget, isFrontendType } from './codec/frontend.ts';
import { B, decodeCommandComplete, decodeDataRow, decodeNotice, decodeReadyForQuery, decodeRowDescription, encodeErrorResponse, type NoticeFields } from './codec/backend.ts';
import { LogUnavailableError } from '../evidence/log-writer.ts';
import { noteStreamed } from '../core/buffer-reclaim.ts';
import { binaryValue, textValue, type CommandRecorder, type SessionRecorder, type Value } from '../core/recorder.ts';
import { ResponseQueue, newRun, sampleValues, tagRows, type Entry, type Portal, type RunState, type Statement } from './response-tracker.ts';

/** Largest client message the gateway assembles; a larger one ends the session. */
export const MAX_CLIENT_MESSAGE = 64 * 1024 * 1024;

export class PostgresSession {
  private readonly client: Socket;
  private readonly upstream: Socket;
  private readonly rec: SessionRecorder;
  private readonly queue = new ResponseQueue();
  private readonly statements = new Map<string, Statement>();
  private readonly portals = new Map<string, Portal>();
  private readonly clientFramer: MessageFramer;
  private readonly serverFramer: MessageFramer;
  private copyIn: CommandRecorder | null = null;
  private finishAfterCopy: (() => void) | null = null;
  private transaction: 'I' | 'T' | 'E' = 'I';
  private ended = false;
  private draining = false;
  private terminatedByClient = false;
  private lastServerWasFatal = false;
  private onEnd: () => void;
  // Attribution of forwarded server bytes to the command they answer (see onServerChunk).
  private attributed: CommandRecorder | null = null;
  private rangeStart = 0;

  constructor(client: Socket, upstream: Socket, rec: SessionRecorder, onEnd: () => void) {
    this.client = client;
    this.upstream = upstream;
    this.rec = rec;
    this.onEnd = onEnd;
    this.clientFramer = new MessageFramer({ collect: () => true, maxCollectedBody: MAX_CLIENT_MESSAGE, isValidType: isFrontendType, peer: 'client' });
    this.serverFramer = new MessageFramer({ collect: (t) => this.wantServerBody(t), maxCollectedBody: 1 << 30, peer: 'upstream' });
  }

  start(): void {
    this.client.on('data', (c: Buffer) => {
      noteStreamed(c.length);
      this.guard(() => this.onClientChunk(c), 'client');
    });
    this.upstream.on('data', (c: Buffer) => {
      noteStreamed(c.length);
      this.guard(() => this.onServerChunk(c), 'upstream');
    });
    this.client.on('drain', () => this.upstream.resume());
    this.upstream.on('drain', () => this.client.resume());
    this.client.on('close', () => this.end(this.terminatedByClient ? 'client terminated' : 'client disconnected'));
    this.upstream.on('close', () => this.upstreamClosed());
    this.client.on('error', () => this.client.destroy());
    this.upstream.on('error', () => this.upstream.destroy());
    this.client.resume();
    this.upstream.resume();
  }

  /** Graceful stop: close now if idle, else after the command in flight completes. */
  shutdown(): void {
    this.draining = true;
    if (this.isIdle()) this.closeWithError(shutdownNotice, 'gateway shutdown');
  }

  /** After the grace period: close whatever is still running. */
  forceClose(): void {
    this.closeWithError(shutdownNotice, 'gateway shutdown (grace period over)');
  }

  get id(): string {
    return this.rec.id;
  }

  private isIdle(): boolean {
    return this.queue.length === 0 && this.clientFramer.idle && !this.copyIn;
  }

  private guard(fn: () => void, peer: 'client' | 'upstream'): void {
    if (this.ended) return;
    try {
      fn();
    } catch (e) {
      const err = e as Error;
      if (err instanceof LogUnavailableError) return this.refuseUnlogged(err);
      try {
        this.rec.event('protocol-error', { peer, message: err.message });
      } catch {
        // the log itself failed; closing the session below is all that is left to do
      }
      const code = err instanceof ProtocolError ? err.sqlState : 'XX000';
      const message = peer === 'client' ? `gateway: protocol error: ${err.message}` : `gateway: upstream protocol error: ${err.message}`;
      this.closeWithError({ severity: 'FATAL', code, message }, `protocol error (${peer})`);
    }
  }

  /** Fail closed: a command that cannot be recorded is not forwarded, and the session ends. */
  private refuseUnlogged(err: Error): void {
    this.closeWithError({ severity: 'FATAL', code: '58030', message: `gateway: ${err.message}; the command was not forwarded` }, 'session log unavailable');
  }

  // ---- client -> upstream ----------------------------------------------------------------

  private onClientChunk(chunk: Buffer): void {
    const out: Buffer[] = [];
    let runStart = -1;
    let runEnd = -1;
    let recorded = false;
    this.clientFramer.push(chunk, (m) => {
      const forward = this.onClientMessage(m);
      if (forward === 'recorded') recorded = true;
      if (forward === 'drop') return;
      if (m.start >= 0 && m.start === runEnd) {
        runEnd = m.end;
      } else {
        if (runStart >= 0) out.push(chunk.subarray(runStart, runEnd));
        runStart = runEnd = -1;
        if (m.start >= 0) {
          runStart = m.start;
          runEnd = m.end;
        } else out.push(m.assembled!);
      }
    });
    if (runStart >= 0) out.push(runStart === 0 && runEnd === chunk.length ? chunk : chunk.subarray(runStart, runEnd));
    if (out.length > 0) this.send(out, recorded);
  }

  /** Forwards the messages; when they hold a new command, only once its record is written. */
  private send(bufs: Buffer[], recorded: boolean): void {
    if (recorded) {
      const failure = this.rec.writer.flushSync();
      if (failure) return this.refuseUnlogged(failure);
    }
    this.writeUpstream(bufs);
  }

  private writeUpstream(bufs: Buffer[]): void {
    let ok = true;
    for (const b of bufs) ok = this.upstream.write(b);
    if (!ok) this.client.pause();
  }

  /** Returns whether the message is forwarded, and whether it added a command record. */
  private onClientMessage(m: FramedMessage): 'forward' | 'recorded' | 'drop' {
    const body = m.body!;
    switch (m.type) {
      case F.Query: {
        const text = decodeQuery(body);
        const cmd = this.rec.beginCommand({ text, protocol: 'simple' });
        this.queue.push({ kind: 'query', cmd, run: newRun() });
        return 'recorded';
      }
      case F.Parse: {
        const p = decodeParse(body);
        this.statements.set(p.statement, { text: p.query, paramTypes: p.paramTypes, columns: null });
        this.expect({ kind: 'parse' });
        return 'forward';
      }
      case F.Bind: {
        const b = decodeBind(body);
        const statement = this.statements.get(b.statement) ?? null;
        const params: Value[] = b.params.map((v, i) => {
          if (v === null) return null;
          const format = b.paramFormats.length === 1 ? b.paramFormats[0] : b.paramFormats[i] ?? 0;
          return format === 1 ? binaryValue(v) : textValue(v.toString('utf8'));
        });
        this.portals.set(b.portal, { statement, params, resultFormats: b.resultFormats, columns: null });
        this.expect({ kind: 'bind' });
        return 'forward';
      }
      case F.Describe: {
        const d = decodeTarget(body, 'Describe message');
        const target = d.kind === 'S' ? this.statements.get(d.name) : this.portals.get(d.name);
        this.expect({ kind: 'describe', target: target ?? null });
        return 'forward';
      }
      case F.Execute: {
        const e = decodeExecute(body);
        const portal = this.portals.get(e.portal) ?? null;
        const cmd = this.rec.beginCommand({
          text: portal?.statement?.text ?? '',
          protocol: 'extended',
          params: portal?.params ?? [],
          ...(e.portal ? { portal: e.portal } : {}),
          ...(e.maxRows ? { max_rows: e.maxRows } : {}),
        });
        const entry: Entry = { kind: 'execute', cmd, run: newRun(), portal };
        if (this.queue.skippingUntilSync) this.skip(entry);
        else this.queue.push(entry);
        return 'recorded';
      }
      case F.Close: {
        const c = decodeTarget(body, 'Close message');
        if (c.kind === 'S') this.statements.delete(c.name);
        else this.portals.delete(c.name);
        this.expect({ kind: 'close' });
        return 'forward';
      }
      case F.Sync:
        this.queue.skippingUntilSync = false;
        this.queue.push({ kind: 'sync' });
        return 'forward';
      case F.Flush:
        return 'forward';
      case F.FunctionCall: {
        const f = decodeFunctionCall(body);
        const cmd = this.rec.beginCommand({
          text: `-- function call oid ${f.oid}`,
          protocol: 'function-call',
          params: f.args.map((a) => (a === null ? null : binaryValue(a))),
        });
        this.queue.push({ kind: 'query', cmd, run: newRun() });
        return 'recorded';
      }
      case F.CopyData:
        this.copyIn?.addInput(body);
        return 'forward';
      case F.CopyDone:
        this.endCopyIn();
        return 'forward';
      case F.CopyFail:
        decodeCopyFail(body);
        this.endCopyIn();
        return 'forward';
      case F.Terminate:
        this.terminatedByClient = true;
        return 'forward';
      default:
        throw new ProtocolError(`unexpected message type ${m.type} from client`);
    }
  }

  private expect(e: Entry): void {
    if (!this.queue.skippingUntilSync) this.queue.push(e);
  }

  private skip(e: Entry): void {
    if (e.kind === 'execute' || e.kind === 'query') {
      e.cmd.finish({ status: 'skipped', reason: 'an earlier message in the same pipeline failed; the server discarded this one until Sync' });
    }
  }

  // ---- upstream -> client ----------------------------------------------------------------

  private wantServerBody(t: number): boolean {
    if (t === B.DataRow || t === B.CopyData) {
      const e = this.queue.peek();
      return e !== undefined && (e.kind === 'query' || e.kind === 'execute') && e.cmd.wantsSample;
    }
    return t !== B.NotificationResponse && t !== B.FunctionCallResponse;
  }

  private headCommand(): CommandRecorder | null {
    const e = this.queue.peek();
    return e !== undefined && (e.kind === 'query' || e.kind === 'execute') ? e.cmd : null;
  }

  private onServerChunk(chunk: Buffer): void {
    this.rangeStart = 0;
    this.serverFramer.push(chunk, (m) => {
      // A message belongs to the command at the head of the queue when it starts; responses are
      // hashed in contiguous ranges to keep per-message work small.
      if (m.start >= 0) {
        const owner = this.headCommand();
        if (owner !== this.attributed) {
          this.attributed?.addResponse(chunk.subarray(this.rangeStart, m.start));
          this.attributed = owner;
          this.rangeStart = m.start;
        }
      }
      this.onServerMessage(m.type, m.body, chunk, m.end);
    });
    const partial = this.serverFramer.partialStart;
    const cut = partial === null ? chunk.length : Math.max(partial, this.rangeStart);
    this.attributed?.addResponse(chunk.subarray(this.rangeStart, cut));
    if (partial !== null) {
      this.attributed = this.headCommand();
      this.attributed?.addResponse(chunk.subarray(cut));
    }
    if (!this.client.write(chunk)) this.upstream.pause();
    if (this.draining && this.isIdle()) this.closeWithError(shutdownNotice, 'gateway shutdown');
  }

  private onServerMessage(type: number, body: Buffer | null, chunk: Buffer, end: number): void {
    const e = this.queue.peek();
    const run = e && (e.kind === 'query' || e.kind === 'execute') ? e.run : null;
    switch (type) {
      case B.DataRow:
        if (run) {
          run.rows++;
          if (body) {
            const portal = e!.kind === 'execute' ? e!.portal : null;
            const cols = run.columns ?? portal?.columns ?? portal?.statement?.columns ?? null;
            (e as { cmd: CommandRecorder }).cmd.addSampleRow(sampleValues(decodeDataRow(body), cols, portal ? portal.resultFormats : null));
          }
        }
        return;
      case B.RowDescription: {
        const cols = decodeRowDescription(body!);
        if (e?.kind === 'describe') {
          if (e.target) e.target.columns = cols;
          this.queue.shift();
        } else if (run) {
          run.columns = cols;
          (e as { cmd: CommandRecorder }).cmd.setColumns(cols.map((c) => c.name));
        }
        return;
      }
      case B.NoData:
        if (e?.kind === 'describe') this.queue.shift();
        return;
      case B.ParameterDescription:
        return;
      case B.ParseComplete:
      case B.BindComplete:
      case B.CloseComplete:
        if (e && (e.kind === 'parse' || e.kind === 'bind' || e.kind === 'close')) this.queue.shift();
        return;
      case B.CommandComplete:
      case B.EmptyQueryResponse:
      case B.PortalSuspended:
        if (run) {
          if (type === B.CommandComplete) run.tags.push(decodeCommandComplete(body!));
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
        if (run) run.copyBinary = body![0] === 1;
        return;
      case B.CopyData:
        if (run && body) {
          (e as { cmd: CommandRecorder }).cmd.addSampleRow([run.copyBinary ? binaryValue(body) : textValue(body.toString('utf8').replace(/\n$/, ''))]);
        }
        return;
      case B.ErrorResponse:
        this.onServerError(decodeNotice(body!), chunk, end);
        return;
      case B.ReadyForQuery:
        this.transaction = decodeReadyForQuery(body!);
        if (e?.kind === 'query') {
          this.afterShift(chunk, end);
          this.finishRun(e.cmd, e.run, false);
          this.queue.shift();
        } else if (e?.kind === 'sync') this.queue.shift();
        return;
      default:
        return; // NoticeResponse, NotificationResponse, ParameterStatus, CopyDone, ...: relayed as they are
    }
  }

  private onServerError(err: NoticeFields, chunk: Buffer, end: number): void {
    const e = this.queue.peek();
    const error = { severity: err.severity, code: err.code, message: err.message };
    this.lastServerWasFatal = err.severity === 'FATAL' || err.severity === 'PANIC';
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
    }
    const discarded = this.queue.discardUntilSync();
    // A failed Parse or Bind is the failure of the Execute it was preparing.
    const failed = e.kind === 'execute' ? undefined : discarded.find((d) => d.kind === 'execute');
    for (const d of discarded) {
      if (d === failed && d.kind === 'execute') {
        d.run.error = error;
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
  private endCopyIn(): void {
    this.copyIn = null;
    const finish = this.finishAfterCopy;
    this.finishAfterCopy = null;
    finish?.();
  }

  private finishRun(cmd: CommandRecorder, run: RunState, suspended: boolean): void {
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
      status: run.error ? 'error' : 'ok',
      tags: run.tags,
      rows: rows ?? run.rows,
      ...(suspended ? { suspended: true } : {}),
      ...(run.error ? { error: run.error } : {}),
      transaction: this.transaction,
    });
  }

  // ---- endings ---------------------------------------------------------------------------

  private upstreamClosed(): void {
    if (this.ended) return;
    if (this.terminatedByClient) return this.end('client terminated');
    if (this.lastServerWasFatal) return this.end('upstream closed the connection after a fatal error');
    this.closeWithError(
      { severity: 'FATAL', code: '08006', message: `gateway: the connection to upstream ${this.rec.target} was lost` },
      'upstream connection lost',
    );
  }

  private closeWithError(notice: NoticeFields, reason: string): void {
    if (this.ended) return;
    if (!this.client.destroyed) this.client.end(encodeErrorResponse(notice));
    this.end(reason, notice);
  }

  private end(reason: string, notice?: NoticeFields): void {
    if (this.ended) return;
    this.ended = true;
    const error = notice ? { severity: notice.severity, code: notice.code, message: notice.message } : undefined;
    try {
      this.copyIn = null;
      this.finishAfterCopy?.();
      for (const e of this.queue.drain()) {
        if ((e.kind === 'query' || e.kind === 'execute') && !e.cmd.finished) {
          e.cmd.finish({ status: 'error', tags: e.run.tags, rows: e.run.rows, error: e.run.error ?? error ?? { severity: 'FATAL', code: '08006', message: `session ended: ${reason}` } });
        }
      }
      this.rec.close(reason, { transaction: this.transaction });
    } catch {
      // The log failed; the session is closing regardless.
    }
    this.upstream.destroy();
    if (!notice) this.client.destroy();
    else this.client.setTimeout(1000, () => this.client.destroy());
    this.onEnd();
  }
}

const shutdownNotice: NoticeFields = {
  severity: 'FATAL',
  code: '57P01',
  message: 'terminating connection because the gateway is shutting down',
};
