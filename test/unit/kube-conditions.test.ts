// The Kubernetes `when:` keys (gateway/kubernetes/conditions.ts) compiled directly: what each
// matches, the fail-closed reading of `namespace-not`, the messages bad values fail with, and the
// issue's policy block as written, decided by the policy engine over the request corpus
// (test/corpus/kube-requests.txt), exec argv read like an SSH exec line. The adapter is not
// registered yet, so the rules are compiled here rather than by the policy loader.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import type { ConditionSpec } from '../../gateway/core/adapter.ts';
import { decide, strictest, type Action, type Decision, type PolicyRules, type Rule } from '../../gateway/policy/engine.ts';
import { nameGlob } from '../../gateway/policy/glob.ts';
import { execUnits, KUBE_CONDITIONS, kubeCondition, namespaceCondition, namespaceNotCondition, requestUnits, shellQuote, type KubeUnit } from '../../gateway/kubernetes/conditions.ts';
import { readRequest, type KubeRequest } from '../../gateway/kubernetes/request-info.ts';
import { ROOT } from '../helpers/gateway.ts';
import { compileCondition, ConditionFailure } from '../helpers/condition-spec.ts';

const LONG = `/api/v1/namespaces/prod/pods/x/proxy/${'segment/'.repeat(2000)}end`;

/** The corpus's requests and the decisions the issue's policy reaches on them (kube-request-info.test.ts checks the readings). */
function kubeCorpus(): { line: number; method: string; target: string; decision: string }[] {
  return fs.readFileSync(path.join(ROOT, 'test/corpus/kube-requests.txt'), 'utf8').split('\n').flatMap((text, i) => {
    if (text.trim() === '' || text.startsWith('#')) return [];
    const [request, , decision] = text.split(' | ') as [string, string, string];
    const space = request.indexOf(' ');
    return [{ line: i + 1, method: request.slice(0, space), target: request.slice(space + 1).replace('{long}', LONG), decision }];
  });
}

const compile = compileCondition;
const failsWith = (c: ConditionSpec, raw: unknown, message: string, at: (string | number)[]): void => {
  assert.throws(() => compile(c, raw), (e: ConditionFailure) => {
    assert.equal(e.message, message);
    assert.deepEqual(e.at, at);
    return true;
  }, JSON.stringify(raw));
};

const req = (method: string, target: string): KubeRequest => {
  const r = readRequest(method, target);
  assert.ok(!('unclassified' in r), `${target}: ${JSON.stringify(r)}`);
  return r.request;
};
const u = (method: string, target: string): KubeUnit => ({ kube: req(method, target) });

test('the keys Kubernetes offers: its own, and the SSH command keys over exec argv', () => {
  assert.deepEqual(KUBE_CONDITIONS.map((c) => c.key), ['kube', 'namespace', 'namespace-not', 'command', 'program', 'option']);
});

test('kube: every field given must hold; any glob of a field; compared exactly', () => {
  const m = compile(kubeCondition, { verb: ['get', 'list', 'watch'], resource: 'secrets' });
  assert.ok(m(u('GET', '/api/v1/namespaces/prod/secrets/db')));
  assert.ok(m(u('GET', '/api/v1/secrets')), 'a list across all namespaces');
  assert.ok(m(u('GET', '/api/v1/watch/namespaces/prod/secrets')));
  assert.ok(!m(u('PATCH', '/api/v1/namespaces/prod/secrets/db')));
  assert.ok(!m(u('GET', '/api/v1/namespaces/prod/configmaps/db')));
  assert.ok(!m(u('GET', '/api/v1/namespaces/prod/Secrets')), 'with case, as the API server (which has no such resource)');
  const star = compile(kubeCondition, { resource: '*' });
  assert.ok(star(u('GET', '/api/v1/pods')));
  assert.ok(!star(u('GET', '/version')), 'a non-resource URL has no resource');
  const verb = compile(kubeCondition, { verb: 'get' });
  assert.ok(verb(u('GET', '/version')), 'a non-resource verb is the lower-cased method');
  assert.ok(!verb(u('GET', '/api/v1/pods')), 'a GET on a collection is a list');
  assert.ok(!compile(kubeCondition, { verb: 'get' })({}), 'a unit without a request never matches');
});

