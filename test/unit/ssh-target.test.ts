// `kind: ssh` targets as the policy loader reads them: the issue's target block loads; every
// mistake is named with the file, the line and what is wrong; known_hosts entries (plain, with a
// port, hashed, revoked) pin the host's key; fingerprints are OpenSSH's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parsePolicy } from '../../gateway/adapters.ts';
import { fingerprint, isPinned, knownHostsKeys, parseKeyLine } from '../../gateway/ssh/host-keys.ts';
import type { SshTarget } from '../../gateway/ssh/target.ts';

// A real ed25519 key (the blob's inner type must say ssh-ed25519).
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl';
const OTHER = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGbM2nRX7NdbzrLfzX2ZrPcUGpmDNHdS0bAvvWyFNQx0';
const FILE = '/ci/gateway.yml';
const target = (lines: string): string => `version: 1\ntargets:\n  web-vm:\n    kind: ssh\n${lines}`;
const ISSUE = target(`    host: 10.0.0.4
    port: 22
    user: deploy
    auth: { key-env: DEPLOY_SSH_KEY }
    host-key: "${KEY}"
`);

function error(text: string, file = FILE): string {
  try {
    parsePolicy(text, file);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('the policy loaded');
}

test("the issue's target loads as written", () => {
  const p = parsePolicy(ISSUE, FILE);
  const t = p.targets[0] as SshTarget;
  assert.equal(t.kind, 'ssh');
  assert.equal(t.host, '10.0.0.4');
  assert.equal(t.port, 22);
  assert.equal(t.user, 'deploy');
  assert.deepEqual(t.secretEnv, ['DEPLOY_SSH_KEY']);
  assert.equal(t.hostKeys[0]!.type, 'ssh-ed25519');
  const noPort = parsePolicy(ISSUE.replace('    port: 22\n', ''), FILE).targets[0] as SshTarget;
  assert.equal(noPort.port, 22, 'port defaults to 22');
});

test('mistakes are named with the line and what is wrong', () => {
  assert.match(error(ISSUE.replace(/    host-key: .*\n/, '')), /^\/ci\/gateway\.yml:\d+: targets\.web-vm: pin the host's key with host-key/);
  assert.match(error(ISSUE.replace(KEY, 'ssh-ed25519 AAAA')), /gateway\.yml:9: targets\.web-vm\.host-key: the key's data says nothing readable, not ssh-ed25519/);
  assert.match(error(ISSUE.replace(KEY, 'ssh-foo AAAA')), /gateway\.yml:9: targets\.web-vm\.host-key: unknown key type "ssh-foo"/);
  assert.match(error(ISSUE.replace(KEY, 'AAAAC3NzaC1lZDI1NTE5')), /gateway\.yml:9: targets\.web-vm\.host-key: expected "<key type> <base64 key>"/);
  assert.match(error(ISSUE.replace('auth: { key-env: DEPLOY_SSH_KEY }', 'auth: { passphrase-env: P }')), /gateway\.yml:8: targets\.web-vm\.auth: give key-env/);
  assert.match(error(ISSUE.replace('auth: { key-env: DEPLOY_SSH_KEY }', 'auth: { key-env: 9BAD }')), /gateway\.yml:8: .*key-env.*environment variable name/);
  assert.match(error(ISSUE.replace('    user: deploy\n', '')), /gateway\.yml:\d+: targets\.web-vm.*user/);
  assert.match(error(ISSUE.replace('port: 22', 'port: 70000')), /gateway\.yml:6: targets\.web-vm\.port/);
  assert.match(error(ISSUE + '    known-hosts: kh\n'), /targets\.web-vm: give host-key or known-hosts, not both/);
});

test('known-hosts: entries for the host pin its key (plain, [host]:port, hashed); others do not; revoked refuses', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-kh-'));
  const salt = randomBytes(20);
  const hashed = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update('[db.internal]:2222').digest('base64')}`;
  fs.writeFileSync(path.join(dir, 'known_hosts'), [
    '# a comment',
    `other.example ${OTHER}`,
    `10.0.0.4,web.internal ${KEY}`,
    `${hashed} ${OTHER}`,
    '@cert-authority *.internal ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl',
    '',
  ].join('\n'));
  const policy = (host: string, port = 22): string => target(`    host: ${host}\n    port: ${port}\n    user: deploy\n    auth: { password-env: PW }\n    known-hosts: known_hosts\n`);
  const t = parsePolicy(policy('web.internal'), path.join(dir, 'gateway.yml')).targets[0] as SshTarget;
  assert.equal(t.hostKeys.length, 1);
  assert.equal(isPinned((parseKeyLine(KEY) as { blob: Buffer }).blob, t.hostKeys), true);
  assert.equal(isPinned((parseKeyLine(OTHER) as { blob: Buffer }).blob, t.hostKeys), false);
  const h = parsePolicy(policy('db.internal', 2222), path.join(dir, 'gateway.yml')).targets[0] as SshTarget;
  assert.equal(isPinned((parseKeyLine(OTHER) as { blob: Buffer }).blob, h.hostKeys), true, 'the hashed entry');
  assert.match(error(policy('nowhere.example'), path.join(dir, 'gateway.yml')), /known-hosts: .*known_hosts has no key for nowhere\.example/);
  assert.match(error(policy('x', 22).replace('known_hosts', 'missing'), path.join(dir, 'gateway.yml')), /known-hosts: cannot read .*missing \(ENOENT\)/);
  const revoked = knownHostsKeys(`h ${KEY}\n@revoked h ${KEY}\n`, 'h', 22);
  assert.equal(isPinned((parseKeyLine(KEY) as { blob: Buffer }).blob, revoked.keys, revoked.revoked), false);
});

test("fingerprints are OpenSSH's SHA256 form", () => {
  const k = parseKeyLine(KEY) as { blob: Buffer };
  assert.match(fingerprint(k.blob), /^SHA256:[A-Za-z0-9+/]{43}$/);
});
