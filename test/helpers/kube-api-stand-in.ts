// A local stand-in for a Kubernetes API server, over real HTTPS (a throwaway CA made with the
// openssl CLI, SANs 127.0.0.1 and localhost), for tests that drive the real kubectl and
// @kubernetes/client-node. Every request and upgrade must carry `Authorization: Bearer <token>`;
// anything else gets the API server's 401 Status. It serves:
//   /version, /healthz, legacy and aggregated discovery (kube-api-discovery.ts), /openapi/v3;
//   namespaces, pods, secrets (v1) and deployments (apps/v1): get, list, watch, create, update,
//   patch (merge, strategic, server-side apply), delete (kube-api-resources.ts);
//   pods/log (follow=true streams) and pods/exec (and pods/attach, to a main process that echoes
//   its stdin) over WebSocket v5.channel.k8s.io / v4
//   (kube-api-exec.ts), the command run in-process (kube-api-exec-commands.ts).
// SPDY upgrades (what kubectl falls back to when the WebSocket upgrade fails) are refused with a
// 400 Status: the stand-in speaks only WebSocket, so a test sees every SPDY attempt in `calls`.
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { timingSafeEqual } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { TLSSocket } from 'node:tls';
import { WebSocketServer } from 'ws';
import { makeCertificates } from './entra-stand-in.ts';
import {
  AGGREGATED_DISCOVERY_V2, aggregatedDiscovery, apiGroupList, apiResourceList, apiVersions, findResource,
  openApiV3Document, openApiV3Index, versionInfo, wantsAggregatedDiscovery,
} from './kube-api-discovery.ts';
import { EXEC_PROTOCOLS, serveExec, type ExecRecord } from './kube-api-exec.ts';
import {
  DEFAULT_NAMESPACES, DEFAULT_PODS, DEFAULT_SECRETS, badRequest, namespaceObject, notFound, pathNotFound, podObject,
  secretObject, status, unauthorized, type KubeStatus, type PodSeed, type SecretSeed,
} from './kube-api-objects.ts';
import { handleResource, sendJson, sendStatus, type PodLogs, type ResourceRequest } from './kube-api-resources.ts';
import { KubeStore } from './kube-api-store.ts';

export type { ExecRecord } from './kube-api-exec.ts';
export type { PodSeed, SecretSeed } from './kube-api-objects.ts';

export interface KubeApiCall {
  method: string;
  /** Path and query as received. */
  url: string;
  status: number;
  /** The Upgrade header, when the request asked for one ('websocket', 'SPDY/3.1'). */
  upgrade?: string;
  /** Sec-WebSocket-Protocol or X-Stream-Protocol-Version offered. */
  protocols?: string;
  accept?: string;
  contentType?: string;
  userAgent?: string;
}

export interface KubeApiOptions {
  /** The bearer token every request must carry. */
  token: string;
  /** Default ['default', 'staging', 'prod']. */
  namespaces?: string[];
  /** Default: web-0 (default), worker-0 with two containers (staging), api-0 (prod). */
  pods?: PodSeed[];
  /** Default: default/db-credentials (username, password), prod/api-key (token). */
  secrets?: SecretSeed[];
  /** DNS names the certificate carries besides localhost (an AKS server name reached through connect-to). */
  hostNames?: string[];
  /**
   * Also accept a TLS client certificate, issued by the stand-in's CA for CN `gateway-client`
   * (`clientCertPem`, `clientKeyPem`), instead of the token: the API server's x509 authentication.
   */
  clientCertificates?: boolean;
}

export interface KubeApi {
  /** 'https://127.0.0.1:PORT' */
  server: string;
  port: number;
  /** PEM file of the throwaway CA, and its text. */
  caFile: string;
  caPem: string;
  token: string;
  store: KubeStore;
  /** Every HTTP request and upgrade received, in order (status 101 for an accepted upgrade). */
  calls: KubeApiCall[];
  /** Every pods/exec stream accepted, filled in as it runs. */
  execs: ExecRecord[];
  /** With clientCertificates: a client certificate and its key the stand-in accepts (PEM). */
  clientCertPem?: string;
  clientKeyPem?: string;
  /** Set false to refuse WebSocket exec upgrades too (kubectl then tries SPDY). Default true. */
  acceptWebSocketExec: boolean;
  /** Adds a pod (watchers see it ADDED). */
  addPod(pod: PodSeed): void;
  /** Appends a line to a pod's log (reaching every `follow=true` reader). */
  appendLog(namespace: string, pod: string, line: string): void;
  /** Writes a kubeconfig (server, certificate-authority-data, token) and returns its path. */
  writeKubeconfig(opts?: { namespace?: string; token?: string; file?: string }): Promise<string>;
  close(): Promise<void>;
}

