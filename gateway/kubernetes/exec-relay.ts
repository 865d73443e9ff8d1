// One upgraded request of a Kubernetes target (kubectl exec / attach over WebSocket): read whole
// before anything opens upstream (the pod, the argv, the stream flags), decided like an SSH exec
// line on its argv, recorded, held if a rule says so; then the API server's WebSocket is opened
// with the cluster credential and every frame passes the gateway: stdin is recorded, stdout and
// stderr masked as the policy says, resizes noted, and the exit code read from the status channel.
// A denial is sent the way kubectl prints it: the WebSocket is accepted and a Failure status goes
// out on the status channel (a refused upgrade would make kubectl retry over SPDY). SPDY and any
// other upgrade are refused and recorded; a port-forward is decided and recorded, denied unless a
// rule allows it, and then relayed unread (unread-tunnel.ts), as an SSH port forward is.
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import type { CoreServices } from '../core/adapter.ts';
import type { GateClient } from '../core/command-gate.ts';
import type { ClientSession } from '../http/client-sessions.ts';
import { normalizeRequestPath } from '../http/request-path.ts';
import type { Upstream } from '../http/upstream.ts';
import { maskQuery } from '../http/url-secrets.ts';
import { execUnits, interactiveShellUnits } from './conditions.ts';
import { EXEC_PROTOCOLS, failureStatusJson, encodeFrame, type ExecProtocol } from './exec-channels.ts';
import { readExecUpgrade, type ExecOptions } from './exec-upgrade.ts';
import { ExecStreams } from './exec-streams.ts';
import { kubeDetails, kubeSummary, statusObject } from './kube-api.ts';
import { readQuery, requestInfo, type KubeRequest } from './request-info.ts';
import { relayUnreadTunnel } from './unread-tunnel.ts';

/** Port-forwards need a rule that allows them: what crosses one is bytes the gateway cannot read. */
const PORT_FORWARD = { rule: 'port-forward', what: 'a port-forward (its streams cannot be read)' };

/** Largest WebSocket message taken from either side (kubectl writes stdin in 32 KiB pieces at most). */
const MAX_MESSAGE = 4 << 20;

export interface UpgradeContext {
  core: CoreServices;
  upstream: Upstream;
}

export async function serveUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, session: ClientSession, ctx: UpgradeContext): Promise<void> {
  socket.on('error', () => socket.destroy());
  const t = ctx.upstream.target;
  const method = (req.method ?? '').toUpperCase();
  const normal = normalizeRequestPath(req.url ?? '');
  const shownQuery = 'problem' in normal || !normal.query ? '' : maskQuery(normal.query);
  const path = 'problem' in normal ? (req.url ?? '').split('?')[0]! : normal.path;
  const text = `${method} ${t.origin}${path}${shownQuery ? `?${shownQuery}` : ''}`;
  const details: Record<string, unknown> = { method, path, ...(shownQuery ? { query: shownQuery } : {}), upgrade: String(req.headers.upgrade ?? '') };
  const refuse = (rule: string, reason: string, status: number): Promise<void> => refuseUpgrade(req, socket, head, session, { kind: 'kubernetes.upgrade', text, details, rule, reason, status });
  if ('problem' in normal) return refuse('unreadable-request', normal.problem, 400);
  const params = readQuery(normal.query);
  if ('problem' in params) return refuse('unreadable-request', params.problem, 400);
  const info = requestInfo(method, normal.path, params);
  if ('unclassified' in info) return refuse('unreadable-request', info.unclassified, 400);
  details.kube = kubeDetails(info);
  const sub = info.resource === 'pods' && info.namespace && info.name ? info.subresource : '';
  if (sub === 'portforward') {
    const ports = params.getAll('ports').join(',');
    if (ports) details.ports = ports;
    // Its streams cannot be read: the default allow is not enough, a rule must allow it.
    const answer = await session.gate.pass({ kind: 'kubernetes.portforward', text, units: [{ kube: info }], details, forwarded: [Buffer.from(`${text}\n`)], needsAllowRule: PORT_FORWARD }, clientOf(socket));
    if (!answer.allowed) return sendRefusal(req, socket, head, answer.message, 403);
    return relayUnreadTunnel(req, socket, head, ctx.upstream, normalizedTarget(req.url ?? ''), answer.cmd);
  }
  if (sub !== 'exec' && sub !== 'attach') return refuse('unreadable-request', `an Upgrade to ${String(req.headers.upgrade)} is relayed only for a pod's exec and attach (this is ${kubeSummary(details.kube as Record<string, unknown>)})`, 400);
  const read = readExecUpgrade({ method, path: normal.path, query: normal.query, headers: req.headers });
  if ('refuse' in read) {
    const r = read.refuse;
    if (r.spdy) return refuse('spdy-stream', r.message, r.status);
    // A malformed exec over WebSocket is told on the status channel when the WebSocket can open.
    return refuse('unreadable-request', r.message, r.status);
  }
  await relayExec(req, socket, head, session, ctx, info, read, text, details);
}

