// The server certificate's name check of tls: verify-full, exactly as libpq's sslmode=verify-full
// does it (PostgreSQL 15, fe-secure-openssl.c pgtls_verify_peer_name_matches_certificate_guts and
// fe-secure-common.c), so a certificate libpq accepts is accepted and one it refuses is refused.
// Node's tls.checkServerIdentity differs: for an IP address it never falls back to the Subject CN.
//
// libpq: when the host is an IP address, iPAddress SANs are compared as addresses and dNSName SANs
// as names; the Subject CN is checked only when no SAN of the host's own type (IP for an address,
// DNS for a name) is present, even beside SANs of the other type. Names compare ignoring ASCII
// case, with a leading `*.` wildcard matching one label.
import net from 'node:net';
import type { PeerCertificate } from 'node:tls';

interface AltName { type: string; value: string }

/**
 * Node's `subjectaltname` string ("DNS:a, IP Address:1.2.3.4"), with values Node quotes as JSON
 * when they hold separators. Null when it cannot be read (the check then fails closed).
 */
export function parseSubjectAltName(s: string | undefined): AltName[] | null {
  const out: AltName[] = [];
  if (!s) return out;
  let i = 0;
  while (i < s.length) {
    const colon = s.indexOf(':', i);
    if (colon < 0) return null;
    const type = s.slice(i, colon);
    let value: string;
    let next: number;
    if (s[colon + 1] === '"') {
      // A JSON string literal: find its end by parsing growing prefixes.
      let end = colon + 2;
      let parsed: string | null = null;
      for (; end <= s.length; end++) {
        if (s[end - 1] !== '"' || end === colon + 2) continue;
        try {
          parsed = JSON.parse(s.slice(colon + 1, end)) as string;
          break;
        } catch {
          // not the closing quote yet
        }
      }
      if (parsed === null) return null;
      value = parsed;
      next = end;
    } else {
      const sep = s.indexOf(', ', colon + 1);
      next = sep < 0 ? s.length : sep;
      value = s.slice(colon + 1, next);
    }
    out.push({ type, value });
    if (next >= s.length) break;
    if (s.slice(next, next + 2) !== ', ') return null;
    i = next + 2;
  }
  return out;
}

const asciiLower = (s: string): string => s.replace(/[A-Z]/g, (c) => c.toLowerCase());

/** fe-secure-common.c: exact (ASCII case-insensitive) or a `*.` wildcard over the first label. */
function nameMatches(pattern: string, host: string): boolean {
  const p = asciiLower(pattern);
  const h = asciiLower(host);
  if (p === h) return true;
  if (p.length < 3 || !p.startsWith('*.') || p.length > h.length) return false;
  if (!h.endsWith(p.slice(1))) return false;
  // No dot left of where the pattern's match starts: `*` stands for one label only.
  return !(h.indexOf('.') < h.length - p.length);
}

function addressesEqual(a: string, b: string): boolean {
  const fa = net.isIP(a);
  const fb = net.isIP(b);
  if (!fa || fa !== fb) return false;
  const list = new net.BlockList();
  const family = fa === 4 ? 'ipv4' : 'ipv6';
  list.addAddress(a, family);
  return list.check(b, family);
}

/** undefined when libpq would accept the certificate for host, else the error libpq would report. */
export function checkPeerNameLikeLibpq(host: string, cert: PeerCertificate): Error | undefined {
  const hostIsIp = net.isIP(host) !== 0;
  const sans = parseSubjectAltName(cert.subjectaltname);
  if (!sans) return new Error(`the server certificate's subject alternative names cannot be read: ${JSON.stringify(cert.subjectaltname)}`);
  const examined: string[] = [];
  let checkCn = true;
  for (const san of sans) {
    const isDns = san.type === 'DNS';
    const isIp = san.type === 'IP Address';
    if ((hostIsIp && isIp) || (!hostIsIp && isDns)) checkCn = false;
    if (isDns) {
      if (san.value.includes('\0')) return new Error("the server certificate's name contains an embedded null");
      examined.push(san.value);
      if (nameMatches(san.value, host)) return undefined;
    } else if (isIp) {
      if (!net.isIP(san.value)) return new Error(`the server certificate contains an IP address that cannot be read: ${JSON.stringify(san.value)}`);
      examined.push(san.value);
      if (hostIsIp && addressesEqual(san.value, host)) return undefined;
    }
  }
  if (checkCn) {
    const cnField = cert.subject?.CN as string | string[] | undefined;
    const cn = Array.isArray(cnField) ? cnField[0] : cnField;
    if (cn !== undefined) {
      if (cn.includes('\0')) return new Error("the server certificate's name contains an embedded null");
      examined.push(cn);
      if (nameMatches(cn, host)) return undefined;
    }
  }
  if (examined.length === 0) return new Error("could not get the server's host name from its certificate");
  const others = examined.length > 1 ? ` (and ${examined.length - 1} other name${examined.length > 2 ? 's' : ''})` : '';
  return new Error(`server certificate for "${examined[0]}"${others} does not match host name "${host}"`);
}
