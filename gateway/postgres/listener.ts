// The per-target listener: answers the startup dialogue (SSL/GSS requests, protocol version,
// SCRAM with the per-run password), logs in upstream, then hands the pair of sockets to a
// PostgresSession. Cancel requests are mapped from the key we gave the client to upstream's.
import net from 'node:net';
import { randomInt } from 'node:crypto';
import { ProtocolError } from './codec/framer.ts';
import type { StartupPacket } from './codec/startup.ts';
import { readStartup, StartupRefusal } from './startup-reader.ts';
import { closeAfter, LoginGuard, MAX_AUTH_MESSAGE_BODY } from './login-limits.ts';
import {
  AUTH, encodeAuthentication, encodeAuthenticationSASL, encodeBackendKeyData, encodeErrorResponse,
  encodeNegotiateProtocolVersion, encodeParameterStatus, encodeReadyForQuery, type NoticeFields,
} from './codec/backend.ts';
import { F, decodeSASLInitialResponse } from './codec/frontend.ts';
import { MessageQueue } from './message-queue.ts';
import { ScramServer, makeVerifier, type ScramVerifier } from './scram.ts';
import { loginUpstream, sendUpstreamCancel, UpstreamError } from './upstream.ts';
import { PostgresSession } from './session.ts';
import type { PostgresTarget } from './target.ts';
import { targetVariable } from '../core/target-variable.ts';
import type { Recorder, SessionRecorder } from '../core/recorder.ts';
import { decisionRecord, type Claims, type Decision, type PolicyRules } from '../policy/engine.ts';
import { judge, policyContext, type PolicyContext } from './enforce.ts';
import { asSetStatements, readStartupParameters, type StartupReading } from './startup-settings.ts';
import type { ApprovalBroker } from '../approval/broker.ts';
import type { Masker } from '../masking/engine.ts';
import { ResponseMasking } from './response-masking.ts';
import { TableNames } from './table-names.ts';

/** Sends a final error and closes; what the client sends meanwhile is discarded, and it is cut off after 1 s. */
function refuse(socket: net.Socket, notice: NoticeFields): void {
  closeAfter(socket, encodeErrorResponse(notice));
}

export interface ListenerOptions {
  target: PostgresTarget;
  /** The per-run password clients must present. */
  clientPassword: string;
  /** The upstream password, fetched per upstream connection (Azure tokens expire). */
  upstreamPassword: () => Promise<string>;
  recorder: Recorder;
  /** Rules and the identity claims they match; null when the policy has no rules. */
  policy: { rules: PolicyRules; claims: Claims } | null;
  /** Where held commands wait for a verdict; null when the policy never asks for approval. */
  approvals?: ApprovalBroker | null;
  /** Masking rules; null when the policy masks nothing. */
  masker?: Masker | null;
  /** Bounds on connections that have not authenticated yet (default: login-limits.ts). */
  loginGuard?: LoginGuard;
}

interface CancelKey { secret: number; session: PostgresSession; upstreamKey: { processId: number; secretKey: Buffer }; rec: SessionRecorder }

export class PostgresListener {
  private readonly opts: ListenerOptions;
  private readonly verifier: ScramVerifier;
  private readonly server: net.Server;
  private readonly sessions = new Set<PostgresSession>();
  private readonly pendingSockets = new Set<net.Socket>();
  private readonly loginGuard: LoginGuard;
  private readonly cancelKeys = new Map<number, CancelKey>();
  private stopping = false;
  private idleWaiters: (() => void)[] = [];

  /** Built once: every session of this target decides with the same rules and claims. */
  private readonly policyContext: PolicyContext | null;

  private readonly masking: ResponseMasking | null = null;
  /** The first read of table names, awaited before the listener accepts clients. */
  private tablesLoaded: Promise<void> = Promise.resolve();

  constructor(opts: ListenerOptions) {
    this.opts = opts;
    const masker = opts.masker;
    if (masker?.enabled && (masker.applyTo.client || masker.applyTo.log)) {
      const writer = opts.recorder.writer;
      const tables = new TableNames(
        opts.target,
        masker,
        opts.upstreamPassword,
        (query) => {
          writer.append('gateway-query', { target: opts.target.name, purpose: 'catalog for column masking', text: query });
          const failure = writer.flushSync();
          if (failure) throw failure;
        },
        (message) => {
          try {
            writer.append('gateway-error', { target: opts.target.name, message });
          } catch {
            // the log is failing; sessions will find out and refuse commands
          }
        },
      );
      this.masking = new ResponseMasking(masker, tables.masking, (schema, table) => tables.byName(schema, table), masker.masksColumns ? tables : null);
      if (masker.masksColumns) this.tablesLoaded = tables.refreshNow();
    }
    this.policyContext = opts.policy ? policyContext(opts.policy.rules, opts.policy.claims, opts.target.name, opts.approvals ?? null) : null;
    this.verifier = makeVerifier(opts.clientPassword);
    this.loginGuard = opts.loginGuard ?? new LoginGuard();
    this.server = net.createServer((s) => this.accept(s));
  }

