// Deny rules enforced on real traffic: psql (simple protocol) and node-postgres (extended), with
// the server raising the refusal so replies stay in order and transactions abort as PostgreSQL's
// own errors would make them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { appCluster, cli, policyFor, psql, readLog, startGateway, type Cluster, type RunningGateway } from '../helpers/gateway.ts';
import { newPgClient, type PgError } from '../helpers/pg.ts';

const RULES = `rules:
  - name: no-unbounded-writes
    when: { sql: [delete-without-where, update-without-where] }
    action: deny
    reason: "Unbounded DELETE/UPDATE is never allowed from CI"
  - name: no-privilege-changes
    when: { sql: [grant, revoke, role] }
    action: deny
  - name: ddl-only-on-main
    when: { sql: [ddl], ref-not: refs/heads/main }
    action: deny
default: allow
unclassified: deny
`;

let cluster: Cluster;
let gw: RunningGateway;
const count = (): number => Number(cluster.sql('SELECT count(*) FROM items', 'app').trim());

before(async () => {
  cluster = await appCluster();
  cluster.sql("CREATE TABLE items (id int PRIMARY KEY, v text); ALTER TABLE items OWNER TO deployer; INSERT INTO items SELECT i, 'v' || i FROM generate_series(1, 10) i", 'app');
  gw = startGateway(policyFor(cluster) + RULES, 'deployer-pw', { GITHUB_REF: 'refs/heads/feature-x' });
});
after(() => {
  try {
    gw?.stop();
  } finally {
    cluster?.stop();
  }
});

test('psql: a denied statement gets 42501 naming the rule and reason; the session goes on', () => {
  const r = psql(gw.env, ['-v', 'VERBOSITY=verbose', '-c', 'DELETE FROM items', '-c', 'SELECT count(*) AS n FROM items']);
  assert.match(r.stderr, /ERROR: {2}42501: gateway: denied by rule "no-unbounded-writes": Unbounded DELETE\/UPDATE is never allowed from CI/);
  assert.match(r.stdout, /\n\s+10\n/, 'the next command in the same session runs');
  assert.equal(count(), 10);
  const bounded = psql(gw.env, ['-c', 'DELETE FROM items WHERE id = 10']);
  assert.equal(bounded.status, 0, bounded.stderr);
  assert.equal(count(), 9);
  cluster.sql("INSERT INTO items VALUES (10, 'v10')", 'app');
});

test('a multi-statement message is refused whole when one statement is denied', () => {
  const r = psql(gw.env, ['-c', "INSERT INTO items VALUES (100, 'x'); UPDATE items SET v = 'gone'"]);
  assert.match(r.stderr, /denied by rule "no-unbounded-writes"/);
  assert.equal(cluster.sql('SELECT count(*) FROM items WHERE id = 100', 'app').trim(), '0');
  assert.equal(cluster.sql("SELECT count(*) FROM items WHERE v = 'gone'", 'app').trim(), '0');
});

test('inside a transaction block a denial aborts the transaction, as any error would', () => {
  const script = "BEGIN;\nINSERT INTO items VALUES (200, 'in-tx');\nDELETE FROM items;\nSELECT 1;\nCOMMIT;\n";
  const r = psql(gw.env, ['-v', 'ON_ERROR_STOP=0'], script);
  assert.match(r.stderr, /denied by rule "no-unbounded-writes"/);
  assert.match(r.stderr, /current transaction is aborted/);
  assert.match(r.stdout, /ROLLBACK/, 'COMMIT of the aborted block rolls back');
  assert.equal(cluster.sql('SELECT count(*) FROM items WHERE id = 200', 'app').trim(), '0');
  assert.equal(count(), 10);
});

test('statements the parser rejects are refused by unclassified: deny', () => {
  const r = psql(gw.env, ['-c', 'SELEC * FROM items']);
  assert.match(r.stderr, /gateway: denied by rule "unclassified": the statement could not be classified \(the SQL parser rejected the statement: syntax error at or near "SELEC"\)/);
});

test('identity claims: DDL is refused off main, and privilege changes always', () => {
  assert.match(psql(gw.env, ['-c', 'CREATE TABLE t2 (x int)']).stderr, /denied by rule "ddl-only-on-main"/);
  assert.match(psql(gw.env, ['-c', 'GRANT SELECT ON items TO PUBLIC']).stderr, /denied by rule "no-privilege-changes"/);
  const main = startGateway(policyFor(cluster) + RULES, 'deployer-pw', { GITHUB_REF: 'refs/heads/main' });
  try {
    const r = psql(main.env, ['-c', 'CREATE TABLE t2 (x int)', '-c', 'DROP TABLE t2']);
    assert.equal(r.status, 0, r.stderr);
  } finally {
    main.stop();
  }
});

