// Every constraint of the policy schema fails with a sentence: the file and line, the path as
// `a.b[3]`, the value written and what is expected. The schema carries its own words for what no
// generic sentence can say (x-expected / x-hint beside each pattern, enum, const, oneOf, not,
// format); these tests walk the schema so a new constraint without words, or without a case
// here, fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import schema from '../../gateway/config/policy.schema.json' with { type: 'json' };
import { PolicyError } from '../../gateway/config/policy.ts';
import { parsePolicy } from '../../gateway/adapters.ts';
import { explain, schemaPointers, GENERIC_KEYWORDS, STRUCTURAL_KEYWORDS, WORDED_KEYWORDS } from '../../gateway/config/schema-errors.ts';
import { cli, tempDir } from '../helpers/gateway.ts';

const FILE = '/ci/gateway.yml';
/** Ten lines; what a case appends starts on line 11. */
const BASE = `version: 1
targets:
  app-db:
    kind: postgres
    host: 127.0.0.1
    port: 5432
    database: app
    user: deployer
    auth: { password-env: APP_DB_PASSWORD }
    tls: disable
`;
const RULE = (body: string): string => `${BASE}rules:\n  - name: r\n${body}`;

type Node = Record<string, unknown>;
const SCHEMA_KEYS = new Set(['properties', 'definitions']);
const SUBSCHEMA = new Set(['items', 'additionalProperties', 'propertyNames', 'then', 'else']);
const SUBSCHEMA_LISTS = new Set(['allOf', 'oneOf', 'anyOf']);

/**
 * Walks a schema as Ajv applies it; `visit` sees every node whose failures reach a user (not the
 * insides of `if` or `not`, which only decide). Returns the JSON pointer of each node.
 */
function walk(root: unknown, visit: (node: Node, ptr: string) => void): void {
  const go = (node: unknown, ptr: string): void => {
    if (node === null || typeof node !== 'object' || Array.isArray(node)) return;
    visit(node as Node, ptr);
    for (const [k, v] of Object.entries(node as Node)) {
      if (SCHEMA_KEYS.has(k)) for (const [name, sub] of Object.entries(v as Node)) go(sub, `${ptr}/${k}/${name}`);
      else if (SUBSCHEMA.has(k)) go(v, `${ptr}/${k}`);
      else if (SUBSCHEMA_LISTS.has(k)) (v as unknown[]).forEach((sub, i) => go(sub, `${ptr}/${k}/${i}`));
    }
  };
  go(root, '#');
}

/** Problems with the schema's words: unknown keywords, and worded keywords without x-expected. */
function missingWords(root: unknown): string[] {
  const known = new Set<string>([...WORDED_KEYWORDS, ...GENERIC_KEYWORDS, ...STRUCTURAL_KEYWORDS]);
  const out: string[] = [];
  walk(root, (node, ptr) => {
    for (const k of Object.keys(node)) {
      if (!known.has(k)) out.push(`${ptr}/${k}: keyword "${k}" has no sentence in gateway/config/schema-errors.ts`);
      if ((WORDED_KEYWORDS as readonly string[]).includes(k) && typeof node['x-expected'] !== 'string') out.push(`${ptr}/${k}: needs "x-expected" (what a valid value is, in words)`);
    }
  });
  return out;
}

/** Every place in the schema a worded keyword can fail, and every generic keyword used. */
function constraints(root: unknown): { worded: string[]; generic: Set<string> } {
  const worded: string[] = [];
  const generic = new Set<string>();
  walk(root, (node, ptr) => {
    for (const k of Object.keys(node)) {
      if ((WORDED_KEYWORDS as readonly string[]).includes(k)) worded.push(`${ptr}/${k}`);
      // A schema-valued additionalProperties fails through its schema, propertyNames through its pattern.
      if ((GENERIC_KEYWORDS as readonly string[]).includes(k) && k !== 'propertyNames' && !(k === 'additionalProperties' && node[k] !== false)) generic.add(k);
    }
  });
  return { worded, generic };
}

/** An SSH target whose auth is the given YAML flow mapping (line 8). */
const SSH = (auth: string): string => `version: 1\ntargets:\n  web-vm:\n    kind: ssh\n    host: 10.0.0.4\n    user: deploy\n    host-key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"\n    auth: ${auth}\n`;

