// A local stand-in for Azure Resource Manager (management.azure.com) over real HTTPS, with a
// throwaway CA made with the openssl CLI (the server certificate names 127.0.0.1, localhost and
// management.azure.com). It speaks ARM's documented contracts, so real clients (curl,
// @azure/arm-resources, a gateway in front) see what they would see in Azure:
// - every request carries `Authorization: Bearer <token>` that the test's tokenCheck accepts, else
//   401 with ARM's codes and a `WWW-Authenticate: Bearer authorization_uri=..., error="invalid_token"`;
//   then `?api-version=`, else 400 MissingApiVersionParameter. Errors are `{"error":{"code","message"}}`.
// - answers carry `x-ms-request-id`, `x-ms-correlation-request-id` (the client's when it sent one)
//   and echo `x-ms-client-request-id`.
// - resources live in memory (test/helpers/arm-stand-in-resources.ts); deletes of resource groups
//   and network security group changes are long-running operations
//   (test/helpers/arm-stand-in-lro.ts) whose URLs name the host the client used (its Host header),
//   or `lroHost` when given, so a gateway in front can be checked for rewriting them.
// - /bench/small and /bench/body?bytes=N (N bytes of JSON, streamed) serve the HTTP benchmark.
// Every request is recorded with its headers, Authorization included, so a test can assert what a
// gateway injected.
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { makeCertificates } from './entra-stand-in.ts';
import { ArmError, type ArmReply, type LroOutcome } from './arm-stand-in-lro.ts';
import { ArmStore, type StoreSettings } from './arm-stand-in-resources.ts';
import { benchBody, BENCH_SMALL } from './arm-stand-in-bench.ts';

export type { LroOutcome } from './arm-stand-in-lro.ts';

export interface RecordedRequest {
  method: string;
  /** The path as sent (still percent-encoded), without the query. */
  path: string;
  /** Query parameters (the last value of a repeated one). */
  query: Record<string, string>;
  /** Request headers, lower-case names; repeated ones joined with ', '. Authorization is kept. */
  headers: Record<string, string>;
  /** The body as UTF-8 text ('' for none). */
  body: string;
  /** The status answered (0 until answered). */
  status: number;
  /** Which TLS connection it came on (1, 2, ... in accept order), so a test can see keep-alive reuse. */
  connection: number;
}

export interface ArmStandInOptions {
  /** Whether ARM accepts this bearer token (the text after 'Bearer '). */
  tokenCheck: (bearer: string) => boolean | Promise<boolean>;
  /** Default: one random subscription id. */
  subscriptions?: string[];
  tenantId?: string;
  /** How many polls of a long-running operation report InProgress before its outcome (default 1). */
  inProgressPolls?: number;
  /** Outcome of long-running operations by resource group or resource name (default Succeeded). */
  lroOutcomes?: Record<string, LroOutcome>;
  /** The host the URLs of long-running operations name ('management.azure.com'); default the request's Host. */
  lroHost?: string;
  /** /bench/* answer without a token (they still need none of api-version). */
  benchWithoutToken?: boolean;
  /** Record requests (default true; the benchmark turns it off). */
  record?: boolean;
  /** authorization_uri in WWW-Authenticate (default https://login.microsoftonline.com/{tenantId}). */
  authorizationUri?: string;
}

export interface ArmStandIn {
  /** 'https://127.0.0.1:PORT' */
  url: string;
  port: number;
  /** The CA's certificate (PEM), for an in-process `ca:`. */
  caPem: string;
  /** A file holding it, for curl --cacert, NODE_EXTRA_CA_CERTS or a policy's ca-file. */
  caFile: string;
  tenantId: string;
  /** The first subscription. */
  subscriptionId: string;
  subscriptions: string[];
  /** Every request received, in order (empty it with `requests.length = 0`). */
  requests: RecordedRequest[];
  /** Mutable between requests; read when an operation starts. */
  inProgressPolls: number;
  /** Mutable between requests; read when an operation starts. */
  lroOutcomes: Record<string, LroOutcome>;
  addResourceGroup(name: string, location?: string, subscription?: string): void;
  addStorageAccount(resourceGroup: string, name: string, subscription?: string): void;
  /** The two access keys of a storage account (key1, key2), what masking must hide. */
  storageKeys(resourceGroup: string, name: string, subscription?: string): [string, string];
  stop(): Promise<void>;
}

