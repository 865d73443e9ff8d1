// The reverse proxy of one HTTP target: `GATEWAY_<TARGET>_URL=http://127.0.0.1:PORT`, so
// `curl "$GATEWAY_ARM_URL/subscriptions/..."` and SDKs given a custom endpoint reach the target
// with no credential in the step. One loopback port speaks plain HTTP (HTTP/1.1 with keep-alive,
// chunked bodies and `Expect: 100-continue`, or HTTP/2 with prior knowledge, told apart by the
// connection's first bytes); a second speaks HTTPS with the per-run CA
// (`GATEWAY_<TARGET>_HTTPS_URL`; ALPN picks HTTP/2 or HTTP/1.1), for clients that refuse to send
// a bearer credential over plain HTTP (the Azure SDKs do, even to loopback).
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import type { ConnectionExport, CoreServices, Listener } from '../core/adapter.ts';
import { targetVariable } from '../core/target-variable.ts';
import type { Duplex } from 'node:stream';
import type { ApiProfile } from './api-profile.ts';
import { ClientSessions, type ClientSession } from './client-sessions.ts';
import { httpApi } from './http-api.ts';
import { exchange } from './exchange.ts';
import type { HttpRequest, HttpResponse } from './exchange-types.ts';
import type { OperationTracker } from './lro.ts';
import { REFUSAL } from './replies.ts';
import type { RunCa } from './run-ca.ts';
import type { Upstream } from './upstream.ts';
import { listening } from './listening.ts';

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n');

/** What an API served through this listener adds to plain HTTP (the Kubernetes adapter's entry). */
export interface ReverseProxyOptions {
  api: ApiProfile;
  /** Why a request is refused before any session opens (a wrong per-run credential), or null. */
  admit?(req: HttpRequest): string | null;
  /** Serves an HTTP/1.1 upgrade request (a WebSocket exec); without it every upgrade is refused as a request. */
  upgrade?(req: http.IncomingMessage, socket: Duplex, head: Buffer, session: ClientSession, gatewayOrigin: string): void;
  /** What later steps get, from the listener's origins (default: GATEWAY_<TARGET>_URL and _HTTPS_URL). */
  connection?(origins: { plain: string; secure: string }, stateDir: string): ConnectionExport;
}
const FIRST_BYTE_TIMEOUT_MS = 60_000;

export class ReverseProxyListener implements Listener {
  readonly targets: readonly string[];
  private readonly core: CoreServices;
  private readonly upstream: Upstream;
  private readonly operations: OperationTracker;
  private readonly sessions: ClientSessions;
  private readonly server = net.createServer({ noDelay: true });
  // Upgrades are never taken: every request is an exchange, where an offer of h2c (`curl --http2`
  // on http://) is ignored and answered over HTTP/1.1, and any other Upgrade (WebSockets) is
  // refused in ARM's error shape and recorded as a denied command.
  private readonly h1: http.Server;
  private readonly h2 = http2.createServer();
  private readonly sockets = new Set<net.Socket>();
  private readonly inFlight = new Set<Promise<void>>();
  private origin = '';
  private readonly ca: RunCa;
  private secure: tls.Server | null = null;
  private secureOrigin = '';

  private readonly opts: ReverseProxyOptions;