/** [policy text, line, exact message]: one case at least for every constraint of the schema. */
const HTTP = (auth: string): string => `version: 1\ntargets:\n  arm:\n    kind: http\n    url: https://management.azure.com\n    auth: ${auth}\n`;
const KUBE = (auth: string): string => `version: 1\ntargets:\n  aks:\n    kind: kubernetes\n    server: https://aks.example.io\n    auth: ${auth}\n`;
const CASES: [string, number, string][] = [
  // pattern, enum, const, oneOf, not: the schema's words.
  [BASE.replace('version: 1', 'version: 2'), 1, 'version: 2 is not a policy format version this gateway reads; write version: 1'],
  [BASE + '  1st.db:\n    kind: postgres\n', 11, `targets: "1st.db" is not a target name; start with a letter, then up to 62 letters, digits, '-' or '_'`],
  [BASE + 'session-log:\n  checkpoints:\n    every: 5 seconds\n', 13, 'session-log.checkpoints.every: "5 seconds" is not a duration; write a whole number and a unit: 500ms, 5s, 1m or 1h (0s turns the time trigger off)'],
  [BASE + 'default: block\n', 11, 'default: "block" is not a decision; use one of: allow, deny, approve'],
  [BASE + 'unclassified: alow\n', 11, 'unclassified: "alow" is not a decision; use one of: allow, deny, approve (did you mean "allow"?)'],
  [BASE + 'approvals:\n  timeout: 15 minutes\n', 12, 'approvals.timeout: "15 minutes" is not a duration; write a whole number and a unit, such as 90s, 15m or 1h'],
  [BASE + 'approvals:\n  approvers: [alice, "@octo-org/dba", bob, "github-actions[bot]"]\n', 12, 'approvals.approvers[3]: "github-actions[bot]" is not a GitHub login or @org/team; bots never approve'],
  [BASE + 'approvals:\n  approvers:\n    - alice\n    - "alice smith"\n', 14, 'approvals.approvers[1]: "alice smith" is not a GitHub login or @org/team; a login has letters, digits and single hyphens (alice, @alice), a team is @org/team-slug'],
  [BASE + 'approvals:\n  where: pr\n', 12, 'approvals.where: "pr" is not a place to ask for approval; use pull-request or issue:NUMBER, such as issue:42'],
  [BASE + 'masking:\n  detectors: [email, creditcard]\n', 12, 'masking.detectors[1]: "creditcard" is not a detector; use one of: email, credit-card, iban, jwt, azure-storage-key, azure-sas-token, connection-string, private-key, github-token (did you mean "credit-card"?)'],
  [BASE + 'masking:\n  apply-to: [logs]\n', 12, 'masking.apply-to[0]: "logs" is not a place masking applies to; use one of: client, log (did you mean "log"?)'],
  [BASE.replace('kind: postgres', 'kind: postgresql'), 4, 'targets.app-db.kind: "postgresql" is not a target kind this gateway supports; use one of: postgres, ssh, http, kubernetes (did you mean "postgres"?)'],
  [SSH('{ key-env: 1KEY }'), 8, 'targets.web-vm.auth.key-env: the value written (not repeated here: it may be a secret) is not an environment variable name; use letters, digits and _, not starting with a digit'],
  [SSH('{ key-env: KEY, passphrase-env: my passphrase }'), 8, 'targets.web-vm.auth.passphrase-env: the value written (not repeated here: it may be a secret) is not an environment variable name; use letters, digits and _, not starting with a digit'],
  [SSH('{ password-env: "hunter2!" }'), 8, 'targets.web-vm.auth.password-env: the value written (not repeated here: it may be a secret) is not an environment variable name; use letters, digits and _, not starting with a digit'],
  [BASE.replace('{ password-env: APP_DB_PASSWORD }', 'entra'), 9, 'targets.app-db.auth: the value written (not repeated here: it may be a secret) is not an auth method; write azure, or a mapping { password-env: NAME }'],
  [BASE.replace('{ password-env: APP_DB_PASSWORD }', '[APP_DB_PASSWORD]'), 9, 'targets.app-db.auth must be azure or a mapping { password-env: NAME }, not a list'],
  [BASE.replace('APP_DB_PASSWORD', '$APP_DB_PASSWORD'), 9, 'targets.app-db.auth.password-env: the value written (not repeated here: it may be a secret) is not an environment variable name; use letters, digits and _, not starting with a digit'],
  [BASE.replace('tls: disable', 'tls: on'), 10, 'targets.app-db.tls: "on" is not a TLS mode; use one of: disable, require, verify-full'],
  [RULE('    target: { name: app-db }\n    when: { sql: [drop] }\n    action: deny\n'), 13, 'rules[0].target must be a name or glob, or a list of them, not a mapping'],
  [RULE('    target: [app-db, 5]\n    when: { sql: [drop] }\n    action: deny\n'), 13, 'rules[0].target[1] must be text, not the number 5'],
  [RULE('    target: []\n    when: { sql: [drop] }\n    action: deny\n'), 13, 'rules[0].target must not be an empty list'],
  [BASE + 'rules:\n  - name: "no drops!"\n    when: { sql: [drop] }\n    action: deny\n', 12, `rules[0].name: "no drops!" is not a rule name; start with a letter or digit, then letters, digits, '_', '.' or '-'`],
  [RULE('    when: { sql: [drop] }\n    action: refuse\n'), 14, 'rules[0].action: "refuse" is not a decision; use one of: allow, deny, approve'],
  [HTTP('azure-ad'), 6, 'targets.arm.auth: the value written (not repeated here: it may be a secret) is not an auth method; use one of: azure, none; write azure or none, or a mapping { bearer-env: NAME }, { header-env: { Header: NAME } } or { basic-env: NAME }'],
  [HTTP('{ bearer-env: "my token" }'), 6, 'targets.arm.auth.bearer-env: the value written (not repeated here: it may be a secret) is not an environment variable name; use letters, digits and _, not starting with a digit'],
  [HTTP('{ basic-env: 1BASIC }'), 6, 'targets.arm.auth.basic-env: the value written (not repeated here: it may be a secret) is not an environment variable name; use letters, digits and _, not starting with a digit'],
  [HTTP('{ header-env: { "X Api Key": API_KEY } }'), 6, 'targets.arm.auth.header-env: "X Api Key" is not an HTTP header name'],
  [HTTP('{ header-env: { X-Api-Key: "$API_KEY" } }'), 6, 'targets.arm.auth.header-env.X-Api-Key: the value written (not repeated here: it may be a secret) is not an environment variable name; use letters, digits and _, not starting with a digit'],
  [HTTP('{ bearer-env: A, basic-env: B }'), 6, 'targets.arm.auth must have at most 1 entry'],
  [HTTP('none') + '    connect-to: 127.0.0.1\n', 7, 'targets.arm.connect-to: "127.0.0.1" is not host:port'],
  [KUBE('aad'), 6, 'targets.aks.auth: the value written (not repeated here: it may be a secret) is not an auth method; use one of: azure; write azure, or a mapping { token-env: NAME } or { client-cert-env: NAME, client-key-env: NAME }'],
  ...([['token-env: 1X', 'token-env'], ['client-cert-env: 1X, client-key-env: K', 'client-cert-env'], ['client-cert-env: C, client-key-env: 1X', 'client-key-env']].map(([a, key]) => [KUBE(`{ ${a} }`), 6, `targets.aks.auth.${key}: the value written (not repeated here: it may be a secret) is not an environment variable name; use letters, digits and _, not starting with a digit`] as [string, number, string])),
  [KUBE('azure') + '    namespace: Prod\n', 7, 'targets.aks.namespace: "Prod" is not a namespace name (a DNS label)'],
  [KUBE('azure') + `    namespace: ${'a'.repeat(64)}\n`, 7, 'targets.aks.namespace must be at most 63 characters long'],
  [KUBE('azure') + '    connect-to: 127.0.0.1\n', 7, 'targets.aks.connect-to: "127.0.0.1" is not host:port'],
  ...(['verb', 'resource', 'subresource', 'group', 'version', 'name', 'namespace'].map((f) => [KUBE('azure') + `rules:\n  - name: r\n    when: { kube: { ${f}: { a: 1 } } }\n    action: deny\n`, 9, `rules[0].when.kube.${f} must be a name glob or a list of them, not a mapping`] as [string, number, string])),
  ...(['provider', 'type', 'action', 'name', 'resource-group', 'subscription'].map((f) => [HTTP('none') + `rules:\n  - name: r\n    when: { resource: { ${f}: { a: 1 } } }\n    action: deny\n`, 9, `rules[0].when.resource.${f} must be a name glob or a list of them, not a mapping`] as [string, number, string])),
  [BASE + 'egress:\n  - host: "api anthropic.com"\n', 12, 'egress[0].host: "api anthropic.com" is not a host name, *.domain or IP address; such as api.anthropic.com, "*.npmjs.org" (in quotes: YAML reads a leading * as an alias) or 140.82.112.3'],
  [BASE + 'egress:\n  - host: *.npmjs.org\n', 12, 'invalid YAML: Unresolved alias (the anchor must be set before the alias): .npmjs.org; a value that starts with * is read as an alias: put it in quotes ("*.npmjs.org")'],
  // Generic sentences.
  ['- app-db\n', 1, 'the policy file must be a mapping of keys (version:, targets:, ...), not a list'],
  [BASE.replace('port: 5432', 'port: 5432.5'), 6, 'targets.app-db.port must be a whole number, not the number 5432.5'],
  [BASE + 'approvals:\n  allow-self-approval: "no"\n', 12, 'approvals.allow-self-approval must be true or false, not the text "no"'],
  [BASE.replace('port: 5432', 'port: 0'), 6, 'targets.app-db.port: 0 is out of range; use 1 to 65535'],
  [BASE + 'session-log:\n  sample-rows: 5000\n', 12, 'session-log.sample-rows: 5000 is out of range; use 0 to 1000'],
  [BASE.replace('host: 127.0.0.1', 'host: ""'), 5, 'targets.app-db.host must not be empty'],
  [BASE + 'approvals:\n  approvers: []\n', 12, 'approvals.approvers must not be an empty list'],
  ['version: 1\ntargets: {}\n', 2, 'targets must not be empty: name at least one entry'],
  [BASE + 'masking:\n  apply-to: [log, log]\n', 12, 'masking.apply-to lists "log" twice'],
  [BASE.replace('    kind: postgres\n', ''), 4, 'targets.app-db is missing required key "kind": the kind of system the target is: postgres, ssh, http, kubernetes'],
  [BASE.replace('    database: app\n', ''), 4, 'targets.app-db is missing required key "database": the database clients are connected to; clients cannot choose another'],
  [BASE.replace('version: 1\n', ''), 1, 'the policy file is missing required key "version": policy file format version'],
  [BASE.replace('    tls: disable', '    tsl: disable'), 10, 'targets.app-db: unknown key "tsl" (did you mean "tls"?)'],
  [BASE + 'approvals:\n  approver: [alice]\n', 12, 'approvals: unknown key "approver" (did you mean "approvers"?)'],
  [BASE + 'masking:\n  secrets: [x]\n', 12, 'masking: unknown key "secrets" (known keys: columns, json-fields, detectors, apply-to)'],
  [BASE + 'version-2: true\n', 11, 'unknown top-level key "version-2" (did you mean "version"?)'],
];

