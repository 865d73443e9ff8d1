// One HTTP request through the gateway: read (method, the one normalized path, the ARM
// resource), decided by the one policy engine, recorded and written to the log, held for
// approval if a rule says so, and only then sent to the target with the target's credential;
// the response streams back (response-relay.ts). The path the target receives is the path the
// log names: the normalized one, never the client's raw spelling.
import type { CommandGate, GateClient } from '../core/command-gate.ts';
import type { CoreServices } from '../core/adapter.ts';
import type { Masker } from '../masking/engine.ts';
import type { CommandRecorder, SessionRecorder } from '../core/recorder.ts';
import type { Decision, Facts } from '../policy/engine.ts';
import type { ApiProfile, RequestSampler } from './api-profile.ts';
import { BodyMasking } from './body-masking.ts';
import type { HttpRequest, HttpResponse } from './exchange-types.ts';
import { upgradeRefusal } from './forward-proxy-refusals.ts';
import { headerValue, recordedRequestHeaders, upstreamRequestHeaders } from './headers.ts';
import type { OperationTracker } from './lro.ts';
import { REFUSAL } from './replies.ts';
import { METHOD_OVERRIDE_HEADERS } from './request-facts.ts';
import { normalizeRequestPath } from './request-path.ts';
import { relayResponse } from './response-relay.ts';
import type { Upstream } from './upstream.ts';
import { maskQuery } from './url-secrets.ts';

/**
 * Headers some servers (IIS's URL Rewrite, Symfony, Zend) take as the path to run instead of the
 * request line's: the path decided must be the path that runs.
 */
const PATH_OVERRIDE_HEADERS = ['x-original-url', 'x-rewrite-url'];

/** Largest body held in memory while its request waits for approval (the approval binds its digest). */
export const MAX_HELD_BODY = 16 << 20;

export interface ExchangeContext {
  core: CoreServices;
  /** How this API's requests are read and its refusals shaped. */
  api: ApiProfile;
  upstream: Upstream;
  operations: OperationTracker;
  /** The client's session (one per connection) and its gate. */
  session: SessionRecorder;
  gate: CommandGate;
  /** Where clients of this entry reach the target: rewritten operation URLs point here; null through the forward proxy. */
  gatewayOrigin: string | null;
}