const BODY_LIMIT = 4 << 20;

function headerRecord(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > BODY_LIMIT) { reject(new ArmError(413, 'RequestEntityTooLarge', `The request body is larger than ${BODY_LIMIT} bytes.`)); req.resume(); return; }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export async function startArmStandIn(opts: ArmStandInOptions): Promise<ArmStandIn> {
  const tenantId = opts.tenantId ?? randomUUID();
  const subscriptions = opts.subscriptions ?? [randomUUID()];
  const settings: StoreSettings = { inProgressPolls: opts.inProgressPolls ?? 1, lroOutcomes: opts.lroOutcomes ?? {} };
  const store = new ArmStore(subscriptions, tenantId, settings);
  const record = opts.record ?? true;
  const authorizationUri = opts.authorizationUri ?? `https://login.microsoftonline.com/${tenantId}`;
  const requests: RecordedRequest[] = [];

  const dir = await mkdtemp(path.join(tmpdir(), 'arm-stand-in-'));
  const { caFile, keyFile, certFile } = await makeCertificates(dir, 'IP:127.0.0.1,DNS:localhost,DNS:management.azure.com', 'ARM stand-in');
  const [caPem, key, cert] = await Promise.all([readFile(caFile, 'utf8'), readFile(keyFile), readFile(certFile)]);

  /** Why the request may not proceed (a 401), or null when its bearer token is accepted. */
  const authenticate = async (req: IncomingMessage): Promise<ArmError | null> => {
    const header = req.headers.authorization;
    if (header === undefined) return new ArmError(401, 'AuthenticationFailed', "Authentication failed. The 'Authorization' header is missing.");
    const m = /^Bearer +(\S+)\s*$/i.exec(header);
    if (!m) return new ArmError(401, 'AuthenticationFailedInvalidHeader', "Authentication failed. The 'Authorization' header is provided in an invalid format.");
    if (!(await opts.tokenCheck(m[1]!))) return new ArmError(401, 'InvalidAuthenticationToken', 'The access token is invalid.');
    return null;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, rec: RecordedRequest | null): Promise<void> => {
    const method = req.method ?? 'GET';
    const clientRequestId = req.headers['x-ms-client-request-id'];
    const correlation = req.headers['x-ms-correlation-request-id'];
    const common: Record<string, string> = {
      'cache-control': 'no-cache',
      pragma: 'no-cache',
      expires: '-1',
      'x-ms-request-id': randomUUID(),
      'x-ms-correlation-request-id': typeof correlation === 'string' && correlation ? correlation : randomUUID(),
      'x-ms-routing-request-id': `WESTEUROPE:${new Date().toISOString().replace(/[-:]|\.\d+/g, '')}:${randomUUID()}`,
      'strict-transport-security': 'max-age=31536000; includeSubDomains',
      'x-content-type-options': 'nosniff',
      ...(typeof clientRequestId === 'string' ? { 'x-ms-client-request-id': clientRequestId } : {}),
    };
    const send = (reply: ArmReply): void => {
      if (rec) rec.status = reply.status;
      const headers: Record<string, string> = { ...common, ...reply.headers };
      const rateLimit = method === 'GET' || method === 'HEAD' ? 'reads' : method === 'DELETE' ? 'deletes' : 'writes';
      headers[`x-ms-ratelimit-remaining-subscription-${rateLimit}`] = rateLimit === 'reads' ? '11999' : '1199';
      if (reply.body === undefined || method === 'HEAD') {
        res.writeHead(reply.status, { ...headers, 'content-length': '0' });
        res.end();
        return;
      }
      const text = JSON.stringify(reply.body);
      res.writeHead(reply.status, { ...headers, 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(text)) });
      res.end(text);
    };
    const sendError = (e: ArmError): void => {
      const headers: Record<string, string> = {};
      if (e.status === 401) {
        headers['www-authenticate'] = `Bearer authorization_uri="${authorizationUri}", error="invalid_token", error_description="${e.message.replace(/"/g, "'")}"`;
      }
      send({ status: e.status, headers, body: { error: { code: e.code, message: e.message } } });
    };
    try {
      const host = req.headers.host;
      if (!host) throw new ArmError(400, 'InvalidRequest', 'The request has no Host header.');
      const url = new URL(req.url ?? '/', `https://${host}`);
      const bodyBytes = await readBody(req);
      if (rec) rec.body = bodyBytes.toString('utf8');

      if (url.pathname === '/bench/small' || url.pathname === '/bench/body') {
        if (!opts.benchWithoutToken) { const denied = await authenticate(req); if (denied) throw denied; }
        if (method !== 'GET') throw new ArmError(405, 'MethodNotAllowed', `The requested resource does not support http method '${method}'.`);
        if (url.pathname === '/bench/small') return send({ status: 200, body: BENCH_SMALL });
        const bytes = Number(url.searchParams.get('bytes') ?? '');
        if (rec) rec.status = 200;
        if (!benchBody(res, bytes, url.searchParams.get('chunked') === '1', common)) {
          throw new ArmError(400, 'InvalidQueryParameterValue', `bytes must be a whole number between 64 and 2^40, not '${url.searchParams.get('bytes')}'.`);
        }
        return;
      }

      const denied = await authenticate(req);
      if (denied) throw denied;
      const apiVersion = url.searchParams.get('api-version');
      if (!apiVersion) throw new ArmError(400, 'MissingApiVersionParameter', 'The api-version query parameter (?api-version=) is required for all requests.');
      let body: unknown;
      if (bodyBytes.length > 0) {
        try {
          body = JSON.parse(bodyBytes.toString('utf8'));
        } catch (e) {
          throw new ArmError(400, 'InvalidRequestContent', `The request content was invalid and could not be deserialized: '${(e as Error).message}'.`);
        }
      }
      let segments: string[];
      try {
        segments = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
      } catch {
        throw new ArmError(400, 'InvalidRequestUri', 'The request URI is not valid (bad percent-encoding).');
      }
      const baseUrl = opts.lroHost ? `https://${opts.lroHost}` : `https://${host}`;
      send(store.handle({ method, segments, apiVersion, body, baseUrl, url: `${baseUrl}${url.pathname}${url.search}` }));
    } catch (e) {
      if (res.headersSent) { res.destroy(); return; }
      sendError(e instanceof ArmError ? e : new ArmError(500, 'InternalServerError', `The stand-in failed: ${(e as Error).message}`));
    }
  };

  let connections = 0;
  const connectionIds = new WeakMap<object, number>();
  const server = https.createServer({ key, cert }, (req, res) => {
    let rec: RecordedRequest | null = null;
    if (record) {
      const u = req.url ?? '/';
      const q = u.indexOf('?');
      const query: Record<string, string> = {};
      if (q >= 0) for (const [k, v] of new URLSearchParams(u.slice(q + 1))) query[k] = v;
      let connection = connectionIds.get(req.socket);
      if (connection === undefined) connectionIds.set(req.socket, (connection = ++connections));
      rec = { method: req.method ?? '', path: q >= 0 ? u.slice(0, q) : u, query, headers: headerRecord(req), body: '', status: 0, connection };
      requests.push(rec);
    }
    void handle(req, res, rec);
  });
  server.on('clientError', (_e, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => { server.off('error', reject); resolve(); });
  });
  const port = (server.address() as AddressInfo).port;

  return {
    url: `https://127.0.0.1:${port}`,
    port,
    caPem,
    caFile,
    tenantId,
    subscriptionId: subscriptions[0]!,
    subscriptions,
    requests,
    get inProgressPolls() { return settings.inProgressPolls; },
    set inProgressPolls(n: number) { settings.inProgressPolls = n; },
    get lroOutcomes() { return settings.lroOutcomes; },
    set lroOutcomes(o: Record<string, LroOutcome>) { settings.lroOutcomes = o; },
    addResourceGroup(name, location, subscription) { store.addResourceGroup(subscription ?? subscriptions[0]!, name, location); },
    addStorageAccount(resourceGroup, name, subscription) { store.addStorageAccount(subscription ?? subscriptions[0]!, resourceGroup, name); },
    storageKeys(resourceGroup, name, subscription) { return store.storageKeys(subscription ?? subscriptions[0]!, resourceGroup, name); },
    async stop() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await rm(dir, { recursive: true, force: true });
    },
  };
}
