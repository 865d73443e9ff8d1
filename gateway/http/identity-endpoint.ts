// A managed-identity endpoint on loopback, so that `az`, Terraform's azurerm provider, azd and the
// Azure SDKs sign in through the gateway with no credential in the step. It answers the token
// requests those tools make on Azure hosts, with placeholders (placeholder-token.ts) that are
// valid only at the gateway, which swaps in the real Entra token on the way out.
//
// Contracts served (what each client sends, checked against their sources):
// - App Service 2019-08-01 (IDENTITY_ENDPOINT + IDENTITY_HEADER): `GET <endpoint>?api-version=
//   2019-08-01&resource=R` with `X-IDENTITY-HEADER: <IDENTITY_HEADER>`. msal-node (so
//   @azure/identity's ManagedIdentityCredential / DefaultAzureCredential), MSAL Python (so
//   az >= 2.73), Go's azidentity (azd), .NET's MSAL. Answer: {access_token, expires_on (epoch
//   seconds as a string), resource, token_type, client_id}; errors {statusCode, message}.
// - App Service 2017-09-01 (MSI_ENDPOINT + MSI_SECRET): same with header `secret:`, and the
//   user-assigned id as `clientid`. msrestazure (az <= 2.72 when APPSETTING_WEBSITE_SITE_NAME is
//   set, it appends `/` to the endpoint), MSAL's Azure Machine Learning source. expires_on is
//   epoch seconds here too: App Service once sent a date string, but MSAL Python and msal-node
//   parse only epoch/ISO for this source, and msrestazure takes both.
// - Cloud Shell / VM-extension style (MSI_ENDPOINT alone): `POST <endpoint>` with
//   `Metadata: true` and a form body `resource=R`. msrestazure (az 2.45 .. 2.72 without
//   APPSETTING_WEBSITE_SITE_NAME) and msal-node's Cloud Shell source.
// - IMDS (Azure VMs): `GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=R`
//   with `Metadata: true`. Terraform's azurerm provider (go-azure-sdk) with `use_msi` and
//   `msi_endpoint` / ARM_MSI_ENDPOINT; MSAL with AZURE_POD_IDENTITY_AUTHORITY_HOST. Answer:
//   {access_token, client_id, expires_in, expires_on, ext_expires_in, not_before, resource,
//   token_type}, all strings; errors {error, error_description}.
// The POST and IMDS forms carry no secret, as on Azure (the Metadata header only stops
// browser/SSRF-style requests): they are as open as the gateway's loopback listeners themselves,
// and a placeholder grants nothing the gateway would not do for a request without one.
//
// Only the resources the gateway serves get a token, and only for the gateway's one identity: a
// request for another resource, or naming another user-assigned identity, is refused with the
// service's error shape naming what is served.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID, timingSafeEqual } from 'node:crypto';
import type { IdentityClaims, PlaceholderTokens } from './placeholder-token.ts';

/** Where IDENTITY_ENDPOINT (and MSI_ENDPOINT) point, below the listener's base URL. */
export const IDENTITY_PATH = '/msi/token';
/** IMDS's token path, for ARM_MSI_ENDPOINT and AZURE_POD_IDENTITY_AUTHORITY_HOST-style clients. */
export const IMDS_TOKEN_PATH = '/metadata/identity/oauth2/token';
/** Placeholder lifetime unless told: one hour, like an Entra token's usual minimum. */
export const DEFAULT_LIFETIME_S = 3600;

const MAX_FORM_BYTES = 8192;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// Entra knows Azure Resource Manager by two resource URIs (the Azure Service Management app): az
// asks for the old one, the SDKs for the new one. A token for either is accepted by ARM.
const RESOURCE_ALIASES: Record<string, string> = {
  'https://management.core.windows.net': 'https://management.azure.com',
};

export interface IdentityEndpointOptions {
  tokens: PlaceholderTokens;
  /** The random IDENTITY_HEADER (also MSI_SECRET) the gateway exports to steps. */
  header: string;
  /** Scopes the gateway can serve, e.g. `https://management.azure.com/.default`. */
  scopes: string[];
  /** The identity's non-secret claims, read at each request (they may be learned after start). */
  claims: () => IdentityClaims;
  /** Placeholder lifetime in seconds; default 3600. */
  lifetimeS?: number;
}

/**
 * The canonical form of a resource or scope: `https://Management.Azure.com/`,
 * `https://management.azure.com` and `https://management.azure.com/.default` are all
 * `https://management.azure.com`; an app id GUID (with or without `/.default`) is itself in
 * lower case. Null when it is neither an https URL nor a GUID.
 */
export function canonicalResource(resourceOrScope: string): string | null {
  let s = resourceOrScope.trim();
  if (s.endsWith('/.default')) s = s.slice(0, -'/.default'.length);
  if (GUID.test(s)) return s.toLowerCase();
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    return null;
  }
  if (url.protocol !== 'https:' || url.username || url.password || url.search || url.hash) return null;
  const canonical = `https://${url.host}${url.pathname.replace(/\/+$/, '')}`;
  return RESOURCE_ALIASES[canonical] ?? canonical;
}

