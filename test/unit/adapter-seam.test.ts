// The policy side of the seam with a second adapter (test/helpers/echo-adapter.ts): its target
// schema is merged into the one schema (line-numbered errors like postgres ones), its `when:`
// key is understood only for its targets, and a command without facts is unclassified whatever
// the adapter forgot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ADAPTERS } from '../../gateway/adapters.ts';
import { parsePolicy, PolicyError } from '../../gateway/config/policy.ts';
import { decide } from '../../gateway/policy/engine.ts';
import { echoAdapter } from '../helpers/echo-adapter.ts';

const WITH_ECHO = [...ADAPTERS, echoAdapter];
const TARGETS = `version: 1
targets:
  app-db: { kind: postgres, host: 127.0.0.1, database: app, user: deployer, auth: { password-env: PW }, tls: disable }
  lines:
    kind: echo
    host: 127.0.0.1
    port: 7000
`;
const load = (text: string): ReturnType<typeof parsePolicy> => parsePolicy(text, '/ci/gateway.yml', WITH_ECHO);
const error = (text: string): string => {
  try {
    load(text);
    return 'no error';
  } catch (e) {
    assert.ok(e instanceof PolicyError, String(e));
    return e.message;
  }
};

test("an adapter's target schema gives line-numbered errors like the shipped kinds'", () => {
  assert.equal(error(TARGETS.replace('    port: 7000\n', '    port: 0\n')), '/ci/gateway.yml:7: targets.lines.port: 0 is out of range; use 1 to 65535');
  assert.match(error(TARGETS.replace('    host: 127.0.0.1\n    port', '    hots: x\n    port')), /^\/ci\/gateway\.yml:6: targets\.lines: unknown key "hots" \(did you mean "host"\?\)/);
  assert.equal(error(TARGETS.replace('host: 127.0.0.1\n    port', 'host: forbidden.example\n    port')), '/ci/gateway.yml:6: targets.lines.host: forbidden.example is not allowed');
  assert.match(error(TARGETS.replace('kind: echo', 'kind: ecko')), /^\/ci\/gateway\.yml:5: targets\.lines\.kind: "ecko" is not a target kind this gateway supports.*postgres, ssh, http, kubernetes, echo/);
  // Without the adapter, the kind is unknown: the loader knows only the adapters it is given.
  assert.throws(() => parsePolicy(TARGETS, '/ci/gateway.yml', ADAPTERS), /:5: targets\.lines\.kind: "echo" is not a target kind/);
});

test('a when: key no target of the rule understands is a load error naming its line', () => {
  const rule = (target: string, when: string): string => `${TARGETS}rules:\n  - name: r\n    target: ${target}\n    when: { ${when} }\n    action: deny\n`;
  assert.equal(error(rule('lines', 'sql: [drop]')), '/ci/gateway.yml:11: rule "r": when.sql does not apply to the targets this rule applies to (echo): it is a condition of postgres targets');
  assert.equal(error(rule('app-db', 'line: ["rm *"]')), '/ci/gateway.yml:11: rule "r": when.line does not apply to the targets this rule applies to (postgres): it is a condition of echo targets');
  assert.equal(error(rule('"*"', 'line: ["rm ?"]')), '/ci/gateway.yml:11: rule "r": bad line glob "rm ?": only * is a wildcard');
  // Claims are protocol-neutral: a claims-only rule loads for any target.
  assert.equal(error(rule('lines', 'ref: refs/heads/main')), 'no error');
});

test('a rule over several kinds applies its adapter conditions to the kinds that have them only', () => {
  const p = load(`${TARGETS}rules:\n  - name: no-drop\n    when: { sql: [drop] }\n    action: deny\n  - name: no-rm\n    when: { line: ["rm *"] }\n    action: deny\n  - name: not-on-main\n    when: { ref: refs/heads/main }\n    action: approve\n`);
  const pg = (classes: string[]) => decide(p.rules, { kind: 'postgres', target: 'app-db', units: [{ classes, tables: [], normalized: '' }] }, {}).rule;
  const line = (l: string, ref?: string) => decide(p.rules, { kind: 'echo', target: 'lines', units: [{ line: l }] }, ref ? { ref } : {}).rule;
  assert.equal(pg(['drop']), 'no-drop');
  assert.equal(line('drop'), 'default', 'an echo line is never read as SQL');
  assert.equal(line('rm -rf /'), 'no-rm');
  assert.equal(line('ls', 'refs/heads/main'), 'not-on-main');
});

test('a command the adapter gave no facts for is unclassified, never decided by the default', () => {
  const p = load(`${TARGETS}default: allow\nunclassified: deny\n`);
  const d = (units: object[] | null, runsNothing = false) => decide(p.rules, { kind: 'echo', target: 'lines', units, runsNothing }, {});
  assert.equal(d(null).rule, 'unclassified');
  assert.equal(d([]).rule, 'unclassified', 'no units and no word that it runs nothing');
  assert.equal(d([{}]).rule, 'unclassified', 'a unit that says nothing');
  assert.equal(d([{ line: 'ls' }, {}]).rule, 'unclassified', 'one silent unit is enough');
  assert.equal(d([], true).action, 'allow', 'an adapter that knows the command runs nothing says so');
  assert.equal(d([{ line: 'ls' }]).rule, 'default');
});