test('kube.resource: plain in any group, group/resource in one; core is the core group', () => {
  const any = compile(kubeCondition, { resource: 'deployments' });
  assert.ok(any(u('GET', '/apis/apps/v1/namespaces/p/deployments')));
  assert.ok(any(u('GET', '/apis/extensions/v1beta1/namespaces/p/deployments')));
  const apps = compile(kubeCondition, { resource: ['apps/deployments'] });
  assert.ok(apps(u('GET', '/apis/apps/v1/namespaces/p/deployments')));
  assert.ok(!apps(u('GET', '/apis/extensions/v1beta1/namespaces/p/deployments')));
  const core = compile(kubeCondition, { resource: 'core/secrets' });
  assert.ok(core(u('GET', '/api/v1/secrets')));
  assert.ok(!core(u('GET', '/apis/example.com/v1/secrets')));
  const crd = compile(kubeCondition, { resource: '*.example.com/*' });
  assert.ok(crd(u('GET', '/apis/stable.example.com/v1/crontabs')));
  assert.ok(!crd(u('GET', '/apis/apps/v1/deployments')));
  const group = compile(kubeCondition, { group: ['core', 'rbac.authorization.k8s.io'] });
  assert.ok(group(u('GET', '/api/v1/pods')));
  assert.ok(group(u('GET', '/apis/rbac.authorization.k8s.io/v1/roles')));
  assert.ok(!group(u('GET', '/apis/apps/v1/deployments')));
  assert.ok(!group(u('GET', '/api')), 'discovery is no resource request');
});

test('kube: subresource, name, namespace and version never match a request without them', () => {
  const exec = compile(kubeCondition, { subresource: ['exec', 'attach', 'portforward'] });
  assert.ok(exec(u('GET', '/api/v1/namespaces/p/pods/x/exec?command=ls')));
  assert.ok(exec(u('POST', '/api/v1/namespaces/p/pods/x/portforward')));
  assert.ok(!exec(u('GET', '/api/v1/namespaces/p/pods/x')));
  assert.ok(!exec(u('GET', '/api/v1/proxy/namespaces/p/pods/x/exec')), 'the deprecated proxy prefix has no subresource');
  const name = compile(kubeCondition, { name: 'db-*' });
  assert.ok(name(u('GET', '/api/v1/namespaces/p/secrets/db-password')));
  assert.ok(name(u('GET', '/api/v1/namespaces/p/secrets?fieldSelector=metadata.name%3Ddb-password')), 'a list that names one object');
  assert.ok(!name(u('GET', '/api/v1/namespaces/p/secrets')), 'a list names no object');
  const anyName = compile(kubeCondition, { name: '*' });
  assert.ok(!anyName(u('GET', '/api/v1/namespaces/p/secrets')), '* needs a name to match');
  const ns = compile(kubeCondition, { namespace: 'prod' });
  assert.ok(ns(u('GET', '/api/v1/namespaces/prod/pods')));
  assert.ok(ns(u('DELETE', '/api/v1/namespaces/prod')), 'the namespace itself is in itself');
  assert.ok(!ns(u('GET', '/api/v1/pods')));
  const version = compile(kubeCondition, { version: 'v1beta*' });
  assert.ok(version(u('GET', '/apis/batch/v1beta1/cronjobs')));
  assert.ok(!version(u('GET', '/apis/batch/v1/cronjobs')));
});