/**
 * Environment variables a step gets so that Azure tools find this endpoint; `baseUrl` is the
 * listener's `http://127.0.0.1:PORT`. MSI_SECRET is deliberately absent: with MSI_ENDPOINT and
 * MSI_SECRET both set, some go-azure-sdk releases (Terraform) send IMDS-style requests to
 * MSI_ENDPOINT with a 2019-08-01 api-version and no X-IDENTITY-HEADER, which fail.
 */
export function identityEnvironment(baseUrl: string, header: string): Record<string, string> {
  const base = baseUrl.replace(/\/+$/, '');
  return {
    IDENTITY_ENDPOINT: base + IDENTITY_PATH,
    IDENTITY_HEADER: header,
    MSI_ENDPOINT: base + IDENTITY_PATH,
    ARM_MSI_ENDPOINT: base + IMDS_TOKEN_PATH,
  };
}

type Flavor = 'app-service-2019' | 'app-service-2017' | 'cloud-shell' | 'imds';

interface Refusal {
  status: number;
  /** Short code, e.g. `invalid_request`. */
  code: string;
  message: string;
}

/** The request handler: true when the request was for this endpoint (and it answered). */
export function identityEndpoint(o: IdentityEndpointOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const served = new Map<string, string>();
  for (const scope of o.scopes) {
    const resource = canonicalResource(scope);
    if (!resource) throw new Error(`identity endpoint: ${JSON.stringify(scope)} is not a resource or scope`);
    served.set(resource, resource + '/.default');
  }
  const lifetimeS = o.lifetimeS ?? DEFAULT_LIFETIME_S;
  const secret = Buffer.from(o.header, 'utf8');
  if (secret.length < 16) throw new Error('identity endpoint: the header secret must be at least 16 bytes');
  const servedList = [...served.values()].join(', ');

  const secretMatches = (given: string | string[] | undefined): boolean => {
    if (typeof given !== 'string') return false;
    const b = Buffer.from(given, 'utf8');
    return b.length === secret.length && timingSafeEqual(b, secret);
  };

  return (req, res) => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://loopback');
    } catch {
      return false;
    }
    const path = url.pathname.replace(/\/+$/, '').toLowerCase();
    const isIdentity = path === IDENTITY_PATH;
    if (!isIdentity && path !== IMDS_TOKEN_PATH) return false;
    // From here on every outcome is an answer; a failure inside is a 500, never a crash.
    safely(res, () => {
      if (isIdentity && req.method === 'POST') {
        readForm(req, (form) => safely(res, () => {
          if (typeof form === 'number') return send(res, 'cloud-shell', { status: form, code: 'invalid_request', message: form === 413 ? 'request body too large' : 'the body must be application/x-www-form-urlencoded' });
          answer(req, res, 'cloud-shell', form);
        }));
        return;
      }
      if (req.method !== 'GET') {
        req.resume();
        res.setHeader('Allow', isIdentity ? 'GET, POST' : 'GET');
        return send(res, isIdentity ? 'app-service-2019' : 'imds', { status: 405, code: 'invalid_request', message: `method ${req.method} is not allowed` });
      }
      req.resume();
      const version = url.searchParams.get('api-version');
      const flavor: Flavor = !isIdentity ? 'imds' : version === '2017-09-01' ? 'app-service-2017' : 'app-service-2019';
      answer(req, res, flavor, url.searchParams);
    });
    return true;
  };

  function answer(req: IncomingMessage, res: ServerResponse, flavor: Flavor, params: URLSearchParams): void {
    const refusal = admit(req, flavor, params);
    if (refusal) return send(res, flavor, refusal);
    const requested = params.get('resource') as string;
    const scope = served.get(canonicalResource(requested) as string) as string;
    const claims = o.claims();
    const token = o.tokens.mint(scope, claims, lifetimeS);
    const now = Math.floor(Date.now() / 1000);
    const expiresOn = String(now + lifetimeS);
    const clientId = claims.appid ?? '';
    // `resource` echoes what was asked, as the services do (clients key their caches on it).
    const body: Record<string, string> = flavor === 'app-service-2019' || flavor === 'app-service-2017'
      ? { access_token: token, expires_on: expiresOn, resource: requested, token_type: 'Bearer', client_id: clientId }
      : {
          access_token: token, client_id: clientId, expires_in: String(lifetimeS), expires_on: expiresOn,
          ext_expires_in: String(lifetimeS), not_before: String(now), resource: requested, token_type: 'Bearer',
        };
    reply(res, 200, body);
  }

  /** Null when the request may have a token; else the refusal, in the order the services check. */
  function admit(req: IncomingMessage, flavor: Flavor, params: URLSearchParams): Refusal | null {
    const h = req.headers;
    if (flavor === 'app-service-2019' || flavor === 'app-service-2017') {
      const headerName = flavor === 'app-service-2019' ? 'x-identity-header' : 'secret';
      if (!secretMatches(h[headerName])) {
        return { status: 401, code: 'unauthorized_client', message: `missing or wrong ${flavor === 'app-service-2019' ? 'X-IDENTITY-HEADER' : 'secret'} header (the value of ${flavor === 'app-service-2019' ? 'IDENTITY_HEADER' : 'MSI_SECRET'})` };
      }
      const version = params.getAll('api-version');
      if (version.length !== 1 || (version[0] !== '2019-08-01' && version[0] !== '2017-09-01')) {
        return { status: 400, code: 'invalid_request', message: 'api-version must be 2019-08-01 (or 2017-09-01 with the secret header)' };
      }
    } else {
      if (h['x-forwarded-for'] !== undefined) return { status: 400, code: 'invalid_request', message: 'Request contains X-Forwarded-For header' };
      if (String(h.metadata).toLowerCase() !== 'true') return { status: 400, code: 'invalid_request', message: 'Required metadata header not specified' };
      // Newer go-azure-sdk releases also send IDENTITY_HEADER as x-ms-identity: a wrong one is refused.
      for (const name of ['x-ms-identity', 'x-identity-header'] as const) {
        if (h[name] !== undefined && !secretMatches(h[name])) return { status: 401, code: 'unauthorized_client', message: `wrong ${name} header` };
      }
      if (flavor === 'imds' && params.getAll('api-version').length !== 1) {
        return { status: 400, code: 'invalid_request', message: "Required query variable 'api-version' is missing" };
      }
    }
    const resources = params.getAll('resource');
    if (resources.length !== 1 || resources[0] === '') {
      return { status: 400, code: 'invalid_request', message: "Required query variable 'resource' is missing (one resource, e.g. https://management.azure.com/)" };
    }
    const canonical = canonicalResource(resources[0] as string);
    if (!canonical || !served.has(canonical)) {
      return { status: 400, code: 'invalid_resource', message: `the gateway serves tokens only for ${servedList}; not for ${JSON.stringify(resources[0])}` };
    }
    return otherIdentity(params);
  }

  /** A refusal when the request names a user-assigned identity that is not the gateway's. */
  function otherIdentity(params: URLSearchParams): Refusal | null {
    const claims = o.claims();
    const byClientId = [...params.getAll('client_id'), ...params.getAll('clientid')];
    const byObjectId = [...params.getAll('object_id'), ...params.getAll('principal_id')];
    const byResourceId = [...params.getAll('mi_res_id'), ...params.getAll('msi_res_id')];
    const same = (given: string[], mine: string | undefined) => given.every((g) => mine !== undefined && g.toLowerCase() === mine.toLowerCase());
    if (byResourceId.length > 0 || !same(byClientId, claims.appid) || !same(byObjectId, claims.oid)) {
      return { status: 400, code: 'invalid_request', message: "Identity not found: the gateway has one identity (its own application's); ask without client_id, object_id or a resource id, or with the gateway's application's ids" };
    }
    return null;
  }
}