export async function exchange(req: HttpRequest, res: HttpResponse, ctx: ExchangeContext, expectsContinue = false): Promise<void> {
  const t = ctx.upstream.target;
  const method = (req.method ?? '').toUpperCase();
  const rawTarget = req.url ?? '';
  const origin = rawTarget.startsWith('/') ? rawTarget : absoluteFormPath(rawTarget);
  const normalized = normalizeRequestPath(origin);
  const unreadable = 'problem' in normalized ? normalized.problem
    : /(?:^|&)_method=/i.test(normalized.query) ? 'the _method parameter would change the method the target runs (Rails, Laravel and Express read it); send the method itself'
    : refusalOf(req);
  const path = 'problem' in normalized ? rawPathOf(origin) : normalized.path;
  const query = 'problem' in normalized ? '' : normalized.query;
  const reading = unreadable === null ? ctx.api.read(method, t.host, path, query) : { unit: { unclassified: unreadable }, details: {}, approvalLines: [] };
  const unit = reading.unit;
  const units = 'unclassified' in unit ? null : [unit as Facts];
  const shownQuery = query ? maskQuery(query) : '';
  const text = `${method} ${t.origin}${path}${shownQuery ? `?${shownQuery}` : ''}`;
  const recorded = recordedRequestHeaders(req.headers);
  const details: Record<string, unknown> = {
    method,
    host: t.host,
    path,
    ...(shownQuery ? { query: shownQuery } : {}),
    ...reading.details,
    ...(recorded ? { headers: recorded } : {}),
    http_version: req.httpVersion,
  };
  const gateReq = { kind: ctx.api.commandKind, text, units, unclassified: 'unclassified' in unit ? unit.unclassified : null, details, forwarded: [] as Buffer[] };
  // A request the gateway cannot read exactly is refused whatever the policy says: what would
  // reach the target could differ from what the log names.
  let d: Decision | null = unreadable !== null
    ? { action: 'deny', rule: 'unreadable-request', reason: unreadable, matched: [] }
    : ctx.gate.decision(gateReq);
  let body: Buffer | null = null;
  if (d?.action === 'approve') {
    // The approval binds what will be sent: the request line and the whole body.
    if (expectsContinue) res.writeContinue();
    const whole = await readWhole(req, MAX_HELD_BODY);
    if ('problem' in whole) d = { action: 'deny', rule: d.rule, reason: whole.problem, matched: d.matched };
    else body = whole.body;
    if (body) gateReq.forwarded = [Buffer.from(`${method} ${path}${query ? `?${query}` : ''}\n`), body];
  }
  const sampler = units ? ctx.api.requestSampler?.(units[0]!) ?? null : null;
  const answer = await ctx.gate.passDecided({ ...gateReq, ...(body ? { approvalText: approvalText(text, reading.approvalLines, body, req.headers['content-type'], ctx.core, sampler) } : {}) }, d, clientOf(res));
  if (!answer.allowed) {
    const code = answer.decision.rule === 'session-log' ? REFUSAL.log : answer.decision.rule === 'unreadable-request' ? REFUSAL.unreadable : REFUSAL.denied;
    ctx.api.sendError(res, code === REFUSAL.log ? 503 : code === REFUSAL.unreadable ? 400 : 403, code, answer.message);
    if (!body) req.resume();
    return;
  }
  await forward(req, res, ctx, answer.cmd, method, path + (query ? `?${query}` : ''), body, expectsContinue, units?.[0] ?? null, sampler, query);
}

async function forward(req: HttpRequest, res: HttpResponse, ctx: ExchangeContext, cmd: CommandRecorder, method: string, pathAndQuery: string, held: Buffer | null, expectsContinue: boolean, unit: Facts | null, sampler: RequestSampler | null, query: string): Promise<void> {
  const t = ctx.upstream.target;
  let auth: Record<string, string>;
  try {
    auth = await ctx.upstream.auth();
  } catch (e) {
    cmd.finish({ status: 'error', error: { code: 'credential', message: (e as Error).message } });
    ctx.api.sendError(res, 502, REFUSAL.upstream, `gateway: no credential for ${t.origin}: ${(e as Error).message}`);
    req.resume();
    return;
  }
  const headers = upstreamRequestHeaders(req.headers, t.port === (t.protocol === 'https:' ? 443 : 80) ? t.host : `${t.host}:${t.port}`, auth);
  ctx.api.upstreamHeaders?.(headers);
  const input = new InputTap(cmd, ctx.core.masker?.applyTo.log ? ctx.core.masker : null, headerValue(req.headers, 'content-type'), sampler);
  let body: AsyncIterable<Buffer> | Buffer | null;
  if (held) {
    input.push(held);
    input.end();
    body = held.length || !hasNoBody(req) ? held : null;
  } else if (hasNoBody(req)) {
    body = null;
    req.resume();
  } else {
    if (expectsContinue) res.writeContinue();
    try {
      body = await peeled(req, input);
    } catch (e) {
      cmd.finish({ status: 'error', error: { code: 'client', message: (e as Error).message } });
      res.destroy();
      return;
    }
  }
  const abort = new AbortController();
  const filter = unit ? ctx.api.responseFilter?.(unit, query) ?? null : null;
  await relayResponse(ctx.upstream.request(method, pathAndQuery, headers, body, abort.signal), abort, res, ctx, cmd, pathAndQuery, filter);
}

/** A request without a body: HTTP/1.1 says so by having neither length nor chunked coding; HTTP/2 by ending with its headers. */
function hasNoBody(req: HttpRequest): boolean {
  const stream = (req as { stream?: { endAfterHeaders?: boolean } }).stream;
  if (stream) return stream.endAfterHeaders === true;
  return req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined;
}

