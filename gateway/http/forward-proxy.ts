// The gateway's forward proxy, for tools that cannot take a base URL (az, Terraform, azd): a step
// sets HTTPS_PROXY to it. A CONNECT to a host a target names is answered 200, then the gateway
// itself terminates TLS inside the tunnel with the run CA's leaf for that host, and each request
// decrypted there (HTTP/1.1 or HTTP/2, chosen by ALPN) goes to the target's handler. A CONNECT to
// any other host is refused with 403: nothing is ever tunnelled blind. Plain absolute-form
// requests (`GET http://host/...`) reach the handler only for http:// targets.
//
// A tunnel is bound to its CONNECT authority: the TLS server for it presents that host's leaf
// only and refuses another SNI name, and a request inside whose Host or :authority names another
// authority is refused with 421 before the handler, so a client cannot CONNECT to one target and
// talk to another (or to a host no target names) through it.
import http from 'node:http';
import http2 from 'node:http2';
import type net from 'node:net';
import type tls from 'node:tls';
import type { RunCa } from './run-ca.ts';
import { listening } from './listening.ts';
import { canonicalHost } from './run-ca.ts';
import { type Authority, formatAuthority, parseAbsoluteForm, parseAuthority, sameAuthority } from './proxy-authority.ts';
import { refuseOnSocket, refusal, refuseRequest, requestAuthority, upgradeRefusal } from './forward-proxy-refusals.ts';
import type { Egress } from '../egress/egress.ts';

export interface ForwardRoute {
  /** The gateway target that serves this host:port. */
  target: string;
}

export type ForwardRequest = http.IncomingMessage | http2.Http2ServerRequest;
export type ForwardResponse = http.ServerResponse | http2.Http2ServerResponse;

export interface ForwardProxyOptions {
  ca: RunCa;
  /**
   * The target that serves host:port over this scheme (from the targets' url), or null: refused.
   * `https` for CONNECT (the proxy terminates TLS: only https:// targets), `http` for plain
   * absolute-form requests. Hosts come canonical: lower case, no trailing dot, IPv6 unbracketed.
   */
  route(host: string, port: number, scheme: 'https' | 'http'): ForwardRoute | null;
  /**
   * Every request decrypted from a CONNECT tunnel and every absolute-form request to an http://
   * target. `req.url` is origin-form (`/path?query`); the Host (or :authority) names the route's
   * authority. The handler still drops hop-by-hop headers (Proxy-Authorization, Connection...)
   * before it forwards.
   */
  handle(req: ForwardRequest, res: ForwardResponse, route: ForwardRoute): void;
  /** The host:port of each target, named in the refusal of other hosts. */
  targetAuthorities?: readonly string[];
  /**
   * The policy's declared egress (gateway/egress/): a CONNECT no target serves is recorded there,
   * then tunnelled unread when declared, else refused; a plain request no target serves is
   * recorded and refused. Without it such requests are refused unrecorded.
   */
  egress?: Egress;
}

interface Tunnel {
  /** Never listening: each tunnel's socket is handed to it as a 'connection'. */
  server: http2.Http2SecureServer | http.Server;
}

const ESTABLISHED = 'HTTP/1.1 200 Connection Established\r\n\r\n';

export class ForwardProxy {
  readonly #o: ForwardProxyOptions;
  readonly #server: http.Server;
  /** One server per CONNECT scheme and authority (TLS for https targets, clear for http ones). */
  readonly #tunnels = new Map<string, Promise<Tunnel>>();
  /** Every client connection to the proxy port (tunnels included), for close(). */
  readonly #sockets = new Set<net.Socket>();
  readonly #sessions = new Set<http2.ServerHttp2Session>();
  /** HTTP/1.1 connections (plain, or TLS inside a tunnel) and how many requests each has in flight. */
  readonly #http1 = new Map<net.Socket | tls.TLSSocket, number>();
  #closing = false;