test('every keyword in the policy schema has a sentence, and every pattern, enum, const, oneOf, not and format its words', () => {
  assert.deepEqual(missingWords(schema), []);
  // The check itself catches what it is for.
  const bare = { type: 'object', properties: { a: { type: 'string', pattern: '^x$' }, b: { enum: [1, 2] }, c: { multipleOf: 2 } } };
  assert.deepEqual(missingWords(bare), [
    '#/properties/a/pattern: needs "x-expected" (what a valid value is, in words)',
    '#/properties/b/enum: needs "x-expected" (what a valid value is, in words)',
    '#/properties/c/multipleOf: keyword "multipleOf" has no sentence in gateway/config/schema-errors.ts',
  ]);
});

test('each constraint fails with its sentence, on the line of the value or key', () => {
  for (const [text, line, message] of CASES) {
    assert.throws(() => parsePolicy(text, FILE), (e: Error) => {
      assert.equal(e.message, `${FILE}:${line}: ${message}`, `for:\n${text}`);
      return true;
    });
  }
});

test('the cases cover every worded constraint in the schema and every generic keyword it uses', () => {
  const hit = new Set<string>();
  const keywords = new Set<string>();
  for (const [text] of CASES) {
    try {
      parsePolicy(text, FILE);
    } catch (e) {
      const where = (e as PolicyError).schemaPath;
      if (where) {
        hit.add(where);
        keywords.add(where.slice(where.lastIndexOf('/') + 1));
      }
    }
  }
  const { worded, generic } = constraints(schema);
  assert.deepEqual(worded.filter((w) => !hit.has(w)), [], 'a worded constraint has no case in CASES');
  assert.deepEqual([...generic].filter((k) => !keywords.has(k)), [], 'a generic keyword has no case in CASES');
});

