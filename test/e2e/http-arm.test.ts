// The HTTP gateway in front of Azure Resource Manager, end to end: the policy (the target
// reached through `connect-to`, the ARM stand-in's CA as `ca-file`), the Entra ID token obtained
// through the job's OIDC token and injected by the gateway, real curl and @azure/arm-resources
// as clients of the reverse proxy. Deny, approve, masking, long-running operations, and no
// token anywhere a step can see.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import path from 'node:path';
import { startArmStandIn, type ArmStandIn } from '../helpers/arm-stand-in.ts';
import { startEntraStandIn, type EntraStandIn } from '../helpers/entra-stand-in.ts';
import { startOidcIssuer, type OidcIssuer } from '../helpers/oidc-issuer.ts';
import { cli, cliAsync, readLog, tempDir, waitFor, type LogRecord, startedGatewayEnv } from '../helpers/gateway.ts';

const run = promisify(execFile);
const ARM_SCOPE = 'https://management.azure.com/.default';
const ARM_TOKEN = 'arm-token-from-entra-' + 'x'.repeat(40);

let arm: ArmStandIn;
let entra: EntraStandIn;
let issuer: OidcIssuer;
let dir: string;
let stateDir: string;
let env: Record<string, string>;

function policy(): string {
  return `version: 1
targets:
  arm:
    kind: http
    url: https://management.azure.com
    auth: azure                                  # Entra token for https://management.azure.com/.default, injected by the gateway
    ca-file: arm-ca.pem
    connect-to: 127.0.0.1:${arm.port}
rules:
  - { name: review-deletes, target: arm, when: { method: [DELETE] }, action: approve }
  - { name: no-storage-keys, target: arm, when: { resource: { provider: Microsoft.Storage, action: [listKeys, regenerateKey] } }, action: deny }
  - { name: no-role-assignments, when: { resource: { provider: Microsoft.Authorization, type: [roleAssignments] }, method: [PUT, DELETE] }, action: deny }
  - { name: nsg-changes-on-main-only, when: { path: ["/subscriptions/*/resourceGroups/*/providers/Microsoft.Network/networkSecurityGroups/**"], method: [PUT, PATCH, DELETE], ref-not: refs/heads/main }, action: deny }
masking:
  json-fields: ["$..keys[*].value", "$..primaryKey", "$..secondaryKey", "$..connectionString", "$..properties.password"]
approvals:
  timeout: 20s
`;
}

before(async () => {
  issuer = await startOidcIssuer({ ref: 'refs/heads/feature' });
  entra = await startEntraStandIn({ federatedCredentials: [{ issuer: issuer.url, subject: 'repo:octo-org/payments:ref:refs/heads/feature' }], tokens: { [ARM_SCOPE]: ARM_TOKEN } });
  arm = await startArmStandIn({ tokenCheck: (b) => b === ARM_TOKEN, lroHost: 'management.azure.com' });
  arm.addResourceGroup('rg-app');
  arm.addResourceGroup('rg-old');
  arm.addStorageAccount('rg-app', 'stapp');
  dir = tempDir('gw-http-');
  fs.copyFileSync(arm.caFile, path.join(dir, 'arm-ca.pem'));
  fs.writeFileSync(path.join(dir, 'gateway.yml'), policy());
  stateDir = path.join(dir, 'state');
  // Async: the OIDC issuer and the Entra stand-in answer from this process while the daemon starts.
  env = await startedGatewayEnv(dir, stateDir, {
    env: {
      ...process.env, ...issuer.requestEnv, NODE_EXTRA_CA_CERTS: entra.caFile,
      AZURE_CLIENT_ID: entra.clientId, AZURE_TENANT_ID: entra.tenantId, AZURE_AUTHORITY_HOST: entra.authorityHost,
      GITHUB_REF: 'refs/heads/feature',
    },
  });
});

after(async () => {
  if (stateDir) cli(['stop', '--state-dir', stateDir]);
  await Promise.all([arm?.stop(), entra?.close(), issuer?.close()]);
});

async function curl(method: string, urlPath: string, body?: string, extra: string[] = []): Promise<{ status: number; body: string; headers: string }> {
  // Never spawnSync here: the OIDC issuer and the Entra stand-in answer from this process.
  const headersFile = path.join(dir, `headers-${process.hrtime.bigint()}.txt`);
  const args = ['-sS', '--path-as-is', '-X', method, '-D', headersFile, '-w', '\n%{http_code}', ...extra, ...(body !== undefined ? ['-H', 'content-type: application/json', '--data-binary', body] : []), `${env.GATEWAY_ARM_URL}${urlPath}`];
  const { stdout } = await run('curl', args, { encoding: 'utf8', timeout: 60_000 });
  const nl = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(nl + 1)), body: stdout.slice(0, nl), headers: fs.readFileSync(headersFile, 'utf8') };
}

