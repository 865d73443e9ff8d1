// One client session after login: frames both directions, records every command before it is
// forwarded, and follows the responses to record outcomes. Server bytes are forwarded as they
// arrive (zero copy); client messages are forwarded whole, after their records are in the log.
import type { Socket } from 'node:net';
import { MessageFramer, ProtocolError, type FramedMessage } from './codec/framer.ts';
import { F, decodeBind, decodeCopyFail, decodeExecute, decodeFunctionCall, decodeParse, decodeQuery, decodeTarget, isFrontendType } from './codec/frontend.ts';
import { encodeErrorResponse, encodeNoticeResponse, type NoticeFields } from './codec/backend.ts';
import { LogUnavailableError } from '../evidence/log-writer.ts';
import { noteStreamed } from '../core/buffer-reclaim.ts';
import { binaryValue, type SessionRecorder } from '../core/recorder.ts';
import { newRun, type RunState } from './response-queue.ts';
import { BackendTracker } from './backend-tracker.ts';
import { decisionFields, judge, judgeOpaque, judgeWithHazard, refusalQuery, refusalState, type PolicyContext } from './enforce.ts';
import { StatementRegistry } from './statement-registry.ts';
import { ExtendedProtocol, mayAddNames, type ExtendedAction } from './extended-protocol.ts';
import type { Decision } from '../policy/engine.ts';
import { HeldCommand, type HoldPlan } from '../core/hold.ts';
import { Outbox, detached, writeAll } from './outbox.ts';
import { ForwardAfterRecord } from '../core/forward-after-record.ts';
import { closeWithFinalError } from './final-error.ts';
import type { ResponseMasking } from './response-masking.ts';
import type { CatalogChanges } from './table-names.ts';
import { copyOuts } from './copy-masking.ts';
import type { Masker } from '../masking/engine.ts';
import { maskPasswords } from './role-passwords.ts';
import { statementFacts } from './computed-columns.ts';
import { CanonicalText } from '../evidence/canonical-json.ts';

/** Largest client message the gateway assembles; a larger one ends the session. */
export const MAX_CLIENT_MESSAGE = 64 * 1024 * 1024;

export class PostgresSession {
  private readonly client: Socket;
  private readonly upstream: Socket;
  private readonly rec: SessionRecorder;
  private readonly policy: PolicyContext | null;
  private readonly backend: BackendTracker;
  /** Prepared statements and portals, as the server confirmed them (see statement-registry.ts). */
  private readonly names = new StatementRegistry();
  private readonly clientFramer: MessageFramer;
  private ended = false;
  /** The command waiting for approval, and the client messages that arrived after it. */
  private held: HeldCommand | null = null;
  private backlog: FramedMessage[] = [];
  private backlogBytes = 0;
  private draining = false;
  /** Reading paused because too many client messages await their answer (see readClientIfAllowed). */
  private tooManyUnanswered = false;
  private terminatedByClient = false;
  private onEnd: () => void;

  /** Masks what the log records of the client's side (command text, parameters); null for none. */
  private readonly logMasker: Masker | null;
  /** COPY ... TO STDOUT needs its table named for column masking. */
  private readonly copyMasking: boolean;
  /** Parse, Bind, Describe, Execute, Close and Sync. */
  private readonly extended: ExtendedProtocol;
  /** Column masking: each run says what its computed columns may come from (computed-columns.ts). */
  private readonly masksComputed: boolean;
  /** Column masking's catalog, told of DDL; while it is read after this session's DDL, what the
   * server sends waits here (with its ReadyForQuery), so the next result is planned with it. */
  private readonly catalog: CatalogChanges | null;
  private awaitingCatalog: Buffer[] | null = null;

  /** The ParameterStatus values of the login (encodings key statement names, statement-registry.ts). */
  loginParameters(parameters: [string, string][]): void {
    for (const [k, v] of parameters) this.names.parameterStatus(k, v);
  }

