// The policy's source as the daemon is told it and records it, and the summary's diff of a pull
// request's change to the policy: bounded, and fenced so its text cannot end the block.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePolicySource, policyRecord } from '../../gateway/config/policy-source.ts';
import { MAX_DIFF_LINES, policyChangeSummary } from '../../action/policy-diff.ts';

const COMMIT = '0123456789abcdef0123456789abcdef01234567';

test('--policy-source accepts a complete source and refuses anything else', () => {
  const base = { from: 'base', repository: 'octo-org/payments', commit: COMMIT, file: '.github/gateway.yml', via: 'api' };
  assert.deepEqual(parsePolicySource(JSON.stringify(base)), base);
  assert.deepEqual(parsePolicySource('{"from":"workspace"}'), { from: 'workspace' });
  const refused: [string, RegExp][] = [
    ['not json', /is not JSON/],
    ['{"from":"head"}', /from must be "workspace" or "base"/],
    ['{"from":"workspace","commit":"x"}', /from must be/],
    [JSON.stringify({ ...base, commit: 'abc123' }), /full commit SHA/],
    [JSON.stringify({ ...base, commit: COMMIT.toUpperCase() }), /lower-case hex/],
    [JSON.stringify({ ...base, file: '../secrets.yml' }), /a path inside the repository/],
    [JSON.stringify({ ...base, file: '/etc/passwd' }), /a path inside the repository/],
    [JSON.stringify({ ...base, via: 'cache' }), /via must be git or api/],
    [JSON.stringify({ ...base, repository: 'payments' }), /OWNER\/NAME/],
    [JSON.stringify({ ...base, extra: 1 }), /unknown member extra/],
  ];
  for (const [json, message] of refused) assert.throws(() => parsePolicySource(json), message, json);
});

test('run-start names a base version by its path in the repository, a workspace file by its path on disk', () => {
  const source = { from: 'base' as const, repository: 'o/r', commit: COMMIT, file: '.github/gateway.yml', via: 'git' as const };
  assert.deepEqual(policyRecord({ path: '.github/gateway.yml', sha256: 'd', source }), { path: '.github/gateway.yml', sha256: 'd', from: 'base', repository: 'o/r', commit: COMMIT, via: 'git' });
  assert.deepEqual(policyRecord({ path: '/w/.github/gateway.yml', sha256: 'd' }), { path: '/w/.github/gateway.yml', sha256: 'd', from: 'workspace' });
});

test('the summary shows nothing for an unchanged policy, and says so for a deleted one', () => {
  const text = Buffer.from('version: 1\n');
  assert.equal(policyChangeSummary('.github/gateway.yml', COMMIT, text, Buffer.from(text)), null);
  assert.match(policyChangeSummary('.github/gateway.yml', COMMIT, text, null)!, /The workspace has no such file/);
});

test('a diff with backtick runs gets a longer fence; a long one is cut and says how much is left out', () => {
  const base = Buffer.from('a: 1\n');
  const fenced = policyChangeSummary('p.yml', COMMIT, base, Buffer.from('a: 1\n# ````\n````\n'))!;
  assert.match(fenced, /^`{5}diff$/m, 'the fence is longer than any run inside');
  assert.match(fenced, /^`{5}$/m);
  const long = Buffer.from(Array.from({ length: 1000 }, (_, i) => `k${i}: ${i}`).join('\n') + '\n');
  const cut = policyChangeSummary('p.yml', COMMIT, base, long)!;
  const body = /```diff\n([\s\S]*?)\n```/.exec(cut)![1]!.split('\n');
  assert.equal(body.length, MAX_DIFF_LINES);
  assert.match(cut, /(\d+) more lines of the diff not shown/);
  assert.equal(Number(/(\d+) more lines/.exec(cut)![1]) + MAX_DIFF_LINES, 2 + 1 + 1 + 1000, 'both file headers, the hunk line, the removed line and the 1000 added are counted');
});