const tokenMatches = (header: string | undefined, token: string): boolean => {
  const m = /^Bearer (.+)$/.exec(header ?? '');
  if (!m) return false;
  const a = Buffer.from(m[1]);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
};

/** Request attributes from a resource path, like the API server's request-info (the subset served). */
function parseResourcePath(method: string, pathname: string, query: URLSearchParams): ResourceRequest | KubeStatus {
  const parts = pathname.split('/').filter(Boolean).map(decodeURIComponent);
  let group = '';
  let version: string;
  let rest: string[];
  if (parts[0] === 'api' && parts.length >= 3) { version = parts[1]; rest = parts.slice(2); }
  else if (parts[0] === 'apis' && parts.length >= 4) { group = parts[1]; version = parts[2]; rest = parts.slice(3); }
  else return pathNotFound();
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) { namespace = rest[1]; rest = rest.slice(2); }
  const [res, name, subresource, ...extra] = rest;
  const resource = findResource(group, version, res);
  if (!resource || extra.length > 0 || (subresource && !resource.subresources.some((s) => s.name === subresource))) return pathNotFound();
  if (!resource.namespaced && namespace !== undefined) return pathNotFound();
  const watch = query.get('watch') === 'true' || query.get('watch') === '1';
  const verbs: Record<string, string> = name
    ? { GET: 'get', PUT: 'update', PATCH: 'patch', DELETE: 'delete', POST: 'create' }
    : { GET: watch ? 'watch' : 'list', POST: 'create', DELETE: 'deletecollection' };
  const verb = verbs[method];
  if (!verb || (verb === 'create' && name && !subresource)) return status(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
  return { verb, resource, namespace: resource.namespaced ? namespace : undefined, name, subresource, query };
}