test('namespace matches the namespaces listed; namespace-not also matches requests with no namespace (fail closed)', () => {
  const inProd = compile(namespaceCondition, ['prod', 'prod-*']);
  assert.ok(inProd(u('GET', '/api/v1/namespaces/prod-eu/pods')));
  assert.ok(!inProd(u('GET', '/api/v1/namespaces/staging/pods')));
  assert.ok(!inProd(u('GET', '/api/v1/pods')), 'across all namespaces: no namespace');
  const notStaging = compile(namespaceNotCondition, ['staging']);
  assert.ok(notStaging(u('GET', '/api/v1/namespaces/prod/pods/x/exec?command=id')));
  assert.ok(!notStaging(u('GET', '/api/v1/namespaces/staging/pods/x/exec?command=id')));
  assert.ok(notStaging(u('GET', '/api/v1/pods')), '-A reaches every namespace, staging and prod alike');
  assert.ok(notStaging(u('GET', '/api/v1/nodes/n1/proxy/x')), 'cluster-scoped');
  assert.ok(notStaging(u('GET', '/version')), 'non-resource');
  assert.ok(!notStaging({}), 'a unit without a request never matches');
});

test('bad values fail at their place with what to write instead', () => {
  failsWith(kubeCondition, [], 'kube is an object with any of: verb, resource, subresource, group, version, name, namespace', []);
  failsWith(kubeCondition, {}, 'kube names no field (fields: verb, resource, subresource, group, version, name, namespace)', []);
  failsWith(kubeCondition, { verbs: 'get' }, 'unknown kube field "verbs" (fields: verb, resource, subresource, group, version, name, namespace)', ['verbs']);
  failsWith(kubeCondition, { verb: [] }, 'kube.verb is a name glob or a non-empty list of them', ['verb']);
  failsWith(kubeCondition, { verb: ['get', 3] }, 'kube.verb holds names (non-empty strings)', ['verb', 1]);
  failsWith(kubeCondition, { verb: 'GET' }, 'bad kube.verb "GET": verbs are lower-case (get, delete)', ['verb']);
  failsWith(kubeCondition, { verb: ['get', 'exec'] }, 'unknown kube.verb "exec" (verbs: get, list, watch, create, update, patch, delete, deletecollection, proxy, post, put, head, options); exec is a subresource: kube: { subresource: [exec] }', ['verb', 1]);
  failsWith(kubeCondition, { verb: 'apply' }, 'unknown kube.verb "apply" (verbs: get, list, watch, create, update, patch, delete, deletecollection, proxy, post, put, head, options)', ['verb']);
  failsWith(kubeCondition, { resource: ['pods/exec'] }, 'bad kube.resource "pods/exec": "pods" is not an API group (core, apps, batch, a dotted name such as networking.k8s.io); a subresource is matched with kube: { resource: pods, subresource: exec }', ['resource', 0]);
  failsWith(kubeCondition, { resource: 'Secret' }, 'bad kube.resource "Secret": resources are written as in the URL, lower-case and plural (secrets, not Secret)', ['resource']);
  failsWith(kubeCondition, { resource: ['apps/deploy'] }, 'bad kube.resource "apps/deploy": resources are written as in the URL, plural: apps/deployments', ['resource', 0]);
  failsWith(kubeCondition, { resource: 'secret' }, 'bad kube.resource "secret": resources are written as in the URL, plural: secrets', ['resource']);
  failsWith(kubeCondition, { resource: 'a/b/c' }, 'bad kube.resource "a/b/c": write a resource (secrets) or group/resource (apps/deployments)', ['resource']);
  failsWith(kubeCondition, { resource: '/secrets' }, 'bad kube.resource "/secrets": write a resource (secrets) or group/resource (apps/deployments)', ['resource']);
  failsWith(kubeCondition, { subresource: ['port-forward'] }, 'bad kube.subresource "port-forward": the API server\'s subresource is portforward', ['subresource', 0]);
  failsWith(kubeCondition, { subresource: 'logs' }, 'bad kube.subresource "logs": the API server\'s subresource is log', ['subresource']);
  failsWith(kubeCondition, { subresource: 'Exec' }, 'bad kube.subresource "Exec": subresources are lower-case (exec, portforward)', ['subresource']);
  failsWith(kubeCondition, { name: 'a/b' }, 'bad kube.name "a/b": it is one name, with no /', ['name']);
  failsWith(kubeCondition, { group: ['apps/v1'] }, 'bad kube.group "apps/v1": it is one name, with no /', ['group', 0]);
  failsWith(kubeCondition, { namespace: 'Prod' }, 'bad kube.namespace "Prod": namespace names are lower-case letters, digits and - (and * in a glob)', ['namespace']);
  failsWith(namespaceNotCondition, ['staging', 'Staging'], 'bad namespace-not "Staging": namespace names are lower-case letters, digits and - (and * in a glob)', [1]);
  failsWith(namespaceCondition, ['prod/x'], 'bad namespace "prod/x": namespace names are lower-case letters, digits and - (and * in a glob)', [0]);
  // What is accepted: globs, the core group, dotted and dot-less groups.
  for (const ok of [{ verb: '*' }, { verb: 'delete*' }, { resource: ['core/secrets', 'apps/*', '*/deployments', 'networking.k8s.io/ingresses'] }, { group: 'core' }, { namespace: 'team-*' }]) compile(kubeCondition, ok);
});

