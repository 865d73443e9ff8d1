// The one glob of the project (gateway/policy/glob.ts): what the policy documents for names,
// and segment-aware paths for the adapters that match remote paths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nameGlob, pathGlob } from '../../gateway/policy/glob.ts';

test('name globs: * is any run of characters, everything else literal', () => {
  const yes: [string, string][] = [['refs/heads/*', 'refs/heads/feature/x'], ['public.*', 'public.users'], ['*', ''], ['*', '..'], ['*', 'x/..'], ['public.*', 'public.x/..'], ['a*', 'a\nb'], ['a\\b', 'a\\b'], ['x?', 'x?'], ['(a)*', '(a)b'], ['!x', '!x'], ['x{1,2}', 'x{1,2}'], ['日本*', '日本語']];
  const no: [string, string][] = [['a.b', 'aXb'], ['x?', 'xy'], ['prod-*', 'dev-prod-1'], ['Users', 'users']];
  for (const [g, v] of yes) assert.ok(nameGlob(g)(v), `${g} matches ${JSON.stringify(v)}`);
  for (const [g, v] of no) assert.ok(!nameGlob(g)(v), `${g} does not match ${JSON.stringify(v)}`);
  assert.ok(nameGlob('EM*', { ignoreCase: true })('email'));
});

test('path globs: * and ? stay in one segment, ** crosses them', () => {
  assert.ok(!pathGlob('/etc/*')('/etc/ssh/sshd_config'));
  assert.ok(pathGlob('/etc/**')('/etc/ssh/sshd_config'));
  assert.ok(pathGlob('/etc/*.conf')('/etc/x.conf'));
  assert.ok(pathGlob('/var/log/?.log')('/var/log/a.log'));
});
