// The HTTP `when:` keys (gateway/http/conditions.ts) compiled directly: what each matches, that
// case never matters, and the messages bad values fail with. The policy, loaded by the
// shipped loader, is decided over the corpus in http-arm-corpus.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ConditionSpec } from '../../gateway/core/adapter.ts';
import { HTTP_CONDITIONS, httpPathCondition, methodCondition, resourceCondition } from '../../gateway/http/conditions.ts';
import { requestUnit, type HttpUnit } from '../../gateway/http/request-facts.ts';
import { normalizeRequestPath } from '../../gateway/http/request-path.ts';
import { pathCondition as sshPathCondition } from '../../gateway/ssh/conditions.ts';
import { compileCondition, ConditionFailure } from '../helpers/condition-spec.ts';

const compile = compileCondition;
const failsWith = (c: ConditionSpec, raw: unknown, message: RegExp, at?: (string | number)[]): void => {
  assert.throws(() => compile(c, raw), (e: ConditionFailure) => message.test(e.message) && (at === undefined || JSON.stringify(e.at) === JSON.stringify(at)), JSON.stringify(raw));
};

const SUB = '00000000-0000-0000-0000-000000000001';
const arm = (method: string, path: string): HttpUnit => {
  const u = requestUnit(method, 'management.azure.com', path);
  assert.ok(!('unclassified' in u), `${path}: ${JSON.stringify(u)}`);
  return u;
};
const storage = (rest: string): string => `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa1${rest}`;

test('the keys HTTP offers', () => {
  assert.deepEqual(HTTP_CONDITIONS.map((c) => c.key), ['method', 'path', 'resource']);
});

test('method: any of a list, without case; no wildcard', () => {
  const m = compile(methodCondition, ['delete', 'PUT']);
  assert.ok(m(arm('DELETE', '/subscriptions')));
  assert.ok(m(arm('put', '/subscriptions')));
  assert.ok(!m(arm('GET', '/subscriptions')));
  failsWith(methodCondition, ['GET', '*'], /no wildcard/, [1]);
  failsWith(methodCondition, ['GET POST'], /one word/, [0]);
});

test('path: segment-aware globs over the normalized path, without case', () => {
  const p = compile(httpPathCondition, ['/subscriptions/*/resourceGroups/*/providers/Microsoft.Network/networkSecurityGroups/**']);
  const nsg = `/subscriptions/${SUB}/resourceGroups/net/providers/Microsoft.Network/networkSecurityGroups/web-nsg`;
  assert.ok(p(arm('PUT', nsg)));
  assert.ok(p(arm('PUT', `${nsg}/securityRules/allow-ssh`)));
  assert.ok(p(arm('PUT', nsg.toUpperCase())), 'case does not matter');
  const spelled = normalizeRequestPath(nsg.replace('networkSecurityGroups', '%6EetworkSecurityGroups'));
  assert.ok('path' in spelled && p(arm('PUT', spelled.path)), 'an escaped letter is the letter');
  assert.ok(!p(arm('PUT', `/subscriptions/${SUB}/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/v`)));
  assert.ok(!p(arm('PUT', `/subscriptions/${SUB}/providers/Microsoft.Network/networkSecurityGroups/x`)), '* is exactly one segment');
  const one = compile(httpPathCondition, ['/subscriptions/*']);
  assert.ok(one(arm('GET', `/subscriptions/${SUB}`)));
  assert.ok(!one(arm('GET', `/subscriptions/${SUB}/resourceGroups`)));
  const escaped = compile(httpPathCondition, ['/v1/%6Cist/my rg/**']);
  assert.ok(escaped(requestUnit('GET', 'api.internal.example', '/v1/list/my%20rg/x') as HttpUnit), 'globs are spelled as normalized paths are');
  failsWith(httpPathCondition, ['subscriptions/*'], /absolute/, [0]);
});

