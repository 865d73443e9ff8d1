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
import { REFUSAL, sendError } from './replies.ts';
import type { UpstreamResponse } from './upstream.ts';
import { maskUrl } from './url-secrets.ts';

/** Characters of a poll's answer or an error body read for its status or message (both are small). */
const HEAD_MAX = 64 * 1024;

export async function relayResponse(pending: Promise<UpstreamResponse>, abort: AbortController, res: HttpResponse, ctx: ExchangeContext, cmd: CommandRecorder, pathAndQuery: string): Promise<void> {
  const t = ctx.upstream.target;
  let ended = false;
  const fail = (status: number, message: string): void => {
    if (ended) return;
    ended = true;
    cmd.finish({ status: 'error', error: { code: 'upstream', message } });
    sendError(res, status, REFUSAL.upstream, `gateway: ${message}`);
  };
  // The client went away: the target's answer has no one to go to.
  res.once('close', () => {
    if (!ended && !res.writableFinished) {
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
  const masking = new BodyMasking(ctx.core.masker, contentType);
  const encoding = headerValue(ur.headers, 'content-encoding');
  if (encoding && encoding.toLowerCase() !== 'identity' && masking.kind !== 'binary' && ctx.core.masker) {
    // Asked for identity; a compressed body cannot be masked or sampled: it is not passed.
    ur.body.destroy();
    return fail(502, `${t.origin} answered with a ${encoding}-encoded body, which the gateway cannot mask`);
  }
  const poll = ctx.operations.polled(pathAndQuery);
  // A Location poll answers 202 naming its URL again: the operation stays the starting command's.
  const rewritten = status === 201 || status === 202 ? ctx.operations.started(poll?.command ?? cmd.id, t.origin, ur.headers, ctx.gatewayOrigin) : {};
  try {
    res.writeHead(status, { ...clientResponseHeaders(ur.headers, masking.changesClientBody), ...rewritten });
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
  try {
    for await (const chunk of ur.body) {
      if (ended) break;
      if (head !== null && head.length < HEAD_MAX) head += chunk.toString('utf8');
      await take(masking.push(chunk));
    }
  } catch (e) {
    return fail(502, `the response from ${t.origin} broke off: ${causeOf(e as Error)}`);
  }
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
      ...(!poll && (status === 201 || status === 202) ? operationStarted(ur.headers) : {}),
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

/** ARM's error message from an error body, when it has one. */
function armErrorMessage(body: string | null): string | undefined {
  if (!body) return undefined;
  try {
    const m = (JSON.parse(body) as { error?: { message?: unknown } }).error?.message;
    return typeof m === 'string' ? m.slice(0, 1000) : undefined;
  } catch {
    return undefined;
  }
}
