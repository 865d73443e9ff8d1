// The Kubernetes request corpus (test/corpus/kube-requests.txt): each request-target read by
// gateway/kubernetes/request-info.ts into the attributes the API server's RequestInfoFactory
// computes (its upstream unit tests' cases first), and the adversarial spellings it refuses.
// kube-conditions.test.ts decides the same corpus under the policy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parseFieldSelector, readQuery, readRequest, requestInfo, type KubeRequest } from '../../gateway/kubernetes/request-info.ts';
import { ROOT } from '../helpers/gateway.ts';

interface CorpusCase { line: number; method: string; target: string; reading: string; decision: string }

const LONG = `/api/v1/namespaces/prod/pods/x/proxy/${'segment/'.repeat(2000)}end`;

/** The corpus's cases, `{long}` replaced by a path of about 16 kB (kube-conditions.test.ts reads them too). */
function kubeCorpus(): CorpusCase[] {
  const lines = fs.readFileSync(path.join(ROOT, 'test/corpus/kube-requests.txt'), 'utf8').split('\n');
  const cases: CorpusCase[] = [];
  lines.forEach((text, i) => {
    if (text.trim() === '' || text.startsWith('#')) return;
    const fields = text.split(' | ');
    assert.equal(fields.length, 3, `line ${i + 1}: METHOD TARGET | READING | DECISION`);
    const [request, reading, decision] = fields as [string, string, string];
    const space = request.indexOf(' ');
    const target = request.slice(space + 1).replace('{long}', LONG);
    cases.push({ line: i + 1, method: request.slice(0, space), target, reading: reading.replace('{longparts}', LONG.split('/').slice(5).join('/')), decision });
  });
  return cases;
}

/** A request-target read as the gateway reads it (readRequest), the request alone. */
function readTarget(method: string, target: string): KubeRequest | { unclassified: string } {
  const r = readRequest(method, target);
  return 'unclassified' in r ? r : r.request;
}

const shown = (v: string): string => v.replace(/%/g, '%25').replace(/ /g, '%20').replace(/\|/g, '%7C');

/** The READING column's spelling of what requestInfo returned. */
function spelled(r: KubeRequest | { unclassified: string }): string {
  if ('unclassified' in r) return `unclassified: ${r.unclassified}`;
  if (!r.resourceRequest) return `nonresource verb=${r.verb} path=${r.path}`;
  const fields: [string, string][] = [['verb', r.verb], ['group', r.apiGroup], ['version', r.apiVersion], ['ns', r.namespace], ['resource', r.resource], ['sub', r.subresource], ['name', r.name], ['parts', r.parts.map(shown).join('/')]];
  return fields.filter(([, v]) => v !== '').map(([k, v]) => `${k}=${k === 'parts' ? v : shown(v)}`).join(' ');
}

test('the corpus reads as the API server reads it (at least 60 cases, upstream requestinfo_test.go first)', () => {
  const cases = kubeCorpus();
  assert.ok(cases.length >= 60, `${cases.length} cases`);
  const wrong: string[] = [];
  for (const c of cases) {
    const r = readTarget(c.method, c.target);
    const got = spelled(r);
    const ok = c.reading.startsWith('unclassified: ') ? got.startsWith('unclassified: ') && got.includes(c.reading.slice('unclassified: '.length)) : got === c.reading;
    if (!ok) wrong.push(`line ${c.line}: ${c.method} ${c.target.slice(0, 120)}\n    expected ${c.reading.slice(0, 200)}\n    got      ${got.slice(0, 200)}`);
    if (!('unclassified' in r)) {
      // Invariants of every reading: the prefix follows the group, the path is the one forwarded.
      assert.equal(r.apiPrefix, r.resourceRequest ? (r.apiGroup ? 'apis' : 'api') : '', `line ${c.line}`);
      assert.equal(r.path, c.target.split('?')[0]!.replace(/%73/g, 's'), `line ${c.line}`);
    }
  }
  assert.deepEqual(wrong, []);
});

test('a path that is not in its normalized form is unclassified: the path decided is the path forwarded', () => {
  for (const p of ['/api/v1/namespaces/prod/%73ecrets', '/api/v1/namespaces/prod/secrets/a%3ab', '/api/v1/pods?watch=1', 'api/v1/pods', 'https://h/api/v1/pods']) {
    const r = requestInfo('GET', p, new URLSearchParams());
    assert.ok('unclassified' in r, p);
  }
  const r = requestInfo('GET', '/api/v1/namespaces/prod/secrets/a%3Ab', new URLSearchParams());
  assert.ok(!('unclassified' in r) && r.name === 'a:b' && r.path === '/api/v1/namespaces/prod/secrets/a%3Ab');
});

test('every attribute is a string, empty where absent, as the API server leaves it', () => {
  const r = readTarget('GET', '/version');
  assert.deepEqual(r, { resourceRequest: false, verb: 'get', apiPrefix: '', apiGroup: '', apiVersion: '', namespace: '', resource: '', subresource: '', name: '', parts: [], path: '/version' });
  const d = readTarget('DELETE', '/apis/apps/v1/namespaces/prod/deployments');
  assert.deepEqual(d, { resourceRequest: true, verb: 'deletecollection', apiPrefix: 'apis', apiGroup: 'apps', apiVersion: 'v1', namespace: 'prod', resource: 'deployments', subresource: '', name: '', parts: ['deployments'], path: '/apis/apps/v1/namespaces/prod/deployments' });
});

test('field selectors parse as k8s.io/apimachinery/pkg/fields parses them', () => {
  assert.deepEqual(parseFieldSelector('metadata.name=a'), [{ field: 'metadata.name', op: '=', value: 'a' }]);
  assert.deepEqual(parseFieldSelector('b==2,a!=1'), [{ field: 'a', op: '!=', value: '1' }, { field: 'b', op: '==', value: '2' }]);
  assert.deepEqual(parseFieldSelector('a=x\\,y\\=z\\\\'), [{ field: 'a', op: '=', value: 'x,y=z\\' }]);
  assert.deepEqual(parseFieldSelector('a=!b'), [{ field: 'a', op: '=', value: '!b' }]);
  assert.deepEqual(parseFieldSelector(''), []);
  assert.deepEqual(parseFieldSelector(',a=1,'), [{ field: 'a', op: '=', value: '1' }]);
  for (const bad of ['foo', 'a=b=c', 'a=b\\', 'a=b\\x', 'a=1,b']) assert.equal(parseFieldSelector(bad), null, bad);
});

test('the query is read as Go reads it, or refused where it would read otherwise', () => {
  const q = readQuery('command=ls&command=-la&fieldSelector=metadata.name%3Dx+y');
  assert.ok(!('problem' in q));
  assert.deepEqual(q.getAll('command'), ['ls', '-la']);
  assert.equal(q.get('fieldSelector'), 'metadata.name=x y');
  for (const bad of ['watch=false;x=1', 'a=%', 'a=%4', 'a=%zz', 'a=%FF', 'a=%C3%28']) assert.ok('problem' in readQuery(bad), bad);
});