const log = (): LogRecord[] => readLog(fs.readdirSync(path.join(dir, 'logs')).map((f) => path.join(dir, 'logs', f))[0]!);
const commandOf = (text: string): LogRecord => log().filter((r) => r.type === 'command' && r.text.includes(text)).at(-1)!;
const resultOf = (id: string): LogRecord | undefined => log().find((r) => r.type === 'result' && r.command === id);

test('GATEWAY_ARM_URL is exported and the token stays in the gateway', async () => {
  assert.match(env.GATEWAY_ARM_URL!, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.match(env.GATEWAY_ARM_HTTPS_URL!, /^https:\/\/127\.0\.0\.1:\d+$/);
  // NODE_EXTRA_CA_CERTS replaces the job's own for later steps: a CA the job had added (here the
  // Entra stand-in's, as a corporate CA would be) stays in the file, before the run's CA.
  const extra = fs.readFileSync(env.NODE_EXTRA_CA_CERTS!, 'utf8');
  assert.ok(extra.includes(fs.readFileSync(entra.caFile, 'utf8').trim()), 'the job\'s extra CA is kept');
  assert.equal((extra.match(/BEGIN CERTIFICATE/g) ?? []).length, 2);
  const everything = fs.readdirSync(stateDir).map((f) => { try { return fs.readFileSync(path.join(stateDir, f), 'utf8'); } catch { return ''; } }).join('\n');
  assert.ok(!everything.includes(ARM_TOKEN), 'no token in the state directory');
});

test('a GET reaches ARM with the Entra token injected and is recorded with its resource and request id', async () => {
  const sub = arm.subscriptionId;
  const r = await curl('GET', `/subscriptions/${sub}/resourceGroups/rg-app?api-version=2021-04-01`);
  assert.equal(r.status, 200, r.body);
  assert.equal(JSON.parse(r.body).name, 'rg-app');
  const seen = arm.requests.at(-1)!;
  assert.equal(seen.headers.authorization, `Bearer ${ARM_TOKEN}`);
  assert.equal(seen.headers.host, 'management.azure.com');
  const c = commandOf(`/resourceGroups/rg-app?api-version`);
  assert.equal(c.kind, 'http.request');
  assert.equal(c.details.resource.type, 'Microsoft.Resources/resourceGroups');
  assert.equal(c.details.resource.name, 'rg-app');
  const res = (await waitFor(() => resultOf(c.command), 'the result record'))!;
  assert.equal(res.details.status, 200);
  assert.match(res.details.request_id, /\S/);
  assert.ok(!fs.readFileSync(readLogPath(), 'utf8').includes(ARM_TOKEN), 'no token in the log');
});

function readLogPath(): string {
  return fs.readdirSync(path.join(dir, 'logs')).map((f) => path.join(dir, 'logs', f))[0]!;
}

test('listKeys is denied with an ARM-shaped 403 naming the rule, and never reaches ARM', async () => {
  const before = arm.requests.length;
  const p = `/subscriptions/${arm.subscriptionId}/resourceGroups/rg-app/providers/Microsoft.Storage/storageAccounts/stapp/listKeys?api-version=2023-01-01`;
  for (const variant of [p, p.replace('listKeys', 'LISTKEYS').replace('Microsoft.Storage', 'microsoft.storage'), p.replace('listKeys', '%6CistKeys')]) {
    const r = await curl('POST', variant, '{}');
    assert.equal(r.status, 403, variant);
    const e = JSON.parse(r.body).error;
    assert.equal(e.code, 'GatewayPolicyDenied');
    assert.match(e.message, /no-storage-keys/);
  }
  assert.equal(arm.requests.length, before, 'nothing reached ARM');
});

test('paths the gateway cannot read as one path are refused (encoded slash, dot segments)', async () => {
  const before = arm.requests.length;
  for (const p of [`/subscriptions/${arm.subscriptionId}/resourceGroups/rg-app/providers/Microsoft.Storage%2FstorageAccounts/stapp/listKeys?api-version=1`, `/subscriptions/x/../subscriptions/${arm.subscriptionId}?api-version=1`]) {
    const r = await curl('POST', p, '{}');
    assert.equal(r.status, 400, p);
    assert.equal(JSON.parse(r.body).error.code, 'GatewayUnreadableRequest');
  }
  assert.equal(arm.requests.length, before);
});

test('a storage account GET has its connection string masked by json-fields', async () => {
  const r = await curl('GET', `/subscriptions/${arm.subscriptionId}/resourceGroups/rg-app/providers/Microsoft.Storage/storageAccounts/stapp?api-version=2023-01-01`);
  assert.equal(r.status, 200, r.body);
  const [k1] = arm.storageKeys('rg-app', 'stapp');
  assert.ok(!r.body.includes(k1), 'the key is not in what the client got');
  assert.ok(!fs.readFileSync(readLogPath(), 'utf8').includes(k1), 'nor in the log');
});

test('an NSG PUT off main is denied; a role assignment PUT is denied', async () => {
  const nsg = await curl('PUT', `/subscriptions/${arm.subscriptionId}/resourceGroups/rg-app/providers/Microsoft.Network/networkSecurityGroups/nsg1?api-version=2023-09-01`, '{"location":"westeurope"}');
  assert.equal(nsg.status, 403);
  assert.match(JSON.parse(nsg.body).error.message, /nsg-changes-on-main-only/);
  const ra = await curl('PUT', `/subscriptions/${arm.subscriptionId}/resourceGroups/rg-app/providers/Microsoft.Storage/storageAccounts/stapp/providers/Microsoft.Authorization/roleAssignments/0b3c9a9e-1111-4222-8333-444455556666?api-version=2022-04-01`, '{"properties":{}}');
  assert.equal(ra.status, 403);
  assert.match(JSON.parse(ra.body).error.message, /no-role-assignments/);
});

test('a DELETE waits for approval; approved, it runs and its operation is followed to Succeeded through the gateway', async () => {
  const p = `/subscriptions/${arm.subscriptionId}/resourceGroups/rg-old?api-version=2021-04-01`;
  const pending = new Promise<{ status: number; body: string; headers: string }>((resolve) => setImmediate(() => resolve(curl('DELETE', p))));
  let id = '';
  for (let i = 0; i < 100 && !id; i++) {
    await new Promise((r) => setTimeout(r, 200));
    id = log().find((r) => r.type === 'approval-request')?.id ?? '';
  }
  assert.ok(id, 'an approval request was recorded');
  const a = await cliAsync(['approve', id, '--state-dir', stateDir]);
  assert.equal(a.status, 0, a.stderr);
  const r = await pending;
  assert.equal(r.status, 202, r.body);
  const op = /azure-asyncoperation: (\S+)/i.exec(r.headers)?.[1];
  assert.ok(op?.startsWith(env.GATEWAY_ARM_URL!), `the operation URL comes back through the gateway: ${op}`);
  const del = commandOf('/resourceGroups/rg-old?api-version');
  for (let i = 0; i < 5; i++) {
    const poll = await curl('GET', op!.slice(env.GATEWAY_ARM_URL!.length));
    if (JSON.parse(poll.body).status === 'Succeeded') break;
  }
  // The operation record is written after the poll's response (at the log's next flush).
  const done = (await waitFor(() => log().find((x) => x.type === 'operation' && x.command === del.command), 'the operation record'))!;
  assert.equal(done.status, 'Succeeded');
  assert.ok(arm.requests.every((r) => r.headers.authorization === `Bearer ${ARM_TOKEN}`), 'every request ARM saw carried the Entra token');
});

test('@azure/arm-resources with the gateway as its endpoint lists resource groups with no credential of its own', async () => {
  const { ResourceManagementClient } = await import('@azure/arm-resources');
  const credential = { getToken: async () => ({ token: 'not-a-real-token', expiresOnTimestamp: Date.now() + 3600_000 }) };
  const client = new ResourceManagementClient(credential, arm.subscriptionId, { endpoint: env.GATEWAY_ARM_HTTPS_URL, credentialScopes: [ARM_SCOPE], tlsOptions: { ca: fs.readFileSync(env.NODE_EXTRA_CA_CERTS!, 'utf8') } } as never);
  const names: string[] = [];
  for await (const g of client.resourceGroups.list()) names.push(g.name!);
  assert.ok(names.includes('rg-app'), names.join(','));
  assert.equal(arm.requests.at(-1)!.headers.authorization, `Bearer ${ARM_TOKEN}`, 'the SDK\'s own token was replaced');
});

test('curl through HTTPS_PROXY reaches the real ARM host name, terminated with the per-run CA; other hosts get 403', async () => {
  const proxied = { ...process.env, HTTPS_PROXY: env.HTTPS_PROXY!, NO_PROXY: env.NO_PROXY!, CURL_CA_BUNDLE: env.CURL_CA_BUNDLE! };
  const url = `https://management.azure.com/subscriptions/${arm.subscriptionId}/resourceGroups/rg-app?api-version=2021-04-01`;
  const ok = await run('curl', ['-sS', '-w', '\n%{http_code}', url], { encoding: 'utf8', env: proxied, timeout: 60_000 });
  assert.match(ok.stdout, /"name":\s*"rg-app"[\s\S]*\n200$/);
  const c = (await waitFor(() => log().find((r) => r.type === 'command' && r.text === `GET ${url}`), 'the proxied request\'s record'))!;
  assert.equal(c.details.resource.name, 'rg-app');
  const denied = await run('curl', ['-sS', '-w', '\n%{http_code}', '-X', 'POST', `https://management.azure.com/subscriptions/${arm.subscriptionId}/resourceGroups/rg-app/providers/Microsoft.Storage/storageAccounts/stapp/listKeys?api-version=2023-01-01`], { encoding: 'utf8', env: proxied, timeout: 60_000 });
  assert.match(denied.stdout, /GatewayPolicyDenied[\s\S]*\n403$/);
  const other = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', 'https://example.com/'], { encoding: 'utf8', env: proxied, timeout: 60_000 }).catch((e: { stdout: string; stderr: string }) => e);
  assert.match(`${other.stdout} ${other.stderr}`, /403/);
});

test('a managed-identity client (@azure/identity, @azure/arm-resources) gets a placeholder, never the Entra token, and the gateway swaps it', async () => {
  const script = `
    const { ManagedIdentityCredential } = await import('@azure/identity');
    const t = await new ManagedIdentityCredential().getToken('https://management.azure.com/.default');
    const r = await fetch(process.env.GATEWAY_ARM_URL + '/subscriptions?api-version=2020-01-01', { headers: { authorization: 'Bearer ' + t.token } });
    // The SDK as a user writes it: the managed-identity credential, the gateway's HTTPS endpoint
    // (trusted through NODE_EXTRA_CA_CERTS, which the gateway exported).
    const { ResourceManagementClient } = await import('@azure/arm-resources');
    const client = new ResourceManagementClient(new ManagedIdentityCredential(), process.env.SUB, { endpoint: process.env.GATEWAY_ARM_HTTPS_URL });
    const groups = [];
    for await (const g of client.resourceGroups.list()) groups.push(g.name);
    console.log(JSON.stringify({ token: t.token, status: r.status, groups }));`;
  const stepEnv = { PATH: process.env.PATH!, HOME: process.env.HOME ?? '/tmp', SUB: arm.subscriptionId, ...env };
  const out = await run(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: stepEnv, cwd: path.resolve(import.meta.dirname, '../..'), timeout: 60_000 });
  const { token, status, groups } = JSON.parse(out.stdout.trim().split('\n').at(-1)!);
  assert.equal(status, 200);
  assert.ok(groups.includes('rg-app'), groups.join(','));
  assert.notEqual(token, ARM_TOKEN);
  assert.ok(!Object.values(env).some((v) => v.includes(ARM_TOKEN)), 'no exported variable holds the token');
  assert.equal(arm.requests.at(-1)!.headers.authorization, `Bearer ${ARM_TOKEN}`);
});

test('a held request nobody answers is denied when the approval times out, in ARM\'s error shape, and never reaches ARM', async () => {
  const before = arm.requests.filter((q) => q.method === 'DELETE').length;
  const r = await curl('DELETE', `/subscriptions/${arm.subscriptionId}/resourceGroups/rg-app?api-version=2021-04-01`);
  assert.equal(r.status, 403, r.body);
  const e = JSON.parse(r.body).error;
  assert.equal(e.code, 'GatewayPolicyDenied');
  assert.match(e.message, /review-deletes/);
  assert.match(e.message, /timed out/);
  assert.equal(arm.requests.filter((q) => q.method === 'DELETE').length, before, 'ARM saw no DELETE');
  const c = commandOf('/resourceGroups/rg-app?api-version=2021-04-01');
  const res = (await waitFor(() => resultOf(c.command), 'the result record'))!;
  assert.equal(res.status, 'denied');
});