test('path: a rule without target compiles for SSH and HTTP alike (the key is shared)', () => {
  for (const g of ['/etc/sha?ow', '**/.ssh/**', '/home/*/.ssh/**', '/a/../b', '/subscriptions/*/resourceGroups/*']) {
    compile(sshPathCondition, [g]);
    compile(httpPathCondition, [g]);
  }
  const s = structuredClone(sshPathCondition.schema) as Record<string, unknown>;
  const h = structuredClone(httpPathCondition.schema) as Record<string, unknown>;
  delete s.description;
  delete h.description;
  assert.deepEqual(h, s, 'the same values are valid for both');
});

test('resource: provider and action, compared without case', () => {
  const keys = compile(resourceCondition, { provider: 'Microsoft.Storage', action: ['listKeys', 'regenerateKey'] });
  assert.ok(keys(arm('POST', storage('/listKeys'))));
  assert.ok(keys(arm('POST', storage('/regenerateKey'))));
  assert.ok(keys(arm('POST', storage('/LISTKEYS').replace('Microsoft.Storage', 'MICROSOFT.STORAGE'))));
  assert.ok(!keys(arm('GET', storage(''))), 'no action');
  assert.ok(!keys(arm('POST', storage('/listAccountSas'))));
  assert.ok(!keys(requestUnit('POST', 'api.internal.example', '/sa/listKeys') as HttpUnit), 'no ARM resource: never matches');
});

test('resource: type as the innermost, nested or full type, and a trailing segment as a child type', () => {
  const db = `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.Sql/servers/s1/databases/d1`;
  for (const t of ['databases', 'servers/databases', 'Microsoft.Sql/servers/databases', 'microsoft.sql/*', 'DATABASES']) {
    assert.ok(compile(resourceCondition, { type: t })(arm('DELETE', db)), t);
  }
  assert.ok(!compile(resourceCondition, { type: 'servers' })(arm('DELETE', db)), 'the innermost type only');
  assert.ok(compile(resourceCondition, { type: 'databases' })(arm('GET', `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.Sql/servers/s1/databases`)), 'a child collection');
  const ra = compile(resourceCondition, { provider: 'Microsoft.Authorization', type: ['roleAssignments'] });
  assert.ok(ra(arm('PUT', `${storage('')}/providers/Microsoft.Authorization/roleAssignments/6a1b2c3d-0000-4000-8000-000000000001`)), 'an extension resource');
  assert.ok(ra(arm('PUT', '/providers/Microsoft.Management/managementGroups/mg1/providers/Microsoft.Authorization/roleAssignments/g')));
  assert.ok(!ra(arm('PUT', `/subscriptions/${SUB}/providers/Microsoft.Authorization/roleDefinitions/g`)));
});

test('resource: name, resource-group and subscription globs', () => {
  const c = compile(resourceCondition, { 'resource-group': 'prod-*', subscription: SUB, name: ['sa*'] });
  assert.ok(c(arm('GET', storage('').replace('/rg/', '/PROD-eu/'))));
  assert.ok(!c(arm('GET', storage(''))));
  assert.ok(!compile(resourceCondition, { name: '*' })(arm('GET', `/subscriptions/${SUB}/resourcegroups`)), 'a collection has no name');
  assert.ok(compile(resourceCondition, { subscription: '*' })(arm('GET', `/subscriptions/${SUB}`)));
  assert.ok(!compile(resourceCondition, { subscription: '*' })(arm('GET', '/providers/Microsoft.Authorization/roleAssignments/g')), 'a tenant-scope resource has no subscription');
});

test('resource: bad values fail with a clear message at their place', () => {
  failsWith(resourceCondition, {}, /names no field/);
  failsWith(resourceCondition, ['Microsoft.Storage'], /is an object/);
  failsWith(resourceCondition, { namespace: 'x' }, /unknown resource field "namespace"/, ['namespace']);
  failsWith(resourceCondition, { provider: 'Microsoft.Storage/storageAccounts' }, /one name, with no \/ \(a namespace/, ['provider']);
  failsWith(resourceCondition, { action: ['listKeys', 'a/b'] }, /bad resource.action "a\/b"/, ['action', 1]);
  failsWith(resourceCondition, { type: '/storageAccounts' }, /joined by single \//, ['type']);
  failsWith(resourceCondition, { name: [] }, /non-empty list/, ['name']);
  failsWith(resourceCondition, { name: [''] }, /non-empty strings/, ['name', 0]);
});
