// The ARM stand-in itself (test/helpers/arm-stand-in.ts), driven directly by real clients with no
// gateway in between: curl (--cacert with the stand-in's CA) for the wire contract, and
// @azure/arm-resources' ResourceManagementClient with a custom endpoint, so the gateway's tests
// can rely on the stand-in answering the way the SDK's long-running-operation poller expects.
import test, { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes, randomUUID } from 'node:crypto';
import { ResourceManagementClient } from '@azure/arm-resources';
import type { AccessToken, TokenCredential } from '@azure/core-auth';
import { startArmStandIn, type ArmStandIn } from '../helpers/arm-stand-in.ts';

const run = promisify(execFile);
const API = 'api-version=2025-04-01';
const TOKEN = randomBytes(32).toString('base64url');

interface CurlReply { status: number; headers: Record<string, string>; body: string; json: any }

/** curl with the stand-in's CA and the right token unless the args say otherwise. */
async function curl(arm: ArmStandIn, args: string[], withToken = true): Promise<CurlReply> {
  const auth = withToken ? ['-H', `Authorization: Bearer ${TOKEN}`] : [];
  const { stdout } = await run('curl', ['-sS', '-i', '--cacert', arm.caFile, ...auth, ...args], { maxBuffer: 64 << 20 });
  let rest = stdout;
  let head = '';
  do {
    const end = rest.indexOf('\r\n\r\n');
    head = rest.slice(0, end);
    rest = rest.slice(end + 4);
  } while (/^HTTP\/\S+ 100/.test(head));
  const [statusLine, ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
  let json: unknown;
  try { json = rest ? JSON.parse(rest) : undefined; } catch { json = undefined; }
  return { status: Number(statusLine!.split(' ')[1]), headers, body: rest, json };
}

const put = (body: unknown): string[] => ['-X', 'PUT', '-H', 'content-type: application/json', '--data-binary', JSON.stringify(body)];

describe('ARM stand-in over HTTPS, with curl', () => {
  let arm: ArmStandIn;
  let sub: string;
  before(async () => {
    arm = await startArmStandIn({ tokenCheck: (t) => t === TOKEN });
    sub = arm.subscriptionId;
  });
  after(() => arm.stop());

  test('requests without a valid bearer token get 401 in ARM shape with WWW-Authenticate', async () => {
    const missing = await curl(arm, [`${arm.url}/subscriptions?${API}`], false);
    assert.equal(missing.status, 401);
    assert.equal(missing.json.error.code, 'AuthenticationFailed');
    assert.match(missing.headers['www-authenticate']!, /^Bearer authorization_uri="https:\/\/login\.microsoftonline\.com\/[^"]+", error="invalid_token"/);
    const wrong = await curl(arm, ['-H', 'Authorization: Bearer not-the-token', `${arm.url}/subscriptions?${API}`], false);
    assert.equal(wrong.status, 401);
    assert.deepEqual(wrong.json, { error: { code: 'InvalidAuthenticationToken', message: 'The access token is invalid.' } });
    assert.match(wrong.headers['www-authenticate']!, /error="invalid_token"/);
    const basic = await curl(arm, ['-u', 'a:b', `${arm.url}/subscriptions?${API}`], false);
    assert.equal(basic.json.error.code, 'AuthenticationFailedInvalidHeader');
  });

  test('api-version is required; request ids are set and the client\'s are echoed', async () => {
    const r = await curl(arm, [`${arm.url}/subscriptions`]);
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, 'MissingApiVersionParameter');
    const clientId = randomUUID();
    const correlation = randomUUID();
    const ok = await curl(arm, ['-H', `x-ms-client-request-id: ${clientId}`, '-H', `x-ms-correlation-request-id: ${correlation}`, `${arm.url}/subscriptions?${API}`]);
    assert.equal(ok.status, 200);
    assert.equal(ok.headers['x-ms-client-request-id'], clientId);
    assert.equal(ok.headers['x-ms-correlation-request-id'], correlation);
    assert.match(ok.headers['x-ms-request-id']!, /^[0-9a-f-]{36}$/);
    assert.deepEqual(ok.json.value.map((s: { subscriptionId: string }) => s.subscriptionId), [sub]);
    const fresh = await curl(arm, [`${arm.url}/subscriptions/${sub}?${API}`]);
    assert.match(fresh.headers['x-ms-correlation-request-id']!, /^[0-9a-f-]{36}$/);
    assert.equal(fresh.json.tenantId, arm.tenantId);
  });

  test('every request is recorded with its Authorization header, query and body', async () => {
    arm.requests.length = 0;
    await curl(arm, [...put({ location: 'westeurope', tags: { team: 'a' } }), `${arm.url}/subscriptions/${sub}/resourcegroups/rec?${API}`]);
    assert.equal(arm.requests.length, 1);
    const r = arm.requests[0]!;
    assert.equal(r.method, 'PUT');
    assert.equal(r.path, `/subscriptions/${sub}/resourcegroups/rec`);
    assert.deepEqual(r.query, { 'api-version': '2025-04-01' });
    assert.equal(r.headers.authorization, `Bearer ${TOKEN}`);
    assert.deepEqual(JSON.parse(r.body), { location: 'westeurope', tags: { team: 'a' } });
    assert.equal(r.status, 201);
    // curl with two URLs reuses its connection: both requests carry the same number.
    arm.requests.length = 0;
    await run('curl', ['-sS', '--cacert', arm.caFile, '-H', `Authorization: Bearer ${TOKEN}`, `${arm.url}/subscriptions?${API}`, `${arm.url}/subscriptions?${API}`]);
    assert.equal(arm.requests.length, 2);
    assert.equal(arm.requests[0]!.connection, arm.requests[1]!.connection);
  });

  test('resource groups: PUT 201 then 200, GET, list, unknown 404, bad body 400', async () => {
    const url = `${arm.url}/subscriptions/${sub}/resourceGroups/rg-a?${API}`;
    const created = await curl(arm, [...put({ location: 'West Europe' }), url]);
    assert.equal(created.status, 201);
    assert.equal(created.json.id, `/subscriptions/${sub}/resourceGroups/rg-a`);
    assert.equal(created.json.location, 'westeurope');
    assert.equal((await curl(arm, [...put({ location: 'westeurope' }), url])).status, 200);
    assert.equal((await curl(arm, [...put({}), url])).json.error.code, 'LocationRequired');
    const bad = await curl(arm, ['-X', 'PUT', '--data-binary', '{nope', url]);
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.code, 'InvalidRequestContent');
    assert.equal((await curl(arm, [`${arm.url}/subscriptions/${sub}/resourcegroups/RG-A?${API}`])).json.name, 'rg-a');
    const list = await curl(arm, [`${arm.url}/subscriptions/${sub}/resourcegroups?${API}`]);
    assert.ok(list.json.value.some((g: { name: string }) => g.name === 'rg-a'));
    const missing = await curl(arm, [`${arm.url}/subscriptions/${sub}/resourcegroups/nope?${API}`]);
    assert.equal(missing.status, 404);
    assert.equal(missing.json.error.code, 'ResourceGroupNotFound');
    assert.equal((await curl(arm, [`${arm.url}/subscriptions/${randomUUID()}/resourcegroups?${API}`])).json.error.code, 'SubscriptionNotFound');
    assert.equal((await curl(arm, ['-I', url])).status, 204);
  });

  test('deleting a resource group is a long-running operation on the host the client used', async () => {
    arm.addResourceGroup('rg-del');
    arm.inProgressPolls = 2;
    // Reached as management.azure.com (the certificate names it): the operation URLs name it too.
    const host = `management.azure.com:${arm.port}`;
    const resolve = ['--resolve', `${host}:127.0.0.1`];
    const del = await curl(arm, [...resolve, '-X', 'DELETE', `https://${host}/subscriptions/${sub}/resourcegroups/rg-del?${API}`]);
    assert.equal(del.status, 202);
    assert.equal(del.headers['retry-after'], '0');
    const asyncOp = new URL(del.headers['azure-asyncoperation']!);
    const location = new URL(del.headers.location!);
    assert.equal(asyncOp.host, host);
    assert.match(asyncOp.pathname, new RegExp(`^/subscriptions/${sub}/providers/Microsoft\\.Resources/operations/[0-9a-f-]{36}$`));
    assert.match(location.pathname, new RegExp(`^/subscriptions/${sub}/operationresults/[0-9a-f-]{36}$`));
    assert.equal(asyncOp.searchParams.get('api-version'), '2025-04-01');
    assert.equal((await curl(arm, [`${arm.url}/subscriptions/${sub}/resourcegroups/rg-del?${API}`])).json.properties.provisioningState, 'Deleting');
    const polls: string[] = [];
    for (let i = 0; i < 4; i++) polls.push((await curl(arm, [...resolve, asyncOp.href])).json.status);
    assert.deepEqual(polls, ['InProgress', 'InProgress', 'Succeeded', 'Succeeded']);
    const final = await curl(arm, [...resolve, location.href]);
    assert.equal(final.status, 200);
    assert.equal((await curl(arm, [`${arm.url}/subscriptions/${sub}/resourcegroups/rg-del?${API}`])).status, 404);
    arm.inProgressPolls = 1;
  });

  test('the Location URL answers 202 while running; a configured failure reports Failed and keeps the group', async () => {
    arm.addResourceGroup('rg-fails');
    arm.lroOutcomes['rg-fails'] = 'Failed';
    const del = await curl(arm, ['-X', 'DELETE', `${arm.url}/subscriptions/${sub}/resourcegroups/rg-fails?${API}`]);
    assert.equal(new URL(del.headers.location!).host, `127.0.0.1:${arm.port}`);
    const running = await curl(arm, [del.headers.location!]);
    assert.equal(running.status, 202);
    assert.equal(running.headers.location, del.headers.location);
    const failed = await curl(arm, [del.headers.location!]);
    assert.equal(failed.status, 409);
    assert.equal(failed.json.error.code, 'OperationFailed');
    const status = await curl(arm, [del.headers['azure-asyncoperation']!]);
    assert.equal(status.json.status, 'Failed');
    assert.equal(status.json.error.code, 'OperationFailed');
    assert.equal((await curl(arm, [`${arm.url}/subscriptions/${sub}/resourcegroups/rg-fails?${API}`])).json.properties.provisioningState, 'Succeeded');
    arm.lroOutcomes['rg-canceled'] = 'Canceled';
    arm.addResourceGroup('rg-canceled');
    const del2 = await curl(arm, ['-X', 'DELETE', `${arm.url}/subscriptions/${sub}/resourcegroups/rg-canceled?${API}`]);
    await curl(arm, [del2.headers['azure-asyncoperation']!]);
    assert.equal((await curl(arm, [del2.headers['azure-asyncoperation']!])).json.status, 'Canceled');
  });

  test('storage accounts: GET with endpoints and a connection string, listKeys, regenerateKey', async () => {
    arm.addResourceGroup('rg-st');
    arm.addStorageAccount('rg-st', 'stbench1');
    const base = `${arm.url}/subscriptions/${sub}/resourceGroups/rg-st/providers/Microsoft.Storage/storageAccounts/stbench1`;
    const [key1, key2] = arm.storageKeys('rg-st', 'stbench1');
    const got = await curl(arm, [`${base}?${API}`]);
    assert.equal(got.json.properties.primaryEndpoints.blob, 'https://stbench1.blob.core.windows.net/');
    assert.match(got.json.properties.connectionString, new RegExp(`AccountName=stbench1;AccountKey=${key1!.replace(/[+/]/g, '\\$&')};`));
    const keys = await curl(arm, ['-X', 'POST', `${base}/listKeys?${API}&$expand=kerb`]);
    assert.equal(keys.status, 200);
    assert.deepEqual(keys.json.keys.map((k: Record<string, string>) => [k.keyName, k.value, k.permissions]), [['key1', key1, 'FULL'], ['key2', key2, 'FULL']]);
    assert.equal(Buffer.from(key1!, 'base64').length, 64);
    const regen = await curl(arm, ['-X', 'POST', '-H', 'content-type: application/json', '--data-binary', '{"keyName":"key1"}', `${base}/regenerateKey?${API}`]);
    assert.notEqual(regen.json.keys[0].value, key1);
    assert.equal(regen.json.keys[1].value, key2);
    assert.deepEqual(arm.storageKeys('rg-st', 'stbench1'), [regen.json.keys[0].value, key2]);
    assert.equal((await curl(arm, ['-X', 'GET', `${base}/listKeys?${API}`])).status, 405);
    const missing = await curl(arm, ['-X', 'POST', `${base}x/listKeys?${API}`]);
    assert.equal(missing.json.error.code, 'ResourceNotFound');
    const created = await curl(arm, [...put({ location: 'westeurope', sku: { name: 'Standard_LRS' }, kind: 'StorageV2' }), `${base}2?${API}`]);
    assert.equal(created.status, 201);
  });

  test('network security groups: PUT with rules (201 + Azure-AsyncOperation), child rules, DELETE 202', async () => {
    arm.addResourceGroup('rg-net');
    const nsg = `/subscriptions/${sub}/resourceGroups/rg-net/providers/Microsoft.Network/networkSecurityGroups/web-nsg`;
    const rule = { name: 'allow-ssh', properties: { priority: 100, direction: 'Inbound', access: 'Allow', protocol: 'Tcp', sourceAddressPrefix: '*', sourcePortRange: '*', destinationAddressPrefix: '*', destinationPortRange: '22' } };
    const created = await curl(arm, [...put({ location: 'westeurope', properties: { securityRules: [rule] } }), `${arm.url}${nsg}?${API}`]);
    assert.equal(created.status, 201);
    assert.equal(created.json.properties.securityRules[0].id, `${nsg}/securityRules/allow-ssh`);
    assert.equal(created.json.properties.securityRules[0].properties.destinationPortRange, '22');
    assert.equal(created.json.properties.provisioningState, 'Updating');
    assert.match(created.headers['azure-asyncoperation']!, /\/providers\/Microsoft\.Network\/locations\/westeurope\/operations\//);
    assert.equal((await curl(arm, [created.headers['azure-asyncoperation']!])).json.status, 'InProgress');
    assert.equal((await curl(arm, [created.headers['azure-asyncoperation']!])).json.status, 'Succeeded');
    assert.equal((await curl(arm, [`${arm.url}${nsg}?${API}`])).json.properties.provisioningState, 'Succeeded');
    const child = await curl(arm, [...put({ properties: { priority: 200, access: 'Deny', direction: 'Inbound' } }), `${arm.url}${nsg}/securityRules/deny-all?${API}`]);
    assert.equal(child.status, 201);
    assert.equal(child.json.type, 'Microsoft.Network/networkSecurityGroups/securityRules');
    assert.equal((await curl(arm, [`${arm.url}${nsg}?${API}`])).json.properties.securityRules.length, 2);
    const del = await curl(arm, ['-X', 'DELETE', `${arm.url}${nsg}?${API}`]);
    assert.equal(del.status, 202);
    await curl(arm, [del.headers['azure-asyncoperation']!]);
    assert.equal((await curl(arm, [del.headers.location!])).status, 200);
    assert.equal((await curl(arm, [`${arm.url}${nsg}?${API}`])).status, 404);
    assert.equal((await curl(arm, ['-X', 'DELETE', `${arm.url}${nsg}?${API}`])).status, 204);
  });

  test('role assignments at any scope: PUT 201, again 409, DELETE 200 then 204', async () => {
    arm.addResourceGroup('rg-ra');
    const body = { properties: { roleDefinitionId: `/subscriptions/${sub}/providers/Microsoft.Authorization/roleDefinitions/b24988ac-6180-42a0-ab88-20f7382dd24c`, principalId: randomUUID(), principalType: 'ServicePrincipal' } };
    for (const scope of [`/subscriptions/${sub}/resourceGroups/rg-ra`, `/subscriptions/${sub}`, '/providers/Microsoft.Management/managementGroups/mg1']) {
      const id = `${scope}/providers/Microsoft.Authorization/roleAssignments/${randomUUID()}`;
      const created = await curl(arm, [...put(body), `${arm.url}${id}?api-version=2022-04-01`]);
      assert.equal(created.status, 201, scope);
      assert.equal(created.json.id, id);
      assert.equal(created.json.properties.scope, scope);
      assert.equal((await curl(arm, [...put(body), `${arm.url}${id}?api-version=2022-04-01`])).json.error.code, 'RoleAssignmentExists');
      assert.equal((await curl(arm, ['-X', 'DELETE', `${arm.url}${id}?api-version=2022-04-01`])).status, 200);
      assert.equal((await curl(arm, ['-X', 'DELETE', `${arm.url}${id}?api-version=2022-04-01`])).status, 204);
    }
    const notGuid = await curl(arm, [...put(body), `${arm.url}/subscriptions/${sub}/providers/Microsoft.Authorization/roleAssignments/admin?api-version=2022-04-01`]);
    assert.equal(notGuid.json.error.code, 'InvalidRoleAssignmentId');
  });

  test('bench endpoints: exactly N bytes of JSON (Content-Length or chunked), token required by default; lroHost and record options', async () => {
    for (const bytes of [64, 1000, 65536 * 3 + 17, 1 << 20]) {
      const r = await curl(arm, [`${arm.url}/bench/body?bytes=${bytes}`]);
      assert.equal(Buffer.byteLength(r.body), bytes);
      assert.equal(r.headers['content-length'], String(bytes));
      assert.ok(Array.isArray(JSON.parse(r.body).value));
    }
    const chunked = await curl(arm, [`${arm.url}/bench/body?bytes=300000&chunked=1`]);
    assert.equal(chunked.headers['transfer-encoding'], 'chunked');
    assert.equal(Buffer.byteLength(chunked.body), 300000);
    assert.equal((await curl(arm, [`${arm.url}/bench/body?bytes=12`])).status, 400);
    assert.equal((await curl(arm, [`${arm.url}/bench/small`])).json.name, 'bench');
    assert.equal((await curl(arm, [`${arm.url}/bench/small`], false)).status, 401);
    const open = await startArmStandIn({ tokenCheck: (t) => t === TOKEN, benchWithoutToken: true, record: false, lroHost: 'management.azure.com' });
    try {
      assert.equal((await curl(open, [`${open.url}/bench/small`], false)).status, 200);
      // lroHost: operation URLs name management.azure.com whatever host the client used.
      open.addResourceGroup('rg-forced');
      const del = await curl(open, ['-X', 'DELETE', `${open.url}/subscriptions/${open.subscriptionId}/resourcegroups/rg-forced?${API}`]);
      assert.equal(new URL(del.headers['azure-asyncoperation']!).host, 'management.azure.com');
      assert.equal(new URL(del.headers.location!).host, 'management.azure.com');
      assert.equal(open.requests.length, 0);
    } finally {
      await open.stop();
    }
  });
});