interface Refusal { kind: string; text: string; details: Record<string, unknown>; rule: string; reason: string; status: number }

/** Records the upgrade as denied by `rule`, then refuses it (on the status channel when a channel protocol was offered). */
async function refuseUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, session: ClientSession, r: Refusal): Promise<void> {
  const answer = await session.gate.passDecided({ kind: r.kind, text: r.text, units: null, unclassified: r.reason, details: r.details, forwarded: [] },
    { action: 'deny', rule: r.rule, reason: r.reason, matched: [] }, clientOf(socket));
  sendRefusal(req, socket, head, answer.allowed ? r.reason : answer.message, r.status);
}

/**
 * Refuses an upgrade as kubectl prints it: over WebSocket with a channel protocol, the Failure
 * status on channel 3; otherwise an HTTP error with a Status body.
 */
function sendRefusal(req: http.IncomingMessage, socket: Duplex, head: Buffer, message: string, status: number): void {
  const protocol = offeredChannelProtocol(req);
  const websocket = String(req.headers.upgrade ?? '').toLowerCase() === 'websocket' && req.headers['sec-websocket-key'] !== undefined;
  if (websocket && protocol) {
    const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 64 * 1024, handleProtocols: () => protocol });
    try {
      wss.handleUpgrade(req, socket, head, (ws) => {
        ws.send(encodeFrame(3, failureStatusJson(message, status === 403 ? 'Forbidden' : 'BadRequest', status)), () => ws.close(1000));
        setTimeout(() => ws.terminate(), 5000).unref();
      });
      return;
    } catch {
      // Not a WebSocket request after all: answered over HTTP below.
    }
  }
  const body = JSON.stringify(statusObject(status, message));
  if (!socket.writable) return void socket.destroy();
  socket.end(`HTTP/1.1 ${status} ${status === 403 ? 'Forbidden' : status === 401 ? 'Unauthorized' : 'Bad Request'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}

/** The channel protocol the client offered that the gateway speaks (v5 first), if any. */
function offeredChannelProtocol(req: http.IncomingMessage): ExecProtocol | null {
  const offered = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((s) => s.trim());
  return EXEC_PROTOCOLS.find((p) => offered.includes(p)) ?? null;
}

function clientOf(socket: Duplex): GateClient {
  return {
    tell: () => undefined,
    onGone(cb) {
      if (socket.destroyed) {
        queueMicrotask(cb);
        return () => undefined;
      }
      socket.once('close', cb);
      return () => socket.off('close', cb);
    },
  };
}

async function relayExec(req: http.IncomingMessage, socket: Duplex, head: Buffer, session: ClientSession, ctx: UpgradeContext, info: KubeRequest, opts: ExecOptions & { protocol: ExecProtocol }, text: string, details: Record<string, unknown>): Promise<void> {
  const shell = opts.subresource === 'exec' ? interactiveShellUnits(info, opts.argv, opts) : null;
  const reading = shell ? { units: shell, unclassified: null } : opts.subresource === 'exec' ? await execUnits(info, opts.argv) : { units: [{ kube: info }], unclassified: null };
  Object.assign(details, {
    ...(opts.subresource === 'exec' ? { argv: opts.argv } : {}),
    ...(opts.container ? { container: opts.container } : {}),
    stdin: opts.stdin, stdout: opts.stdout, stderr: opts.stderr, tty: opts.tty,
  });
  const kind = `kubernetes.${opts.subresource}`;
  const answer = await session.gate.pass({ kind, text, units: reading.units, unclassified: reading.unclassified, details, forwarded: [Buffer.from(`${text}\n`)] }, clientOf(socket));
  if (!answer.allowed) return sendRefusal(req, socket, head, answer.message, 403);
  const cmd = answer.cmd;
  if (socket.destroyed) {
    cmd.finish({ status: 'error', error: { code: 'client', message: 'the client left before the exec started' } });
    return;
  }
  // The API server is asked for the channel protocols the client offered, v5 first; the client
  // then gets the one the server chose.
  const offered = EXEC_PROTOCOLS.filter((p) => String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((s) => s.trim()).includes(p));
  let auth: Record<string, string>;
  try {
    auth = await ctx.upstream.auth();
  } catch (e) {
    cmd.finish({ status: 'error', error: { code: 'credential', message: (e as Error).message } });
    return sendRefusal(req, socket, head, `gateway: no credential for ${ctx.upstream.target.origin}: ${(e as Error).message}`, 502);
  }
  const t = ctx.upstream.target;
  const url = `wss://${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}${req.url!.startsWith('/') ? (normalizedTarget(req.url!)) : ''}`;
  const connectTo = t.connectTo;
  const upstream = new WebSocket(url, offered, {
    headers: auth,
    perMessageDeflate: false,
    maxPayload: MAX_MESSAGE,
    handshakeTimeout: t.timeoutMs,
    ...ctx.upstream.tls,
    ...(connectTo ? { createConnection: (o: tls.ConnectionOptions) => tls.connect({ ...o, ...ctx.upstream.tls, host: connectTo.host, port: connectTo.port }) } : {}),
  } as ConstructorParameters<typeof WebSocket>[2]);
  upstream.on('error', () => undefined);
  const opened = await new Promise<{ ok: true } | { status: number; message: string }>((resolve) => {
    upstream.once('open', () => resolve({ ok: true }));
    upstream.once('unexpected-response', (_r, res: http.IncomingMessage) => {
      let body = '';
      res.on('data', (c: Buffer) => { if (body.length < 64 * 1024) body += c.toString('utf8'); });
      res.on('end', () => resolve({ status: res.statusCode ?? 502, message: statusMessage(body) ?? `the API server answered the upgrade with HTTP ${res.statusCode}` }));
      res.on('error', () => resolve({ status: 502, message: `the API server answered the upgrade with HTTP ${res.statusCode}` }));
    });
    upstream.once('error', (e) => resolve({ status: 502, message: `the exec could not be opened at ${t.origin}: ${e.message}` }));
  });
  if (!('ok' in opened)) {
    upstream.terminate();
    cmd.finish({ status: 'error', error: { code: String(opened.status), message: opened.message } });
    return sendRefusal(req, socket, head, opened.message, opened.status === 403 ? 403 : 400);
  }
  if (socket.destroyed) {
    upstream.terminate();
    cmd.finish({ status: 'error', error: { code: 'client', message: 'the client left before the exec started' } });
    return;
  }
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: MAX_MESSAGE, handleProtocols: () => upstream.protocol });
  let client: WebSocket;
  try {
    client = await new Promise<WebSocket>((resolve, reject) => {
      socket.once('close', () => reject(new Error('the client left before the exec started')));
      wss.handleUpgrade(req, socket, head, resolve);
    });
  } catch (e) {
    upstream.terminate();
    cmd.finish({ status: 'error', error: { code: 'client', message: (e as Error).message } });
    return;
  }
  const streams = new ExecStreams(cmd, ctx.core.masker, upstream.protocol as ExecProtocol, opts);
  await streams.relay(client, upstream);
}

/** The request-target forwarded upstream: the normalized path and the raw query (what was decided). */
function normalizedTarget(raw: string): string {
  const n = normalizeRequestPath(raw);
  return 'problem' in n ? raw : `${n.path}${n.query ? `?${n.query}` : ''}`;
}

/** The message of a Status body, if it is one. */
function statusMessage(body: string): string | null {
  try {
    const m = (JSON.parse(body) as { message?: unknown }).message;
    return typeof m === 'string' ? m : null;
  } catch {
    return null;
  }
}

export type { RawData };
