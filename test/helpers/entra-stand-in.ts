// A local stand-in for Microsoft Entra ID's v2.0 token endpoint, over real HTTPS (a throwaway CA
// made with the openssl CLI), validating federated client assertions the way Entra does for
// workload identity federation: the assertion's issuer must belong to a federated identity
// credential of the application, its signature must verify against the keys that issuer
// publishes (OpenID discovery → jwks_uri), it must be within its validity window, and its
// subject and audience must match a credential exactly (case-sensitive). Failures answer in
// Entra's error shape with the real AADSTS codes, so a client sees the same text it would see
// in production.
//
// What @azure/identity's ClientAssertionCredential (msal-node) calls when constructed with
// `{ authorityHost, disableInstanceDiscovery: true }`:
//   GET  /{tenant}/v2.0/.well-known/openid-configuration   (once per credential instance)
//   POST /{tenant}/oauth2/v2.0/token                        (per token not in msal's cache)
// Instance discovery (login.microsoftonline.com/common/discovery/instance) is skipped because
// the authority host is passed as a known authority; it would go to Microsoft's host anyway.
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import {
  compactVerify, createRemoteJWKSet, decodeJwt, decodeProtectedHeader, errors as joseErrors,
  exportJWK, generateKeyPair, type JWK, type JWTPayload,
} from 'jose';

const run = promisify(execFile);

export const TOKEN_EXCHANGE_AUDIENCE = 'api://AzureADTokenExchange';
export const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const FIC_DOCS = 'https://learn.microsoft.com/entra/workload-id/workload-identity-federation';

export interface FederatedCredential {
  issuer: string;
  subject: string;
  /** Default 'api://AzureADTokenExchange'. */
  audience?: string;
}

export interface EntraTokenRequest {
  subject: string | null;
  issuer: string | null;
  audience: string | null;
  /** The assertion's jti, so a test can tell fresh assertions from replayed ones. */
  jti: string | null;
  clientId: string | null;
  scope: string;
  ok: boolean;
  /** error_description (starts with 'AADSTSnnnn: ') when not ok. */
  error?: string;
  errorCode?: number;
}

export interface EntraHttpCall {
  method: string;
  /** Path and query as received. */
  url: string;
  status: number;
  contentType?: string;
  /** Names of the form fields posted (token endpoint only), in order. */
  formFields?: string[];
  /** The request headers that say who is calling (client-request-id, x-client-*, user-agent, ...). */
  headers: Record<string, string>;
}

export interface EntraStandIn {
  /** 'https://127.0.0.1:PORT' */
  authorityHost: string;
  /** PEM of the generated CA, for NODE_EXTRA_CA_CERTS. */
  caFile: string;
  /** The CA PEM itself (for an in-process `ca:` option). */
  caPem: string;
  tenantId: string;
  clientId: string;
  /** The access token issued for a scope (static per scope, so a test can make it a database password). */
  tokenFor(scope: string): string;
  /** Every token request: the assertion's subject/issuer/audience, the scope, and the outcome. */
  requests: EntraTokenRequest[];
  /** Every HTTP call received, in order. */
  calls: EntraHttpCall[];
  /** The federated identity credentials of the application (mutable between requests). */
  federatedCredentials: FederatedCredential[];
  close(): Promise<void>;
}

export interface EntraStandInOptions {
  federatedCredentials: FederatedCredential[];
  tenantId?: string;
  clientId?: string;
  tokens?: Record<string, string>;
}

class AadError extends Error {
  readonly status: number;
  readonly error: string;
  readonly code: number;
  constructor(status: number, error: string, code: number, description: string) {
    super(description);
    this.status = status;
    this.error = error;
    this.code = code;
  }
}

/** Entra's timestamp style: '2025-10-13 14:54:34Z'. */
const aadTimestamp = (d: Date): string => d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
/** .NET round-trip style used inside AADSTS700024: '2024-10-02T22:05:03.6755165Z'. */
const dotnetTime = (d: Date): string => d.toISOString().replace(/\.(\d{3})Z$/, '.$10000Z');

