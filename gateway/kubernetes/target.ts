// A `kind: kubernetes` target of the policy file: its schema (target.schema.json, merged into the
// one policy schema by the loader) and what the schema cannot check: a server that is an https
// origin, a CA that holds certificates, a client certificate given whole.
import fs from 'node:fs';
import path from 'node:path';
import type { TargetBase, TargetParsing } from '../core/adapter.ts';
import { caProblem } from '../http/target.ts';
import type { UpstreamAuth } from '../http/upstream.ts';

/** The AKS AAD server application every AKS cluster with Entra ID integration accepts tokens for. */
export const AKS_SCOPE = '6dae42f8-4368-4678-94ff-3960e28e3630/.default';

export interface KubeTarget extends TargetBase {
  kind: 'kubernetes';
  /** `https://host:port`: what the upstream is; the kubeconfig's server is the gateway. */
  origin: string;
  protocol: 'https:';
  host: string;
  port: number;
  auth: UpstreamAuth;
  /** PEM of the CA the API server chains to; null: the system roots. */
  ca: string | null;
  /** Where the CA came from (a file, or ca-data), for run-start. */
  caFrom: string | null;
  connectTo: { host: string; port: number } | null;
  timeoutMs: number;
  /** The generated kubeconfig context's namespace. */
  namespace: string;
}

export function parseKubeTarget(name: string, t: Record<string, unknown>, ctx: TargetParsing): KubeTarget {
  const raw = String(t.server);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return ctx.fail(['server'], `targets.${name}.server: "${raw}" is not a URL (write https://host or https://host:port)`);
  }
  if (url.protocol !== 'https:') ctx.fail(['server'], `targets.${name}.server: the scheme must be https, not ${url.protocol.replace(/:$/, '')} (the gateway sends the cluster credential only over TLS)`);
  if (url.username || url.password) ctx.fail(['server'], `targets.${name}.server: put no credentials in the server URL; use auth:`);
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash || !/^https:\/\/[^/?#]+\/?$/i.test(raw)) {
    ctx.fail(['server'], `targets.${name}.server: give the origin only (https://host or https://host:port); an API server behind a path prefix is not supported`);
  }
  if (t['ca-file'] !== undefined && t['ca-data'] !== undefined) ctx.fail(['ca-data'], `targets.${name}: give ca-file or ca-data, not both`);
  let ca: string | null = null;
  let caFrom: string | null = null;
  if (t['ca-file'] !== undefined) {
    const file = path.resolve(ctx.baseDir, String(t['ca-file']));
    try {
      ca = fs.readFileSync(file, 'utf8');
    } catch (e) {
      ctx.fail(['ca-file'], `targets.${name}.ca-file: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    const problem = caProblem(ca!);
    if (problem) ctx.fail(['ca-file'], `targets.${name}.ca-file: ${file} ${problem}`);
    caFrom = file;
  } else if (t['ca-data'] !== undefined) {
    ca = pemOrBase64(String(t['ca-data']));
    const problem = caProblem(ca);
    if (problem) ctx.fail(['ca-data'], `targets.${name}.ca-data: ${problem.replace(/^holds/, 'holds')} (give base64 of the PEM, as a kubeconfig's certificate-authority-data)`);
    caFrom = 'ca-data';
  }
  const auth = parseAuth(name, t, ctx);
  if (t.scope !== undefined && auth.kind !== 'azure') ctx.fail(['scope'], `targets.${name}.scope: a scope is for auth: azure`);
  let connectTo: KubeTarget['connectTo'] = null;
  if (t['connect-to'] !== undefined) {
    const [h, p] = String(t['connect-to']).split(':');
    if (!(Number(p) >= 1 && Number(p) <= 65535)) ctx.fail(['connect-to'], `targets.${name}.connect-to: ${String(p)} is not a port (1-65535)`);
    connectTo = { host: h!, port: Number(p) };
  }
  const secretEnv = auth.kind === 'bearer' ? [auth.env] : auth.kind === 'client-cert' ? [auth.certEnv, auth.keyEnv] : [];
  return {
    name,
    kind: 'kubernetes',
    origin: url.origin,
    protocol: 'https:',
    host: url.hostname.replace(/^\[|\]$/g, '').toLowerCase(),
    port: url.port ? Number(url.port) : 443,
    auth,
    ca,
    caFrom,
    connectTo,
    timeoutMs: ((t.timeout as number | undefined) ?? 120) * 1000,
    namespace: (t.namespace as string | undefined) ?? 'default',
    secretEnv,
    azure: auth.kind === 'azure',
  };
}

function parseAuth(name: string, t: Record<string, unknown>, ctx: TargetParsing): UpstreamAuth {
  if (t.auth === 'azure') return { kind: 'azure', scope: t.scope !== undefined ? String(t.scope) : AKS_SCOPE };
  const m = t.auth as Record<string, string>;
  const cert = m['client-cert-env'];
  const key = m['client-key-env'];
  if (m['token-env'] !== undefined) {
    if (cert !== undefined || key !== undefined) ctx.fail(['auth'], `targets.${name}.auth: give token-env, or client-cert-env with client-key-env, not both`);
    return { kind: 'bearer', env: m['token-env'] };
  }
  if (cert === undefined || key === undefined) ctx.fail(['auth'], `targets.${name}.auth: a client certificate needs both client-cert-env and client-key-env`);
  return { kind: 'client-cert', certEnv: cert!, keyEnv: key! };
}

/** PEM as given, or the PEM a base64 value holds (a kubeconfig's *-data fields). */
export function pemOrBase64(v: string): string {
  if (v.includes('-----BEGIN')) return v;
  return Buffer.from(v.replace(/\s+/g, ''), 'base64').toString('utf8');
}

/** The target as run-start describes it (never a secret's value). */
export function describeKubeTarget(t: KubeTarget): Record<string, unknown> {
  const auth = t.auth.kind === 'azure' ? `azure (${t.auth.scope})` : t.auth.kind === 'bearer' ? 'token' : t.auth.kind;
  return { name: t.name, kind: t.kind, server: t.origin, auth, namespace: t.namespace, ...(t.caFrom ? { ca: t.caFrom } : {}), ...(t.connectTo ? { connect_to: `${t.connectTo.host}:${t.connectTo.port}` } : {}) };
}
