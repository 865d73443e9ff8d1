// The forward proxy as a gateway listener, for tools that cannot take a base URL (az, Terraform,
// azd): `HTTPS_PROXY` points here; CONNECT to a target's host is terminated with the per-run CA
// and its requests go through the same exchange as the reverse proxy's; any other host is
// refused (forward-proxy.ts), unless the policy declares it as egress (gateway/egress/: tunnelled
// unread and recorded). Later steps get the CA in the variables each kind of client reads.
import fs from 'node:fs';
import path from 'node:path';
import type { ConnectionExport, CoreServices, Listener } from '../core/adapter.ts';
import { caBundle } from './ca-bundle.ts';
import type { ClientSessions } from './client-sessions.ts';
import { exchange } from './exchange.ts';
import { httpApi } from './http-api.ts';
import type { HttpRequest, HttpResponse } from './exchange-types.ts';
import { ForwardProxy } from './forward-proxy.ts';
import type { OperationTracker } from './lro.ts';
import { REFUSAL, sendError } from './replies.ts';
import type { RunCa } from './run-ca.ts';
import type { Upstream } from './upstream.ts';

/** Loopback never goes through the proxy: the reverse proxies and the identity endpoint live there. */
export const NO_PROXY = '127.0.0.1,localhost,::1';

export class ForwardProxyListener implements Listener {
  readonly targets: readonly string[];
  private readonly proxy: ForwardProxy;
  private readonly ca: RunCa;
  private readonly plainHttp: boolean;
  private readonly egress: CoreServices['egress'];
  private address = '';

  constructor(upstreams: readonly Upstream[], core: CoreServices, operations: Map<string, OperationTracker>, sessions: ClientSessions, ca: RunCa) {
    this.targets = upstreams.map((u) => u.target.name);
    this.ca = ca;
    // With declared egress, plain http:// comes here too, to be refused and recorded rather than
    // attempted directly (and, from a confined command, fail unseen).
    this.plainHttp = upstreams.some((u) => u.target.protocol === 'http:') || (core.egress?.declared ?? false);
    this.egress = core.egress;
    const byName = new Map(upstreams.map((u) => [u.target.name, u]));
    this.proxy = new ForwardProxy({
      ca,
      targetAuthorities: upstreams.map((u) => `${u.target.host}:${u.target.port}`),
      egress: core.egress,
      route: (host, port, scheme) => {
        const u = upstreams.find((x) => x.target.host === host && x.target.port === port && x.target.protocol === `${scheme}:`);
        return u ? { target: u.target.name } : null;
      },
      handle: (req, res, route) => {
        const upstream = byName.get(route.target)!;
        const r = res as unknown as HttpResponse;
        const key = (req as { stream?: { session?: object } }).stream?.session ?? req.socket;
        let s;
        try {
          s = sessions.of(key as never, route.target, { client: `${req.socket.remoteAddress}:${req.socket.remotePort}`, via: 'forward-proxy', http_version: req.httpVersion });
        } catch (e) {
          return sendError(r, 503, REFUSAL.log, `gateway: the session log cannot be written (${(e as Error).message}); nothing was sent`);
        }
        exchange(req as HttpRequest, r, { core, api: httpApi, upstream, operations: operations.get(route.target)!, session: s.rec, gate: s.gate, gatewayOrigin: null })
          .catch((e: Error) => sendError(r, 500, REFUSAL.upstream, `gateway: ${e.message}`));
      },
    });
  }

  async listen(): Promise<string> {
    this.address = await this.proxy.listen();
    return this.address;
  }

  stop(graceMs: number): Promise<void> {
    const closed = this.proxy.close(graceMs);
    // Egress tunnels are bytes with no request boundary to wait for: they end now, recorded.
    this.egress?.closeAll('the gateway is stopping');
    return closed;
  }

  connection(stateDir: string): ConnectionExport {
    const url = `http://${this.address}`;
    const caFile = path.join(stateDir, 'gateway-ca.pem');
    const bundleFile = path.join(stateDir, 'ca-bundle.pem');
    return {
      env: {
        HTTPS_PROXY: url,
        https_proxy: url,
        ...(this.plainHttp ? { HTTP_PROXY: url, http_proxy: url } : {}),
        NO_PROXY,
        no_proxy: NO_PROXY,
        GATEWAY_HTTPS_PROXY: url,
        // Adds to Node's roots; the other three replace their client's roots, so they get all of them.
        NODE_EXTRA_CA_CERTS: caFile,
        REQUESTS_CA_BUNDLE: bundleFile,
        SSL_CERT_FILE: bundleFile,
        CURL_CA_BUNDLE: bundleFile,
        GATEWAY_CA_CERT: caFile,
      },
      secrets: [],
      files: [
        { name: 'gateway-ca.pem', content: keptExtraCerts() + this.ca.certPem, mode: 0o644 },
        { name: 'ca-bundle.pem', content: caBundle(this.ca.certPem, rootsFile()), mode: 0o644 },
      ],
    };
  }
}

/**
 * The variables replace what the job may have set for itself (a self-hosted runner's corporate
 * CA): certificates the job already added with NODE_EXTRA_CA_CERTS stay added, and a roots file
 * it named with SSL_CERT_FILE stays the roots the bundle starts with.
 */
function keptExtraCerts(): string {
  const file = process.env.NODE_EXTRA_CA_CERTS;
  if (!file) return '';
  try {
    const pem = fs.readFileSync(file, 'utf8');
    return pem.includes('-----BEGIN CERTIFICATE-----') ? (pem.endsWith('\n') ? pem : `${pem}\n`) : '';
  } catch {
    return '';
  }
}

function rootsFile(): string | undefined {
  const file = process.env.SSL_CERT_FILE;
  return file && fs.existsSync(file) ? file : undefined;
}