/** A throwaway CA and a server certificate it signs, with the given subjectAltName (openssl syntax). */
export async function makeCertificates(dir: string, subjectAltName = 'IP:127.0.0.1,DNS:localhost', label = 'Entra stand-in'): Promise<{ caFile: string; keyFile: string; certFile: string }> {
  const caKey = path.join(dir, 'ca.key');
  const caFile = path.join(dir, 'ca.pem');
  const keyFile = path.join(dir, 'server.key');
  const csr = path.join(dir, 'server.csr');
  const certFile = path.join(dir, 'server.pem');
  const ext = path.join(dir, 'server.ext');
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run('openssl', [
    'req', '-x509', ...ec, '-keyout', caKey, '-out', caFile, '-days', '2', '-sha256',
    '-subj', `/CN=${label} throwaway CA ${randomBytes(4).toString('hex')}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  await run('openssl', ['req', ...ec, '-keyout', keyFile, '-out', csr, '-subj', '/CN=127.0.0.1']);
  await writeFile(ext, [
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth',
    `subjectAltName=${subjectAltName}`,
    '',
  ].join('\n'));
  await run('openssl', [
    'x509', '-req', '-in', csr, '-CA', caFile, '-CAkey', caKey, '-CAcreateserial',
    '-out', certFile, '-days', '2', '-sha256', '-extfile', ext,
  ]);
  return { caFile, keyFile, certFile };
}

function readBody(req: IncomingMessage, limit = 1 << 20): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) { reject(new Error('body too large')); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

interface IssuerKeys { jwks: ReturnType<typeof createRemoteJWKSet> }

export async function startEntraStandIn(opts: EntraStandInOptions): Promise<EntraStandIn> {
  const tenantId = opts.tenantId ?? randomUUID();
  const clientId = opts.clientId ?? randomUUID();
  const dir = await mkdtemp(path.join(tmpdir(), 'entra-stand-in-'));
  const { caFile, keyFile, certFile } = await makeCertificates(dir);
  const [caPem, key, cert] = await Promise.all([readFile(caFile, 'utf8'), readFile(keyFile), readFile(certFile)]);

  // Entra's own signing keys, published at jwks_uri for realism (the access tokens issued here
  // are opaque static strings, so nothing is signed with them).
  const { publicKey } = await generateKeyPair('RS256', { extractable: true });
  const entraKid = randomBytes(20).toString('base64url');
  const entraJwk: JWK = { ...(await exportJWK(publicKey)), kid: entraKid, use: 'sig', kty: 'RSA' };

  const tokens = new Map<string, string>(Object.entries(opts.tokens ?? {}));
  const tokenFor = (scope: string): string => {
    let t = tokens.get(scope);
    if (!t) { t = randomBytes(32).toString('base64url'); tokens.set(scope, t); }
    return t;
  };
  const requests: EntraTokenRequest[] = [];
  const calls: EntraHttpCall[] = [];
  const issuerKeys = new Map<string, Promise<IssuerKeys>>();
  let host = '';

  const discoverIssuer = (iss: string): Promise<IssuerKeys> => {
    let p = issuerKeys.get(iss);
    if (!p) {
      p = (async () => {
        const res = await fetch(`${iss.replace(/\/$/, '')}/.well-known/openid-configuration`);
        if (!res.ok) throw new Error(`discovery answered ${res.status}`);
        const doc = (await res.json()) as { issuer?: string; jwks_uri?: string };
        if (doc.issuer !== iss) throw new Error(`discovery issuer '${doc.issuer}' is not '${iss}'`);
        if (!doc.jwks_uri) throw new Error('discovery has no jwks_uri');
        return { jwks: createRemoteJWKSet(new URL(doc.jwks_uri)) };
      })();
      issuerKeys.set(iss, p);
      p.catch(() => issuerKeys.delete(iss)); // do not cache failures
    }
    return p;
  };

  const openIdConfiguration = (tenant: string): Record<string, unknown> => ({
    token_endpoint: `${host}/${tenant}/oauth2/v2.0/token`,
    token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
    jwks_uri: `${host}/${tenant}/discovery/v2.0/keys`,
    response_modes_supported: ['query', 'fragment', 'form_post'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: ['RS256'],
    response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
    scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
    issuer: `${host}/${tenant}/v2.0`,
    request_uri_parameter_supported: false,
    userinfo_endpoint: 'https://graph.microsoft.com/oidc/userinfo',
    authorization_endpoint: `${host}/${tenant}/oauth2/v2.0/authorize`,
    device_authorization_endpoint: `${host}/${tenant}/oauth2/v2.0/devicecode`,
    http_logout_supported: true,
    frontchannel_logout_supported: true,
    end_session_endpoint: `${host}/${tenant}/oauth2/v2.0/logout`,
    claims_supported: ['sub', 'iss', 'cloud_instance_name', 'cloud_instance_host_name', 'cloud_graph_host_name', 'msgraph_host', 'aud', 'exp', 'iat', 'auth_time', 'acr', 'nonce', 'preferred_username', 'name', 'tid', 'ver', 'at_hash', 'c_hash', 'email'],
    kerberos_endpoint: `${host}/${tenant}/kerberos`,
    tenant_region_scope: 'EU',
    cloud_instance_name: 'microsoftonline.com',
    cloud_graph_host_name: 'graph.windows.net',
    msgraph_host: 'graph.microsoft.com',
    rbac_url: 'https://pas.windows.net',
  });

  const tenantNotFound = (tenant: string): AadError => new AadError(400, 'invalid_tenant', 90002,
    `AADSTS90002: Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.`);

  /** Validates a token request; returns the granted scope or throws AadError. Fills `rec` as it learns. */
  const validate = async (form: URLSearchParams, tenant: string, rec: EntraTokenRequest): Promise<string> => {
    if (tenant !== tenantId) throw tenantNotFound(tenant);
    const missing = (name: string): AadError =>
      new AadError(400, 'invalid_request', 900144, `AADSTS900144: The request body must contain the following parameter: '${name}'.`);
    const grantType = form.get('grant_type');
    if (!grantType) throw missing('grant_type');
    if (grantType !== 'client_credentials') {
      throw new AadError(400, 'unsupported_grant_type', 70003, `AADSTS70003: The app requested an unsupported grant type '${grantType}'.`);
    }
    const reqClientId = form.get('client_id');
    if (!reqClientId) throw missing('client_id');
    if (reqClientId !== clientId) {
      throw new AadError(400, 'unauthorized_client', 700016,
        `AADSTS700016: Application with identifier '${reqClientId}' was not found in the directory '${tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`);
    }
    const scope = form.get('scope');
    if (!scope) throw missing('scope');
    const assertion = form.get('client_assertion');
    if (!assertion || form.get('client_assertion_type') !== JWT_BEARER) {
      throw new AadError(401, 'invalid_client', 7000218,
        "AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
    }
    const malformed = (): AadError => new AadError(400, 'invalid_request', 50027, 'AADSTS50027: JWT token is invalid or malformed.');
    let claims: JWTPayload;
    try {
      decodeProtectedHeader(assertion);
      claims = decodeJwt(assertion);
    } catch {
      throw malformed();
    }
    const iss = typeof claims.iss === 'string' ? claims.iss : null;
    const sub = typeof claims.sub === 'string' ? claims.sub : null;
    const auds = typeof claims.aud === 'string' ? [claims.aud] : Array.isArray(claims.aud) ? claims.aud : [];
    rec.issuer = iss;
    rec.subject = sub;
    rec.audience = auds.join(' ') || null;
    rec.jti = typeof claims.jti === 'string' ? claims.jti : null;

    // 1. Issuer: some federated identity credential of the app must name it (exact match).
    const byIssuer = opts.federatedCredentials.filter((c) => c.issuer === iss);
    if (!iss || byIssuer.length === 0) {
      throw new AadError(401, 'invalid_client', 700211,
        `AADSTS700211: No matching federated identity record found for presented assertion issuer '${iss ?? ''}'. Please note that the matching is done using a case-sensitive comparison. Check your federated identity credential Subject, Audience and Issuer against the presented assertion. ${FIC_DOCS}`);
    }
    // 2. Signature, with the keys the issuer publishes (OpenID discovery → jwks_uri).
    let keys: IssuerKeys;
    try {
      keys = await discoverIssuer(iss);
    } catch (e) {
      throw new AadError(401, 'invalid_client', 50166,
        `AADSTS50166: Request to External OIDC endpoint failed. Issuer '${iss}': ${(e as Error).message}.`);
    }
    try {
      await compactVerify(assertion, keys.jwks, { algorithms: ['RS256'] });
    } catch (e) {
      if (e instanceof joseErrors.JWKSTimeout || (e instanceof TypeError && /fetch/i.test(e.message))) {
        throw new AadError(401, 'invalid_client', 50166, `AADSTS50166: Request to External OIDC endpoint failed. Issuer '${iss}'.`);
      }
      throw malformed();
    }
    // 3. Validity window.
    const now = new Date();
    const nowS = now.getTime() / 1000;
    const nbf = typeof claims.nbf === 'number' ? claims.nbf : 0;
    if (typeof claims.exp !== 'number' || claims.exp <= nowS || nbf > nowS) {
      throw new AadError(401, 'invalid_client', 700024,
        `AADSTS700024: Client assertion is not within its valid time range. Current time: ${dotnetTime(now)}, assertion valid from ${dotnetTime(new Date(nbf * 1000))}, expiry time of assertion ${dotnetTime(new Date((claims.exp ?? 0) * 1000))}. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .`);
    }
    // 4. Subject: (issuer, subject) identifies the credential; case-sensitive.
    const bySubject = byIssuer.filter((c) => c.subject === sub);
    if (bySubject.length === 0) {
      throw new AadError(401, 'invalid_client', 700213,
        `AADSTS700213: No matching federated identity record found for presented assertion subject '${sub ?? ''}'. Check your federated identity credential Subject, Audience and Issuer against the presented assertion. ${FIC_DOCS}`);
    }
    // 5. Audience.
    if (!bySubject.some((c) => auds.includes(c.audience ?? TOKEN_EXCHANGE_AUDIENCE))) {
      throw new AadError(401, 'invalid_client', 700212,
        `AADSTS700212: No matching federated identity record found for presented assertion audience '${auds.join(',')}'. Check your federated identity credential Subject, Audience and Issuer against the presented assertion. ${FIC_DOCS}`);
    }
    // 6. Scope: the client credentials flow only takes '{resource}/.default'.
    if (!/\/\.default$/.test(scope) || scope.trim().includes(' ')) {
      throw new AadError(400, 'invalid_scope', 1002012,
        `AADSTS1002012: The provided value for scope ${scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`);
    }
    return scope;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, call: EntraHttpCall): Promise<void> => {
    const u = new URL(req.url ?? '/', host);
    // Entra echoes the caller's client-request-id (header, query or form) as the Correlation ID.
    const correlationHeader = req.headers['client-request-id'];
    let correlationId = (Array.isArray(correlationHeader) ? correlationHeader[0] : correlationHeader)
      ?? u.searchParams.get('client-request-id') ?? randomUUID();
    const correlationGiven = correlationHeader !== undefined || u.searchParams.has('client-request-id');
    const traceId = randomUUID();
    const send = (status: number, body: unknown): void => {
      call.status = status;
      res.writeHead(status, {
        'content-type': 'application/json; charset=utf-8',
        'cache-control': 'no-store, no-cache',
        pragma: 'no-cache',
        'x-ms-request-id': traceId,
        'client-request-id': correlationId,
        'strict-transport-security': 'max-age=31536000; includeSubDomains',
      });
      res.end(JSON.stringify(body));
    };
    const sendError = (e: AadError): void => {
      const now = new Date();
      send(e.status, {
        error: e.error,
        error_description: `${e.message} Trace ID: ${traceId} Correlation ID: ${correlationId} Timestamp: ${aadTimestamp(now)}`,
        error_codes: [e.code],
        timestamp: aadTimestamp(now),
        trace_id: traceId,
        correlation_id: correlationId,
        error_uri: `${host}/error?code=${e.code}`,
      });
    };
    const segs = u.pathname.split('/').filter(Boolean);
    const tenant = segs[0] ?? '';

    // GET /{tenant}/v2.0/.well-known/openid-configuration
    if (segs.length === 4 && segs[1] === 'v2.0' && segs[2] === '.well-known' && segs[3] === 'openid-configuration') {
      if (req.method !== 'GET') return send(405, { error: 'invalid_request' });
      if (tenant !== tenantId) return sendError(tenantNotFound(tenant));
      return send(200, openIdConfiguration(tenant));
    }
    // GET /{tenant}/discovery/v2.0/keys
    if (segs.length === 4 && segs[1] === 'discovery' && segs[2] === 'v2.0' && segs[3] === 'keys') {
      if (tenant !== tenantId) return sendError(tenantNotFound(tenant));
      return send(200, { keys: [{ ...entraJwk, x5t: entraKid, issuer: `${host}/${tenant}/v2.0` }] });
    }
    // POST /{tenant}/oauth2/v2.0/token
    if (segs.length === 4 && segs[1] === 'oauth2' && segs[2] === 'v2.0' && segs[3] === 'token') {
      if (req.method !== 'POST') {
        return sendError(new AadError(400, 'invalid_request', 900561, 'AADSTS900561: The endpoint only accepts POST requests. Received a GET request.'));
      }
      const body = await readBody(req);
      const form = new URLSearchParams(body);
      call.formFields = [...form.keys()];
      const bodyCorrelation = form.get('client-request-id');
      if (bodyCorrelation && !correlationGiven) correlationId = bodyCorrelation;
      const rec: EntraTokenRequest = {
        subject: null, issuer: null, audience: null, jti: null, clientId: form.get('client_id'), scope: form.get('scope') ?? '', ok: false,
      };
      requests.push(rec);
      if (!/^application\/x-www-form-urlencoded/i.test(req.headers['content-type'] ?? '')) {
        const e = new AadError(400, 'invalid_request', 900144, "AADSTS900144: The request body must contain the following parameter: 'grant_type'.");
        rec.error = e.message; rec.errorCode = e.code;
        return sendError(e);
      }
      try {
        const scope = await validate(form, tenant, rec);
        rec.ok = true;
        return send(200, { token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599, access_token: tokenFor(scope) });
      } catch (e) {
        if (!(e instanceof AadError)) throw e;
        rec.error = e.message; rec.errorCode = e.code;
        return sendError(e);
      }
    }
    send(404, { error: 'not_found', error_description: `No such endpoint: ${req.method} ${u.pathname}` });
  };

  const server = https.createServer({ key, cert }, (req, res) => {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (/^(client-request-id|return-client-request-id|x-client-|x-ms-|x-app-|user-agent$)/.test(k) && v !== undefined) headers[k] = String(v);
    }
    const call: EntraHttpCall = { method: req.method ?? '', url: req.url ?? '', status: 0, contentType: req.headers['content-type'], headers };
    calls.push(call);
    handle(req, res, call).catch((e: Error) => {
      call.status = 500;
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'server_error', error_description: e.message }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => { server.off('error', reject); resolve(); });
  });
  host = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    authorityHost: host,
    caFile,
    caPem,
    tenantId,
    clientId,
    tokenFor,
    requests,
    calls,
    federatedCredentials: opts.federatedCredentials,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await rm(dir, { recursive: true, force: true });
    },
  };
}
