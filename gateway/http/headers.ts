// Which headers cross the gateway, in each direction. Hop-by-hop headers (RFC 9110 7.6.1) end at
// the gateway; the client's credentials never reach the target (the gateway sets the target's
// own); compression is turned off upstream because masking reads the body's text.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/** Headers that describe one connection, not the message: never forwarded either way. */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer',
  'transfer-encoding', 'upgrade', 'http2-settings', 'host', 'expect',
]);

/**
 * Client headers the gateway replaces or drops toward the target: credentials (the target's auth
 * is set by the gateway, so a placeholder or a step's own token is never sent), and
 * accept-encoding (the body must come back readable for masking and the log's sample).
 */
const CLIENT_ONLY = new Set(['authorization', 'accept-encoding']);

/** The client's headers as they go to the target, without the ones the gateway owns. */
export function upstreamRequestHeaders(h: IncomingHttpHeaders, upstreamHost: string, auth: Record<string, string>): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  const named = connectionNamed(h.connection);
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined || k.startsWith(':') || HOP_BY_HOP.has(k) || CLIENT_ONLY.has(k) || named.has(k)) continue;
    if (k in auth) continue;
    out[k] = v;
  }
  out.host = upstreamHost;
  out['accept-encoding'] = 'identity';
  for (const [k, v] of Object.entries(auth)) out[k] = v;
  return out;
}

/** The target's response headers as they go to the client (HTTP/1.1 or HTTP/2). */
export function clientResponseHeaders(h: IncomingHttpHeaders, bodyChanges: boolean): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  const named = connectionNamed(h.connection);
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined || HOP_BY_HOP.has(k) || named.has(k)) continue;
    // A masked body may change length: the client gets it chunked (or as HTTP/2 frames).
    // ETag stays: ARM's (and most APIs') names the resource's version for If-Match, not the bytes.
    if (bodyChanges && (k === 'content-length' || k === 'content-md5')) continue;
    out[k] = v;
  }
  return out;
}

/** Headers a `Connection:` header names are hop-by-hop too. */
function connectionNamed(v: string | string[] | undefined): Set<string> {
  if (!v) return new Set();
  return new Set((Array.isArray(v) ? v.join(',') : v).split(',').map((s) => s.trim().toLowerCase()).filter(Boolean));
}

/** A header's one value (the first when repeated). */
export function headerValue(h: IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Request headers kept in the command record: what identifies and describes the request, never a
 * credential or a cookie (everything else is in the body's digest or not evidence).
 */
const RECORDED_REQUEST_HEADERS = ['content-type', 'content-length', 'user-agent', 'x-ms-client-request-id', 'x-ms-correlation-request-id', 'if-match', 'if-none-match'];

export function recordedRequestHeaders(h: IncomingHttpHeaders): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const k of RECORDED_REQUEST_HEADERS) {
    const v = headerValue(h, k);
    if (v !== undefined) out[k] = v.length > 256 ? v.slice(0, 256) + '…' : v;
  }
  return Object.keys(out).length ? out : undefined;
}
