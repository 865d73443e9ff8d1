// The ARM path corpus (test/corpus/arm-paths.txt): every request-target normalized
// (request-path.ts), read into a request's facts (request-facts.ts) and decided under the
// policy of issue 14 as written, loaded by the shipped policy loader (needs openssl for the
// internal API's ca-file).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { parsePolicy } from '../../gateway/adapters.ts';
import { decide } from '../../gateway/policy/engine.ts';
import type { ArmResource } from '../../gateway/http/arm-resource.ts';
import { requestUnit } from '../../gateway/http/request-facts.ts';
import { normalizeRequestPath } from '../../gateway/http/request-path.ts';
import { makeCertificates } from '../helpers/entra-stand-in.ts';
import { ROOT } from '../helpers/gateway.ts';

// The issue's policy block as written.
const POLICY = `
version: 1
targets:
  arm:
    kind: http
    url: https://management.azure.com
    auth: azure                                  # Entra token for https://management.azure.com/.default, injected by the gateway
  internal-api:
    kind: http
    url: https://api.internal.example
    auth: { bearer-env: API_TOKEN }              # or header-env: { X-Api-Key: API_KEY }, or basic-env
    ca-file: internal-ca.pem
rules:
  - { name: review-deletes, target: arm, when: { method: [DELETE] }, action: approve }
  - { name: no-storage-keys, target: arm, when: { resource: { provider: Microsoft.Storage, action: [listKeys, regenerateKey] } }, action: deny }
  - { name: no-role-assignments, when: { resource: { provider: Microsoft.Authorization, type: [roleAssignments] }, method: [PUT, DELETE] }, action: deny }
  - { name: nsg-changes-on-main-only, when: { path: ["/subscriptions/*/resourceGroups/*/providers/Microsoft.Network/networkSecurityGroups/**"], method: [PUT, PATCH, DELETE], ref-not: refs/heads/main }, action: deny }
`;

/** The policy as the loader reads it from a directory that holds its ca-file (a throwaway CA from openssl). */
async function loadIssuePolicy() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'arm-corpus-'));
  try {
    const { caFile } = await makeCertificates(dir, 'DNS:api.internal.example', 'internal API');
    fs.copyFileSync(caFile, path.join(dir, 'internal-ca.pem'));
    return parsePolicy(POLICY, path.join(dir, 'policy.yml'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const SUB = 'd1c6f3a2-5b4e-4f7a-9c8d-0e1f2a3b4c5d';
const HOSTS: Record<string, { url: string; target: string }> = {
  '{arm}': { url: 'https://management.azure.com', target: 'arm' },
  '{api}': { url: 'https://api.internal.example', target: 'internal-api' },
};

interface Case { line: number; expected: string; ref: string; reading: string; method: string; url: string; target: string }

function corpus(): Case[] {
  const lines = fs.readFileSync(path.join(ROOT, 'test/corpus/arm-paths.txt'), 'utf8').split('\n');
  const cases: Case[] = [];
  lines.forEach((l, k) => {
    if (l.trim() === '' || l.startsWith('#')) return;
    const parts = l.replaceAll('{sub}', SUB).split(' | ');
    assert.equal(parts.length, 3, `line ${k + 1}: EXPECTED | READING | METHOD URL`);
    const [expected, reading, request] = parts as [string, string, string];
    const sp = request.indexOf(' ');
    const method = request.slice(0, sp);
    let url = request.slice(sp + 1);
    const host = Object.keys(HOSTS).find((h) => url.startsWith(h));
    const target = host ? HOSTS[host]!.target : 'arm';
    if (host) url = HOSTS[host]!.url + url.slice(host.length);
    const main = expected.endsWith(' (main)');
    cases.push({ line: k + 1, expected: main ? expected.slice(0, -' (main)'.length) : expected, ref: main ? 'refs/heads/main' : 'refs/heads/feature/x', reading, method, url, target });
  });
  return cases;
}

/** The resource as the corpus writes it: its type, then its other fields as key=value. */
function readingOf(r: ArmResource): string {
  const fields: [string, string | undefined][] = [['name', r.name], ['action', r.action], ['rg', r.resourceGroup], ['sub', r.subscription], ['scope', r.scope]];
  return [r.type, ...fields.filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`)].join(' ');
}

test('the corpus: every ARM path read and decided as written', async () => {
  const policy = await loadIssuePolicy();
  const cases = corpus();
  assert.ok(cases.length >= 60, `${cases.length} cases`);
  const failures: string[] = [];
  for (const c of cases) {
    const normal = normalizeRequestPath(c.url);
    let reading: string;
    let decision: string;
    if ('problem' in normal) {
      reading = 'refused';
      decision = 'refused';
    } else {
      const host = new URL(c.url).host;
      const unit = requestUnit(c.method, host, normal.path);
      const claims = { ref: c.ref };
      if ('unclassified' in unit) {
        reading = 'unclassified';
        const d = decide(policy.rules, { kind: 'http', target: c.target, units: null, unclassifiedReason: unit.unclassified }, claims);
        decision = `${d.action}:${d.rule}`;
      } else {
        reading = unit.resource ? readingOf(unit.resource) : '-';
        const d = decide(policy.rules, { kind: 'http', target: c.target, units: [unit] }, claims);
        decision = `${d.action}:${d.rule}`;
      }
    }
    if (reading !== c.reading || decision !== c.expected) failures.push(`line ${c.line}: ${c.method} ${c.url}\n    expected ${c.expected} | ${c.reading}\n    got      ${decision} | ${reading}`);
  }
  assert.equal(failures.length, 0, `\n${failures.join('\n')}`);
});

test('the corpus covers each rule of the issue, refusals and unclassified requests', () => {
  const expected = new Set(corpus().map((c) => c.expected));
  for (const e of ['approve:review-deletes', 'deny:no-storage-keys', 'deny:no-role-assignments', 'deny:nsg-changes-on-main-only', 'allow:default', 'deny:unclassified', 'refused']) assert.ok(expected.has(e), e);
});