test('the schemas validate what compile takes, and every oneOf carries its words (x-expected)', () => {
  const ajv = new Ajv({ allErrors: true, strict: false });
  const when = ajv.compile({ type: 'object', properties: Object.fromEntries(KUBE_CONDITIONS.map((c) => [c.key, c.schema])) });
  assert.ok(when({ kube: { verb: ['get'], resource: 'secrets' }, 'namespace-not': ['staging'], program: ['rm'] }));
  assert.ok(!when({ kube: { verb: { a: 1 } } }));
  assert.ok(!when({ kube: { verbs: 'get' } }));
  assert.ok(!when({ kube: {} }));
  assert.ok(!when({ namespace: 'prod' }), 'the shorthands are lists, as the other top-level keys');
  const props = (kubeCondition.schema as { properties: Record<string, Record<string, unknown>> }).properties;
  for (const [field, s] of Object.entries(props)) assert.equal(s['x-expected'], 'a name glob or a list of them', field);
});

test('exec argv is read like an SSH exec line, each word quoted whole; no command is unclassified', async () => {
  const exec = req('GET', '/api/v1/namespaces/prod/pods/x/exec?command=sh');
  const r = await execUnits(exec, ['sh', '-c', 'rm -rf /data; echo done']);
  assert.equal(r.unclassified, null);
  assert.deepEqual(r.units.map((x) => x.program), ['sh', 'rm', 'echo']);
  assert.ok(r.units.every((x) => x.kube === exec), 'every unit carries the request');
  const literal = await execUnits(exec, ['echo', '$(rm -rf /)', "it's"]);
  assert.deepEqual(literal.units.map((x) => x.program), ['echo'], 'no shell runs the argv: nothing in a word expands');
  assert.equal(literal.unclassified, null);
  assert.equal(shellQuote("it's"), `'it'\\''s'`);
  assert.deepEqual(await execUnits(exec, []), { units: [{ kube: exec }], unclassified: 'the exec names no command' });
  assert.equal((await execUnits(exec, ['a\0b'])).unclassified, 'an exec argument holds a NUL byte');
  assert.deepEqual(requestUnits(exec), [{ kube: exec }]);
});

// The issue's policy block as written (its targets are the adapter's; here only the rules matter).
const ISSUE_RULES = `
rules:
  - { name: no-secret-reads, target: aks-prod, when: { kube: { verb: [get, list, watch], resource: [secrets] } }, action: deny }
  - { name: review-deletes, when: { kube: { verb: [delete, deletecollection] } }, action: approve }
  - { name: exec-needs-review, when: { kube: { subresource: [exec, attach, portforward] }, namespace-not: [staging] }, action: approve }
  - { name: no-rm-in-pods, when: { program: [rm], option: [-r, --recursive] }, action: deny }   # the SSH issue's command conditions apply to exec argv
`;

