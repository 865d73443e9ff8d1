// The host:port a forward-proxy request names: a CONNECT line's authority-form, the authority of an
// absolute-form http:// request, a Host header or an HTTP/2 :authority. One strict reading for all
// of them, because the proxy routes by it and then holds every request in a tunnel to the same
// authority: a name that could be read two ways (an IPv4 address in hex or with missing parts, a
// percent-escape, userinfo, an unbracketed IPv6 address, a zone id) is refused, never guessed.
import { isIPv4, isIPv6 } from 'node:net';

export interface Authority {
  /** Lower case, without a trailing dot; an IPv6 address in its canonical form without brackets. */
  host: string;
  port: number;
}

export type Parsed<T> = T | { error: string };

const LABEL = /^[a-z0-9_-]{1,63}$/;

function parseHost(text: string): Parsed<string> {
  if (text.startsWith('[')) {
    if (!text.endsWith(']')) return { error: `"${text}" opens a bracket it does not close` };
    const inner = text.slice(1, -1);
    if (!isIPv6(inner) || inner.includes('%')) return { error: `"${text}" is not an IPv6 address` };
    return new URL(`http://[${inner}]/`).hostname.slice(1, -1);
  }
  if (text.includes(':')) return { error: `"${text}": an IPv6 address goes in brackets` };
  let host = text.toLowerCase();
  if (host.endsWith('.')) host = host.slice(0, -1);
  if (host === '' || host.length > 253) return { error: 'the host is empty or longer than 253 characters' };
  const labels = host.split('.');
  if (!labels.every((l) => LABEL.test(l))) return { error: `"${text}" is not a host name (letters, digits, "-", "_" and dots)` };
  // A last label of digits (or 0x...) makes WHATWG URL and most resolvers read an IPv4 address;
  // only four decimal numbers without leading zeros (node:net's isIPv4) are taken, so one address
  // has one spelling.
  if (/^(\d+|0x[0-9a-f]*)$/.test(labels[labels.length - 1]!) && !isIPv4(host)) {
    return { error: `"${text}" is an IPv4 address in a form other than four decimal numbers` };
  }
  return host;
}

function parsePort(text: string): Parsed<number> {
  if (!/^\d{1,5}$/.test(text)) return { error: `port "${text}" is not a number from 1 to 65535` };
  const port = Number(text);
  if (port < 1 || port > 65535) return { error: `port ${port} is not from 1 to 65535` };
  return port;
}

/**
 * `host:port`, `[v6]:port`, or without the port when `defaultPort` is given (Host headers).
 * Returns the authority, or `{ error }` saying what is wrong.
 */
export function parseAuthority(text: string, defaultPort?: number): Parsed<Authority> {
  if (text.length === 0) return { error: 'no host:port' };
  if (text.length > 300) return { error: 'the authority is longer than 300 characters' };
  if (/[\s@%/\\?#]/.test(text)) return { error: `"${text}" holds a character an authority cannot ("@", "%", "/", "?", "#", whitespace)` };
  const close = text.lastIndexOf(']');
  const colon = text.lastIndexOf(':');
  const hasPort = colon > close && (text.startsWith('[') || text.indexOf(':') === colon);
  const hostText = hasPort ? text.slice(0, colon) : text;
  const host = parseHost(hostText);
  if (typeof host !== 'string') return host;
  if (!hasPort) {
    if (defaultPort === undefined) return { error: `"${text}" names no port` };
    return { host, port: defaultPort };
  }
  const port = parsePort(text.slice(colon + 1));
  if (typeof port !== 'number') return port;
  return { host, port };
}

export function formatAuthority(a: Authority): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

export function sameAuthority(a: Authority, b: Authority): boolean {
  return a.host === b.host && a.port === b.port;
}

/**
 * An absolute-form request target as a plain-HTTP proxy receives it (`http://host[:port]/path?q`):
 * the authority (port 80 by default) and the origin-form path the target's handler sees.
 */
export function parseAbsoluteForm(url: string): Parsed<{ authority: Authority; path: string }> {
  const m = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]*)(.*)$/i.exec(url);
  if (!m) return { error: `"${url.slice(0, 100)}" is not an absolute http:// URL` };
  const scheme = m[1]!.toLowerCase();
  if (scheme === 'https') return { error: 'https:// goes through CONNECT host:443, not as a plain request' };
  if (scheme !== 'http') return { error: `the scheme ${scheme}:// is not proxied` };
  const authority = parseAuthority(m[2]!, 80);
  if ('error' in authority) return authority;
  const rest = m[3]!;
  if (rest.includes('#')) return { error: 'a request target carries no fragment (#)' };
  const path = rest === '' ? '/' : rest.startsWith('?') ? `/${rest}` : rest;
  return { authority, path };
}