  constructor(client: Socket, upstream: Socket, rec: SessionRecorder, policy: PolicyContext | null, masking: ResponseMasking | null, masker: Masker | null, onEnd: () => void) {
    this.logMasker = masker?.enabled && masker.applyTo.log && masker.detects ? masker : null;
    this.policy = policy;
    this.client = client;
    this.upstream = upstream;
    this.rec = rec;
    this.onEnd = onEnd;
    this.clientFramer = new MessageFramer({ collect: () => true, maxCollectedBody: MAX_CLIENT_MESSAGE, isValidType: isFrontendType, peer: 'client' });
    this.backend = new BackendTracker(rec, masking, this.names);
    this.copyMasking = masking?.masksCopyColumns ?? false;
    this.catalog = masking?.catalogChanges ?? null;
    this.masksComputed = masking?.masksComputed ?? false;
    this.forwarder = new ForwardAfterRecord<Buffer>(rec.writer, {
      isOpen: () => !this.ended,
      write: (bufs) => {
        try {
          this.writeUpstream(bufs);
        } catch (e) {
          this.failed(e as Error, 'client');
        }
      },
      refuse: (failure) => this.refuseUnlogged(failure),
    });
    this.extended = new ExtendedProtocol({
      rec,
      policy,
      backend: this.backend,
      names: this.names,
      copyMasking: this.copyMasking,
      learnsColumns: masking !== null,
      masksComputed: this.masksComputed,
      logText: (t) => this.logText(t),
      logValue: (v) => this.logValue(v),
    });
  }

  start(): void {
    this.client.on('data', this.onClientData);
    this.upstream.on('data', this.onUpstreamData);
    this.client.on('drain', () => this.upstream.resume());
    this.upstream.on('drain', () => this.readClientIfAllowed());
    // A command may wait minutes for approval: keep both connections alive meanwhile.
    this.client.setKeepAlive(true, KEEPALIVE_MS);
    this.upstream.setKeepAlive(true, KEEPALIVE_MS);
    this.client.on('close', () => this.end(this.terminatedByClient ? 'client terminated' : 'client disconnected'));
    this.upstream.on('close', () => this.upstreamClosed());
    this.client.on('error', () => this.client.destroy());
    this.upstream.on('error', () => this.upstream.destroy());
    this.readClientIfAllowed();
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
    return this.backend.idle && this.clientFramer.idle && !this.held && !this.forwarder.waiting;
  }

  // Read handlers made once: no closure per chunk on the hot path (guard() written out).
  private readonly onClientData = (c: Buffer): void => this.onRead(c, 'client');
  private readonly onUpstreamData = (c: Buffer): void => this.onRead(c, 'upstream');

  private onRead(c: Buffer, peer: 'client' | 'upstream'): void {
    noteStreamed(c.length);
    if (peer === 'client') this.rec.totals.bytes_from_client += c.length;
    else this.rec.totals.bytes_to_client += c.length;
    if (this.ended) return;
    try {
      if (peer === 'client') this.onClientChunk(c);
      else this.onServerChunk(c);
    } catch (e) {
      this.failed(e as Error, peer);
    }
  }

  private guard(fn: () => void, peer: 'client' | 'upstream'): void {
    if (this.ended) return;
    try {
      fn();
    } catch (e) {
      this.failed(e as Error, peer);
    }
  }

