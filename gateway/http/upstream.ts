// The gateway's side toward an HTTP target: one keep-alive agent per target (its CA when the
// policy names one) and the credential every request carries, read when the gateway starts so a
// missing variable or a refused Entra ID token fails the start, not the first request.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { Agent, EnvHttpProxyAgent, type Dispatcher } from 'undici';
import type { Credentials } from '../core/adapter.ts';
import type { HttpAuth, HttpTarget } from './target.ts';

/** How the gateway authenticates to an upstream: an HTTP target's ways, or a TLS client certificate (Kubernetes). */
export type UpstreamAuth = HttpAuth | { kind: 'client-cert'; certEnv: string; keyEnv: string };

/** What the gateway needs to reach an upstream API (an HTTP target, a Kubernetes API server). */
export interface UpstreamTarget extends Pick<HttpTarget, 'name' | 'origin' | 'host' | 'port' | 'ca' | 'connectTo' | 'timeoutMs'> {
  protocol: 'https:' | 'http:';
  auth: UpstreamAuth;
}

/** TLS options toward the upstream: its CA, the name its certificate must carry, a client certificate. */
export function upstreamTls(t: UpstreamTarget, clientCert: { cert: string; key: string } | null): tls.ConnectionOptions {
  return {
    ...(t.ca ? { ca: t.ca } : {}),
    // TLS checks the url's host name whatever address the connection goes to (connect-to).
    ...(net.isIP(t.host) ? {} : { servername: t.host }),
    checkServerIdentity: (_h: string, cert: tls.PeerCertificate) => tls.checkServerIdentity(t.host, cert),
    ...(clientCert ?? {}),
  };
}

/** The target's answer: status, headers and the body as it streams. */
export interface UpstreamResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: AsyncIterable<Buffer> & { destroy(err?: Error): unknown };
}

export interface Upstream {
  readonly target: UpstreamTarget;
  /** TLS options for another connection to the target (a WebSocket upgrade). */
  readonly tls: tls.ConnectionOptions;
  /** The headers that authenticate one request (an Entra ID token is refreshed before expiry). */
  auth(): Promise<Record<string, string>>;
  /**
   * Every credential value the gateway has sent this target (header values, a Basic pair and its
   * parts, each Entra ID token): masked wherever the target echoes one back.
   */
  credentialValues(): readonly string[];
  /**
   * Sends one request; `body` is pulled as the target takes it (backpressure), null for none.
   * Rejects when the target cannot be reached or sends no headers within the target's timeout.
   */
  request(method: string, pathAndQuery: string, headers: OutgoingHttpHeaders, body: AsyncIterable<Buffer> | Buffer | null, signal: AbortSignal): Promise<UpstreamResponse>;
  close(): Promise<void>;
}

/**
 * undici rather than node:https: measured on this machine as a bare reverse proxy in front of
 * the same HTTPS upstream, 96 against 133 CPU µs per small request (bench/http.ts has the
 * gateway's figures).
 */
export async function openUpstream(t: UpstreamTarget, credentials: Credentials): Promise<Upstream> {
  const authOnce = await authHeaders(t, credentials);
  const clientCert = readClientCert(t, credentials);
  const sent = new Set<string>();
  // One array per change, so a masker can keep what it built from it.
  let values: readonly string[] = [];
  const auth = async (): Promise<Record<string, string>> => {
    const h = await authOnce();
    for (const v of Object.values(h)) {
      if (sent.has(v)) continue;
      values = [];
      sent.add(v);
      // The header's value and what it carries: a bearer token, a Basic pair and its parts.
      const bearer = /^Bearer (.+)$/.exec(v);
      if (bearer) sent.add(bearer[1]!);
      const basic = /^Basic (.+)$/.exec(v);
      if (basic) {
        const pair = Buffer.from(basic[1]!, 'base64').toString();
        sent.add(basic[1]!).add(pair).add(pair.slice(pair.indexOf(':') + 1));
      }
    }
    if (values.length !== sent.size) values = Object.freeze([...sent]);
    return h;
  };
  await auth();
  const agent = dispatcherFor(t, process.env, clientCert);
  const address = t.connectTo ?? { host: t.host, port: t.port };
  const origin = `${t.protocol}//${net.isIPv6(address.host) ? `[${address.host}]` : address.host}:${address.port}`;
  return {
    target: t,
    tls: upstreamTls(t, clientCert),
    auth,
    credentialValues: () => values,
    async request(method, pathAndQuery, headers, body, signal) {
      const r = await agent.request({
        origin,
        path: pathAndQuery,
        method: method as 'GET',
        headers: headers as Record<string, string>,
        // undici pulls an async iterable as the connection takes it (its types name only Readable).
        body: (body ?? null) as Buffer | null,
        signal,
      });
      return { status: r.statusCode, headers: r.headers as IncomingHttpHeaders, body: r.body as unknown as UpstreamResponse['body'] };
    },
    close: () => agent.close(),
  };
}

