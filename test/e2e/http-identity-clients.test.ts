// Real Azure clients sign in against the gateway's managed-identity endpoint (identity-endpoint.ts)
// served on loopback, each in its own process with only the variables the gateway exports:
// @azure/identity (ManagedIdentityCredential and DefaultAzureCredential, msal-node underneath),
// Python requests following the App Service and IMDS contracts (MSAL Python is not installable
// offline here), curl with the exact request Terraform's go-azure-sdk makes, and Debian's az 2.45
// (`apt-get install azure-cli`), whose `az login --identity` then lists subscriptions through
// HTTPS_PROXY: a small intercepting stand-in for management.azure.com (a per-run CA, the
// placeholder checked on arrival) answers it, so the whole sign-in runs with no Entra token.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import tls from 'node:tls';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AddressInfo, Socket } from 'node:net';
import { PlaceholderTokens } from '../../gateway/http/placeholder-token.ts';
import { identityEndpoint, identityEnvironment } from '../../gateway/http/identity-endpoint.ts';
import { createRunCa } from '../../gateway/http/run-ca.ts';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const ARM = 'https://management.azure.com/.default';
const CLAIMS = {
  tid: '72f988bf-86f1-41af-91ab-2d7cd011db47',
  oid: '0a1b2c3d-0000-4000-8000-00000000000a',
  appid: '9eba17f1-0000-4000-8000-00000000000b',
};
const SUBSCRIPTION = '3c8a1f2e-0000-4000-8000-0000000000cc';
const SECRET = 'a9d8c7b6e5f4a3b2c1d0e9f8a7b6c5d4';

interface Seen { method: string; url: string; headers: http.IncomingHttpHeaders }