/** Runs `fn`, answering 500 (or dropping the connection) if it throws: never a daemon crash. */
function safely(res: ServerResponse, fn: () => void): void {
  try {
    fn();
  } catch {
    if (!res.headersSent) send(res, 'imds', { status: 500, code: 'server_error', message: 'the identity endpoint failed' });
    else res.destroy();
  }
}

function send(res: ServerResponse, flavor: Flavor, r: Refusal): void {
  // Each family's error shape, so clients print the message: App Service {statusCode, message}
  // (MSAL Python reads those); IMDS and Cloud Shell {error, error_description} (OAuth's).
  // msal-node reads `error` plus `message` or `error_description`: both shapes carry them.
  const body = flavor === 'app-service-2019' || flavor === 'app-service-2017'
    ? { statusCode: r.status, message: r.message, error: r.code, correlationId: randomUUID() }
    : { error: r.code, error_description: r.message };
  reply(res, r.status, body);
}

function reply(res: ServerResponse, status: number, body: object): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    Pragma: 'no-cache',
  });
  res.end(text);
}

/** Reads a small urlencoded body; calls back with the fields, or an HTTP status when refused. */
function readForm(req: IncomingMessage, done: (form: URLSearchParams | number) => void): void {
  const type = String(req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') {
    req.resume();
    done(415);
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  let finished = false;
  const finish = (form: URLSearchParams | number) => {
    if (finished) return;
    finished = true;
    done(form);
  };
  req.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) {
      req.removeAllListeners('data');
      req.resume();
      finish(413);
      return;
    }
    chunks.push(chunk);
  });
  req.on('end', () => finish(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
  req.on('error', () => { finished = true; });
}