/**
 * A runner behind a proxy (HTTPS_PROXY in the environment the gateway was started with; the
 * daemon's environment passes it on) reaches the target through that proxy, NO_PROXY honoured;
 * otherwise, and always with connect-to, directly.
 */
export function dispatcherFor(t: UpstreamTarget, env: NodeJS.ProcessEnv, clientCert: { cert: string; key: string } | null = null): Dispatcher {
  const common = {
    keepAliveTimeout: 30_000,
    headersTimeout: t.timeoutMs,
    // A body may stream for as long as it lasts (a large download, a log): no gap limit.
    bodyTimeout: 0,
  };
  const targetTls = upstreamTls(t, clientCert);
  const proxied = !t.connectTo && [env.HTTPS_PROXY, env.https_proxy, env.HTTP_PROXY, env.http_proxy].some((v) => !!v);
  if (proxied) {
    return new EnvHttpProxyAgent({
      ...common,
      httpsProxy: env.HTTPS_PROXY || env.https_proxy || undefined,
      httpProxy: env.HTTP_PROXY || env.http_proxy || undefined,
      noProxy: env.NO_PROXY ?? env.no_proxy ?? '',
      requestTls: targetTls,
      connect: targetTls,
    } as ConstructorParameters<typeof EnvHttpProxyAgent>[0]);
  }
  return new Agent({ ...common, connections: 64, connect: targetTls });
}

/** A client certificate and key read from the starting step's variables (PEM, or base64 of PEM). */
function readClientCert(t: UpstreamTarget, credentials: Credentials): { cert: string; key: string } | null {
  if (t.auth.kind !== 'client-cert') return null;
  const read = (env: string): string => {
    const v = credentials.secret(env);
    if (v === undefined) throw new Error(`targets.${t.name}.auth: the variable ${env} is not set or empty in the step that started the gateway`);
    const pem = v.includes('-----BEGIN') ? v : Buffer.from(v.replace(/\s+/g, ''), 'base64').toString('utf8');
    if (!pem.includes('-----BEGIN')) throw new Error(`targets.${t.name}.auth: ${env} holds neither PEM nor base64 of PEM`);
    return pem;
  };
  const pair = { cert: read(t.auth.certEnv), key: read(t.auth.keyEnv) };
  try {
    tls.createSecureContext(pair);
  } catch (e) {
    throw new Error(`targets.${t.name}.auth: the client certificate and key do not load (${(e as Error).message})`);
  }
  return pair;
}

async function authHeaders(t: UpstreamTarget, credentials: Credentials): Promise<() => Promise<Record<string, string>>> {
  const who = `targets.${t.name}`;
  const secret = (env: string): string => {
    const v = credentials.secret(env);
    if (v === undefined) throw new Error(`${who}.auth: the variable ${env} is not set or empty in the step that started the gateway`);
    return v;
  };
  switch (t.auth.kind) {
    case 'none':
    case 'client-cert':
      return async () => ({});
    case 'bearer': {
      const h = { authorization: `Bearer ${secret(t.auth.env)}` };
      return async () => h;
    }
    case 'basic': {
      const v = secret(t.auth.env);
      if (!v.includes(':')) throw new Error(`${who}.auth.basic-env: ${t.auth.env} must hold user:password`);
      const h = { authorization: `Basic ${Buffer.from(v).toString('base64')}` };
      return async () => h;
    }
    case 'headers': {
      const h = Object.fromEntries(t.auth.headers.map((x) => [x.name, secret(x.env)]));
      return async () => h;
    }
    case 'azure': {
      const scope = t.auth.scope;
      // The first token now: a federation the tenant refuses stops the start with Entra's message.
      await credentials.azureToken(who, scope);
      return async () => ({ authorization: `Bearer ${await credentials.azureToken(who, scope)}` });
    }
  }
}