/**
 * The request body as the target pulls it, each chunk recorded (digest and masked sample) on its
 * way. A body that turns out empty is no body (an HTTP/2 GET whose headers did not end the
 * stream must not go out chunked). A body the client cut off (an HTTP/2 stream reset ends the
 * compatibility request as if it were complete) throws, so the target never gets a truncated
 * body as if it were whole: undici aborts the request instead of ending it.
 */
async function peeled(req: HttpRequest, input: InputTap): Promise<AsyncIterable<Buffer> | null> {
  const it = (req as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  const first = await it.next().catch(() => ({ done: true as const, value: undefined }));
  if (first.done) {
    if (!completed(req)) throw new Error('the client cut the request body off');
    input.end();
    return null;
  }
  return (async function* () {
    input.push(first.value);
    yield first.value;
    for (let next = await it.next(); !next.done; next = await it.next()) {
      input.push(next.value);
      yield next.value;
    }
    if (!completed(req)) throw new Error('the client cut the request body off');
    input.end();
  })();
}

/** Whether the client sent its whole body (HTTP/1.1 checks lengths and chunking; HTTP/2 resets must be asked for). */
function completed(req: HttpRequest): boolean {
  const r = req as { complete?: boolean; aborted?: boolean; stream?: { rstCode?: number; destroyed?: boolean } };
  if (r.aborted) return false;
  if (r.stream && (r.stream.rstCode !== undefined && r.stream.rstCode !== 0)) return false;
  return r.complete !== false;
}

/** Largest body a profile's sampler reads whole for the log's sample (a larger one keeps only its digest). */
const MAX_SAMPLED_BODY = 1 << 20;

/**
 * Records a request body: its digest, and its masked text sample (what it is read from its first
 * bytes; or, with a profile's sampler, from the whole body read at its end).
 */
class InputTap {
  private readonly cmd: CommandRecorder;
  private readonly masker: Masker | null;
  private readonly contentType: string | undefined;
  private readonly sampler: RequestSampler | null;
  private masking: BodyMasking | null = null;
  private whole: Buffer[] | null = [];
  private wholeBytes = 0;

  constructor(cmd: CommandRecorder, masker: Masker | null, contentType: string | undefined, sampler: RequestSampler | null) {
    this.cmd = cmd;
    this.masker = masker;
    this.contentType = contentType;
    this.sampler = sampler;
  }

  push(chunk: Buffer): void {
    this.cmd.addInput(chunk);
    if (this.sampler) {
      this.wholeBytes += chunk.length;
      if (this.wholeBytes > MAX_SAMPLED_BODY) this.whole = null;
      else this.whole?.push(chunk);
      return;
    }
    const p = (this.masking ??= new BodyMasking(this.masker, this.contentType, chunk, { logOnly: true })).push(chunk);
    if (p.log && p.log.length) this.cmd.inputSample.addBytes(p.log);
  }

  end(): void {
    if (this.sampler) {
      const s = this.whole && this.wholeBytes ? this.sampler(Buffer.concat(this.whole), this.contentType) : null;
      if (s) {
        // The policy's detectors read the sample too, as they read any body's.
        this.cmd.inputSample.addText(this.masker?.maskText(s.text)?.text ?? s.text);
        if (s.masked) this.cmd.noteMasked(s.masked, []);
      }
      this.whole = null;
      this.cmd.inputSample.end();
      return;
    }
    const p = this.masking?.flush();
    if (p?.log && p.log.length) this.cmd.inputSample.addBytes(p.log);
    this.cmd.inputSample.end();
  }
}

/** Why the request is refused before any rule is read, or null. */
function refusalOf(req: HttpRequest): string | null {
  const h = req.headers;
  if (upgradeRefusal(req)) return `an Upgrade to ${String(h.upgrade)} is not relayed for HTTP targets (WebSockets are refused)`;
  for (const name of METHOD_OVERRIDE_HEADERS) {
    if (h[name.toLowerCase()] !== undefined) return `the ${name} header would change the method the target runs; send the method itself`;
  }
  for (const name of PATH_OVERRIDE_HEADERS) {
    if (h[name] !== undefined) return `the ${name} header would change the path the target runs (some servers route by it); send the path itself`;
  }
  const encoding = h['content-encoding'];
  if (encoding !== undefined && String(encoding).trim().toLowerCase() !== 'identity') return `a ${String(encoding)}-encoded request body could not be read by the log, masking or an approver`;
  return null;
}

/** The path and query of an absolute-form request target (a forward proxy's plain-HTTP request). */
function absoluteFormPath(raw: string): string {
  try {
    const u = new URL(raw);
    return u.pathname + u.search;
  } catch {
    return raw;
  }
}

/** A path the gateway refused, as the log shows it: the raw path without its query. */
function rawPathOf(origin: string): string {
  const q = origin.indexOf('?');
  return q < 0 ? origin : origin.slice(0, q);
}

/** Reads a whole body up to `max` bytes, or says why not (too large: the rest is drained; cut off). */
function readWhole(req: HttpRequest, max: number): Promise<{ body: Buffer } | { problem: string }> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let n = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n > max) over = true;
      else parts.push(c);
    });
    req.on('end', () => resolve(over ? { problem: `the request body is larger than ${max >> 20} MiB, too large to hold for approval` }
      : !completed(req) ? { problem: 'the client cut the request body off' } : { body: Buffer.concat(parts) }));
    req.on('error', () => resolve({ problem: 'the client cut the request body off' }));
  });
}