  constructor(upstream: Upstream, core: CoreServices, operations: OperationTracker, sessions: ClientSessions, ca: RunCa, opts: ReverseProxyOptions = { api: httpApi }) {
    this.opts = opts;
    const upgrade = opts.upgrade;
    this.h1 = http.createServer({ keepAliveTimeout: 65_000, requestTimeout: 0, shouldUpgradeCallback: (req) => !!upgrade && req.headers.upgrade !== undefined });
    if (upgrade) this.h1.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.serveUpgrade(req, socket, head));
    this.upstream = upstream;
    this.ca = ca;
    this.core = core;
    this.operations = operations;
    this.sessions = sessions;
    this.targets = [upstream.target.name];
    this.h1.on('request', (req, res) => this.serve(req, res as HttpResponse, req.socket, false));
    this.h1.on('checkContinue', (req, res) => this.serve(req, res as HttpResponse, req.socket, true));
    this.h1.on('clientError', (_e, socket: net.Socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\ngateway: malformed HTTP request\n');
      else socket.destroy();
    });
    this.h2.on('request', (req, res) => this.serve(req, res as unknown as HttpResponse, req.stream.session ?? req.socket, false));
    this.h2.on('sessionError', () => undefined);
    this.server.on('connection', (socket) => this.accept(socket));
  }

  /** HTTP/2 with prior knowledge starts with its preface; anything else is HTTP/1.1. */
  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
    // A connection that never says anything is not kept open forever.
    socket.setTimeout(FIRST_BYTE_TIMEOUT_MS, () => socket.destroy());
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.once('data', (first: Buffer) => {
      socket.setTimeout(0);
      socket.pause();
      socket.unshift(first);
      const h2 = first.length >= 4 && H2_PREFACE.subarray(0, Math.min(first.length, H2_PREFACE.length)).equals(first.subarray(0, Math.min(first.length, H2_PREFACE.length)));
      (h2 ? this.h2 : this.h1).emit('connection', socket);
      // The HTTP/2 session reads the socket's handle itself (the unshifted preface included);
      // resuming the JS stream too would take frames from it (curl: "Error in the HTTP2 framing layer").
      if (!h2) socket.resume();
    });
  }

  addresses(): string[] {
    return [this.origin, this.secureOrigin].filter(Boolean).map((o) => o.replace(/^https?:\/\//, ''));
  }

  /** Where the listener serves: `http://127.0.0.1:PORT` and `https://127.0.0.1:PORT` (once listening). */
  get origins(): { plain: string; secure: string } {
    return { plain: this.origin, secure: this.secureOrigin };
  }

  private originOf(req: { socket: unknown }): string {
    return (req.socket as { encrypted?: boolean }).encrypted ? this.secureOrigin : this.origin;
  }

  private serveUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const refused = this.opts.admit?.(req);
    if (refused) {
      socket.end(`HTTP/1.1 401 Unauthorized\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n${refused}\n`);
      return;
    }
    let session;
    try {
      // An upgraded connection is its own session: nothing else runs on it.
      session = this.sessions.of(socket, this.upstream.target.name, { client: `${req.socket.remoteAddress}:${req.socket.remotePort}`, via: 'reverse-proxy', http_version: req.httpVersion });
    } catch (e) {
      socket.end(`HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\ngateway: the session log cannot be written (${(e as Error).message}); nothing was sent\n`);
      return;
    }
    this.opts.upgrade!(req, socket, head, session, this.originOf(req));
  }

  private serve(req: HttpRequest, res: HttpResponse, key: { once(e: 'close', cb: () => void): unknown }, expectsContinue: boolean): void {
    const refused = this.opts.admit?.(req);
    if (refused) {
      this.opts.api.sendError(res, 401, REFUSAL.unauthorized, refused);
      return;
    }
    let session;
    try {
      session = this.sessions.of(key, this.upstream.target.name, { client: `${req.socket.remoteAddress}:${req.socket.remotePort}`, via: 'reverse-proxy', http_version: req.httpVersion });
    } catch (e) {
      this.opts.api.sendError(res, 503, REFUSAL.log, `gateway: the session log cannot be written (${(e as Error).message}); nothing was sent`);
      return;
    }
    // In flight until its response ends, not only until it is forwarded.
    const finished = new Promise<void>((resolve) => res.once('close', () => resolve()));
    this.inFlight.add(finished);
    void finished.then(() => this.inFlight.delete(finished));
    exchange(req, res, { core: this.core, api: this.opts.api, upstream: this.upstream, operations: this.operations, session: session.rec, gate: session.gate, gatewayOrigin: this.originOf(req) }, expectsContinue)
      .catch((e: Error) => this.opts.api.sendError(res, 500, REFUSAL.upstream, `gateway: ${e.message}`));
  }

  async listen(): Promise<string> {
    await listening(this.server);
    const a = this.server.address() as net.AddressInfo;
    this.origin = `http://127.0.0.1:${a.port}`;
    const leaf = await this.ca.leafFor('127.0.0.1');
    const secure = tls.createServer({ key: leaf.keyPem, cert: leaf.certPem, ALPNProtocols: ['h2', 'http/1.1'] });
    secure.on('secureConnection', (s: tls.TLSSocket) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
      s.on('error', () => s.destroy());
      (s.alpnProtocol === 'h2' ? this.h2 : this.h1).emit('connection', s);
    });
    secure.on('tlsClientError', () => undefined);
    await listening(secure);
    this.secure = secure;
    this.secureOrigin = `https://127.0.0.1:${(secure.address() as net.AddressInfo).port}`;
    return `127.0.0.1:${a.port}`;
  }

  async stop(graceMs: number): Promise<void> {
    this.server.close();
    this.secure?.close();
    const grace = new Promise((r) => setTimeout(r, graceMs).unref());
    await Promise.race([Promise.allSettled([...this.inFlight]), grace]);
    for (const s of this.sockets) s.destroy();
    this.sessions.closeAll('gateway stopped');
  }

  connection(stateDir: string): ConnectionExport {
    if (this.opts.connection) return this.opts.connection({ plain: this.origin, secure: this.secureOrigin }, stateDir);
    const name = this.upstream.target.name;
    return { env: { [targetVariable(name)]: this.origin, [targetVariable(name, 'HTTPS_URL')]: this.secureOrigin }, secrets: [], files: [] };
  }
}

