// The policy file: what parses, and the errors a user sees (file, line, what is wrong).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parsePolicy, loadPolicy } from '../../gateway/adapters.ts';
import { cli, tempDir } from '../helpers/gateway.ts';

const FILE = '/ci/gateway.yml';

/** The example from the issue, comments and all. */
const EXAMPLE = `version: 1
targets:
  app-db:
    kind: postgres
    host: 127.0.0.1
    port: 5432
    database: app
    user: deployer
    auth: { password-env: APP_DB_PASSWORD }   # or: azure
    tls: disable                              # disable | require | verify-full (with ca-file)
`;

/** The message parsePolicy throws for text (fails the test if it parses). */
function errorOf(text: string, file = FILE): string {
  try {
    parsePolicy(text, file);
  } catch (e) {
    return (e as Error).message;
  }
  assert.fail(`expected a policy error for:\n${text}`);
}

/** Asserts the message is `FILE:LINE: ...` with the given line, and returns the part after it. */
function atLine(message: string, line: number, file = FILE): string {
  const prefix = `${file}:${line}: `;
  assert.ok(message.startsWith(prefix), `expected "${prefix}..." but got: ${message}`);
  return message.slice(prefix.length);
}

test("the issue's example policy parses as written", () => {
  const p = parsePolicy(EXAMPLE, FILE);
  assert.equal(p.targets.length, 1);
  const t = p.targets[0]!;
  assert.equal(t.name, 'app-db');
  assert.equal(t.kind, 'postgres');
  assert.equal(t.host, '127.0.0.1');
  assert.equal(t.port, 5432);
  assert.equal(t.database, 'app');
  assert.equal(t.user, 'deployer');
  assert.equal(t.tls, 'disable');
  assert.deepEqual(t.auth, { kind: 'password-env', passwordEnv: 'APP_DB_PASSWORD', allowCleartext: false });
  assert.equal(t.caFile, undefined);
  assert.equal(p.path, path.resolve(FILE));
  assert.match(p.sha256, /^[0-9a-f]{64}$/);
});

test('loadPolicy reads the example from disk', () => {
  const dir = tempDir('gw-policy-');
  const file = path.join(dir, 'gateway.yml');
  fs.writeFileSync(file, EXAMPLE);
  const p = loadPolicy(file);
  assert.equal(p.targets[0]!.name, 'app-db');
  assert.equal(p.targets[0]!.port, 5432);
  assert.equal(p.path, file);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('tls defaults to verify-full and port to 5432 when omitted', () => {
  const p = parsePolicy(EXAMPLE.replace(/^ {4}tls:.*\n/m, '').replace(/^ {4}port:.*\n/m, ''), FILE);
  assert.equal(p.targets[0]!.tls, 'verify-full');
  assert.equal(p.targets[0]!.port, 5432);
});

test('session-log.sample-rows defaults to 10 and can be set', () => {
  assert.equal(parsePolicy(EXAMPLE, FILE).sessionLog.sampleRows, 10);
  assert.equal(parsePolicy(EXAMPLE + 'session-log:\n  sample-rows: 25\n', FILE).sessionLog.sampleRows, 25);
  assert.equal(parsePolicy(EXAMPLE + 'session-log:\n  sample-rows: 0\n', FILE).sessionLog.sampleRows, 0);
  const msg = atLine(errorOf(EXAMPLE + 'session-log:\n  sample-rows: -1\n'), 12);
  assert.match(msg, /sample-rows/);
});

test('a relative ca-file resolves against the policy file, not the working directory', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-ca-'));
  fs.mkdirSync(path.join(dir, 'certs'));
  const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
  fs.writeFileSync(path.join(dir, 'certs', 'ca.pem'), pem);
  const text = EXAMPLE.replace('tls: disable', 'tls: verify-full\n    ca-file: certs/ca.pem');
  assert.equal(parsePolicy(text, path.join(dir, 'gateway.yml')).targets[0]!.caFile, path.join(dir, 'certs', 'ca.pem'));
  const abs = EXAMPLE.replace('tls: disable', `tls: verify-full\n    ca-file: ${path.join(dir, 'certs', 'ca.pem')}`);
  assert.equal(parsePolicy(abs, '/elsewhere/gateway.yml').targets[0]!.caFile, path.join(dir, 'certs', 'ca.pem'));
});

test('a missing or non-PEM ca-file is reported at load, on its line', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-ca-'));
  const text = EXAMPLE.replace('tls: disable', 'tls: verify-full\n    ca-file: missing.pem');
  const file = path.join(dir, 'gateway.yml');
  assert.match(atLine(errorOf(text, file), 11, file), /ca-file: cannot read .*missing\.pem \(ENOENT\)/);
  fs.writeFileSync(path.join(dir, 'junk.pem'), 'not a certificate');
  const junk = EXAMPLE.replace('tls: disable', 'tls: verify-full\n    ca-file: junk.pem');
  assert.match(atLine(errorOf(junk, file), 11, file), /holds no PEM certificate/);
});