/** What the approval comment shows: the request line, the resource and a body summary. */
function approvalText(text: string, extra: string[], body: Buffer, contentType: string | undefined, core: CoreServices, sampler: RequestSampler | null): string {
  const lines = [text, ...extra];
  if (body.length && sampler) {
    const s = sampler(body, contentType);
    lines.push('', s === null ? `body: ${body.length} bytes (${contentType ?? 'no content type'}), not shown: it could not be read to mask` : `body (${body.length} bytes):`);
    const shown = s === null ? '' : core.masker?.applyTo.log ? (core.masker.maskText(s.text)?.text ?? s.text) : s.text;
    if (s !== null) lines.push(shown.length > 2000 ? `${shown.slice(0, 2000)}…` : shown);
  } else if (body.length) {
    const m = new BodyMasking(core.masker?.applyTo.log ? core.masker : null, contentType, body, { logOnly: true });
    const a = m.push(body);
    const b = m.flush();
    const shown = a.log && b.log ? Buffer.concat([a.log, b.log]).toString('utf8') : null;
    lines.push('', shown === null ? `body: ${body.length} bytes (${contentType ?? 'no content type'})` : `body (${body.length} bytes):`);
    if (shown !== null) lines.push(shown.length > 2000 ? `${shown.slice(0, 2000)}…` : shown);
  }
  return lines.join('\n');
}

function clientOf(res: HttpResponse): GateClient {
  return {
    // HTTP has no side channel while a request waits: the client sees nothing until the verdict.
    tell: () => undefined,
    onGone(cb) {
      // Not `writableFinished`: an HTTP/2 response reads as finished once its stream was reset.
      // While a request waits nothing is written, so a close before our own end() is the client leaving.
      const on = (): void => {
        if (!res.writableEnded) cb();
      };
      // Gone already (an HTTP/2 stream reset while its body was read): no close event will come.
      // An HTTP/2 compatibility response has no `destroyed`/`closed` of its own: its stream says.
      const stream = (res as { stream?: { closed?: boolean; destroyed?: boolean } }).stream;
      if (res.destroyed || (res as { closed?: boolean }).closed || stream?.closed || stream?.destroyed) {
        queueMicrotask(on);
        return () => undefined;
      }
      res.once('close', on);
      return () => res.off('close', on);
    },
  };
}
