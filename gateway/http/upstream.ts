// The gateway's side toward an HTTP target: one keep-alive agent per target (its CA when the
// policy names one) and the credential every request carries, read when the gateway starts so a
// missing variable or a refused Entra ID token fails the start, not the first request.
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import type { Credentials } from '../core/adapter.ts';
import type { HttpTarget } from './target.ts';

export interface Upstream {
  readonly target: HttpTarget;
  /** The headers that authenticate one request (an Entra ID token is refreshed before expiry). */
  auth(): Promise<Record<string, string>>;
  /** Opens a request to the target; the caller writes the body and reads the response. */
  request(method: string, pathAndQuery: string, headers: http.OutgoingHttpHeaders): http.ClientRequest;
  close(): void;
}

export async function openUpstream(t: HttpTarget, credentials: Credentials): Promise<Upstream> {
  const auth = await authHeaders(t, credentials);
  const agent = t.protocol === 'https:'
    // Name checks live on the agent: options given per request would stop it reusing connections.
    ? new https.Agent({
      keepAlive: true, maxSockets: 64, ...(t.ca ? { ca: t.ca } : {}),
      // TLS checks the url's host name whatever address the connection goes to (connect-to).
      ...(net.isIP(t.host) ? {} : { servername: t.host }),
      checkServerIdentity: (_h: string, cert: tls.PeerCertificate) => tls.checkServerIdentity(t.host, cert),
    })
    : new http.Agent({ keepAlive: true, maxSockets: 64 });
  const transport = t.protocol === 'https:' ? https : http;
  return {
    target: t,
    auth,
    request: (method, pathAndQuery, headers) => transport.request({
      host: t.connectTo?.host ?? t.host, port: t.connectTo?.port ?? t.port, method, path: pathAndQuery, headers, agent, timeout: t.timeoutMs,
    }),
    close: () => agent.destroy(),
  };
}

async function authHeaders(t: HttpTarget, credentials: Credentials): Promise<() => Promise<Record<string, string>>> {
  const who = `targets.${t.name}`;
  const secret = (env: string): string => {
    const v = credentials.secret(env);
    if (v === undefined) throw new Error(`${who}.auth: the variable ${env} is not set or empty in the step that started the gateway`);
    return v;
  };
  switch (t.auth.kind) {
    case 'none':
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
