// The managed-identity endpoint as a gateway listener: Azure tools in later steps (az login
// --identity, Terraform use_msi, the SDKs' ManagedIdentityCredential) sign in here and get
// placeholder tokens valid only at the gateway, which sends the real Entra ID token upstream in
// their place (identity-endpoint.ts). No real token is ever handed to a step.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import type { ConnectionExport, CoreServices, Listener } from '../core/adapter.ts';
import { identityEndpoint, identityEnvironment } from './identity-endpoint.ts';
import { PlaceholderTokens } from './placeholder-token.ts';
import type { HttpTarget } from './target.ts';
import { listening } from './listening.ts';

export class IdentityListener implements Listener {
  readonly targets: readonly string[];
  private readonly server: http.Server;
  private readonly header = randomBytes(24).toString('base64url');
  private base = '';

  constructor(targets: readonly HttpTarget[], core: CoreServices) {
    this.targets = targets.map((t) => t.name);
    const who = `targets.${targets[0]!.name}`;
    const id = core.credentials.azureIdentity(who);
    const handle = identityEndpoint({
      tokens: new PlaceholderTokens(),
      header: this.header,
      scopes: targets.map((t) => (t.auth.kind === 'azure' ? t.auth.scope : '')),
      claims: () => ({ tid: id.tenantId, appid: id.clientId, oid: id.clientId }),
    });
    this.server = http.createServer((req, res) => {
      if (!handle(req, res)) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'not_found', error_description: 'gateway: this is the managed-identity endpoint; see docs/http.md' }));
      }
    });
  }

  async listen(): Promise<string> {
    await listening(this.server);
    const a = this.server.address() as net.AddressInfo;
    this.base = `http://127.0.0.1:${a.port}`;
    return `127.0.0.1:${a.port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(() => r(undefined)));
  }

  connection(): ConnectionExport {
    return { env: identityEnvironment(this.base, this.header), secrets: [this.header], files: [] };
  }
}
