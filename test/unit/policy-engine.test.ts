import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decide, type CommandFacts } from '../../gateway/policy/engine.ts';
import { parsePolicy } from '../../gateway/adapters.ts';

const POLICY = `version: 1
targets:
  app-db: { kind: postgres, host: 127.0.0.1, database: app, user: deployer, auth: { password-env: PW }, tls: disable }
rules:
  - name: approve-destructive-ddl
    target: app-db
    when: { sql: [drop, truncate] }
    action: approve
  - name: no-unbounded-writes
    when: { sql: [delete-without-where, update-without-where] }
    action: deny
    reason: "Unbounded DELETE/UPDATE is never allowed from CI"
  - name: ddl-only-on-main
    when: { sql: [ddl], ref-not: refs/heads/main }
    action: deny
  - name: audit-is-read-only
    when: { tables: ["audit.*"], sql: [insert, update, delete] }
    action: deny
  - name: no-pg-sleep
    when: { text-matches: "pg_sleep" }
    action: deny
default: allow
unclassified: deny
`;

const policy = parsePolicy(POLICY, 'gateway.yml').rules;
const stmt = (classes: string[], tables: string[] = [], normalized = ''): CommandFacts => ({ kind: 'postgres', target: 'app-db', units: [{ classes, tables, normalized }] });

test('the strictest matching rule wins, then the default', () => {
  const main = { ref: 'refs/heads/main' };
  assert.equal(decide(policy, stmt(['select']), main).action, 'allow');
  assert.equal(decide(policy, stmt(['select']), main).rule, 'default');
  const drop = decide(policy, stmt(['drop', 'ddl']), main);
  assert.deepEqual([drop.action, drop.rule], ['approve', 'approve-destructive-ddl']);
  // On a branch the same DROP also matches ddl-only-on-main: deny beats approve.
  const onBranch = decide(policy, stmt(['drop', 'ddl']), { ref: 'refs/heads/feature' });
  assert.deepEqual([onBranch.action, onBranch.rule], ['deny', 'ddl-only-on-main']);
  assert.deepEqual(onBranch.matched.sort(), ['approve-destructive-ddl', 'ddl-only-on-main']);
  const del = decide(policy, stmt(['delete', 'delete-without-where']), main);
  assert.deepEqual([del.action, del.reason], ['deny', 'Unbounded DELETE/UPDATE is never allowed from CI']);
});

test('every statement of a message counts; the strictest decision applies to all of it', () => {
  const d = decide(policy, { kind: 'postgres', target: 'app-db', units: [{ classes: ['select'], tables: [], normalized: '' }, { classes: ['truncate'], tables: [], normalized: '' }] }, { ref: 'refs/heads/main' });
  assert.equal(d.action, 'approve');
});

test('tables match with globs, unqualified names in any schema; text-matches sees the normalized text', () => {
  assert.equal(decide(policy, stmt(['insert'], ['audit.log']), {}).rule, 'audit-is-read-only');
  assert.equal(decide(policy, stmt(['select'], ['audit.log']), {}).action, 'allow');
  assert.equal(decide(policy, stmt(['select'], [], 'select pg_sleep ( 1 )'), {}).rule, 'no-pg-sleep');
});

test('unclassified statements get the unclassified action', () => {
  const d = decide(policy, { kind: 'postgres', target: 'app-db', units: null, unclassifiedReason: 'syntax error' }, {});
  assert.deepEqual([d.action, d.rule], ['deny', 'unclassified']);
  assert.match(d.reason, /syntax error/);
});

test('malformed rules are reported with their line', () => {
  const bad = (from: string, to: string): string => {
    try {
      parsePolicy(POLICY.replace(from, to), 'gateway.yml');
      return 'no error';
    } catch (e) {
      return (e as Error).message;
    }
  };
  assert.equal(bad('[drop, truncate]', '[drop, trunc]'), `gateway.yml:7: rule "approve-destructive-ddl": unknown SQL class "trunc" (classes: select, insert, update, delete, merge, update-without-where, delete-without-where, ddl, create, alter, drop, truncate, grant, revoke, role, copy, copy-to-program, copy-from-program, do-block, function-definition, transaction, set, explain, prepare, execute, cursor, lock, listen, notify, vacuum, maintenance, utility)`);
  assert.match(bad('"pg_sleep"', '"pg_sleep("'), /^gateway\.yml:20: rule "no-pg-sleep": bad regular expression/);
  assert.match(bad('"audit.*"', '"audit.[a-z]"'), /^gateway\.yml:17: rule "audit-is-read-only": bad table glob "audit\.\[a-z\]"/);
  assert.match(bad('target: app-db', 'target: app-dbb'), /^gateway\.yml:6: rule "approve-destructive-ddl": target "app-dbb" is not defined/);
  assert.equal(bad('action: approve', 'action: maybe'), 'gateway.yml:8: rules[0].action: "maybe" is not a decision; use one of: allow, deny, approve');
  assert.match(bad('default: allow', 'default: perhaps'), /^gateway\.yml:22: default: "perhaps" is not a decision; use one of: allow, deny, approve/);
});

test("the issue's policy, approve rule included, runs as written and announces its approver", async () => {
  const { cli, tempDir } = await import('../helpers/gateway.ts');
  const fs = await import('node:fs');
  const file = `${tempDir()}/gateway.yml`;
  fs.writeFileSync(file, POLICY);
  const dir = tempDir();
  const r = cli(['run', '--policy', file, '--log-dir', dir, '--', 'true'], { env: { ...process.env, PW: 'x', GATEWAY_ACTION_RUNTIME_DIR: `${dir}/run` } });
  assert.equal(r.status, 0, r.stderr);
  const log = fs.readdirSync(dir).find((f) => f.endsWith('.jsonl'))!;
  const approvals = fs.readFileSync(`${dir}/${log}`, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string; approvers?: string[] }).find((x) => x.type === 'approvals');
  assert.deepEqual(approvals?.approvers, ['local']);
});

/** A policy whose one rule denies statements on these tables. */
const protecting = (tables: string[]): ReturnType<typeof parsePolicy>['rules'] =>
  parsePolicy(`version: 1\ntargets:\n  app-db: { kind: postgres, host: 127.0.0.1, database: app, user: deployer, auth: { password-env: PW }, tls: disable }\nrules:\n  - name: protect\n    when: { tables: ${JSON.stringify(tables)} }\n    action: deny\n`, 'gateway.yml').rules;

test('a statement on a whole schema (S.*) matches every table glob in S', async () => {
  const policy = protecting(['public.accounts', 'audit.*']);
  const on = (tables: string[]): string => decide(policy, { kind: 'postgres', target: 'app-db', units: [{ classes: ['alter'], tables, normalized: '' }] }, {}).action;
  assert.equal(on(['public.*']), 'deny');
  assert.equal(on(['audit.*']), 'deny');
  assert.equal(on(['sales.*']), 'allow');
  assert.equal(on(['public.other']), 'allow');
});

test('a table glob without a schema names the table in every schema', async () => {
  const policy = protecting(['accounts']);
  const on = (tables: string[]): string => decide(policy, { kind: 'postgres', target: 'app-db', units: [{ classes: ['delete'], tables, normalized: '' }] }, {}).action;
  assert.equal(on(['public.accounts']), 'deny');
  assert.equal(on(['accounts']), 'deny');
  assert.equal(on(['sales.accounts']), 'deny');
  assert.equal(on(['public.*']), 'deny', 'a whole-schema statement touches it too');
  assert.equal(on(['public.accounts_old']), 'allow');
});