describe('ARM stand-in with @azure/arm-resources', () => {
  let arm: ArmStandIn;
  let client: ResourceManagementClient;
  const scopes: string[] = [];
  before(async () => {
    arm = await startArmStandIn({ tokenCheck: (t) => t === TOKEN, inProgressPolls: 2 });
    const credential: TokenCredential = {
      async getToken(scope): Promise<AccessToken> {
        scopes.push(...(Array.isArray(scope) ? scope : [scope]));
        return { token: TOKEN, expiresOnTimestamp: Date.now() + 3600_000 };
      },
    };
    client = new ResourceManagementClient(credential, arm.subscriptionId, { endpoint: arm.url, tlsOptions: { ca: arm.caPem }, retryOptions: { maxRetries: 0 } });
  });
  after(() => arm.stop());

  test('create, get, list, delete with the LRO poller, check existence', async () => {
    const created = await client.resourceGroups.createOrUpdate('sdk-rg', { location: 'northeurope', tags: { by: 'sdk' } });
    assert.equal(created.name, 'sdk-rg');
    assert.equal(created.properties?.provisioningState, 'Succeeded');
    assert.equal((await client.resourceGroups.get('sdk-rg')).tags?.by, 'sdk');
    const names: string[] = [];
    for await (const g of client.resourceGroups.list()) names.push(g.name!);
    assert.deepEqual(names, ['sdk-rg']);
    arm.requests.length = 0;
    await client.resourceGroups.beginDeleteAndWait('sdk-rg', { updateIntervalInMs: 0 });
    const seen = arm.requests.map((r) => `${r.method} ${r.path.replace(/[0-9a-f-]{36}/g, 'ID')} ${r.status}`);
    // Two InProgress polls, then Succeeded; a delete has no final GET of the resource.
    assert.deepEqual(seen, [
      'DELETE /subscriptions/ID/resourcegroups/sdk-rg 202',
      'GET /subscriptions/ID/providers/Microsoft.Resources/operations/ID 200',
      'GET /subscriptions/ID/providers/Microsoft.Resources/operations/ID 200',
      'GET /subscriptions/ID/providers/Microsoft.Resources/operations/ID 200',
    ]);
    assert.ok(arm.requests.every((r) => r.headers.authorization === `Bearer ${TOKEN}`));
    assert.deepEqual(new Set(scopes), new Set(['https://management.azure.com/.default']));
    assert.equal((await client.resourceGroups.checkExistence('sdk-rg')).body, false);
    await assert.rejects(client.resourceGroups.get('sdk-rg'), (e: Error & { code?: string; statusCode?: number }) => e.code === 'ResourceGroupNotFound' && e.statusCode === 404);
  });

  test('the poller reports a failed deletion as an error and the group stays', async () => {
    await client.resourceGroups.createOrUpdate('sdk-fails', { location: 'westeurope' });
    arm.lroOutcomes['sdk-fails'] = 'Failed';
    await assert.rejects(client.resourceGroups.delete('sdk-fails', { updateIntervalInMs: 0 }), /failed/i);
    assert.equal((await client.resourceGroups.get('sdk-fails')).properties?.provisioningState, 'Succeeded');
  });

  test('a wrong token surfaces as the SDK\'s 401 with ARM\'s code', async () => {
    const wrong = new ResourceManagementClient({ getToken: async () => ({ token: 'wrong', expiresOnTimestamp: Date.now() + 3600_000 }) }, arm.subscriptionId, { endpoint: arm.url, tlsOptions: { ca: arm.caPem }, retryOptions: { maxRetries: 0 } });
    await assert.rejects(wrong.resourceGroups.get('x'), (e: Error & { code?: string; statusCode?: number }) => e.statusCode === 401 && e.code === 'InvalidAuthenticationToken');
  });
});