  constructor(o: ForwardProxyOptions) {
    this.#o = o;
    this.#server = http.createServer();
    this.#server.on('connection', (socket: net.Socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => {
        this.#sockets.delete(socket);
        this.#http1.delete(socket);
      });
    });
    this.#server.on('connect', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      // Node detaches its own error handling from a CONNECT's socket: a reset must not throw.
      socket.on('error', () => socket.destroy());
      this.#connect(req, socket, head).catch((e: Error) => refuseOnSocket(socket, 500, `gateway: the tunnel could not start: ${e.message}`));
    });
    this.#server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => guarded(req, res, () => this.#plain(req, res)));
    this.#server.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => clientError(err, socket));
  }

  /** Listens on 127.0.0.1 on a free port; resolves to `127.0.0.1:port`. */
  async listen(port = 0): Promise<string> {
    await listening(this.#server, port);
    return `127.0.0.1:${(this.#server.address() as net.AddressInfo).port}`;
  }

  /**
   * Stops accepting; requests in flight finish (HTTP/2 sessions get GOAWAY, idle HTTP/1.1
   * connections close at once, busy ones after their response) and whatever is still open after
   * graceMs is cut (a tunnel whose TLS handshake has not finished included).
   */
  close(graceMs: number): Promise<void> {
    this.#closing = true;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const session of this.#sessions) session.close();
    for (const [socket, inFlight] of this.#http1) if (inFlight === 0) socket.destroy();
    const cut = setTimeout(() => {
      for (const session of this.#sessions) session.destroy();
      for (const socket of this.#http1.keys()) socket.destroy();
      for (const socket of this.#sockets) socket.destroy();
    }, graceMs);
    return closed.finally(() => clearTimeout(cut));
  }

  #refused(a: Authority): string {
    const targets = this.#o.targetAuthorities?.length ? this.#o.targetAuthorities.join(', ') : 'none';
    return `gateway: ${formatAuthority(a)} is not a target of this gateway (targets: ${targets}); it is never tunnelled`;
  }

  async #connect(req: http.IncomingMessage, socket: net.Socket, head: Buffer): Promise<void> {
    if (this.#closing) return refuseOnSocket(socket, 503, 'gateway: the gateway is stopping');
    const authority = parseAuthority(req.url ?? '');
    if ('error' in authority) return refuseOnSocket(socket, 400, `gateway: CONNECT needs host:port: ${authority.error}`);
    // An https target: TLS inside, terminated here. An http target: plain HTTP/1.1 inside (undici
    // and Node's NODE_USE_ENV_PROXY tunnel http:// URLs too, rather than send absolute-form).
    const https = this.#o.route(authority.host, authority.port, 'https');
    const route = https ?? this.#o.route(authority.host, authority.port, 'http');
    if (!route && this.#o.egress) return this.#egress(this.#o.egress, authority, socket, head);
    if (!route) return refuseOnSocket(socket, 403, this.#refused(authority), `Forbidden: ${formatAuthority(authority)} is not a gateway target`);
    const tunnel = await this.#tunnel(authority, route, https ? 'https' : 'http');
    if (socket.destroyed) return;
    socket.write(ESTABLISHED);
    if (head.length > 0) socket.unshift(head);
    tunnel.server.emit('connection', socket);
  }

  /** A CONNECT no target serves: declared egress is tunnelled unread, anything else refused (both recorded). */
  async #egress(egress: Egress, authority: Authority, socket: net.Socket, head: Buffer): Promise<void> {
    const answer = await egress.connect({ ...authority, client: `${socket.remoteAddress}:${socket.remotePort}`, targets: this.#o.targetAuthorities ?? [] });
    if ('refused' in answer) return refuseOnSocket(socket, answer.refused.status, answer.refused.message, answer.refused.reason);
    if (socket.destroyed || this.#closing) {
      socket.destroy();
      return answer.tunnel.close(socket.destroyed ? 'the client left before the tunnel opened' : 'the gateway is stopping');
    }
    socket.write(ESTABLISHED);
    answer.tunnel.relay(socket, head);
  }

  #tunnel(authority: Authority, route: ForwardRoute, scheme: 'https' | 'http'): Promise<Tunnel> {
    const key = `${scheme}://${formatAuthority(authority)}`;
    let tunnel = this.#tunnels.get(key);
    if (!tunnel) {
      tunnel = scheme === 'https' ? this.#openTlsTunnel(authority, route) : Promise.resolve(this.#openPlainTunnel(authority, route));
      this.#tunnels.set(key, tunnel);
      tunnel.catch(() => this.#tunnels.delete(key));
    }
    return tunnel;
  }

  async #openTlsTunnel(authority: Authority, route: ForwardRoute): Promise<Tunnel> {
    const leaf = await this.#o.ca.leafFor(authority.host);
    const server = http2.createSecureServer({
      allowHTTP1: true,
      minVersion: 'TLSv1.2',
      // Clients that send no SNI (IP literals) get this host's leaf; one naming another host is refused.
      key: leaf.keyPem,
      cert: leaf.certPem,
      SNICallback: (name, done) => {
        if (canonicalHost(name) === authority.host) done(null, leaf.context);
        else done(new Error(`SNI ${name} is not the tunnel's host ${authority.host}`));
      },
    });
    server.on('request', (req: ForwardRequest, res: ForwardResponse) => guarded(req, res, () => this.#tunnelled(req, res, authority, 443, route)));
    server.on('secureConnection', (socket: tls.TLSSocket) => {
      if (socket.alpnProtocol === 'h2') return;
      if (this.#closing) return void socket.destroy();
      this.#http1.set(socket, 0);
      socket.once('close', () => this.#http1.delete(socket));
    });
    server.on('session', (session: http2.ServerHttp2Session) => {
      this.#sessions.add(session);
      session.once('close', () => this.#sessions.delete(session));
      if (this.#closing) session.close();
    });
    // A failed handshake (SNI refused, not TLS, reset) ends that tunnel only.
    server.on('tlsClientError', (_err: Error, socket: tls.TLSSocket) => socket.destroy());
    server.on('sessionError', () => {});
    server.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => clientError(err, socket));
    // CONNECT inside a tunnel (HTTP/1.1; HTTP/2's reaches 'request'): no nesting.
    server.on('connect', (_req: http.IncomingMessage, socket: net.Socket) =>
      refuseOnSocket(socket, 405, 'gateway: CONNECT inside a tunnel is not relayed'));
    return { server };
  }

  /** A tunnel to an http:// target: HTTP/1.1 in clear, the same checks as inside TLS. */
  #openPlainTunnel(authority: Authority, route: ForwardRoute): Tunnel {
    const server = http.createServer();
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => guarded(req, res, () => this.#tunnelled(req, res, authority, 80, route)));
    server.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => clientError(err, socket));
    server.on('connect', (_req: http.IncomingMessage, socket: net.Socket) =>
      refuseOnSocket(socket, 405, 'gateway: CONNECT inside a tunnel is not relayed'));
    return { server };
  }

  /** A request decrypted inside the tunnel to `authority`. */
  #tunnelled(req: ForwardRequest, res: ForwardResponse, authority: Authority, defaultPort: number, route: ForwardRoute): void {
    const why = refusal(req, authority, defaultPort);
    if (why) return refuseRequest(req, res, why.status, why.message);
    this.#tracked(req, res);
    this.#o.handle(req, res, route);
  }

  /** A plain request to the proxy port: absolute-form to an http:// target, else refused. */
  #plain(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (this.#closing) return refuseRequest(req, res, 503, 'gateway: the gateway is stopping');
    const url = req.url ?? '';
    if (url.startsWith('/') || url === '*') {
      return refuseRequest(req, res, 400, "gateway: this is the gateway's forward proxy: send CONNECT host:port, or an absolute-form http:// request");
    }
    const target = parseAbsoluteForm(url);
    if ('error' in target) return refuseRequest(req, res, 400, `gateway: ${target.error}`);
    const route = this.#o.route(target.authority.host, target.authority.port, 'http');
    const egress = this.#o.egress;
    if (!route && egress) {
      const request = { ...target.authority, method: req.method ?? 'GET', client: `${req.socket.remoteAddress}:${req.socket.remotePort}`, targets: this.#o.targetAuthorities ?? [] };
      return void egress.refusePlain(request).then((r) => refuseRequest(req, res, r.status, r.message),
        (e: Error) => refuseRequest(req, res, 500, `gateway: the request failed: ${e.message}`));
    }
    if (!route) return refuseRequest(req, res, 403, this.#refused(target.authority));
    const upgrade = upgradeRefusal(req);
    if (upgrade) return refuseRequest(req, res, upgrade.status, upgrade.message);
    const host = requestAuthority(req, 80);
    if (host && 'error' in host) return refuseRequest(req, res, 400, `gateway: ${host.error}`);
    if (host && !sameAuthority(host, target.authority)) {
      return refuseRequest(req, res, 421, `gateway: the request line names ${formatAuthority(target.authority)} but Host names ${formatAuthority(host)}`);
    }
    req.url = target.path;
    this.#tracked(req, res);
    this.#o.handle(req, res, route);
  }

  /** Counts an HTTP/1.1 request in flight on its connection, so close() lets it finish. */
  #tracked(req: ForwardRequest, res: ForwardResponse): void {
    if (req.httpVersionMajor !== 1) return;
    const socket = req.socket as net.Socket;
    if (socket.destroyed) return;
    // Removed from the map when the socket closes (the listeners set in the constructor and at
    // secureConnection), so a late response does not bring it back.
    this.#http1.set(socket, (this.#http1.get(socket) ?? 0) + 1);
    res.once('close', () => {
      const inFlight = this.#http1.get(socket);
      if (inFlight === undefined) return;
      this.#http1.set(socket, inFlight - 1);
      if (this.#closing && inFlight === 1) socket.destroy();
    });
  }
}

/** A handler or route that throws answers 500 on that request; the proxy goes on serving. */
function guarded(req: ForwardRequest, res: ForwardResponse, serve: () => void): void {
  try {
    serve();
  } catch (e) {
    refuseRequest(req, res, 500, `gateway: the request failed: ${(e as Error).message}`);
  }
}

function clientError(err: NodeJS.ErrnoException, socket: net.Socket): void {
  if (err.code === 'ECONNRESET' || !socket.writable) return void socket.destroy();
  const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'HPE_REQUEST_TIMEOUT' ? 408 : 400;
  refuseOnSocket(socket, status, `gateway: malformed request (${err.code ?? err.message})`);
}
