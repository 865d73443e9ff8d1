// The SSH exec-line corpus (test/corpus/ssh-exec.txt): every line read by the real shell parser
// and decided under the policy of issue 13, loaded by the shipped policy loader (with the shipped
// adapters), as the command gate decides it (the units, and the unclassified part: strictest wins).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parsePolicy } from '../../gateway/adapters.ts';
import { decide, strictest, type Decision, type PolicyRules } from '../../gateway/policy/engine.ts';
import { loadShellParser, readExecLine } from '../../gateway/ssh/exec-facts.ts';
import { ROOT } from '../helpers/gateway.ts';

// The policy block as written; only the host key is a real one (the loader checks it).
const POLICY = `
version: 1
targets:
  web-vm:
    kind: ssh
    host: 10.0.0.4
    port: 22                                   # default 22
    user: deploy
    auth: { key-env: DEPLOY_SSH_KEY }          # private key (OpenSSH or PEM) from an env var; passphrase-env optional; or password-env
    host-key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINtIFkckX8lw6VYcAbkcV1+UMaB5hXbK9zli+jWebYTy"
rules:
  - name: no-recursive-rm
    target: web-vm
    when: { program: [rm], option: [-r, -R, --recursive] }
    action: deny
    reason: "Recursive deletes on servers are never run from CI"
  - name: no-disk-tools
    when: { command: ["mkfs*", "dd * of=/dev/*", "shutdown*", "reboot*"] }
    action: deny
  - name: restarts-need-review
    when: { command: ["systemctl restart *", "systemctl stop *"] }
    action: approve
  - name: no-interactive-shell
    when: { ssh: [shell] }
    action: deny
  - name: no-tunnels
    when: { ssh: [port-forward] }
    action: deny
  - name: no-key-downloads
    when: { path: ["/etc/shadow", "/home/*/.ssh/**", "/root/**"] }
    action: deny
`;

interface Case { line: number; expected: string; text: string }

function unescape(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\\' && (s[i + 1] === 'n' || s[i + 1] === 't' || s[i + 1] === '\\')) {
      out += s[i + 1] === 'n' ? '\n' : s[i + 1] === 't' ? '\t' : '\\';
      i++;
    } else out += s[i];
  }
  return out;
}

function corpus(): Case[] {
  const lines = fs.readFileSync(path.join(ROOT, 'test/corpus/ssh-exec.txt'), 'utf8').split('\n');
  const cases: Case[] = [];
  lines.forEach((l, k) => {
    if (l.trim() === '' || l.startsWith('#')) return;
    const bar = l.indexOf(' | ');
    assert.ok(bar > 0, `line ${k + 1} has no " | "`);
    cases.push({ line: k + 1, expected: l.slice(0, bar).trim(), text: unescape(l.slice(bar + 3)) });
  });
  return cases;
}

/** The decision the command gate reaches for an exec line (gateway/core/command-gate.ts). */
async function decideLine(rules: PolicyRules, text: string): Promise<Decision> {
  const r = await readExecLine(text, { home: '/home/deploy' });
  const facts = { kind: 'ssh', target: 'web-vm' };
  let d = decide(rules, { ...facts, units: r.units, unclassifiedReason: r.unclassified ?? undefined }, {});
  if (r.unclassified) d = strictest(d, decide(rules, { ...facts, units: null, unclassifiedReason: r.unclassified }, {}));
  return d;
}

test('every exec line of the corpus gets its decision and rule under the issue policy', async () => {
  await loadShellParser();
  const policy = parsePolicy(POLICY, 'issue-13.yml');
  const cases = corpus();
  assert.ok(cases.length >= 150, `the corpus has ${cases.length} lines`);
  const wrong: string[] = [];
  for (const c of cases) {
    const d = await decideLine(policy.rules, c.text);
    const got = `${d.action}:${d.rule}`;
    if (got !== c.expected) {
      const r = await readExecLine(c.text, { home: '/home/deploy' });
      wrong.push(`line ${c.line}: ${JSON.stringify(c.text)} expected ${c.expected}, got ${got}\n    units ${JSON.stringify(r.units)}\n    unclassified ${r.unclassified}`);
    }
  }
  assert.deepEqual(wrong, [], `${wrong.length} of ${cases.length} lines decided otherwise:\n${wrong.join('\n')}`);
});

test('every rule of the issue policy decides at least one corpus line (the corpus covers the policy)', async () => {
  const expected = new Set(corpus().map((c) => c.expected.split(':')[1]));
  for (const rule of ['no-recursive-rm', 'no-disk-tools', 'restarts-need-review', 'no-key-downloads', 'unclassified', 'default']) assert.ok(expected.has(rule), rule);
});

test('the channel classes decide through the same policy: a shell and a port forward are denied', () => {
  const policy = parsePolicy(POLICY, 'issue-13.yml');
  const facts = { kind: 'ssh', target: 'web-vm' };
  assert.equal(decide(policy.rules, { ...facts, units: [{ ssh: 'shell' }] }, {}).rule, 'no-interactive-shell');
  assert.equal(decide(policy.rules, { ...facts, units: [{ ssh: 'port-forward' }] }, {}).rule, 'no-tunnels');
  assert.equal(decide(policy.rules, { ...facts, units: [{ ssh: 'sftp', paths: ['/root/.ssh/id_rsa'] }] }, {}).rule, 'no-key-downloads');
  assert.equal(decide(policy.rules, { ...facts, units: [{ ssh: 'sftp', paths: ['/srv/app/x'] }] }, {}).action, 'allow');
});