  /** What was being done for `peer` threw: the session ends with an error naming the fault. */
  private failed(err: Error, peer: 'client' | 'upstream'): void {
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

  /** Fail closed: a command that cannot be recorded is not forwarded, and the session ends. */
  private refuseUnlogged(err: Error): void {
    this.closeWithError({ severity: 'FATAL', code: '58030', message: `gateway: ${err.message}; the command was not forwarded` }, 'session log unavailable');
  }

  // ---- client -> upstream ----------------------------------------------------------------

  private onClientChunk(chunk: Buffer): void {
    const out = new Outbox(chunk);
    this.reading = out;
    this.clientFramer.push(chunk, this.onClientMessageFramed);
    // Not kept past the read: an idle session holds no chunk.
    this.reading = null;
    this.flushOutbox(out);
    this.readClientIfAllowed();
  }

  /** The outbox of the client chunk being read (its messages are framed by a method, not a closure). */
  private reading: Outbox | null = null;
  private readonly onClientMessageFramed = (m: FramedMessage): void => {
    const out = this.reading!;
    // While a command waits for approval, everything after it waits too, in order.
    if (this.held) this.keepWhileHeld(m, out.chunk!);
    else this.dispatch(m, out);
  };

  private dispatch(m: FramedMessage, out: Outbox): void {
    const forward = this.onClientMessage(m);
    if (forward === 'forward' || forward === 'recorded') return out.message(m, forward === 'recorded');
    // Denied: the refusal goes upstream in place of the client's message.
    if (Array.isArray(forward)) return out.replace(forward);
    // The gateway's own messages (a Describe) go right before the client's.
    if (!('hold' in forward)) return out.replace([...forward.before, out.raw(m)]);
    // Held: what came before goes now; the held message and the rest wait for the verdict.
    this.flushOutbox(out);
    if (!this.ended) this.hold(forward.hold, forward.before ? Buffer.concat([...forward.before, out.raw(m)]) : out.raw(m));
  }

  /**
   * The client keeps being read while a command is held, so a disconnect or Terminate is seen at
   * once (and withdraws the request); past BACKLOG_LIMIT bytes reading pauses until the verdict.
   */
  private keepWhileHeld(m: FramedMessage, chunk: Buffer): void {
    const kept = detached(m, chunk);
    this.backlog.push(kept);
    // Each message counts its bookkeeping too, so tiny messages are bounded in number as well.
    this.backlogBytes += kept.assembled!.length + BACKLOG_MESSAGE_COST;
    if (m.type === F.Terminate) this.held?.pending.withdraw('client', 'the client ended the session while the command waited for approval');
    else this.readClientIfAllowed();
  }

  /**
   * The one place that decides whether the client is read, from every reason together, so that
   * one reason's end never resumes reading another reason still pauses: the upstream's write
   * buffer is full (until its 'drain'); bytes kept behind a held command are past BACKLOG_LIMIT
   * (until the verdict); or too many forwarded messages await their answer. The last bounds what
   * the gateway keeps per message (a response-queue entry, the names it may change) for a client
   * that pipelines tiny messages and reads no answer: TCP's buffers alone would let a few MB of
   * Syncs cost a hundred MB. The server answers in order what it was sent, so the count falls as
   * it answers and reading resumes at half the mark; the server holds far fewer answers unflushed
   * (its 8 kB output buffer) than the mark, so a client that reads its answers never waits on it.
   */
  private readClientIfAllowed(): void {
    if (this.ended) return;
    const unanswered = this.backend.unanswered;
    if (unanswered > UNANSWERED_HIGH_WATER) this.tooManyUnanswered = true;
    else if (unanswered <= UNANSWERED_HIGH_WATER / 2) this.tooManyUnanswered = false;
    const backlogFull = this.held !== null && this.backlogBytes > BACKLOG_LIMIT;
    if (this.tooManyUnanswered || backlogFull || this.upstream.writableNeedDrain) this.client.pause();
    else this.client.resume();
  }

  private flushOutbox(out: Outbox): void {
    const bufs = out.take();
    if (bufs.length > 0) this.send(bufs, out.recorded);
    out.recorded = false;
  }

  private hold(plan: HoldPlan, message: Buffer): void {
    const broker = this.policy?.approvals;
    if (!broker) throw new Error('a rule asks for approval but no approver is configured');
    this.backlogBytes = 0;
    this.held = new HeldCommand(plan, [message], broker, this.rec, (text, hint) => this.toClient(this.backend.inject(encodeNoticeResponse({ severity: 'NOTICE', code: '00000', message: text, ...(hint ? { hint } : {}) }))));
    const failure = this.rec.writer.flushSync();
    if (failure) return this.refuseUnlogged(failure);
    const held = this.held;
    void held.pending.verdict.then((v) => {
      if (this.ended || this.held !== held) return;
      this.guard(() => {
        const bufs = held.settle(v, this.rec) ?? [message];
        this.held = null;
        this.send(bufs, true);
        this.replayBacklog();
      }, 'client');
    });
  }

  /** Withdraws a held command when the client cancels it (it never reached the server). */
  cancelHold(): boolean {
    if (!this.held) return false;
    this.held.pending.withdraw('client', 'cancelled by the client');
    return true;
  }

  /** After a verdict: the messages that arrived meanwhile, until the next hold. */
  private replayBacklog(): void {
    const out = new Outbox(null);
    while (!this.held && !this.ended && this.backlog.length > 0) this.dispatch(this.backlog.shift()!, out);
    if (!this.ended) this.flushOutbox(out);
    // The replayed messages may be many unanswered ones: reading waits until they drain.
    this.readClientIfAllowed();
  }

  private toClient(bufs: Buffer[]): void {
    if (!writeAll(this.client, bufs)) this.upstream.pause();
  }

  /** Forwards the messages; when they hold a new command, only once its record is written. */
  private send(bufs: Buffer[], recorded: boolean): void {
    this.forwarder.send(bufs, recorded);
  }

  /** Client messages held until their command's record is written (core/forward-after-record.ts). */
  private readonly forwarder: ForwardAfterRecord<Buffer>;

  private writeUpstream(bufs: Buffer[]): void {
    writeAll(this.upstream, bufs);
    this.readClientIfAllowed();
  }

  /**
   * 'forward' or 'recorded' (forward after the new command record is written), or the messages
   * to send upstream instead of a denied one.
   */
  private onClientMessage(m: FramedMessage): ClientAction {
    const body = m.body!;
    switch (m.type) {
      case F.Query: {
        const text = decodeQuery(body);
        // A Query is a unit of its own: an error in it discards nothing after it, and before it.
        this.names.nextBlock();
        // A FETCH or MOVE of a portal a protocol Bind made runs its statement: unclassified too.
        const hazard = this.extended.fetchHazard(text);
        const own = this.policy ? judge(this.policy, text, this.names.preparedClasses(text)) : null;
        const j = own && hazard && this.policy ? judgeWithHazard(this.policy, own, hazard) : own;
        const decided = j ? decisionFields(j) : null;
        // Every member present (undefined when absent): one object shape for every query.
        const cmd = this.rec.beginCommand({ kind: 'pg.query', text: this.logText(text), details: SIMPLE_QUERY_DETAILS, unclassified: hazard ?? undefined, decision: decided?.decision, facts: decided?.facts });
        const run = newRun();
        if (this.copyMasking) run.copyOuts = copyOuts(text);
        if (this.masksComputed) run.computed = this.extended.computedSource(statementFacts(text));
        this.extended.followNames(run, this.extended.effectsOf(text, j), mayAddNames(text, j));
        this.backend.expect({ kind: 'query', cmd, run });
        this.names.nextBlock();
        if (j?.decision.action === 'approve') {
          return { hold: { decision: j.decision, cmd, text: this.logText(text), approved: () => undefined, denied: (d, why) => this.refuseSimple(run, d, refusalState(why)) } };
        }
        if (j && j.decision.action !== 'allow') return this.refuseSimple(run, j.decision);
        return 'recorded';
      }
      case F.Parse:
        return this.extended.parse(decodeParse(body));
      case F.Bind:
        return this.extended.bind(decodeBind(body));
      case F.Describe:
        return this.extended.describe(decodeTarget(body, 'Describe message'));
      case F.Execute:
        return this.extended.execute(decodeExecute(body));
      case F.Close:
        return this.extended.close(decodeTarget(body, 'Close message'));
      case F.Sync:
        return this.extended.sync();
      case F.Flush:
        return 'forward';
      case F.FunctionCall: {
        const f = decodeFunctionCall(body);
        // A function named by OID is opaque to the parser: it gets the unclassified decision.
        const j = this.policy ? judgeOpaque(this.policy, `a FunctionCall message runs function OID ${f.oid}, which no statement describes`) : null;
        const cmd = this.rec.beginCommand({
          kind: 'pg.function-call',
          text: `-- function call oid ${f.oid}`,
          details: { protocol: 'function-call', params: f.args.map((a) => (a === null ? null : binaryValue(a))) },
          ...(j ? decisionFields(j) : {}),
        });
        const run = newRun();
        run.functionOid = f.oid;
        this.backend.expect({ kind: 'query', cmd, run });
        // The reply to a FunctionCall, like a Query's, ends with ReadyForQuery.
        if (j?.decision.action === 'approve') {
          return { hold: { decision: j.decision, cmd, text: `-- function call oid ${f.oid}`, approved: () => undefined, denied: (d, why) => this.refuseSimple(run, d, refusalState(why)) } };
        }
        if (j && j.decision.action !== 'allow') return this.refuseSimple(run, j.decision);
        return 'recorded';
      }
      case F.CopyData:
        this.backend.copyData(body);
        return 'forward';
      case F.CopyDone:
        this.backend.endCopyIn();
        return 'forward';
      case F.CopyFail:
        decodeCopyFail(body);
        this.backend.endCopyIn();
        return 'forward';
      case F.Terminate:
        this.terminatedByClient = true;
        return 'forward';
      default:
        throw new ProtocolError(`unexpected message type ${m.type} from client`);
    }
  }

  /**
   * SQL as the session log (and approval requests) keep it: passwords of role and user-mapping
   * statements masked (role-passwords.ts), and detectors' findings when masking applies to the log.
   */
  private logText(text: string): string {
    return this.logValue(maskPasswords(text).text);
  }

  /** A value (a parameter) as the log keeps it: with detectors' findings masked. */
  private logValue(text: string): string {
    return this.logMasker?.maskText(text)?.text ?? text;
  }

  private refuseSimple(run: RunState, decision: Decision, sqlState?: string): Buffer[] {
    run.denied = decision;
    return [refusalQuery(decision, sqlState)];
  }

  // ---- upstream -> client ----------------------------------------------------------------

  private onServerChunk(chunk: Buffer): void {
    const out = this.backend.observe(chunk);
    // Answers came back: the client may be read again (see readClientIfAllowed).
    if (this.tooManyUnanswered) this.readClientIfAllowed();
    if (this.awaitingCatalog) {
      this.awaitingCatalog.push(...out);
      return;
    }
    const read = this.catalog?.catalogRead(this.backend) ?? null;
    if (read) {
      this.awaitingCatalog = out;
      this.upstream.pause();
      void read.then(() => this.guard(() => this.catalogWasRead(), 'upstream'));
      return;
    }
    this.toClient(out);
    if (this.draining && this.isIdle()) this.closeWithError(shutdownNotice, 'gateway shutdown');
  }

  private catalogWasRead(): void {
    const out = this.awaitingCatalog ?? [];
    this.awaitingCatalog = null;
    this.toClient(out);
    if (!this.client.writableNeedDrain) this.upstream.resume();
    if (this.draining && this.isIdle()) this.closeWithError(shutdownNotice, 'gateway shutdown');
  }

  // ---- endings ---------------------------------------------------------------------------

  private upstreamClosed(): void {
    if (this.ended) return;
    if (this.terminatedByClient) return this.end('client terminated');
    if (this.backend.lastServerWasFatal) return this.end('upstream closed the connection after a fatal error');
    this.closeWithError(
      { severity: 'FATAL', code: '08006', message: `gateway: the connection to upstream ${this.rec.target} was lost` },
      'upstream connection lost',
    );
  }

  private closeWithError(notice: NoticeFields, reason: string): void {
    if (this.ended) return;
    // The client reads the error even while it is still sending (final-error.ts).
    closeWithFinalError(this.client, encodeErrorResponse(notice), FINAL_ERROR_MAX_MS);
    this.end(reason, notice);
  }

  private end(reason: string, notice?: NoticeFields): void {
    if (this.ended) return;
    this.ended = true;
    if (this.held) {
      // Recorded before the session's close: the request, its verdict and the command's end.
      const held = this.held;
      this.held = null;
      const by = this.terminatedByClient || /client/.test(reason) ? 'client' : 'gateway';
      try {
        held.abort(by, `the session ended (${reason}) while the command waited for approval`, this.rec);
      } catch {
        // the log failed; the request is withdrawn all the same
      }
    }
    const error = notice ? { severity: notice.severity, code: notice.code, message: notice.message } : undefined;
    try {
      this.backend.abandon(error ?? { severity: 'FATAL', code: '08006', message: `session ended: ${reason}` });
      this.rec.close(reason, { transaction: this.backend.transaction });
    } catch {
      // The log failed; the session is closing regardless.
    }
    this.upstream.destroy();
    if (!notice) this.client.destroy();
    this.onEnd();
  }
}

type ClientAction = ExtendedAction;

/** Every simple query's `details`, written as it is. */
const SIMPLE_QUERY_DETAILS = new CanonicalText('{"protocol":"simple"}');

const KEEPALIVE_MS = 30_000;
/** How long a closing session's client may keep sending (discarded) before it is cut off. */
const FINAL_ERROR_MAX_MS = 30_000;
/** Client bytes kept behind a held command before reading pauses. */
const BACKLOG_LIMIT = 4 * 1024 * 1024;
/** What a message kept behind a held command counts beyond its bytes (its bookkeeping). */
const BACKLOG_MESSAGE_COST = 256;
/** Forwarded client messages awaiting their answer past which reading the client pauses (until half). */
const UNANSWERED_HIGH_WATER = 4096;

const shutdownNotice: NoticeFields = {
  severity: 'FATAL',
  code: '57P01',
  message: 'terminating connection because the gateway is shutting down',
};
