// Auditors verify months later, with whatever version of the tool they have then: logs written by
// the previous format (@2, committed under test/fixtures/ as the last @2 writer produced them)
// still verify, their tampering is still caught, and replay, report and the documented recipe
// read them.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { cli, ROOT, tempDir } from '../helpers/gateway.ts';
import { resign } from '../helpers/log-forgery.ts';

const FIXTURES = path.join(ROOT, 'test/fixtures');
const LOCAL = path.join(FIXTURES, 'session-log-v2-local.jsonl');
const ATTESTED = path.join(FIXTURES, 'session-log-v2-attested.jsonl');
const JWKS = path.join(FIXTURES, 'session-log-v2-attested.jwks.json');
const ISSUER = fs.readFileSync(path.join(FIXTURES, 'session-log-v2-attested.issuer'), 'utf8').trim();
const dir = tempDir('gw-v2-');
let recipe = '';

before(() => {
  const doc = fs.readFileSync(path.join(ROOT, 'docs/session-log.md'), 'utf8');
  recipe = path.join(dir, 'verify-log.sh');
  fs.writeFileSync(recipe, /## Verifying with standard tools[\s\S]*?```bash\n([\s\S]*?)```/.exec(doc)![1]!);
});

const lines = (file: string): string[] => fs.readFileSync(file, 'utf8').trimEnd().split('\n');
const variant = (name: string, ls: string[]): string => {
  const f = path.join(dir, name);
  fs.writeFileSync(f, ls.join('\n') + '\n');
  return f;
};
const verifyJson = (args: string[]) => {
  const r = cli(['verify', ...args, '--json']);
  return { status: r.status, json: JSON.parse(r.stdout) as Record<string, any>, stderr: r.stderr };
};

test('a log of format @2 verifies: chain, checkpoints, seal and its totals', () => {
  assert.match(lines(LOCAL)[0]!, /"format":"gateway-action\/session-log@2"/);
  const r = verifyJson([LOCAL]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.json.status, 'valid');
  assert.equal(r.json.identity.status, 'unattested');
  assert.equal(r.json.totals.sessions, 6);
  assert.equal(r.json.totals.commands, 10);
  assert.equal(r.json.totals.approved, 1);
  assert.equal(r.json.totals.errors, 1);
  assert.equal(r.json.totals.masked_commands, 3);
});

test('an attested log of format @2 verifies its identity offline against the saved key set', () => {
  const r = verifyJson([ATTESTED, '--jwks', JWKS, '--issuer', ISSUER, '--repository', 'octo-org/payments']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.json.identity.status, 'verified');
  assert.equal(r.json.identity.claims.repository, 'octo-org/payments');
});

test('tampering with a log of format @2 is still caught', () => {
  const ls = lines(LOCAL);
  const cmd = ls.findIndex((l) => l.includes('"type":"command"') && l.includes('DROP TABLE old_audit'));
  const edited = variant('edited.jsonl', ls.map((l, i) => (i === cmd ? l.replace('DROP TABLE old_audit', 'SELECT 1') : l)));
  const e = cli(['verify', edited]);
  assert.equal(e.status, 1);
  assert.match(e.stderr, new RegExp(`record ${cmd} \\(line ${cmd + 1}\\) has been modified`));
  const removed = cli(['verify', variant('removed.jsonl', ls.filter((_, i) => i !== cmd))]);
  assert.equal(removed.status, 1);
  assert.match(removed.stderr, new RegExp(`record ${cmd} \\(line ${cmd + 1}\\) has sequence number ${cmd + 1}`));
  const unsealed = cli(['verify', variant('unsealed.jsonl', ls.slice(0, -1))]);
  assert.equal(unsealed.status, 4);
  // Re-chained and re-signed with a key of the forger's: the token names the original key.
  const forged = variant('forged.jsonl', resign(lines(ATTESTED).map((l) => l.replace('generate_series(1, 3)', 'generate_series(1, 4)'))));
  assert.equal(cli(['verify', forged, '--jwks', JWKS, '--issuer', ISSUER]).status, 5);
  const keptKey = variant('kept-key.jsonl', resign(lines(ATTESTED).map((l) => l.replace('generate_series(1, 3)', 'generate_series(1, 4)')), (r) => r, { keepKey: true }));
  assert.equal(cli(['verify', keptKey, '--jwks', JWKS, '--issuer', ISSUER]).status, 1);
});

test('replay and report read a log of format @2', () => {
  const r = cli(['replay', LOCAL], { env: { ...process.env, NO_COLOR: '1' } });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /s1\.1 +ALLOW +ok +2 rows .*SELECT id, name, email, card FROM customers ORDER BY id/);
  assert.match(r.stdout, /s2\.1 +DENY +denied .*DELETE FROM scratch/);
  assert.match(r.stdout, /s4\.1 +APPROVE +ok .*DROP TABLE old_audit\n.*\n +request \w+ approved by local:root/);
  assert.match(r.stdout, /s6\.1 +APPROVE +denied .*DROP TABLE old_logs\n.*\n +request \w+ denied by timeout/);
  const out = path.join(dir, 'v2.html');
  const rep = cli(['report', LOCAL, '-o', out]);
  assert.equal(rep.status, 0, rep.stderr);
  assert.match(rep.stdout, /\(valid\)/);
  const html = fs.readFileSync(out, 'utf8');
  assert.match(html, /DROP TABLE old_logs/);
  assert.match(html, /\$1 = 2/, 'the extended-protocol parameter');
});

test('the documented shell recipe verifies a log of format @2', () => {
  // The attested one (14 records): the recipe runs several processes per record.
  const attested = spawnSync('bash', [recipe, ATTESTED, JWKS], { encoding: 'utf8', env: { ...process.env, ISSUER } });
  assert.equal(attested.status, 0, attested.stdout + attested.stderr);
  assert.match(attested.stdout, /^OK: 14 records, chain intact, checkpoints signed, sealed/);
  assert.match(attested.stdout, /identity: verified\n {2}repository: octo-org\/payments/);
});