/** The rules compiled as the loader compiles them for a target of kind kubernetes. */
function issuePolicy(): PolicyRules {
  const byKey = new Map(KUBE_CONDITIONS.map((c) => [c.key, c]));
  const raw = (parse(ISSUE_RULES) as { rules: { name: string; target?: string; when: Record<string, unknown>; action: Action }[] }).rules;
  const rules: Rule[] = raw.map((r) => ({
    name: r.name,
    targets: r.target ? [nameGlob(r.target)] : null,
    claims: {},
    conditions: new Map([['kubernetes', Object.entries(r.when).map(([k, v]) => compileCondition(byKey.get(k)!, v))]]),
    keys: Object.keys(r.when),
    action: r.action,
  }));
  return { rules, default: 'allow', unclassified: 'deny' };
}

/** A request decided as the command gate decides it: its units, and the unclassified part (strictest wins). */
async function decideRequest(policy: PolicyRules, method: string, target: string): Promise<Decision> {
  const facts = { kind: 'kubernetes', target: 'aks-prod' };
  const read = readRequest(method, target);
  if ('unclassified' in read) return decide(policy, { ...facts, units: null, unclassifiedReason: read.unclassified }, {});
  const r = read.request;
  const exec = r.resource === 'pods' && r.subresource === 'exec';
  const { units, unclassified } = exec ? await execUnits(r, read.query.getAll('command')) : { units: requestUnits(r), unclassified: null };
  let d = decide(policy, { ...facts, units, unclassifiedReason: unclassified ?? undefined }, {});
  if (unclassified) d = strictest(d, decide(policy, { ...facts, units: null, unclassifiedReason: unclassified }, {}));
  return d;
}

test('the issue\'s policy decides every corpus request as its comments say', async () => {
  const policy = issuePolicy();
  const wrong: string[] = [];
  const seen = new Set<string>();
  for (const c of kubeCorpus()) {
    const d = await decideRequest(policy, c.method, c.target);
    const got = `${d.action}:${d.rule}`;
    seen.add(d.rule);
    if (got !== c.decision) wrong.push(`line ${c.line}: ${c.method} ${c.target.slice(0, 120)} expected ${c.decision}, got ${got} (${d.reason})`);
  }
  assert.deepEqual(wrong, []);
  for (const rule of ['no-secret-reads', 'review-deletes', 'exec-needs-review', 'no-rm-in-pods', 'default', 'unclassified']) assert.ok(seen.has(rule), rule);
});

test('the issue\'s rules, one by one, on the requests they are about', async () => {
  const policy = issuePolicy();
  const on = async (method: string, target: string): Promise<string> => {
    const d = await decideRequest(policy, method, target);
    return `${d.action}:${d.rule}`;
  };
  // no-secret-reads names its target: on another target it does not apply.
  const other = decide(policy, { kind: 'kubernetes', target: 'aks-dev', units: requestUnits(req('GET', '/api/v1/namespaces/prod/secrets/db')) }, {});
  assert.equal(`${other.action}:${other.rule}`, 'allow:default');
  // exec-needs-review: every namespace but staging, and requests in none.
  assert.equal(await on('GET', '/api/v1/namespaces/kube-system/pods/x/attach?stdin=true'), 'approve:exec-needs-review');
  assert.equal(await on('GET', '/api/v1/namespaces/staging/pods/x/attach?stdin=true'), 'allow:default');
  // no-rm-in-pods: however the argv spells it.
  for (const argv of [['rm', '-r', '/x'], ['/bin/rm', '-fr', '/x'], ['rm', '--recursive', '/x'], ['rm', '--recur', '/x'], ['bash', '-c', 'cd /x && rm -r y'], ['env', 'rm', '-r', 'x']]) {
    const target = `/api/v1/namespaces/staging/pods/x/exec?${argv.map((w) => `command=${encodeURIComponent(w)}`).join('&')}`;
    assert.equal(await on('GET', target), 'deny:no-rm-in-pods', argv.join(' '));
  }
  assert.equal(await on('GET', '/api/v1/namespaces/staging/pods/x/exec?command=rm&command=/x/one'), 'allow:default');
});