test('node-postgres (extended protocol): denied at Parse, again on re-execution, and the client goes on', async () => {
  const client = newPgClient({ connectionString: gw.env.GATEWAY_APP_DB_URL! });
  await client.connect();
  try {
    for (let i = 0; i < 2; i++) {
      const err = await client.query({ name: 'wipe', text: 'UPDATE items SET v = $1', values: ['wiped'] }).then(() => null, (e: PgError) => e);
      assert.equal(err?.code, '42501', `attempt ${i + 1}`);
      assert.match(err!.message, /denied by rule "no-unbounded-writes"/);
    }
    const unnamed = await client.query('DELETE FROM items WHERE $1::int IS NOT NULL OR true', [1]).then(() => null, (e: PgError) => e);
    assert.equal(unnamed, null, 'a DELETE with a WHERE clause is allowed');
    const ok = await client.query('SELECT count(*)::int AS n FROM items WHERE v = $1', ['wiped']);
    assert.deepEqual(ok.rows, [{ n: 0 }]);
  } finally {
    await client.end();
  }
  cluster.sql("INSERT INTO items SELECT i, 'v' || i FROM generate_series(1, 10) i", 'app');
});

test('fast-path function calls (libpq large objects) are opaque, so unclassified: deny refuses them', () => {
  const r = psql(gw.env, ['-c', '\\lo_import /etc/hostname']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /denied by rule "unclassified": the statement could not be classified \(a FunctionCall message runs function OID \d+/);
  assert.equal(cluster.sql('SELECT count(*) FROM pg_largeobject_metadata', 'app').trim(), '0');
});

test('server settings in startup parameters (PGOPTIONS) are decided like SET statements', () => {
  // The base policy allows SET; a second gateway denies it.
  assert.match(psql({ ...gw.env, PGOPTIONS: '-c statement_timeout=5s' }, ['-At', '-c', 'SHOW statement_timeout']).stdout, /5s/);
  const strict = startGateway(policyFor(cluster) + RULES.replace('default: allow', 'default: allow').replace('rules:\n', 'rules:\n  - name: no-set\n    when: { sql: [set] }\n    action: deny\n'), 'deployer-pw', { GITHUB_REF: 'refs/heads/main' });
  try {
    const r = psql({ ...strict.env, PGOPTIONS: '-c search_path=evil' }, ['-c', 'SELECT 1']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /denied by rule "no-set": startup parameters set server variables \(search_path\)/);
    assert.equal(psql(strict.env, ['-c', 'SELECT 1']).status, 0, 'without settings the login works');
  } finally {
    strict.stop();
  }
});

test('a role switch in startup parameters is a `role` statement: denied by the privilege rule', () => {
  for (const options of ['-c role=postgres', '--role=postgres', '-c statement_timeout=5s -csession_authorization=postgres']) {
    const r = psql({ ...gw.env, PGOPTIONS: options }, ['-At', '-c', 'SELECT current_user']);
    assert.notEqual(r.status, 0, options);
    assert.match(r.stderr, /denied by rule "no-privilege-changes": startup parameters set server variables/, options);
  }
  assert.match(psql({ ...gw.env, PGOPTIONS: '-c statement_timeout=5s' }, ['-At', '-c', 'SELECT current_user']).stdout, /^deployer$/m);
});

test('with the SQL parser loaded and busy, the daemon stays small', async () => {
  const client = newPgClient({ connectionString: gw.env.GATEWAY_APP_DB_URL! });
  await client.connect();
  try {
    // Enough distinct statements for V8 to consider optimizing the parser's WebAssembly.
    for (let i = 0; i < 20000; i++) await client.query(`SELECT v FROM items WHERE id = ${i % 10}`);
  } finally {
    await client.end();
  }
  const peak = Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${gw.pid}/status`, 'utf8'))![1]) / 1024;
  assert.ok(peak < 250, `peak RSS ${peak.toFixed(0)} MB`);
});

test('every decision is in the session log with the rule that made it', () => {
  const log = gw.stop();
  const records = readLog(log);
  const denied = records.filter((r) => r.type === 'command' && r.decision?.action === 'deny');
  assert.ok(denied.some((r) => r.text === 'DELETE FROM items' && r.decision.rule === 'no-unbounded-writes' && r.facts[0].classes.includes('delete-without-where')));
  assert.ok(denied.some((r) => r.details.protocol === 'extended' && r.details.phase === 'parse' && r.text === 'UPDATE items SET v = $1'));
  const results = new Map(records.filter((r) => r.type === 'result').map((r) => [r.command, r]));
  for (const d of denied) assert.equal(results.get(d.command)?.status, 'denied', d.text);
  const allowed = records.find((r) => r.type === 'command' && r.text === 'DELETE FROM items WHERE id = 10');
  assert.equal(allowed?.decision.action, 'allow');
  assert.equal(allowed?.decision.rule, 'default');
  assert.equal(cli(['verify', log]).status, 0);
});