test('an unknown top-level key is named with its line', () => {
  const msg = atLine(errorOf(EXAMPLE.replace('targets:\n', 'target-list: []\ntargets:\n')), 2);
  assert.equal(msg, 'unknown top-level key "target-list" (did you mean "targets"?)');
});

test('an unknown key inside a target is named with its line', () => {
  const text = EXAMPLE.replace('    host: 127.0.0.1\n', '    hostname: db.internal\n    host: 127.0.0.1\n');
  const msg = atLine(errorOf(text), 5);
  assert.match(msg, /unknown key "hostname"/);
  assert.match(msg, /app-db/);
});

test('a misspelt key (hostname: instead of host:) is reported on its own line, by name', () => {
  // The user wrote `hostname:` on line 5; pointing at line 4 with "missing host" hides the typo.
  const text = EXAMPLE.replace('    host: 127.0.0.1\n', '    hostname: 127.0.0.1\n');
  const msg = atLine(errorOf(text), 5);
  assert.match(msg, /"hostname"/);
});

test('a missing required key names the key and the target', () => {
  const msg = errorOf(EXAMPLE.replace('    user: deployer\n', ''));
  // The target's block: its name (line 3) or its first key (line 4).
  assert.match(msg, new RegExp(`^${FILE}:[34]: `));
  assert.match(msg, /missing required key "user"/);
  assert.match(msg, /app-db/);
});

test('tls: maybe lists the allowed values', () => {
  const msg = atLine(errorOf(EXAMPLE.replace('tls: disable', 'tls: maybe')), 10);
  assert.match(msg, /tls/);
  assert.match(msg, /disable/);
  assert.match(msg, /require/);
  assert.match(msg, /verify-full/);
});

test('a port that is not a number, or out of range, is rejected on its line', () => {
  const notNumber = atLine(errorOf(EXAMPLE.replace('port: 5432', 'port: "x"')), 6);
  assert.equal(notNumber, 'targets.app-db.port must be a whole number, not the text "x"');
  const tooBig = atLine(errorOf(EXAMPLE.replace('port: 5432', 'port: 70000')), 6);
  assert.equal(tooBig, 'targets.app-db.port: 70000 is out of range; use 1 to 65535');
  const zero = atLine(errorOf(EXAMPLE.replace('port: 5432', 'port: 0')), 6);
  assert.match(zero, /port/);
});

test('version: 2 is rejected, saying which version is supported', () => {
  const msg = atLine(errorOf(EXAMPLE.replace('version: 1', 'version: 2')), 1);
  assert.match(msg, /version/);
  assert.match(msg, /1/);
});

test('missing targets (or an empty targets map) is an error', () => {
  assert.match(atLine(errorOf('version: 1\n'), 1), /missing required key "targets"/);
  assert.match(atLine(errorOf('version: 1\ntargets: {}\n'), 2), /targets/);
  assert.match(atLine(errorOf(EXAMPLE.replace('version: 1\n', '')), 1), /missing required key "version"/);
});

test('a YAML syntax error (bad indentation) names its line', () => {
  const text = EXAMPLE.replace('    host: 127.0.0.1\n', '   host: 127.0.0.1\n');
  const msg = atLine(errorOf(text), 5);
  assert.match(msg, /YAML/);
  assert.match(msg, /column|indent/i);
  const tab = atLine(errorOf('version: 1\ntargets:\n\tapp-db: {}\n'), 3);
  assert.match(tab, /YAML/);
  assert.match(tab, /tab/i);
});

test('a duplicate key is an error on the duplicate line', () => {
  const text = EXAMPLE.replace('    user: deployer\n', '    user: deployer\n    host: db.internal\n');
  const msg = atLine(errorOf(text), 9);
  assert.match(msg, /unique|duplicate/i);
  const dupTarget = EXAMPLE + EXAMPLE.split('\n').slice(2).join('\n');
  const msg2 = atLine(errorOf(dupTarget), 11);
  assert.match(msg2, /unique|duplicate/i);
});

