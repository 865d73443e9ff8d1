// ARM resource ids read from request paths (gateway/http/arm-resource.ts) and a request's facts
// (gateway/http/request-facts.ts). test/corpus/arm-paths.txt holds the long list of real paths;
// these are the shapes and the edges the corpus format does not show.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { armTypeCandidates, parseArmPath, readArmPath } from '../../gateway/http/arm-resource.ts';
import { ARM_HOSTS, METHOD_OVERRIDE_HEADERS, requestUnit } from '../../gateway/http/request-facts.ts';

const SUB = '00000000-0000-0000-0000-000000000001';

test('a nested resource with an action: every field, the id without the action', () => {
  assert.deepEqual(parseArmPath(`/subscriptions/${SUB}/resourceGroups/app-rg/providers/Microsoft.Sql/servers/sql1/databases/db1/transparentDataEncryption/current`), {
    id: `/subscriptions/${SUB}/resourceGroups/app-rg/providers/Microsoft.Sql/servers/sql1/databases/db1/transparentDataEncryption/current`,
    subscription: SUB,
    resourceGroup: 'app-rg',
    provider: 'Microsoft.Sql',
    types: ['servers', 'databases', 'transparentDataEncryption'],
    type: 'Microsoft.Sql/servers/databases/transparentDataEncryption',
    name: 'current',
  });
  assert.deepEqual(parseArmPath(`/subscriptions/${SUB}/resourceGroups/app-rg/providers/Microsoft.Web/sites/app1/config/appsettings/list`), {
    id: `/subscriptions/${SUB}/resourceGroups/app-rg/providers/Microsoft.Web/sites/app1/config/appsettings`,
    subscription: SUB,
    resourceGroup: 'app-rg',
    provider: 'Microsoft.Web',
    types: ['sites', 'config'],
    type: 'Microsoft.Web/sites/config',
    name: 'appsettings',
    action: 'list',
  });
});

test('names are percent-decoded; the id keeps the path as sent', () => {
  const r = parseArmPath(`/subscriptions/${SUB}/resourceGroups/my%20rg%28test%29`)!;
  assert.equal(r.name, 'my rg(test)');
  assert.equal(r.resourceGroup, 'my rg(test)');
  assert.equal(r.id, `/subscriptions/${SUB}/resourceGroups/my%20rg%28test%29`);
});

test('type candidates: innermost, nested, full; with an action also as a child type', () => {
  const r = parseArmPath(`/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.Sql/servers/s1/databases`)!;
  assert.deepEqual(armTypeCandidates(r), ['servers', 'servers', 'Microsoft.Sql/servers', 'databases', 'servers/databases', 'Microsoft.Sql/servers/databases']);
  assert.deepEqual(armTypeCandidates(parseArmPath('/subscriptions')!), ['subscriptions', 'subscriptions', 'Microsoft.Resources/subscriptions']);
});

test('paths outside ARM resources, and paths that cannot be paired the way ARM routes them', () => {
  assert.deepEqual(readArmPath('/metadata/endpoints'), { notArm: true });
  assert.deepEqual(readArmPath('/'), { notArm: true });
  assert.deepEqual(readArmPath('/v1/users'), { notArm: true });
  const problem = (p: string, why: RegExp): void => {
    const r = readArmPath(p);
    assert.ok('problem' in r, `${p}: ${JSON.stringify(r)}`);
    assert.match(r.problem, why, p);
    assert.equal(parseArmPath(p), null);
  };
  problem('/batch', /batch/);
  problem('/BATCH', /batch/);
  problem('/tenants/t1/x', /tenants/);
  problem(`/subscriptions/${SUB}/resourceGroups/rg/providers`, /no namespace/);
  problem(`/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.Storage`, /no resource type/);
  problem(`/subscriptions/${SUB}/resourceGroups/providers/Microsoft.Storage/storageAccounts/sa`, /name of a resourceGroups/);
  problem(`/subscriptions/${SUB}/tagNames/t/providers/Microsoft.Storage/storageAccounts/sa`, /no ARM scope/);
  problem('/providers/providers/x/y', /namespace/);
  problem(`/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/providers`, /providers/);
  problem(`/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa/providers`, /no namespace/);
  problem(`/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa/li%C5%BFtKeys`, /ASCII/);
  problem('/subscriptions/s//x', /empty or dot/);
  problem('/subscriptions/s/../x', /empty or dot/);
});

test('requestUnit: method upper-cased, host lower-cased, the resource on ARM hosts only', () => {
  assert.deepEqual(requestUnit('delete', 'Management.Azure.com', `/subscriptions/${SUB}/resourceGroups/rg1`), {
    method: 'DELETE',
    host: 'management.azure.com',
    path: `/subscriptions/${SUB}/resourceGroups/rg1`,
    resource: { id: `/subscriptions/${SUB}/resourceGroups/rg1`, subscription: SUB, resourceGroup: 'rg1', provider: 'Microsoft.Resources', types: ['resourceGroups'], type: 'Microsoft.Resources/resourceGroups', name: 'rg1' },
  });
  assert.deepEqual(requestUnit('POST', 'api.internal.example', '/batch'), { method: 'POST', host: 'api.internal.example', path: '/batch' }, 'another API: no ARM reading');
  assert.deepEqual(requestUnit('GET', 'api.internal.example', '/subscriptions/x'), { method: 'GET', host: 'api.internal.example', path: '/subscriptions/x' });
  assert.equal(requestUnit('GET', '127.0.0.1:8443', '/subscriptions/x', { arm: true }).hasOwnProperty('resource'), true, 'a stand-in serving ARM');
  assert.equal(requestUnit('GET', 'management.azure.com:443', '/subscriptions/x').hasOwnProperty('resource'), true);
  assert.equal(requestUnit('GET', 'management.usgovcloudapi.net', '/subscriptions/x').hasOwnProperty('resource'), true);
  assert.deepEqual(requestUnit('GET', 'management.azure.com', '/metadata/endpoints'), { method: 'GET', host: 'management.azure.com', path: '/metadata/endpoints' });
  assert.ok(ARM_HOSTS.includes('management.azure.com'));
});

test('requestUnit: unclassified for what cannot be read one way', () => {
  const unclassified = (u: object, why: RegExp): void => {
    assert.ok('unclassified' in u, JSON.stringify(u));
    assert.match((u as { unclassified: string }).unclassified, why);
  };
  unclassified(requestUnit('POST', 'management.azure.com', '/batch'), /batch/);
  unclassified(requestUnit('GET', 'management.azure.com', '/foo/bar'), /outside \/subscriptions/);
  unclassified(requestUnit('GET', 'management.azure.com', '/'), /outside/);
  unclassified(requestUnit('DEL ETE', 'management.azure.com', '/subscriptions'), /not an HTTP token/);
  unclassified(requestUnit('', 'management.azure.com', '/subscriptions'), /not an HTTP token/);
  unclassified(requestUnit('GET', 'management.azure.com', '/subscriptions/%73'), /normalized form/);
  unclassified(requestUnit('GET', 'management.azure.com', '/subscriptions?api-version=1'), /normalized form/);
  unclassified(requestUnit('GET', 'api.internal.example', '/a/../b'), /dot segment/);
  unclassified(requestUnit('PUT', 'management.azure.com', `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/providers/Microsoft.Authorization/roleAssignments/g`), /Azure Resource Manager path/);
});

test('method override headers are named as Node reads them', () => {
  assert.deepEqual([...METHOD_OVERRIDE_HEADERS], ['x-http-method-override', 'x-http-method', 'x-method-override']);
});
