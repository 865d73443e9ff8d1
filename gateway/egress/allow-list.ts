// The policy's `egress:` list: the hosts and ports a step may reach through the gateway's forward
// proxy without the gateway reading what crosses (an AI agent's model API, a package registry).
// An entry names one host exactly, every subdomain of a domain (`*.npmjs.org`), or one IP address.
// Matching is on DNS labels, never on text: `*.npmjs.org` covers `registry.npmjs.org` and
// `a.b.npmjs.org`, not `npmjs.org` itself nor `evil-npmjs.org`; an IP address is matched only by
// an entry that names that address, never by a name or a wildcard. Hosts compared here come
// canonical from proxy-authority's reading of the CONNECT line (lower case, no trailing dot, an
// IPv6 address in its one canonical form), and the entries are put in the same form at load.
import { isIPv4, isIPv6 } from 'node:net';

export type EgressHost =
  | { kind: 'name'; name: string }
  /** Every name that ends with `.suffix` (one label or more before it). */
  | { kind: 'wildcard'; suffix: string }
  | { kind: 'ip'; address: string };

export interface EgressEntry {
  /** The host as declared, in canonical form: `api.anthropic.com`, `*.npmjs.org`, `140.82.112.3`, `2001:db8::1`. */
  host: string;
  match: EgressHost;
  ports: readonly number[];
}

/** What an entry without `ports` allows: HTTPS. */
export const DEFAULT_EGRESS_PORTS: readonly number[] = [443];

const LABEL = /^[a-z0-9_-]{1,63}$/;

/** An IPv6 address in the form WHATWG URL writes it (lower case, zeros compressed), unbracketed. */
export function canonicalIPv6(address: string): string {
  return new URL(`http://[${address}]/`).hostname.slice(1, -1);
}

/** Why a DNS name (no wildcard) cannot be declared, or null. `name` is lower case without a trailing dot. */
function nameProblem(name: string): string | null {
  if (name === '' || name.length > 253) return 'is empty or longer than 253 characters';
  const labels = name.split('.');
  if (labels.some((l) => l === '')) return 'has an empty label (two dots in a row, or a leading dot)';
  const bad = labels.find((l) => !LABEL.test(l));
  if (bad !== undefined) return `has a label "${bad}" that is not 1 to 63 letters, digits, "-" or "_"`;
  // The proxy reads a last label of digits (or 0x...) as an IPv4 address in another spelling and
  // refuses it, so such a name could never be reached: say so now.
  if (/^(\d+|0x[0-9a-f]*)$/.test(labels[labels.length - 1]!)) return 'ends in a number: it reads as an IPv4 address in a form other than four decimal numbers';
  return null;
}

/**
 * An entry's `host` read into what it matches, or `{ error }` saying what is wrong (the caller
 * names the file, the line and the entry). Case is ignored; a trailing dot is dropped.
 */
export function parseEgressHost(text: string): EgressHost | { error: string } {
  let host = text.toLowerCase();
  if (host.startsWith('[') || host.includes(':')) {
    const inner = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
    if (!isIPv6(inner) || inner.includes('%')) return { error: 'is not an IPv6 address (write it as 2001:db8::1 or [2001:db8::1], without a zone)' };
    return { kind: 'ip', address: canonicalIPv6(inner) };
  }
  if (isIPv4(host)) return { kind: 'ip', address: host };
  if (host.endsWith('.')) host = host.slice(0, -1);
  if (host === '*') return { error: 'would declare every host: name the hosts a step needs' };
  if (host.startsWith('*.')) {
    const suffix = host.slice(2);
    if (suffix.includes('*')) return { error: 'has a "*" after its first label: only a leading "*." is a wildcard' };
    if (isIPv4(suffix)) return { error: 'puts a wildcard before an IP address: declare the address itself' };
    const problem = nameProblem(suffix);
    if (problem) return { error: problem };
    if (!suffix.includes('.')) return { error: `would declare every name under the top-level domain "${suffix}": name a domain under it` };
    return { kind: 'wildcard', suffix };
  }
  if (host.includes('*')) return { error: 'has a "*" that is not a leading "*.": only "*.domain" is a wildcard (every subdomain of domain)' };
  const problem = nameProblem(host);
  if (problem) return { error: problem };
  return { kind: 'name', name: host };
}

/** The canonical spelling of what an entry matches. */
export function egressHostText(h: EgressHost): string {
  return h.kind === 'name' ? h.name : h.kind === 'wildcard' ? `*.${h.suffix}` : h.address;
}

interface RawEntry { host: string; ports?: number[] }

/**
 * The validated `egress:` list (the schema has checked the shape: host a string, ports whole
 * numbers 1 to 65535). `fail` throws at the line of `egress[i].<path>`.
 */
export function parseEgress(raw: readonly RawEntry[] | undefined, fail: (path: (string | number)[], message: string) => never): EgressEntry[] {
  return (raw ?? []).map((e, i) => {
    const match = parseEgressHost(e.host);
    if ('error' in match) fail([i, 'host'], `egress[${i}].host: "${e.host}" ${match.error}`);
    const m = match as EgressHost;
    return { host: egressHostText(m), match: m, ports: e.ports ?? DEFAULT_EGRESS_PORTS };
  });
}

/** Whether an entry's host matches a canonical host (as proxy-authority reads it). */
export function hostMatches(h: EgressHost, host: string): boolean {
  const ip = isIPv4(host) || isIPv6(host);
  if (h.kind === 'ip') return ip && host === h.address;
  if (ip) return false;
  if (h.kind === 'name') return host === h.name;
  return host.length > h.suffix.length + 1 && host.endsWith(`.${h.suffix}`);
}

export type EgressMatch =
  | { declared: true; entry: EgressEntry }
  /** `hostDeclared`: an entry names the host, on other ports. */
  | { declared: false; hostDeclared: readonly number[] | null };

/** The first entry that declares host:port; else whether the host is declared on other ports. */
export function matchEgress(entries: readonly EgressEntry[], host: string, port: number): EgressMatch {
  const forHost = entries.filter((e) => hostMatches(e.match, host));
  const entry = forHost.find((e) => e.ports.includes(port));
  if (entry) return { declared: true, entry };
  return { declared: false, hostDeclared: forHost.length ? [...new Set(forHost.flatMap((e) => e.ports))].sort((a, b) => a - b) : null };
}

/** The list as one line for messages: `api.anthropic.com:443, *.npmjs.org:443`. */
export function describeEgress(entries: readonly EgressEntry[]): string {
  if (entries.length === 0) return 'none';
  return entries.map((e) => `${e.match.kind === 'ip' && e.host.includes(':') ? `[${e.host}]` : e.host}:${e.ports.join('|')}`).join(', ');
}
