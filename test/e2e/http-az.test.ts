// The Azure CLI through the gateway, as a later step runs it: Debian's az 2.45 with only what the
// gateway exported (HTTPS_PROXY, the CA bundle, the managed-identity endpoint), against the ARM
// stand-in reached as management.azure.com (`connect-to`), the gateway holding the Entra ID token
// it got through the job's OIDC token. az signs in with a placeholder, lists, deletes a resource
// group once a person approves (its long-running operation followed through the gateway), and a
// denied call prints the gateway's reason as az prints ARM's errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { startArmStandIn, type ArmStandIn } from '../helpers/arm-stand-in.ts';
import { startEntraStandIn, type EntraStandIn } from '../helpers/entra-stand-in.ts';
import { startOidcIssuer, type OidcIssuer } from '../helpers/oidc-issuer.ts';
import { cliAsync, readLog, tempDir, waitFor, type LogRecord, startedGatewayEnv } from '../helpers/gateway.ts';

const run = promisify(execFile);
const ARM_SCOPE = 'https://management.azure.com/.default';
const ARM_TOKEN = 'arm-token-for-az-' + 'q'.repeat(40);

let arm: ArmStandIn;
let entra: EntraStandIn;
let issuer: OidcIssuer;
let dir: string;
let stateDir: string;
let azEnv: Record<string, string>;

before(async () => {
  issuer = await startOidcIssuer({ ref: 'refs/heads/main' });
  entra = await startEntraStandIn({ federatedCredentials: [{ issuer: issuer.url, subject: 'repo:octo-org/payments:ref:refs/heads/main' }], tokens: { [ARM_SCOPE]: ARM_TOKEN } });
  arm = await startArmStandIn({ tokenCheck: (b) => b === ARM_TOKEN, lroHost: 'management.azure.com', tenantId: entra.tenantId });
  arm.addResourceGroup('rg-app');
  arm.addResourceGroup('rg-old');
  arm.addStorageAccount('rg-app', 'stapp');
  dir = tempDir('gw-az-');
  fs.copyFileSync(arm.caFile, path.join(dir, 'arm-ca.pem'));
  fs.writeFileSync(path.join(dir, 'gateway.yml'), `version: 1
targets:
  arm:
    kind: http
    url: https://management.azure.com
    auth: azure
    ca-file: arm-ca.pem
    connect-to: 127.0.0.1:${arm.port}
rules:
  - { name: review-deletes, target: arm, when: { method: [DELETE] }, action: approve }
  - { name: no-storage-keys, target: arm, when: { resource: { provider: Microsoft.Storage, action: [listKeys, regenerateKey] } }, action: deny }
approvals:
  timeout: 120s
`);
  stateDir = path.join(dir, 'state');
  const exported = await startedGatewayEnv(dir, stateDir, {
    env: {
      ...process.env, ...issuer.requestEnv, NODE_EXTRA_CA_CERTS: entra.caFile,
      AZURE_CLIENT_ID: entra.clientId, AZURE_TENANT_ID: entra.tenantId, AZURE_AUTHORITY_HOST: entra.authorityHost, GITHUB_REF: 'refs/heads/main',
    },
  });
  // A step's environment: the gateway's exports, and nothing of the gateway step's.
  azEnv = { PATH: process.env.PATH!, HOME: dir, AZURE_CONFIG_DIR: path.join(dir, 'az'), AZURE_CORE_COLLECT_TELEMETRY: 'false', AZURE_CORE_NO_COLOR: 'true', AZURE_CORE_ONLY_SHOW_ERRORS: 'true', ...exported };
});

after(async () => {
  if (stateDir) await cliAsync(['stop', '--state-dir', stateDir]);
  await Promise.all([arm?.stop(), entra?.close(), issuer?.close()]);
});

const az = (args: string[]) => run('az', [...args, '-o', 'json'], { env: azEnv, timeout: 240_000, encoding: 'utf8' });
const log = (): LogRecord[] => readLog(fs.readdirSync(path.join(dir, 'logs')).map((f) => path.join(dir, 'logs', f))[0]!);

test('az login --identity signs in at the gateway with a placeholder; az group list goes through the proxy with the real token injected', async () => {
  const login = await az(['login', '--identity', '--allow-no-subscriptions']);
  const accounts = JSON.parse(login.stdout) as { id: string; tenantId: string }[];
  assert.equal(accounts[0]!.id, arm.subscriptionId);
  assert.equal(accounts[0]!.tenantId, entra.tenantId);
  const groups = JSON.parse((await az(['group', 'list'])).stdout) as { name: string }[];
  assert.deepEqual(groups.map((g) => g.name).sort(), ['rg-app', 'rg-old']);
  assert.ok(arm.requests.length > 0 && arm.requests.every((q) => q.headers.authorization === `Bearer ${ARM_TOKEN}`), 'ARM saw only the gateway\'s token');
  const cache = fs.readdirSync(path.join(dir, 'az')).map((f) => { try { return fs.readFileSync(path.join(dir, 'az', f), 'utf8'); } catch { return ''; } }).join('\n');
  assert.ok(!cache.includes(ARM_TOKEN), 'az\'s files hold no Entra token');
  assert.ok(log().some((r) => r.type === 'command' && /^GET https:\/\/management\.azure\.com\/subscriptions\/[^/]+\/resourcegroups\?/i.test(r.text)), 'the list is recorded');
});

test('az storage account keys list is denied and az prints the rule', async () => {
  const r = await az(['storage', 'account', 'keys', 'list', '-g', 'rg-app', '-n', 'stapp']).then(() => null, (e: { stderr: string }) => e);
  assert.ok(r, 'az failed');
  assert.match(r.stderr, /no-storage-keys/);
});

test('az group delete waits for approval, then its operation is followed through the gateway to Succeeded', async () => {
  const pending = az(['group', 'delete', '-n', 'rg-old', '--yes']);
  const id = await waitFor(() => log().find((r) => r.type === 'approval-request')?.id, 'the approval request', 120_000);
  const a = await cliAsync(['approve', id!, '--state-dir', stateDir]);
  assert.equal(a.status, 0, a.stderr);
  await pending;
  const del = log().find((r) => r.type === 'command' && r.text.startsWith('DELETE ') && /rg-old/.test(r.text))!;
  const op = await waitFor(() => log().find((r) => r.type === 'operation' && r.command === del.command), 'the operation record');
  assert.equal(op!.status, 'Succeeded');
  const groups = JSON.parse((await az(['group', 'list'])).stdout) as { name: string }[];
  assert.deepEqual(groups.map((g) => g.name), ['rg-app']);
});
