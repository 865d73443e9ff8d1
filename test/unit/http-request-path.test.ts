// The request-target read into one unambiguous path (gateway/http/request-path.ts): what is
// decoded, what is kept, and every spelling two servers could read differently refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalEscapes, normalizeRequestPath } from '../../gateway/http/request-path.ts';

const ok = (raw: string): { path: string; query: string } => {
  const r = normalizeRequestPath(raw);
  assert.ok('path' in r, `${raw}: ${JSON.stringify(r)}`);
  return r;
};
const refused = (raw: string, why: RegExp): void => {
  const r = normalizeRequestPath(raw);
  assert.ok('problem' in r, `${raw} should be refused, got ${JSON.stringify(r)}`);
  assert.match(r.problem, why, raw);
};

test('origin-form paths keep their spelling and hand the query back raw', () => {
  assert.deepEqual(ok('/subscriptions/s1/resourceGroups/rg?api-version=2021-04-01'), { path: '/subscriptions/s1/resourceGroups/rg', query: 'api-version=2021-04-01' });
  assert.deepEqual(ok('/'), { path: '/', query: '' });
  assert.deepEqual(ok('/a?'), { path: '/a', query: '' });
  assert.deepEqual(ok('/a?x=%2F&y=a%20b'), { path: '/a', query: 'x=%2F&y=a%20b' }, 'the query is not decoded');
  assert.deepEqual(ok("/a/b:c@d!$&'()*+,;=/e"), { path: "/a/b:c@d!$&'()*+,;=/e", query: '' });
});

test('absolute-form request-targets give their path (the caller checks the authority)', () => {
  assert.deepEqual(ok('https://management.azure.com/subscriptions?api-version=2022-12-01'), { path: '/subscriptions', query: 'api-version=2022-12-01' });
  assert.deepEqual(ok('HTTPS://management.azure.com'), { path: '/', query: '' });
  assert.deepEqual(ok('http://h:8080?x=1'), { path: '/', query: 'x=1' });
});

test('escapes of unreserved characters are decoded; others are kept in upper-case hex', () => {
  assert.equal(ok('/sa/%6CistKeys').path, '/sa/listKeys');
  assert.equal(ok('/%73ubscriptions/%7e%2d%2E%5F').path, '/subscriptions/~-._');
  assert.equal(ok('/rg/my%20rg%c3%a9').path, '/rg/my%20rg%C3%A9');
  assert.equal(ok('/a%28b%29').path, '/a%28b%29', 'sub-delims stay as spelled');
  assert.equal(canonicalEscapes('/%6cist%2fx%zz'), '/list%2Fx%zz');
});

test('escapes that would split or end the path differently are refused', () => {
  refused('/subscriptions/s%2Fx', /encoded \/ \(%2F\)/);
  refused('/subscriptions/s%2fx', /%2F/);
  refused('/a%5Cb', /encoded \\/);
  refused('/a%3Fb', /encoded \?/);
  refused('/a%23b', /encoded #/);
  refused('/a%00b', /NUL/);
  refused('/a%0Ab', /control character/);
  refused('/a%252Fb', /double-encoded/);
});

test('raw backslashes, dot segments, empty segments and control characters are refused', () => {
  refused('/a\\b', /backslash/);
  refused('/a/../b', /dot segment/);
  refused('/a/./b', /dot segment/);
  refused('/a/%2e%2E/b', /dot segment "\.\."/);
  refused('/a/.%2e', /dot segment/);
  refused('/a/..;x/b', /dot segment/);
  refused('/a/..', /dot segment/);
  refused('//a', /empty segment/);
  refused('/a//b', /empty segment/);
  refused('/a/', /empty segment/);
  refused('/a\tb', /control character/);
  refused('/a\x7fb', /control character/);
  refused('/a b', /must be percent-encoded/);
  refused('/a"b', /must be percent-encoded/);
  refused('/aé', /must be percent-encoded/);
  refused('/a?b c', /space/);
  refused('/a?b#c', /fragment/);
  refused('/a#b', /must be percent-encoded/);
});

test('invalid percent-encoding and paths not starting with / are refused', () => {
  refused('/a%zz', /invalid percent-escape "%zz"/);
  refused('/a%2', /invalid percent-escape/);
  refused('/a%', /invalid percent-escape/);
  refused('/a%FF', /not UTF-8/);
  refused('/a%C3', /not UTF-8/);
  refused('a/b', /does not start with \//);
  refused('', /does not start with \//);
  refused('*', /asterisk/);
  refused('ftp://h/a', /does not start with \//);
});
