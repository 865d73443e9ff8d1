// The target's answer on its way back: status and headers (hop-by-hop ones dropped, operation
// URLs rewritten to come back through the gateway), the body streamed with backpressure and
// masked as the policy says (body-masking.ts), its digest and a masked sample recorded, and the
// result written once the body ends: the status, Azure's request ids and, for a poll that shows
// an operation ended, an `operation` record tying the final status to the command that started it.
import type http from 'node:http';
import type { CommandRecorder } from '../core/recorder.ts';
import { BodyMasking, type MaskedPiece } from './body-masking.ts';
import type { ExchangeContext } from './exchange.ts';
import type { HttpResponse } from './exchange-types.ts';
import { clientResponseHeaders, headerValue } from './headers.ts';
import { REFUSAL } from './replies.ts';
import type { BodyFilter } from './api-profile.ts';
import type { UpstreamResponse } from './upstream.ts';
import { maskUrl } from './url-secrets.ts';
import { LiteralMasker } from '../masking/literal-masker.ts';

/** Characters of a poll's answer or an error body read for its status or message (both are small). */
const HEAD_MAX = 64 * 1024;

/**
 * `filter`: the API profile's transform of this body (a Secret's values), applied after the
 * credentials are masked and before the policy's masking; one that buffers the whole body is
 * read through before the status goes out, so a body it refuses gets a clean error.
 */
export async function relayResponse(pending: Promise<UpstreamResponse>, abort: AbortController, res: HttpResponse, ctx: ExchangeContext, cmd: CommandRecorder, pathAndQuery: string, filter: BodyFilter | null = null): Promise<void> {
  const t = ctx.upstream.target;
  let ended = false;
  const fail = (status: number, message: string, code: string = REFUSAL.upstream): void => {
    if (ended) return;
    ended = true;
    cmd.finish({ status: 'error', error: { code: 'upstream', message } });
    ctx.api.sendError(res, status, code, `gateway: ${message}`);
  };
  // The client went away: the target's answer has no one to go to. (`writableEnded`, not
  // `writableFinished`: an HTTP/2 response reads as finished once its stream was reset.)
  res.once('close', () => {
    if (!ended && !res.writableEnded) {
      ended = true;
      abort.abort();
      cmd.finish({ status: 'error', error: { code: 'client', message: 'the client closed the connection before the response ended' } });
    }
  });
  let ur: UpstreamResponse;
  try {
    ur = await pending;
  } catch (e) {
    const err = e as Error & { code?: string };
    return fail(502, err.code === 'UND_ERR_HEADERS_TIMEOUT' ? `${t.origin} sent no response within ${t.timeoutMs / 1000} s` : `the request to ${t.origin} failed: ${causeOf(err)}`);
  }
  if (ended) {
    ur.body.destroy();
    return;
  }
  const status = ur.status;
  const contentType = headerValue(ur.headers, 'content-type');
  const encoding = headerValue(ur.headers, 'content-encoding');
  // Credentials the gateway sent are masked first, in the body and in the headers, whatever the
  // policy's masking says: a target that echoes one must not hand it to the step or the log.
  const literal = new LiteralMasker(() => ctx.upstream.credentialValues());
  const body = ur.body[Symbol.asyncIterator]();
  // What the target sent, credentials masked, then through the profile's filter.
  // Whatever a filter throws means it could not read the body: refused, never passed unread.
  const filtered = (step: () => Buffer): Buffer => {
    try {
      return step();
    } catch (e) {
      throw new UnreadableBody((e as Error).message);
    }
  };
  const clean = (chunk: Buffer): Buffer => {
    const out = literal.push(chunk);
    return filter ? filtered(() => filter.push(out)) : out;
  };
  const cleanRest = (): Buffer => {
    const rest = literal.flush();
    if (!filter) return rest;
    const a = filtered(() => filter.push(rest));
    const b = filtered(() => filter.flush());
    return a.length ? Buffer.concat([a, b]) : b;
  };
  let first: Buffer;
  let bodyEnded = false;
  try {
    for (;;) {
      const next = await body.next();
      if (next.done) {
        first = cleanRest();
        bodyEnded = true;
        break;
      }
      first = clean(next.value as Buffer);
      if (first.length) break;
    }
  } catch (e) {
    if (e instanceof UnreadableBody) {
      ur.body.destroy();
      return fail(502, `${t.origin} answered with a body the gateway cannot read to mask (${(e as Error).message}); it was not passed`, REFUSAL.encoding);
    }
    return fail(502, `the response from ${t.origin} broke off: ${causeOf(e as Error)}`);
  }
  if (ended) {
    ur.body.destroy();
    return;
  }
  const masking = new BodyMasking(ctx.core.masker, contentType, first);
  if (encoding && encoding.toLowerCase() !== 'identity' && ctx.core.masker) {
    // Asked for identity; a compressed body cannot be masked or sampled: it is not passed.
    ur.body.destroy();
    return fail(502, `${t.origin} answered with a ${encoding}-encoded body, which the gateway cannot mask`, REFUSAL.encoding);
  }
  if (masking.refusesBinary) {
    ur.body.destroy();
    return fail(502, `${t.origin} answered with a ${contentType ?? 'binary'} body that is not text: with masking on, the gateway does not pass what it cannot read`, REFUSAL.encoding);
  }
  const poll = ctx.operations.polled(pathAndQuery);
  // A poll's own answer names the same operation again: it stays the operation of the command that started it.
  const started = ctx.operations.started(poll?.command ?? cmd.id, t.origin, status, ur.headers, ctx.gatewayOrigin);
  const rewritten = started.headers;
  try {
    res.writeHead(status, { ...maskedHeaders(clientResponseHeaders(ur.headers, masking.changesClientBody || filter !== null), literal), ...rewritten });
  } catch (e) {
    ur.body.destroy();
    return fail(502, `the response could not be passed on (${(e as Error).message})`);
  }
  // A poll's status document and an error's message are read from the body's first bytes.
  let head: string | null = poll || status >= 400 ? '' : null;
  const take = async (p: MaskedPiece): Promise<void> => {
    if (p.values || p.detectors.length) cmd.noteMasked(p.values, p.detectors);
    if (p.log && p.log.length) cmd.responseSample.addBytes(p.log);
    if (p.client.length) {
      cmd.addResponse(p.client);
      if (!res.write(p.client)) await drained(res);
    }
  };
  const feed = async (chunk: Buffer): Promise<void> => {
    if (head !== null && head.length < HEAD_MAX) head += chunk.toString('utf8');
    await take(masking.push(chunk));
  };
  try {
    if (first.length) await feed(first);
    if (!bodyEnded) {
      for (let next = await body.next(); !next.done && !ended; next = await body.next()) {
        const chunk = clean(next.value as Buffer);
        if (chunk.length) await feed(chunk);
      }
      if (!ended) {
        const rest = cleanRest();
        if (rest.length) await feed(rest);
      }
    }
  } catch (e) {
    // Too late for a status (a watch line that is no JSON): the stream is cut off, never passed unread.
    return fail(502, `the response from ${t.origin} broke off: ${causeOf(e as Error)}`);
  }
  if (literal.found) cmd.noteMasked(literal.found, []);
  if (filter?.masked) cmd.noteMasked(filter.masked, []);
  if (ended) return;
  await take(masking.flush());
  cmd.responseSample.end();
  ended = true;
  res.end();
  const operation = poll ? ctx.operations.ended(pathAndQuery, poll, status, head) : null;
  cmd.finish({
    status: status >= 400 ? 'error' : 'ok',
    ...(status >= 400 ? { error: { code: String(status), message: armErrorMessage(head) ?? `HTTP ${status}` } } : {}),
    details: {
      status,
      ...(contentType ? { content_type: contentType } : {}),
      ...(headerValue(ur.headers, 'x-ms-request-id') ? { request_id: headerValue(ur.headers, 'x-ms-request-id') } : {}),
      ...(headerValue(ur.headers, 'x-ms-correlation-request-id') ? { correlation_request_id: headerValue(ur.headers, 'x-ms-correlation-request-id') } : {}),
      ...(!poll && started.operation ? operationStarted(ur.headers) : {}),
      ...(poll ? { polls: poll.command } : {}),
    },
  });
  if (poll && operation) {
    try {
      ctx.session.event('operation', { command: poll.command, status: operation, poll: cmd.id });
    } catch {
      // The log failed after the response went out: the session refuses what comes next.
    }
  }
}