  get target(): PostgresTarget {
    return this.opts.target;
  }

  async listen(port = 0): Promise<number> {
    await this.tablesLoaded;
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host: '127.0.0.1', port }, () => {
        this.server.off('error', reject);
        resolve((this.server.address() as net.AddressInfo).port);
      });
    });
  }

  /** Stops accepting, lets in-flight commands finish, closes every session. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    // server.close() only calls back once every connection is gone: stop accepting, don't wait.
    this.server.close();
    for (const s of this.pendingSockets) s.destroy();
    for (const s of this.sessions) s.shutdown();
    if (this.sessions.size > 0) {
      await Promise.race([
        new Promise<void>((r) => this.idleWaiters.push(r)),
        new Promise<void>((r) => setTimeout(r, graceMs).unref()),
      ]);
    }
    for (const s of this.sessions) s.forceClose();
    this.masking?.catalogChanges?.close();
  }

  private accept(socket: net.Socket): void {
    if (this.stopping) return void socket.destroy();
    socket.on('error', () => socket.destroy());
    // Until it authenticates a client gets a bounded share: a deadline, a count, and no buffering
    // beyond one startup packet or authentication message.
    let rec: SessionRecorder | null = null;
    const admitted = this.loginGuard.admit(socket, () => {
      try {
        rec?.close('client authentication timed out', { timeout_ms: this.loginGuard.timeout });
      } catch {
        // log unavailable: the connection is closed either way
      }
    });
    if (!admitted) {
      // As the server answers past max_connections, before reading anything.
      return refuse(socket, { severity: 'FATAL', code: '53300', message: `sorry, too many clients already: the gateway has ${this.loginGuard.count} connections that have not logged in yet` });
    }
    socket.setNoDelay(true);
    this.pendingSockets.add(socket);
    this.startup(socket, (r) => (rec = r))
      .catch(() => socket.destroy())
      .finally(() => {
        this.pendingSockets.delete(socket);
        this.loginGuard.release(socket);
      });
  }

  private async startup(socket: net.Socket, opened: (rec: SessionRecorder) => void): Promise<void> {
    let packet: StartupPacket | null;
    try {
      packet = await readStartup(socket);
    } catch (e) {
      const err = e as StartupRefusal;
      if (err.reply) refuse(socket, { severity: 'FATAL', code: err.reply.code, message: `gateway: ${err.reply.message}` });
      else closeAfter(socket);
      this.recordRejected(socket, err.message);
      return;
    }
    if (!packet) return;
    if (packet.kind === 'cancel') return this.cancel(packet.processId, packet.secretKey, socket);
    if (packet.kind !== 'startup') return;

    const t = this.opts.target;
    const params = packet.parameters;
    const fatal = (code: string, message: string, hint?: string): void => refuse(socket, { severity: 'FATAL', code, message, hint });
    if (this.stopping) return fatal('57P03', 'the gateway is shutting down');
    if (packet.minor > 0 || packet.protocolOptions.length > 0) {
      socket.write(encodeNegotiateProtocolVersion(0, packet.protocolOptions));
    }
    const user = params.get('user') ?? '';
    const database = params.get('database') || user;
    const client = { address: socket.remoteAddress, port: socket.remotePort, user, database, application_name: params.get('application_name') ?? null, protocol: `${packet.major}.${packet.minor}` };

    // Startup parameters other than user and database set server variables, as SET statements
    // would; `options` (PGOPTIONS) holds command-line switches, read here exactly as the server
    // reads them (startup-settings.ts). With rules, the settings are decided as the SET
    // statements they amount to, so `-nc role=admin` is a `role` statement.
    const reading = readStartupParameters(params);
    const decision = reading.refusal || !this.policyContext || reading.decided.length === 0
      ? null
      : judge(this.policyContext, asSetStatements(reading.decided), new Map()).decision;
    let rec: SessionRecorder;
    try {
      rec = this.opts.recorder.openSession(t.name, 'postgres', {
        client,
        upstream: { host: t.host, port: t.port, database: t.database, user: t.user },
        startup: this.startupRecord(params, reading, decision),
      });
    } catch (e) {
      return fatal('58030', `gateway: ${(e as Error).message}; no session can be opened`);
    }
    opened(rec);
    if (params.has('replication')) {
      rec.close('refused: replication connection');
      return fatal('0A000', 'gateway: replication connections are not supported');
    }
    if (user !== t.user || database !== t.database) {
      rec.close('refused: wrong user or database');
      return fatal('28000', `gateway: this listener serves target "${t.name}" as user "${t.user}" on database "${t.database}" only (asked for user "${user}", database "${database}")`, `use the connection settings in ${'$'}${targetVariable(t.name)}`);
    }
    if (reading.refusal) {
      rec.close('refused: startup options cannot be read', { error: reading.refusal });
      return fatal('42601', `gateway: ${reading.refusal}`, 'pass settings as "-c name=value" (or set them with SET after connecting)');
    }
    if (decision && decision.action !== 'allow') {
      rec.close('refused by policy: startup parameters', { decision: decisionRecord(decision) });
      // Nothing can wait for approval before login completes: a hold here is a refusal.
      const why = decision.action === 'approve' ? ' (approval cannot be asked for during login; SET them after connecting)' : '';
      const names = [...new Set(reading.decided.map((x) => x.name))].join(', ');
      return fatal('42501', `gateway: ${decision.action === 'approve' ? 'refused' : 'denied'} by rule "${decision.rule}": startup parameters set server variables (${names})${why}`);
    }

    const q = new MessageQueue(socket, 'client', { maxBody: MAX_AUTH_MESSAGE_BODY });
    try {
      await this.authenticateClient(socket, q);
      this.loginGuard.release(socket);
    } catch (e) {
      rec.close('client authentication failed', { error: (e as Error).message });
      return fatal('28P01', `password authentication failed for user "${user}"`, 'use the per-run password the gateway exported (PGPASSWORD or the GATEWAY_*_URL)');
    }

    let upstream;
    const forwarded = new Map([...params].filter(([k]) => k !== 'user' && k !== 'database'));
    try {
      upstream = await loginUpstream(t, await this.opts.upstreamPassword(), forwarded);
    } catch (e) {
      const err = e as UpstreamError;
      rec.event('upstream-login', { ok: false, error: { code: err.sqlState ?? '08006', message: err.message } });
      rec.close('upstream login failed');
      return fatal(err.sqlState ?? '08006', `gateway: login to upstream "${t.name}" failed: ${err.message}`);
    }
    rec.event('upstream-login', { ok: true, auth: upstream.authMethod, backend_pid: upstream.backendKey.processId, tls: upstream.tls, server_version: upstream.parameters.find(([k]) => k === 'server_version')?.[1] ?? null });
    try {
      q.detach();
    } catch (e) {
      upstream.socket.destroy();
      rec.close('protocol error during startup');
      return fatal('08P01', `gateway: ${(e as Error).message}`);
    }
    if (socket.destroyed || this.stopping) {
      upstream.socket.destroy();
      rec.close(this.stopping ? 'gateway shutdown' : 'client disconnected during login');
      return;
    }
    const encoding = upstream.parameters.find(([k]) => k === 'client_encoding')?.[1] ?? 'UTF8';
    if (this.masking && encoding !== 'UTF8') {
      upstream.socket.destroy();
      rec.close('refused: masking needs client_encoding UTF8');
      return fatal('0A000', `gateway: masking reads values as UTF-8, and this session asked for client_encoding ${encoding}`, 'connect with client_encoding UTF8 (PGCLIENTENCODING=UTF8)');
    }

    // The client sees the upstream backend's real pid (NOTIFY messages and pg_backend_pid()
    // carry it; clients compare them) with a secret of ours, so upstream's key never leaves.
    const pid = upstream.backendKey.processId;
    const secret = this.newSecret(pid);
    const session = new PostgresSession(socket, upstream.socket, rec, this.policyContext, this.masking, this.opts.masker ?? null, () => {
      this.sessions.delete(session);
      if (this.cancelKeys.get(pid)?.session === session) this.cancelKeys.delete(pid);
      if (this.sessions.size === 0) for (const w of this.idleWaiters.splice(0)) w();
    });
    session.loginParameters(upstream.parameters);
    this.sessions.add(session);
    this.cancelKeys.set(pid, { secret, session, upstreamKey: upstream.backendKey, rec });
    const hello = [encodeAuthentication(AUTH.Ok)];
    // Settings the server reports at login come from the role's and database's settings too
    // (ALTER ROLE ... SET application_name = <an email>): read by the detectors like any later.
    const masker = this.opts.masker?.applyTo.client ? this.opts.masker : null;
    for (const [k, v] of upstream.parameters) hello.push(encodeParameterStatus(k, masker?.maskText(v)?.text ?? v));
    hello.push(encodeBackendKeyData(pid, secret), encodeReadyForQuery('I'));
    socket.write(Buffer.concat(hello));
    session.start();
  }

  private async authenticateClient(socket: net.Socket, q: MessageQueue): Promise<void> {
    socket.write(encodeAuthenticationSASL(['SCRAM-SHA-256']));
    // The login guard's deadline bounds the whole exchange; these waits only name what was missing.
    const first = await q.next(this.loginGuard.timeout, 'SASLInitialResponse');
    if (first.type !== F.Password) throw new ProtocolError('expected SASLInitialResponse');
    const init = decodeSASLInitialResponse(first.body);
    if (init.mechanism !== 'SCRAM-SHA-256') throw new ProtocolError(`unsupported SASL mechanism ${init.mechanism}`);
    const scram = new ScramServer(this.verifier);
    socket.write(encodeAuthentication(AUTH.SASLContinue, Buffer.from(scram.first(init.data.toString('utf8')))));
    const final = await q.next(this.loginGuard.timeout, 'SASLResponse');
    if (final.type !== F.Password) throw new ProtocolError('expected SASLResponse');
    socket.write(encodeAuthentication(AUTH.SASLFinal, Buffer.from(scram.final(final.body.toString('utf8')))));
  }

  private newSecret(pid: number): number {
    // Two live sessions cannot share an upstream pid, but a stale entry may linger briefly.
    for (;;) {
      const secret = randomInt(1, 0x7fffffff);
      if (this.cancelKeys.get(pid)?.secret !== secret) return secret;
    }
  }

  private async cancel(pid: number, secretKey: Buffer, socket: net.Socket): Promise<void> {
    // Nothing is answered to a cancel request, and nothing more is read.
    closeAfter(socket);
    const k = this.cancelKeys.get(pid);
    // As PostgreSQL does, a cancel with an unknown key is ignored without a reply.
    if (!k || secretKey.length !== 4 || secretKey.readInt32BE(0) !== k.secret) return;
    // A command waiting for approval has not reached the server: cancelling withdraws it.
    if (k.session.cancelHold()) return;
    try {
      k.rec.event('cancel-request', { forwarded: true });
    } catch {
      return; // an unrecorded cancel is not forwarded either
    }
    if (k.rec.writer.flushSync()) return;
    await sendUpstreamCancel(this.opts.target, k.upstreamKey).catch(() => undefined);
  }

  /**
   * What session-open records of the startup packet: every parameter as sent (`options` raw),
   * `options` switch by switch as the server reads it, the settings they make, and the decision.
   * Values go through the log's detectors when masking applies to the log.
   */
  private startupRecord(params: Map<string, string>, reading: StartupReading, decision: Decision | null): Record<string, unknown> {
    const m = this.opts.masker;
    const mask = m?.enabled && m.applyTo.log && m.detects ? (v: string): string => m.maskText(v)?.text ?? v : (v: string): string => v;
    return {
      parameters: Object.fromEntries([...params].map(([k, v]) => [k, mask(v)])),
      ...(reading.options ? { options: reading.options.map((o) => ({ ...o, ...(o.argument !== undefined ? { argument: mask(o.argument) } : {}), sets: o.sets.map(([k, v]) => [k, mask(v)]) })) } : {}),
      settings: reading.settings.map((x) => ({ ...x, value: mask(x.value), decided: reading.decided.includes(x) })),
      ...(reading.refusal ? { unreadable: mask(reading.refusal) } : {}),
      ...(decision ? { decision: decisionRecord(decision) } : {}),
    };
  }

  private recordRejected(socket: net.Socket, message: string): void {
    try {
      this.opts.recorder.writer.append('protocol-error', { target: this.opts.target.name, peer: 'client', client: { address: socket.remoteAddress, port: socket.remotePort }, message });
    } catch {
      // log unavailable: the connection is refused either way
    }
  }
}