test('bots in approvers are refused at load, however they are written: bots never approve', () => {
  for (const bot of ['dependabot[bot]', 'Renovate[BOT]', '@github-actions[bot]', 'app/dependabot', '@app/renovate', 'App/my-app']) {
    const text = `${BASE}approvals:\n  approvers: [alice, "${bot}"]\n`;
    assert.throws(() => parsePolicy(text, FILE), (e: Error) => {
      assert.equal(e.message, `${FILE}:12: approvals.approvers[1]: ${JSON.stringify(bot)} is not a GitHub login or @org/team; bots never approve`);
      return true;
    }, bot);
  }
  // People and teams still load.
  const ok = parsePolicy(`${BASE}approvals:\n  approvers: [alice, "@bob", "@octo-org/dba-team", "@botanists/app"]\n`, FILE);
  assert.deepEqual(ok.approvals.users, ['alice', 'bob']);
  assert.deepEqual(ok.approvals.teams, ['octo-org/dba-team', 'botanists/app']);
});

test('values are shown short and paths in a.b[3] form; a keyword without words still names place and value', () => {
  const long = 'x'.repeat(200);
  assert.throws(() => parsePolicy(BASE.replace('tls: disable', `tls: ${long}`), FILE), (e: Error) => {
    assert.equal(e.message, `${FILE}:10: targets.app-db.tls: "${'x'.repeat(57)}..." is not a TLS mode; use one of: disable, require, verify-full`);
    return true;
  });
  // A schema keyword this module has no sentence for (here multipleOf) fails closed with a sentence.
  const s = { type: 'object', properties: { list: { type: 'array', items: { type: 'integer', multipleOf: 5 } } } };
  const validate = new Ajv({ allErrors: true, verbose: true }).compile(s);
  const data = { list: [5, 7] };
  assert.equal(validate(data), false);
  const p = explain(validate.errors!, data, schemaPointers(s));
  assert.equal(p.message, 'list[1]: 7 is not valid here (must be multiple of 5)');
  assert.equal(p.schemaPath, '#/properties/list/items/multipleOf');
});