/** Thrown by a body filter for a body it cannot read: the response is refused, never passed. */
export class UnreadableBody extends Error {
  override name = 'UnreadableBody';
}

/** Response headers with any credential the gateway sent replaced. */
function maskedHeaders(h: http.OutgoingHttpHeaders, literal: LiteralMasker): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(h)) {
    out[k] = typeof v === 'string' ? literal.text(v) : Array.isArray(v) ? v.map((x) => literal.text(x)) : v;
  }
  return out;
}

/** Resolves when the client takes more, or is gone. */
function drained(res: HttpResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
  });
}

/** undici wraps socket errors: the cause says what happened (ECONNREFUSED, a certificate error). */
function causeOf(e: Error): string {
  const cause = (e as { cause?: Error & { code?: string } }).cause;
  return cause ? `${e.message}: ${cause.code ? `${cause.code} ` : ''}${cause.message}` : e.message;
}

/** The operation URLs a 201/202 named (as the target wrote them, secrets masked), for the command's result. */
function operationStarted(h: http.IncomingHttpHeaders): Record<string, unknown> {
  const urls: Record<string, string> = {};
  for (const k of ['azure-asyncoperation', 'location', 'operation-location']) {
    const v = headerValue(h, k);
    if (v) urls[k] = maskUrl(v);
  }
  return Object.keys(urls).length ? { operation: { status: 'InProgress', ...urls } } : {};
}

/** The error message of an error body, when it has one: ARM's `error.message`, a Kubernetes Status's `message`. */
function armErrorMessage(body: string | null): string | undefined {
  if (!body) return undefined;
  try {
    const parsed = JSON.parse(body) as { error?: { message?: unknown }; kind?: unknown; message?: unknown };
    const m = parsed.error?.message ?? (parsed.kind === 'Status' ? parsed.message : undefined);
    return typeof m === 'string' ? m.slice(0, 1000) : undefined;
  } catch {
    return undefined;
  }
}
