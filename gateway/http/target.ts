// A `kind: http` target of the policy file: its schema (target.schema.json, merged into the one
// policy schema by the loader) and what the schema cannot check: a url that is an origin, a
// credential that is never sent in cleartext beyond this machine, a CA file that holds
// certificates.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import type { TargetBase, TargetParsing } from '../core/adapter.ts';

export type HttpAuth =
  | { kind: 'none' }
  | { kind: 'azure'; scope: string }
  | { kind: 'bearer'; env: string }
  | { kind: 'basic'; env: string }
  | { kind: 'headers'; headers: { name: string; env: string }[] };

export interface HttpTarget extends TargetBase {
  kind: 'http';
  /** `https://management.azure.com`: scheme, host and port, nothing else. */
  origin: string;
  protocol: 'https:' | 'http:';
  /** Host name (lower case) or IP literal, without brackets. */
  host: string;
  port: number;
  auth: HttpAuth;
  /** PEM certificates the upstream must chain to instead of the system roots; null for the roots. */
  ca: string | null;
  caFile: string | null;
  /** Where the gateway connects instead of host:port (TLS and Host still name the url's host); null: the url's. */
  connectTo: { host: string; port: number } | null;
  timeoutMs: number;
}

export function parseHttpTarget(name: string, t: Record<string, unknown>, ctx: TargetParsing): HttpTarget {
  let url: URL;
  try {
    url = new URL(String(t.url));
  } catch {
    return ctx.fail(['url'], `targets.${name}.url: "${String(t.url)}" is not a URL (write https://host or https://host:port)`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') ctx.fail(['url'], `targets.${name}.url: the scheme must be https (or http for a local API), not ${url.protocol.replace(/:$/, '')}`);
  if (url.username || url.password) ctx.fail(['url'], `targets.${name}.url: put no credentials in the url; use auth:`);
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash || !/^https?:\/\/[^/?#]+\/?$/i.test(String(t.url))) {
    ctx.fail(['url'], `targets.${name}.url: give the origin only (https://host or https://host:port), without a path, query or fragment`);
  }
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  const auth = parseAuth(name, t, url, ctx);
  if (url.protocol === 'http:' && auth.kind !== 'none' && !isLoopback(host)) {
    ctx.fail(['url'], `targets.${name}.url: http:// would send the credential in cleartext to ${host}; use https:// (http:// is for APIs on this machine)`);
  }
  if (t.scope !== undefined && auth.kind !== 'azure') ctx.fail(['scope'], `targets.${name}.scope: a scope is for auth: azure`);
  let ca: string | null = null;
  let caFile: string | null = null;
  if (t['ca-file'] !== undefined) {
    if (url.protocol !== 'https:') ctx.fail(['ca-file'], `targets.${name}.ca-file: the url is not https`);
    caFile = path.resolve(ctx.baseDir, String(t['ca-file']));
    try {
      ca = fs.readFileSync(caFile, 'utf8');
    } catch (e) {
      ctx.fail(['ca-file'], `targets.${name}.ca-file: cannot read ${caFile} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    const problem = caProblem(ca!);
    if (problem) ctx.fail(['ca-file'], `targets.${name}.ca-file: ${caFile} ${problem}`);
  }
  let connectTo: HttpTarget['connectTo'] = null;
  if (t['connect-to'] !== undefined) {
    const [h, p] = String(t['connect-to']).split(':');
    if (!(Number(p) >= 1 && Number(p) <= 65535)) ctx.fail(['connect-to'], `targets.${name}.connect-to: ${String(p)} is not a port (1-65535)`);
    connectTo = { host: h!, port: Number(p) };
  }
  const secretEnv = auth.kind === 'bearer' || auth.kind === 'basic' ? [auth.env] : auth.kind === 'headers' ? auth.headers.map((h) => h.env) : [];
  return {
    name,
    kind: 'http',
    origin: url.origin,
    protocol: url.protocol as 'https:' | 'http:',
    host,
    port,
    auth,
    ca,
    caFile,
    connectTo,
    timeoutMs: ((t.timeout as number | undefined) ?? 120) * 1000,
    secretEnv,
    azure: auth.kind === 'azure',
  };
}

function parseAuth(name: string, t: Record<string, unknown>, url: URL, ctx: TargetParsing): HttpAuth {
  const raw = t.auth;
  if (raw === 'none') return { kind: 'none' };
  if (raw === 'azure') {
    if (url.protocol !== 'https:') ctx.fail(['auth'], `targets.${name}.auth: an Entra ID token is only sent over https`);
    return { kind: 'azure', scope: t.scope !== undefined ? String(t.scope) : `${url.origin}/.default` };
  }
  const m = raw as Record<string, unknown>;
  if (typeof m['bearer-env'] === 'string') return { kind: 'bearer', env: m['bearer-env'] };
  if (typeof m['basic-env'] === 'string') return { kind: 'basic', env: m['basic-env'] };
  const headers = Object.entries(m['header-env'] as Record<string, string>).map(([h, env]) => ({ name: h.toLowerCase(), env }));
  for (const h of headers) {
    if (HEADERS_THE_GATEWAY_OWNS.has(h.name)) ctx.fail(['auth', 'header-env', h.name], `targets.${name}.auth.header-env: the gateway sets ${h.name} itself; name another header`);
  }
  return { kind: 'headers', headers };
}

/** Headers the gateway writes itself on every upstream request. */
const HEADERS_THE_GATEWAY_OWNS = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'upgrade', 'te', 'trailer', 'keep-alive', 'accept-encoding', 'expect']);

function isLoopback(host: string): boolean {
  return host === 'localhost' || (net.isIPv4(host) && host.startsWith('127.')) || host === '::1';
}

/** Why a PEM text is no CA bundle (no certificate, one that does not parse), or null. */
export function caProblem(pem: string): string | null {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) return 'holds no PEM certificate';
  for (const b of blocks) {
    try {
      new X509Certificate(b);
    } catch (e) {
      return `holds a certificate that does not parse (${(e as Error).message})`;
    }
  }
  return null;
}

/** The target as run-start describes it (never a secret's value). */
export function describeHttpTarget(t: HttpTarget): Record<string, unknown> {
  const auth = t.auth.kind === 'azure' ? `azure (${t.auth.scope})` : t.auth.kind === 'headers' ? `headers (${t.auth.headers.map((h) => h.name).join(', ')})` : t.auth.kind;
  return { name: t.name, kind: t.kind, url: t.origin, auth, ...(t.caFile ? { ca_file: t.caFile } : {}), ...(t.connectTo ? { connect_to: `${t.connectTo.host}:${t.connectTo.port}` } : {}) };
}