test('a value under auth is never repeated: it may be the password written where its variable name belongs', () => {
  const cases: [string, string][] = [
    ['{ password-env: "hunter2 s3cret" }', 'targets.app-db.auth.password-env: the value written (not repeated here: it may be a secret) is not an environment variable name; use letters, digits and _, not starting with a digit'],
    ['"hunter2 s3cret"', 'targets.app-db.auth: the value written (not repeated here: it may be a secret) is not an auth method; write azure, or a mapping { password-env: NAME }'],
    ['{ password-env: [hunter2, s3cret] }', 'targets.app-db.auth.password-env must be an environment variable name, not a list; use letters, digits and _, not starting with a digit'],
    ['12345678', 'targets.app-db.auth must be azure or a mapping { password-env: NAME }, not a number (not repeated here: it may be a secret)'],
    ['{ password-env=hunter2 }', 'targets.app-db.auth: an unknown key (not repeated here: it may be a secret) (did you mean "password-env"?)'],
  ];
  for (const [auth, message] of cases) {
    assert.throws(() => parsePolicy(BASE.replace('{ password-env: APP_DB_PASSWORD }', auth), FILE), (e: Error) => {
      assert.equal(e.message, `${FILE}:9: ${message}`);
      assert.ok(!/hunter2|s3cret|12345678/.test(e.message));
      return true;
    }, auth);
  }
});

test('through the CLI: gateway-action run --policy bad.yml prints the file, the line and the sentence', () => {
  const dir = tempDir('gw-policy-msg-');
  const file = path.join(dir, 'bad.yml');
  fs.writeFileSync(file, `${BASE}approvals:\n  approvers:\n    - "@octo-org/dba-team"\n    - github-actions[bot]\n`);
  const r = cli(['run', '--policy', file, '--', 'true'], { env: { ...process.env, APP_DB_PASSWORD: 'pw' }, cwd: dir });
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr, `gateway-action: ${file}:14: approvals.approvers[1]: "github-actions[bot]" is not a GitHub login or @org/team; bots never approve\n`);
  fs.writeFileSync(file, BASE.replace('    host: 127.0.0.1\n', '    hostname: 127.0.0.1\n'));
  const typo = cli(['run', '--policy', file, '--', 'true'], { env: { ...process.env, APP_DB_PASSWORD: 'pw' }, cwd: dir });
  assert.equal(typo.status, 1, typo.stderr);
  assert.equal(typo.stderr, `gateway-action: ${file}:5: targets.app-db: unknown key "hostname" (did you mean "host"?)\n`);
  fs.rmSync(dir, { recursive: true, force: true });
});