describe('Azure clients against the managed-identity endpoint', () => {
  const tokens = new PlaceholderTokens();
  const seen: Seen[] = [];
  const connects: string[] = [];
  const armCalls: { url: string; bearerScope: string | null }[] = [];
  let server: http.Server;
  let base: string;
  let env: Record<string, string>;
  let dir: string;
  let caFile: string;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'identity-clients-'));
    const ca = await createRunCa('identity-clients-test');
    caFile = path.join(dir, 'ca.pem');
    await writeFile(caFile, ca.certPem);
    const handle = identityEndpoint({ tokens, header: SECRET, scopes: [ARM], claims: () => CLAIMS });
    // A stand-in for Azure Resource Manager behind the forward proxy: it checks the placeholder
    // the way the gateway will, then answers the two calls az makes here.
    const arm = http.createServer((req, res) => {
      const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      const checked = bearer ? tokens.check(bearer) : null;
      armCalls.push({ url: req.url ?? '', bearerScope: checked?.scope ?? null });
      req.resume();
      const json = (status: number, body: unknown) => { res.writeHead(status, { 'Content-Type': 'application/json' }); res.end(JSON.stringify(body)); };
      if (!checked) return json(401, { error: { code: 'InvalidAuthenticationToken', message: 'no placeholder' } });
      if (/^\/subscriptions\?/.test(req.url ?? '')) {
        return json(200, { value: [{ id: `/subscriptions/${SUBSCRIPTION}`, subscriptionId: SUBSCRIPTION, tenantId: CLAIMS.tid, displayName: 'Gateway test', state: 'Enabled', subscriptionPolicies: { locationPlacementId: 'Public_2014-09-01', quotaId: 'PayAsYouGo_2014-09-01', spendingLimit: 'Off' }, authorizationSource: 'RoleBased' }] });
      }
      if (req.url?.startsWith(`/subscriptions/${SUBSCRIPTION}/resourcegroups?`)) {
        return json(200, { value: [{ id: `/subscriptions/${SUBSCRIPTION}/resourceGroups/rg-one`, name: 'rg-one', type: 'Microsoft.Resources/resourceGroups', location: 'westeurope', properties: { provisioningState: 'Succeeded' } }] });
      }
      json(404, { error: { code: 'NotFound', message: req.url } });
    });
    server = http.createServer((req, res) => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
      if (!handle(req, res)) { res.writeHead(404); res.end(); }
    });
    server.on('connect', (req: http.IncomingMessage, socket: Socket) => {
      connects.push(req.url ?? '');
      if (req.url !== 'management.azure.com:443') {
        socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      void ca.secureContextFor('management.azure.com').then((secureContext) => {
        socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        const tlsSocket = new tls.TLSSocket(socket, { isServer: true, secureContext });
        tlsSocket.on('error', () => socket.destroy());
        arm.emit('connection', tlsSocket);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    env = identityEnvironment(base, SECRET);
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });

  /** Only what a step would have: PATH, HOME and the given variables (no ambient AZURE_*). */
  const stepEnv = (vars: Record<string, string>) => ({ PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...vars });

  const nodeClient = async (credential: string, vars: Record<string, string>) => {
    const script = `
      import { ${credential} } from '@azure/identity';
      const t = await new ${credential}().getToken('https://management.azure.com/.default');
      process.stdout.write(JSON.stringify(t));`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, env: stepEnv(vars) });
    return JSON.parse(stdout) as { token: string; expiresOnTimestamp: number; tokenType?: string };
  };

  test('@azure/identity ManagedIdentityCredential (App Service source) gets the placeholder', async () => {
    const from = seen.length;
    const t = await nodeClient('ManagedIdentityCredential', { IDENTITY_ENDPOINT: env.IDENTITY_ENDPOINT!, IDENTITY_HEADER: env.IDENTITY_HEADER! });
    assert.deepEqual(tokens.check(t.token), { scope: ARM });
    assert.ok(t.expiresOnTimestamp > Date.now() + 30 * 60_000);
    const req = seen.slice(from).find((s) => s.url.startsWith('/msi/token'));
    assert.ok(req, 'msal-node called IDENTITY_ENDPOINT');
    assert.equal(req.method, 'GET');
    assert.equal(req.headers['x-identity-header'], SECRET);
    const q = new URL(req.url, base).searchParams;
    assert.equal(q.get('api-version'), '2019-08-01');
    assert.equal(q.get('resource'), 'https://management.azure.com');
  });

  test('@azure/identity DefaultAzureCredential with everything the gateway exports', async () => {
    const t = await nodeClient('DefaultAzureCredential', env);
    assert.deepEqual(tokens.check(t.token), { scope: ARM });
  });

  test('@azure/identity with MSI_ENDPOINT alone (msal-node\'s Cloud Shell source, a form POST)', async () => {
    const from = seen.length;
    const t = await nodeClient('ManagedIdentityCredential', { MSI_ENDPOINT: env.MSI_ENDPOINT! });
    assert.deepEqual(tokens.check(t.token), { scope: ARM });
    const req = seen.slice(from).find((s) => s.url.startsWith('/msi/token'));
    assert.equal(req?.method, 'POST');
    assert.equal(req?.headers.metadata, 'true');
  });

  test('curl with Terraform\'s request (go-azure-sdk: Metadata, x-ms-identity) at ARM_MSI_ENDPOINT', async () => {
    const url = `${env.ARM_MSI_ENDPOINT}?api-version=2018-02-01&resource=${encodeURIComponent('https://management.azure.com/')}`;
    const { stdout } = await run('curl', ['-sS', '--fail-with-body', '-H', 'Metadata: true', '-H', `x-ms-identity: ${SECRET}`, url], { env: stepEnv({}) });
    const body = JSON.parse(stdout) as Record<string, string>;
    assert.deepEqual(tokens.check(body.access_token!), { scope: ARM });
    assert.match(body.expires_in!, /^\d+$/, 'go-azure-sdk reads expires_in');
    const refused = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', url], { env: stepEnv({}) });
    assert.equal(refused.stdout, '400', 'no Metadata header, no token');
  });

  test('Python requests, App Service and IMDS contracts', async () => {
    const python = await pythonWithRequests();
    const script = `
import json, os, sys, requests
e = os.environ
a = requests.get(e["IDENTITY_ENDPOINT"], params={"api-version": "2019-08-01", "resource": "https://management.azure.com/"},
                 headers={"X-IDENTITY-HEADER": e["IDENTITY_HEADER"], "Metadata": "true"}).json()
b = requests.get(e["ARM_MSI_ENDPOINT"], params={"api-version": "2018-02-01", "resource": "https://management.azure.com/"},
                 headers={"Metadata": "true"}).json()
c = requests.get(e["IDENTITY_ENDPOINT"], params={"api-version": "2019-08-01", "resource": "https://vault.azure.net"},
                 headers={"X-IDENTITY-HEADER": e["IDENTITY_HEADER"]})
print(json.dumps([a["access_token"], b["access_token"], int(a["expires_on"]), c.status_code, c.json()["message"]]))`;
    const { stdout } = await run(python, ['-c', script], { env: stepEnv(env) });
    const [a, b, expiresOn, status, message] = JSON.parse(stdout) as [string, string, number, number, string];
    assert.deepEqual(tokens.check(a), { scope: ARM });
    assert.deepEqual(tokens.check(b), { scope: ARM });
    assert.ok(expiresOn > Date.now() / 1000);
    assert.equal(status, 400);
    assert.match(message, /serves tokens only for https:\/\/management\.azure\.com\/\.default/);
  });

  test('az 2.45: login --identity with MSI_ENDPOINT, then az group list, the placeholder at ARM', async () => {
    const az = await which('az');
    assert.ok(az, 'az must be installed (Debian: apt-get install azure-cli)');
    const azEnv = stepEnv({
      ...env,
      AZURE_CONFIG_DIR: path.join(dir, 'az'),
      AZURE_CORE_COLLECT_TELEMETRY: 'false',
      AZURE_CORE_NO_COLOR: 'true',
      HTTPS_PROXY: base,
      NO_PROXY: '127.0.0.1,localhost',
      REQUESTS_CA_BUNDLE: caFile,
    });
    const from = seen.length;
    const login = await run(az, ['login', '--identity', '--allow-no-subscriptions', '-o', 'json'], { env: azEnv, timeout: 180_000 });
    const accounts = JSON.parse(login.stdout) as { id: string; tenantId: string; user: { name: string; type: string } }[];
    assert.equal(accounts.length, 1);
    assert.equal(accounts[0]!.id, SUBSCRIPTION);
    assert.equal(accounts[0]!.tenantId, CLAIMS.tid, 'az read tid from the placeholder');
    assert.deepEqual(accounts[0]!.user, { assignedIdentityInfo: 'MSI', name: 'systemAssignedIdentity', type: 'servicePrincipal' });
    const msiCalls = seen.slice(from).filter((s) => s.url.startsWith('/msi/token'));
    assert.ok(msiCalls.length >= 1);
    for (const call of msiCalls) {
      assert.equal(call.method, 'POST', 'az 2.45 (msrestazure) posts to MSI_ENDPOINT when no App Service is detected');
      assert.equal(call.headers.metadata, 'true');
    }
    const beforeList = seen.length;
    const groups = await run(az, ['group', 'list', '-o', 'json'], { env: azEnv, timeout: 180_000 });
    assert.ok(seen.slice(beforeList).some((s) => s.url.startsWith('/msi/token')), 'az keeps no token: each command asks the endpoint');
    assert.deepEqual((JSON.parse(groups.stdout) as { name: string }[]).map((g) => g.name), ['rg-one']);
    assert.ok(armCalls.length >= 2);
    for (const call of armCalls) assert.equal(call.bearerScope, ARM, `${call.url} carried a placeholder`);
    assert.ok(connects.includes('management.azure.com:443'));
  });
});

async function which(name: string): Promise<string | null> {
  try {
    return (await run('sh', ['-c', `command -v ${name}`])).stdout.trim() || null;
  } catch {
    return null;
  }
}

/** /usr/bin/python3 or the python3 on PATH (pyenv's), whichever has requests. */
async function pythonWithRequests(): Promise<string> {
  for (const candidate of ['/usr/bin/python3', 'python3']) {
    try {
      await run(candidate, ['-c', 'import requests']);
      return candidate;
    } catch { /* try the next */ }
  }
  throw new Error('no python3 with requests: install python3-requests (Debian) or use the pyenv python3');
}
