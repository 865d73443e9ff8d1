// What the forward proxy refuses on its own, before a target's handler sees anything: requests in
// a tunnel that name another authority than the tunnel's (421), WebSocket and other upgrades
// (501), CONNECT nested in a tunnel, targets that are not origin-form paths, and how a refusal is
// written (on a request's response, or raw on a socket for CONNECT and parse errors). The checks
// are pure functions of the request's head, so they are tested without sockets.
import type http from 'node:http';
import type http2 from 'node:http2';
import type net from 'node:net';
import { type Authority, type Parsed, formatAuthority, parseAuthority, sameAuthority } from './proxy-authority.ts';

/** The parts of a request head the checks read (HTTP/1.1 IncomingMessage or HTTP/2 compat). */
export interface RequestHead {
  method?: string;
  url?: string;
  httpVersionMajor: number;
  headers: http.IncomingHttpHeaders | http2.IncomingHttpHeaders;
  rawHeaders: string[];
}

export interface Refusal {
  status: number;
  message: string;
}

export const UPGRADE_REFUSED = 'gateway: WebSocket upgrades are not relayed for HTTP targets';

/**
 * The authority a request names: HTTP/2's :authority and Host (both, when both are sent, must
 * agree), HTTP/1.1's Host (exactly one). null when none is sent.
 */
export function requestAuthority(req: RequestHead, defaultPort: number): Parsed<Authority> | null {
  const hosts: string[] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!.toLowerCase();
    if (name === 'host' || name === ':authority') hosts.push(req.rawHeaders[i + 1]!);
  }
  if (req.httpVersionMajor === 2) {
    const authority = req.headers[':authority'];
    if (typeof authority === 'string' && !hosts.includes(authority)) hosts.push(authority);
  }
  if (hosts.length === 0) return null;
  const parsed = hosts.map((h) => parseAuthority(h, defaultPort));
  const bad = parsed.find((p) => 'error' in p);
  if (bad) return bad;
  const [first, ...rest] = parsed as Authority[];
  if (rest.some((a) => !sameAuthority(a, first!))) return { error: `the request names more than one host (${hosts.join(', ')})` };
  return first!;
}

/** Upgrade: h2c is a request to ignore (RFC 9113 dropped it); any other upgrade is refused. */
export function upgradeRefusal(req: RequestHead): Refusal | null {
  const upgrade = req.headers.upgrade;
  if (upgrade === undefined) return null;
  const protocols = String(upgrade).split(',').map((p) => p.trim().toLowerCase()).filter((p) => p !== '');
  if (protocols.length > 0 && protocols.every((p) => p === 'h2c')) return null;
  return { status: 501, message: UPGRADE_REFUSED };
}

/** Why a request decrypted inside the tunnel to `tunnel` must not reach the handler, or null. */
export function refusal(req: RequestHead, tunnel: Authority, defaultPort: number): Refusal | null {
  if (req.method === 'CONNECT') {
    // HTTP/2's extended CONNECT (RFC 8441) is how WebSocket rides on HTTP/2.
    if ((req.headers as Record<string, unknown>)[':protocol'] !== undefined) return { status: 501, message: UPGRADE_REFUSED };
    return { status: 405, message: 'gateway: CONNECT inside a tunnel is not relayed' };
  }
  const upgrade = upgradeRefusal(req);
  if (upgrade) return upgrade;
  if (!req.url?.startsWith('/')) {
    return { status: 400, message: `gateway: inside a tunnel a request names a path (/...), not "${(req.url ?? '').slice(0, 100)}"` };
  }
  const named = requestAuthority(req, defaultPort);
  if (named === null) return { status: 400, message: 'gateway: the request names no host (Host or :authority)' };
  if ('error' in named) return { status: 400, message: `gateway: ${named.error}` };
  if (!sameAuthority(named, tunnel)) {
    return { status: 421, message: `gateway: this tunnel is for ${formatAuthority(tunnel)}; a request for ${formatAuthority(named)} is not served through it` };
  }
  return null;
}

/** A refusal as the request's response; an HTTP/1.1 connection closes after it. */
export function refuseRequest(req: RequestHead, res: http.ServerResponse | http2.Http2ServerResponse, status: number, message: string): void {
  const body = `${message}\n`;
  const headers: Record<string, string | number> = { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) };
  if (req.httpVersionMajor === 1) headers.connection = 'close';
  if (res.headersSent) return void res.destroy();
  (res as http.ServerResponse).writeHead(status, headers);
  res.end(body);
}

const REASONS: Record<number, string> = {
  400: 'Bad Request', 403: 'Forbidden', 405: 'Method Not Allowed', 408: 'Request Timeout',
  431: 'Request Header Fields Too Large', 500: 'Internal Server Error', 501: 'Not Implemented', 503: 'Service Unavailable',
};

/**
 * A refusal written raw on a socket no HTTP response object owns (a CONNECT, a parse error), then
 * the socket closes. `reason` replaces the status line's reason phrase: clients that report only
 * the status line of a failed CONNECT (Python's "Tunnel connection failed: 403 ...") show it.
 */
export function refuseOnSocket(socket: net.Socket, status: number, message: string, reason?: string): void {
  if (socket.destroyed) return;
  const body = `${message}\n`;
  const phrase = (reason ?? REASONS[status] ?? 'Error').replace(/[^\x20-\x7e]/g, '?');
  socket.end(`HTTP/1.1 ${status} ${phrase}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  // A client that keeps its side open does not hold the socket.
  setTimeout(() => socket.destroy(), 2000).unref();
}