export async function startKubeApi(opts: KubeApiOptions): Promise<KubeApi> {
  if (!opts.token) throw new Error('startKubeApi: a token is required');
  const dir = await mkdtemp(path.join(tmpdir(), 'kube-api-stand-in-'));
  const { caFile, keyFile, certFile } = await makeCertificates(dir, ['IP:127.0.0.1', 'DNS:localhost', ...(opts.hostNames ?? []).map((h) => `DNS:${h}`)].join(','), 'Kubernetes API stand-in');
  const [caPem, key, cert] = await Promise.all([readFile(caFile, 'utf8'), readFile(keyFile), readFile(certFile)]);

  const client = opts.clientCertificates ? await makeClientCertificate(dir) : null;
  /** The bearer token, or (with clientCertificates) a client certificate the CA issued for gateway-client. */
  const authenticated = (req: IncomingMessage): boolean => {
    if (tokenMatches(req.headers.authorization, opts.token)) return true;
    const s = req.socket as TLSSocket;
    return !!client && s.authorized === true && s.getPeerCertificate()?.subject?.CN === 'gateway-client';
  };
  const store = new KubeStore();
  const nsR = findResource('', 'v1', 'namespaces')!;
  const podR = findResource('', 'v1', 'pods')!;
  const secretR = findResource('', 'v1', 'secrets')!;
  const podLines = new Map<string, string[]>();
  const followers = new Map<string, Set<(line: string) => void>>();
  for (const ns of opts.namespaces ?? DEFAULT_NAMESPACES) store.create(nsR, undefined, namespaceObject(ns));
  for (const p of opts.pods ?? DEFAULT_PODS) {
    store.create(podR, p.namespace, podObject(p));
    podLines.set(`${p.namespace}/${p.name}`, [...(p.log ?? [])]);
  }
  for (const s of opts.secrets ?? DEFAULT_SECRETS) store.create(secretR, s.namespace, secretObject(s));
  const logs: PodLogs = {
    lines: (ns, pod) => [...(podLines.get(`${ns}/${pod}`) ?? [])],
    follow: (ns, pod, onLine) => {
      const k = `${ns}/${pod}`;
      let set = followers.get(k);
      if (!set) { set = new Set(); followers.set(k, set); }
      set.add(onLine);
      return () => { set.delete(onLine); };
    },
  };

  const calls: KubeApiCall[] = [];
  const execs: ExecRecord[] = [];
  let server = '';
  const record = (req: IncomingMessage, code: number): void => {
    const h = req.headers;
    calls.push({
      method: req.method ?? '', url: req.url ?? '', status: code,
      ...(h.upgrade ? { upgrade: h.upgrade } : {}),
      ...(h['sec-websocket-protocol'] || h['x-stream-protocol-version'] ? { protocols: String(h['sec-websocket-protocol'] ?? h['x-stream-protocol-version']) } : {}),
      ...(h.accept ? { accept: h.accept } : {}),
      ...(h['content-type'] ? { contentType: h['content-type'] } : {}),
      ...(h['user-agent'] ? { userAgent: h['user-agent'] } : {}),
    });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'https://stand-in');
    if (!authenticated(req)) { sendStatus(res, unauthorized()); return; }
    const p = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    if (method === 'GET') {
      const aggregated = wantsAggregatedDiscovery(req.headers.accept);
      if (p === '/version') { sendJson(res, 200, versionInfo()); return; }
      if (p === '/healthz' || p === '/readyz' || p === '/livez') { res.writeHead(200, { 'Content-Type': 'text/plain' }); res.end('ok'); return; }
      if (p === '/api') { if (aggregated) sendJson(res, 200, aggregatedDiscovery('api'), AGGREGATED_DISCOVERY_V2); else sendJson(res, 200, apiVersions(server.slice('https://'.length))); return; }
      if (p === '/apis') { if (aggregated) sendJson(res, 200, aggregatedDiscovery('apis'), AGGREGATED_DISCOVERY_V2); else sendJson(res, 200, apiGroupList()); return; }
      const gv = /^\/(?:api\/(v1)|apis\/([^/]+)\/([^/]+))$/.exec(p);
      if (gv) {
        const doc = apiResourceList(gv[2] ?? '', gv[1] ?? gv[3]);
        if (doc) sendJson(res, 200, doc); else sendStatus(res, pathNotFound());
        return;
      }
      if (p === '/openapi/v3') { sendJson(res, 200, openApiV3Index()); return; }
      const oa = /^\/openapi\/v3\/(?:api\/(v1)|apis\/([^/]+)\/([^/]+))$/.exec(p);
      if (oa) {
        const doc = openApiV3Document(oa[2] ?? '', oa[1] ?? oa[3]);
        if (doc) sendJson(res, 200, doc); else sendStatus(res, pathNotFound());
        return;
      }
    }
    const r = parseResourcePath(method, p, url.searchParams);
    if ('kind' in r) { sendStatus(res, r); return; }
    await handleResource(req, res, r, store, logs);
  };

  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: 64 << 20,
    handleProtocols: (offered) => EXEC_PROTOCOLS.find((p) => offered.has(p)) ?? false,
  });

  /** Answers an upgrade request without upgrading: a plain HTTP response with a Status body. */
  const refuseUpgrade = (socket: Duplex, s: KubeStatus): void => {
    const body = JSON.stringify(s);
    socket.end(`HTTP/1.1 ${s.code} ${s.reason ?? 'Error'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  };

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const fail = (s: KubeStatus): void => { record(req, s.code); refuseUpgrade(socket, s); };
    if (!authenticated(req)) { fail(unauthorized()); return; }
    const url = new URL(req.url ?? '/', 'https://stand-in');
    const r = parseResourcePath(req.method ?? 'GET', url.pathname, url.searchParams);
    if ('kind' in r) { fail(r); return; }
    if (r.resource.kind !== 'Pod' || (r.subresource !== 'exec' && r.subresource !== 'attach')) { fail(badRequest(`upgrade is not served for ${url.pathname}`)); return; }
    const upgrade = String(req.headers.upgrade ?? '').toLowerCase();
    if (upgrade.startsWith('spdy')) {
      fail(badRequest('SPDY upgrades are not served by this API stand-in: use a kubectl (>= 1.30) that execs over WebSocket (v5.channel.k8s.io)'));
      return;
    }
    if (upgrade !== 'websocket' || !api.acceptWebSocketExec) { fail(badRequest(`unable to upgrade connection: ${upgrade || 'no Upgrade header'} is not accepted here`)); return; }
    const pod = store.get(r.resource, r.namespace, r.name!);
    if (!pod) { fail(notFound('pods', r.name!)); return; }
    const containers: string[] = (pod.spec?.containers ?? []).map((c: { name: string }) => c.name);
    const container = url.searchParams.get('container') ?? (containers.length === 1 ? containers[0] : '');
    if (!containers.includes(container)) { fail(badRequest(container ? `container ${container} is not valid for pod ${r.name}` : `a container name must be specified for pod ${r.name}, choose one of: [${containers.join(' ')}]`)); return; }
    // attach joins the container's main process: here one that echoes its stdin (`cat`).
    const command = r.subresource === 'attach' ? ['cat'] : url.searchParams.getAll('command');
    if (command.length === 0) { fail(badRequest('you must specify at least 1 command')); return; }
    const offered = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((s) => s.trim());
    if (!EXEC_PROTOCOLS.some((p) => offered.includes(p))) { fail(badRequest(`none of the offered subprotocols [${offered.join(', ')}] is served: ${EXEC_PROTOCOLS.join(', ')}`)); return; }
    wss.handleUpgrade(req, socket, head, (ws) => {
      record(req, 101);
      const flag = (n: string): boolean => url.searchParams.get(n) === 'true' || url.searchParams.get(n) === '1';
      const rec: ExecRecord = {
        namespace: r.namespace!, pod: r.name!, container, command, stdin: flag('stdin'), stdout: flag('stdout'), stderr: flag('stderr'),
        tty: flag('tty'), protocol: ws.protocol, stdinBytes: 0, stdoutBytes: 0, stdinClosed: false, resizes: [], exitCode: null,
      };
      execs.push(rec);
      serveExec(ws, rec);
    });
  };

  const httpsServer = https.createServer({ key, cert, ...(client ? { requestCert: true, rejectUnauthorized: false, ca: caPem } : {}) }, (req, res) => {
    res.on('close', () => record(req, res.statusCode));
    handle(req, res).catch((err: Error) => {
      if (!res.headersSent) sendStatus(res, badRequest(`the request could not be decoded: ${err.message}`));
      else res.destroy();
    });
  });
  httpsServer.on('upgrade', onUpgrade);
  const sockets = new Set<Socket>();
  httpsServer.on('secureConnection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise<void>((resolve) => httpsServer.listen(0, '127.0.0.1', resolve));
  const port = (httpsServer.address() as AddressInfo).port;
  server = `https://127.0.0.1:${port}`;

  const api: KubeApi = {
    server, port, caFile, caPem, token: opts.token, store, calls, execs, acceptWebSocketExec: true, ...(client ? { clientCertPem: client.certPem, clientKeyPem: client.keyPem } : {}),
    addPod(p) {
      store.create(podR, p.namespace, podObject(p));
      podLines.set(`${p.namespace}/${p.name}`, [...(p.log ?? [])]);
    },
    appendLog(namespace, pod, line) {
      const k = `${namespace}/${pod}`;
      const lines = podLines.get(k) ?? [];
      lines.push(line);
      podLines.set(k, lines);
      for (const f of followers.get(k) ?? []) f(line);
    },
    async writeKubeconfig(o = {}) {
      const file = o.file ?? path.join(dir, `kubeconfig-${calls.length}-${Math.random().toString(36).slice(2, 8)}.yaml`);
      await writeFile(file, kubeconfigYaml(server, caPem, o.token ?? opts.token, o.namespace), { mode: 0o600 });
      return file;
    },
    async close() {
      for (const c of wss.clients) c.terminate();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => httpsServer.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
  return api;
}

/** A kubeconfig whose only context points at `server` with a bearer token. */
export function kubeconfigYaml(server: string, caPem: string, token: string, namespace?: string): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: stand-in',
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority-data: ${Buffer.from(caPem).toString('base64')}`,
    'users:',
    '- name: stand-in-user',
    '  user:',
    `    token: ${token}`,
    'contexts:',
    '- name: stand-in',
    '  context:',
    '    cluster: stand-in',
    '    user: stand-in-user',
    ...(namespace ? [`    namespace: ${namespace}`] : []),
    'current-context: stand-in',
    '',
  ].join('\n');
}

/** A client certificate (CN gateway-client, clientAuth) issued by the CA makeCertificates left in `dir`. */
async function makeClientCertificate(dir: string): Promise<{ certPem: string; keyPem: string }> {
  const run = promisify(execFile);
  const key = path.join(dir, 'client.key');
  const csr = path.join(dir, 'client.csr');
  const cert = path.join(dir, 'client.pem');
  const ext = path.join(dir, 'client.ext');
  await run('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', csr, '-subj', '/CN=gateway-client/O=system:masters']);
  await writeFile(ext, 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n');
  await run('openssl', ['x509', '-req', '-in', csr, '-CA', path.join(dir, 'ca.pem'), '-CAkey', path.join(dir, 'ca.key'), '-CAcreateserial', '-out', cert, '-days', '2', '-sha256', '-extfile', ext]);
  return { certPem: await readFile(cert, 'utf8'), keyPem: await readFile(key, 'utf8') };
}