test('an empty file (or only comments) is a clear error', () => {
  assert.match(atLine(errorOf(''), 1), /empty/);
  assert.match(atLine(errorOf('# just a comment\n\n'), 1), /empty/);
  assert.match(atLine(errorOf('- app-db\n'), 1), /object|mapping/);
});

test('a nonexistent file is an error naming the file', () => {
  const missing = path.join(tempDir('gw-policy-'), 'nope.yml');
  assert.throws(() => loadPolicy(missing), (e: Error) => {
    assert.ok(e.message.startsWith(`${missing}: `), e.message);
    assert.match(e.message, /cannot read|ENOENT|not found|no such file/i);
    return true;
  });
});

test('target names that map to the same environment variable are rejected', () => {
  const second = EXAMPLE.split('\n').slice(2).join('\n').replace('app-db:', 'app_db:');
  const msg = atLine(errorOf(EXAMPLE + second), 11);
  assert.match(msg, /app-db/);
  assert.match(msg, /app_db/);
  assert.match(msg, /GATEWAY_APP_DB_URL/);
});

test('a target name that cannot become an environment variable is rejected', () => {
  const second = EXAMPLE.split('\n').slice(2).join('\n').replace('app-db:', '1st.db:');
  const msg = atLine(errorOf(EXAMPLE + second), 11);
  assert.equal(msg, `targets: "1st.db" is not a target name; start with a letter, then up to 62 letters, digits, '-' or '_'`);
});

test('a kind other than postgres lists the supported kinds', () => {
  const msg = atLine(errorOf(EXAMPLE.replace('kind: postgres', 'kind: mysql')), 4);
  assert.match(msg, /kind/);
  assert.match(msg, /postgres/);
});

test('auth without password-env says what is missing', () => {
  const msg = atLine(errorOf(EXAMPLE.replace('auth: { password-env: APP_DB_PASSWORD }', 'auth: {}')), 9);
  assert.match(msg, /password-env/);
  const bad = atLine(errorOf(EXAMPLE.replace('APP_DB_PASSWORD }', 'APP-DB-PASSWORD }')), 9);
  assert.match(bad, /password-env/);
});

test('through the CLI a policy error is one FILE:LINE line on stderr with exit status 1', () => {
  const dir = tempDir('gw-policy-');
  const file = path.join(dir, 'gateway.yml');
  fs.writeFileSync(file, EXAMPLE.replace('tls: disable', 'tls: maybe'));
  const r = cli(['run', '--policy', file, '--', 'true'], { env: { ...process.env, APP_DB_PASSWORD: 'pw' }, cwd: dir });
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.stdout, '');
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.equal(lines[0], `gateway-action: ${file}:10: targets.app-db.tls: "maybe" is not a TLS mode; use one of: disable, require, verify-full`);
  assert.ok(!fs.existsSync(path.join(dir, 'gateway-logs')), 'no session log is started for an invalid policy');

  const missing = cli(['run', '--policy', path.join(dir, 'missing.yml'), '--', 'true'], { cwd: dir });
  assert.equal(missing.status, 1, missing.stderr);
  assert.equal(missing.stderr.trimEnd().split('\n').length, 1, missing.stderr);
  assert.ok(missing.stderr.includes(path.join(dir, 'missing.yml')), missing.stderr);
  fs.rmSync(dir, { recursive: true, force: true });
});

const MASKING = `masking:
  columns: [email, ssn, "customers.phone", "*.card_number"]
  detectors: [email, credit-card, iban, jwt, azure-storage-key, azure-sas-token, connection-string, private-key, github-token]
  apply-to: [client, log]     # or [log] to keep client output intact and mask only the record
`;

test("the issue's masking section parses as written; apply-to defaults to client and log", () => {
  const p = parsePolicy(EXAMPLE + MASKING, FILE);
  assert.deepEqual(p.masking, {
    columns: ['email', 'ssn', 'customers.phone', '*.card_number'],
    detectors: ['email', 'credit-card', 'iban', 'jwt', 'azure-storage-key', 'azure-sas-token', 'connection-string', 'private-key', 'github-token'],
    jsonFields: [],
    applyTo: { client: true, log: true },
  });
  // The HTTP issue's json-fields load as written; a path the masker cannot follow names its line.
  const json = parsePolicy(EXAMPLE + 'masking:\n  json-fields: ["$..keys[*].value", "$..primaryKey", "$..secondaryKey", "$..connectionString", "$..properties.password"]\n', FILE).masking;
  assert.deepEqual(json?.jsonFields, ['$..keys[*].value', '$..primaryKey', '$..secondaryKey', '$..connectionString', '$..properties.password']);
  assert.throws(() => parsePolicy(EXAMPLE + 'masking:\n  json-fields: ["$..keys[?(@.x)]"]\n', FILE), /masking\.json-fields\[0\]: "\$\.\.keys\[\?\(@\.x\)\]" is not a JSON path/);
  assert.deepEqual(parsePolicy(EXAMPLE + 'masking: { columns: [email] }\n', FILE).masking?.applyTo, { client: true, log: true });
  assert.deepEqual(parsePolicy(EXAMPLE + 'masking: { columns: [email], apply-to: [log] }\n', FILE).masking?.applyTo, { client: false, log: true });
  assert.equal(parsePolicy(EXAMPLE, FILE).masking, null);
});

test('malformed masking settings name their line: unknown detector, bad column pattern, bad apply-to', () => {
  assert.equal(atLine(errorOf(EXAMPLE + MASKING.replace('iban,', 'ibann,')), 13), 'masking.detectors[2]: "ibann" is not a detector; use one of: email, credit-card, iban, jwt, azure-storage-key, azure-sas-token, connection-string, private-key, github-token (did you mean "iban"?)');
  assert.equal(atLine(errorOf(EXAMPLE + MASKING.replace('"customers.phone"', '"a.b.c.d"')), 12), 'masking.columns[2]: "a.b.c.d" is not a column pattern: at most schema.table.column');
  assert.equal(atLine(errorOf(EXAMPLE + MASKING.replace('"customers.phone"', '"customers."')), 12), 'masking.columns[2]: "customers." is not a column pattern: empty name');
  assert.equal(atLine(errorOf(EXAMPLE + MASKING.replace('"*.card_number"', '"[ab].card"')), 12), 'masking.columns[3]: "[ab].card" is not a column pattern: only * is a wildcard');
  assert.equal(atLine(errorOf(EXAMPLE + MASKING.replace('[client, log]', '[client, screen]')), 14), 'masking.apply-to[1]: "screen" is not a place masking applies to; use one of: client, log');
  assert.equal(atLine(errorOf(EXAMPLE + 'masking:\n  colums: [email]\n'), 12), 'masking: unknown key "colums" (did you mean "columns"?)');
});

test('approvals.timeout defaults to 15m and must lie between 1s and 24h', () => {
  assert.equal(parsePolicy(EXAMPLE, FILE).approvals.timeoutMs, 900_000);
  assert.equal(parsePolicy(EXAMPLE + 'approvals: { timeout: 90s }\n', FILE).approvals.timeoutMs, 90_000);
  assert.equal(atLine(errorOf(EXAMPLE + 'approvals:\n  timeout: 25h\n'), 12), 'approvals.timeout: 25h is outside 1s to 24h');
  assert.equal(atLine(errorOf(EXAMPLE + 'approvals:\n  timeout: 10ms\n'), 12), 'approvals.timeout: 10ms is outside 1s to 24h');
  assert.equal(atLine(errorOf(EXAMPLE + 'approvals:\n  timeout: soon\n'), 12), 'approvals.timeout: "soon" is not a duration; write a whole number and a unit, such as 90s, 15m or 1h');
});

test('auth: azure is an Entra ID token for Azure Database for PostgreSQL and needs TLS', () => {
  const azure = parsePolicy(EXAMPLE.replace('auth: { password-env: APP_DB_PASSWORD }', 'auth: azure').replace('tls: disable', 'tls: require'), FILE);
  assert.deepEqual(azure.targets[0]!.auth, { kind: 'azure' });
  // The example policy has tls: disable on line 10.
  assert.match(atLine(errorOf(EXAMPLE.replace('auth: { password-env: APP_DB_PASSWORD }', 'auth: azure')), 10), /targets\.app-db: auth: azure needs TLS to the server \(tls: require or verify-full\), not tls: disable/);
  assert.equal(atLine(errorOf(EXAMPLE.replace('auth: { password-env: APP_DB_PASSWORD }', 'auth: entra')), 9), 'targets.app-db.auth: the value written (not repeated here: it may be a secret) is not an auth method; write azure, or a mapping { password-env: NAME }');
});
