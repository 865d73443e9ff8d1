// The bypass corpus (test/corpus/sql-bypass.txt) against a real cluster: every case through the
// simple protocol (Query, as psql sends it) and the extended protocol (Parse/Bind/Execute, as
// node-postgres sends a parameterized query), each decision checked in the session log and in
// the client's error, and afterwards the protected tables must hold every row they held before,
// unchanged, with no role or privilege changed.
import { test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { appCluster, policyFor, readLog, startGateway, tempDir, ROOT, type Cluster, type LogRecord, type RunningGateway } from '../helpers/gateway.ts';
import { newPgClient, type PgClient, type PgError, type QueryConfig } from '../helpers/pg.ts';

/**
 * The approve cases are held for approval and denied when the 1 s timeout passes, so they cost
 * a second each. GATEWAY_TEST_APPROVALS=0 leaves the approve rule and the `approvals` section out
 * of the policy and skips those cases (for a gateway that cannot hold commands).
 */
const APPROVALS = process.env.GATEWAY_TEST_APPROVALS !== '0';

const APPROVE_RULE = `  - name: approve-destructive-ddl
    when: { sql: [drop, truncate] }
    action: approve
`;

const RULES = `rules:
${APPROVALS ? APPROVE_RULE : ''}  - name: no-unbounded-writes
    when: { sql: [delete-without-where, update-without-where] }
    action: deny
  - name: protect-accounts
    when: { sql: [delete, update, truncate, drop, alter], tables: ["public.accounts", "audit.*"] }
    action: deny
  # A view (or a copy, a child table, a trigger) over a protected table would let writes
  # reach it under another name: DELETE FROM v names v, not accounts.
  - name: no-objects-over-protected
    when: { sql: [create], tables: ["public.accounts", "audit.*"] }
    action: deny
  - name: no-privilege-changes
    when: { sql: [grant, revoke, role] }
    action: deny
  - name: no-programs
    when: { sql: [copy-to-program, copy-from-program, do-block, function-definition] }
    action: deny
  - name: no-file-reads
    when: { text-matches: "pg_read_(binary_)?file|lo_import|lo_export" }
    action: deny
default: allow
unclassified: deny
${APPROVALS ? 'approvals: { timeout: 1s }\n' : ''}`;

const SETUP = `
CREATE TABLE public.accounts (id int PRIMARY KEY, owner text NOT NULL, balance numeric NOT NULL);
INSERT INTO public.accounts SELECT i, 'owner-' || i, i * 100 FROM generate_series(1, 50) i;
CREATE SCHEMA audit AUTHORIZATION deployer;
CREATE TABLE audit.events (id int PRIMARY KEY, at timestamptz NOT NULL, what text NOT NULL);
INSERT INTO audit.events SELECT i, '2024-01-01T00:00:00Z'::timestamptz + i * interval '1 hour', 'event ' || i FROM generate_series(1, 20) i;
CREATE TABLE public.scratch (id int PRIMARY KEY, v text);
INSERT INTO public.scratch SELECT i, 'v' || i FROM generate_series(1, 100) i;
ALTER TABLE public.accounts OWNER TO deployer;
ALTER TABLE audit.events OWNER TO deployer;
ALTER TABLE public.scratch OWNER TO deployer;
`;

/** What must not change: the protected rows, and who may do what. */
const STATE = `
SELECT 'accounts', count(*), md5(string_agg(t::text, ',' ORDER BY id)) FROM public.accounts t;
SELECT 'events', count(*), md5(string_agg(t::text, ',' ORDER BY id)) FROM audit.events t;
SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, rolbypassrls, rolpassword FROM pg_authid ORDER BY 1;
SELECT roleid::regrole, member::regrole FROM pg_auth_members ORDER BY 1, 2;
SELECT datname, datacl FROM pg_database ORDER BY 1;
SELECT setdatabase, setrole, setconfig FROM pg_db_role_setting ORDER BY 1, 2;
SELECT defaclrole::regrole, defaclobjtype, defaclacl FROM pg_default_acl ORDER BY 1, 2;
SELECT nspname, nspowner::regrole, nspacl FROM pg_namespace WHERE nspname IN ('public', 'audit') ORDER BY 1;
SELECT c.oid::regclass, relowner::regrole, relacl, relhastriggers, relhasrules, relrowsecurity FROM pg_class c WHERE c.oid IN ('public.accounts'::regclass, 'audit.events'::regclass) ORDER BY 1;
SELECT attrelid::regclass, attname, atttypid::regtype FROM pg_attribute WHERE attrelid IN ('public.accounts'::regclass, 'audit.events'::regclass) AND attnum > 0 AND NOT attisdropped ORDER BY 1, 2;
SELECT count(*) FROM pg_trigger WHERE tgrelid IN ('public.accounts'::regclass, 'audit.events'::regclass);
SELECT count(*) FROM pg_inherits WHERE inhparent IN ('public.accounts'::regclass, 'audit.events'::regclass);
SELECT count(*) FROM pg_proc WHERE pronamespace = 'public'::regnamespace;
`;

// ---- the corpus -----------------------------------------------------------------------------

type Action = 'allow' | 'deny' | 'approve';
const FLAGS = ['simple', 'extended', 'fails', 'todo'] as const;
type Flag = (typeof FLAGS)[number];

interface Case {
  line: number;
  action: Action;
  rule: string | null;
  flags: Set<Flag>;
  sql: string;
  /** Parameters for the extended protocol: '1', '2', ... for $1, $2, ... */
  params: string[];
}

const CORPUS = path.join(ROOT, 'test/corpus/sql-bypass.txt');

function parseCorpus(text: string): Case[] {
  const cases: Case[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = i + 1;
    const l = raw.trimEnd();
    if (l.trim() === '' || l.trimStart().startsWith('#')) return;
    const sep = l.indexOf(' | ');
    if (sep < 0) throw new Error(`${CORPUS}:${line}: expected "EXPECTED | STATEMENT"`);
    const [decision, ...flags] = l.slice(0, sep).trim().split(/\s+/);
    const [action, rule] = decision!.split(':') as [string, string | undefined];
    if (!['allow', 'deny', 'approve'].includes(action)) throw new Error(`${CORPUS}:${line}: unknown decision "${action}"`);
    for (const f of flags) if (!(FLAGS as readonly string[]).includes(f)) throw new Error(`${CORPUS}:${line}: unknown flag "${f}"`);
    const sql = l
      .slice(sep + 3)
      .replace(/\{\{repeat:(\d+):([^}]*)\}\}/g, (_, n: string, s: string) => s.repeat(Number(n)))
      .replace(/\\([nt\\])/g, (_, c: string) => (c === 'n' ? '\n' : c === 't' ? '\t' : '\\'));
    const count = flags.includes('extended') ? Math.max(0, ...[...sql.matchAll(/\$(\d+)/g)].map((m) => Number(m[1]))) : 0;
    const params = Array.from({ length: count }, (_, k) => String(k + 1));
    cases.push({ line, action: action as Action, rule: rule ?? null, flags: new Set(flags as Flag[]), sql, params });
  });
  return cases;
}

const cases = parseCorpus(fs.readFileSync(CORPUS, 'utf8'));

// ---- fixture --------------------------------------------------------------------------------

// Gateways announce held commands here, not in the user's real runtime directory.
process.env.GATEWAY_ACTION_RUNTIME_DIR = path.join(tempDir('gw-bypass-'), 'run');

let cluster: Cluster;
let gw: RunningGateway;
/** Straight to the cluster as the superuser, for looking at the state between cases. */
let direct: PgClient;
let stateBefore: string;
/** The state as last seen: a case that changes it is named once, not every case after it. */
let stateSeen: string;

async function stateNow(): Promise<string> {
  const results = (await direct.query(STATE)) as unknown as { rows: unknown[] }[];
  return results.map((r) => JSON.stringify(r.rows)).join('\n');
}

before(async () => {
  cluster = await appCluster();
  cluster.sql(SETUP, 'app');
  direct = newPgClient({ PGHOST: '127.0.0.1', PGPORT: String(cluster.port), PGUSER: 'postgres', PGPASSWORD: '', PGDATABASE: 'app' });
  await direct.connect();
  stateBefore = stateSeen = await stateNow();
  gw = startGateway(policyFor(cluster) + RULES);
});
after(async () => {
  try {
    await direct?.end();
    gw?.stop();
  } finally {
    cluster?.stop();
  }
});

/** The session log's command records written since the last call. */
function logReader(): () => LogRecord[] {
  let seen = 0;
  return () => {
    const commands = readLog(gw.logPath()).filter((r) => r.type === 'command');
    const fresh = commands.slice(seen);
    seen = commands.length;
    return fresh;
  };
}

const short = (sql: string): string => {
  const one = sql.replace(/\s+/g, ' ').trim();
  return one.length > 80 ? `${one.slice(0, 77)}...` : one;
};

async function runCorpus(t: TestContext, protocol: 'simple' | 'extended'): Promise<void> {
  const client: PgClient = newPgClient({ connectionString: gw.env.GATEWAY_APP_DB_URL! });
  client.on('error', () => {});
  await client.connect();
  const fresh = logReader();
  fresh();
  try {
    for (const c of cases) {
      if (c.flags.has(protocol === 'simple' ? 'extended' : 'simple')) continue;
      const where = `${path.relative(ROOT, CORPUS)}:${c.line} (${protocol})`;
      const skip = c.action === 'approve' && !APPROVALS ? 'GATEWAY_TEST_APPROVALS=0: the policy has no approve rule' : undefined;
      const todo = c.flags.has('todo') ? 'known gap, see the corpus' : undefined;
      await t.test(`line ${c.line}: ${short(c.sql)}`, { skip, todo }, async () => {
        // node-postgres uses Parse/Bind/Execute for queryMode extended, with or without values.
        const extended: QueryConfig & { queryMode: 'extended' } = { text: c.sql, values: c.params, queryMode: 'extended' };
        const err = await (protocol === 'simple' ? client.query(c.sql) : client.query(extended)).then(() => null, (e: PgError) => e);
        const records = fresh();
        // The first record of the case carries the decision; the records after it (the Execute
        // of a statement refused at Parse, or refused once held) the same rule.
        const decided = records.filter((r) => r.decision);
        const first = decided[0];
        const said = first ? `decided ${first.decision.action} by rule ${first.decision.rule} (${first.decision.reason})` : 'no decision recorded';
        const state = await stateNow();
        const changed = state !== stateSeen;
        stateSeen = state;
        assert.ok(!changed, `${where}: the protected rows, roles or privileges changed after this case (${said}${err ? `; ${err.code} ${err.message}` : ''})`);
        assert.ok(first, `${where}: no command record with a decision in the session log (${records.length} records)`);
        assert.equal(first.decision.action, c.action, `${where}: ${said}, expected ${c.action}${c.rule ? ` by rule ${c.rule}` : ''}`);
        if (c.rule) assert.equal(first.decision.rule, c.rule, `${where}: ${said}, expected rule ${c.rule}`);
        for (const r of decided.slice(1)) {
          assert.ok(r.decision.action === c.action || (c.action === 'approve' && r.decision.action === 'deny'), `${where}: a later record says ${r.decision.action}`);
          assert.equal(r.decision.rule, first.decision.rule, `${where}: a later record names rule ${r.decision.rule}`);
        }
        // The log keeps the first 64 KiB of a longer text, with the whole text's SHA-256.
        // A role password is masked in the recorded text (docs/postgres.md, "Passwords in SQL text").
        const logged = c.sql.replace(/(\bpassword\s+)'[^']*'/gi, "$1'[masked:password]'");
        const recorded = first.text_sha256 ? first.text_sha256 === createHash('sha256').update(logged).digest('hex') : first.text === logged;
        if (protocol === 'simple') assert.ok(recorded, `${where}: the command recorded is not the case's text: ${short(String(first.text))}`);
        if (c.action === 'allow') {
          if (c.flags.has('fails')) {
            assert.ok(err, `${where}: expected the server to refuse it, and it ran`);
            assert.doesNotMatch(err.message, /^gateway:/, `${where}: refused by the gateway: ${err.message}`);
          } else {
            assert.equal(err, null, `${where}: allowed, but failed: ${err?.code} ${err?.message}`);
          }
        } else {
          assert.ok(err, `${where}: expected ${c.action}, and it ran`);
          assert.equal(err.code, '42501', `${where}: expected SQLSTATE 42501, got ${err.code} ${err.message}`);
          assert.match(err.message, new RegExp(`^gateway: denied by rule "${c.rule ?? '[^"]+'}"`), `${where}: ${err.message}`);
        }
      });
    }
  } finally {
    await client.end();
  }
}

// ---- the tests ------------------------------------------------------------------------------

test('the corpus is well formed and covers what the policy issue asks for', () => {
  assert.ok(cases.length >= 80, `${cases.length} cases`);
  const has = (re: RegExp, what: string): void => assert.ok(cases.some((c) => re.test(c.sql)), `the corpus has no case of ${what}`);
  has(/^WITH \w+ AS \(DELETE/, 'data-modifying CTEs');
  has(/^EXPLAIN ANALYZE DELETE/, 'EXPLAIN ANALYZE DELETE');
  has(/^PREPARE /, 'PREPARE');
  has(/^EXECUTE /, 'EXECUTE');
  has(/^DO .*EXECUTE/i, 'DO blocks with EXECUTE');
  has(/TO PROGRAM/, 'COPY ... TO PROGRAM');
  has(/^CREATE FUNCTION/, 'CREATE FUNCTION');
  has(/\/\*.*\*\//, 'comments');
  has(/"accounts"/, 'quoted identifiers');
  assert.ok(cases.some((c) => c.flags.has('extended') && c.params.length > 0), 'the corpus has no parameterized case');
  assert.ok(cases.some((c) => c.rule === 'unclassified'), 'the corpus has no unparseable case');
  for (const c of cases) {
    if (c.action !== 'allow') assert.ok(c.rule, `${CORPUS}:${c.line}: a ${c.action} case names its rule`);
    if (c.flags.has('extended')) assert.ok(c.params.length > 0, `${CORPUS}:${c.line}: an extended-only case has parameters`);
    assert.ok(!(c.flags.has('simple') && c.flags.has('extended')), `${CORPUS}:${c.line}: simple and extended exclude each other`);
  }
});

test('simple protocol: every case gets its decision', async (t) => {
  await runCorpus(t, 'simple');
});

test('extended protocol: the same cases, through Parse/Bind/Execute', async (t) => {
  await runCorpus(t, 'extended');
});

test('nothing was lost: the protected tables hold every row, unchanged, and no privilege changed', async () => {
  const now = await stateNow();
  const [was, is] = [stateBefore, now].map((s) => s.split('\n'));
  const queries = STATE.trim().split('\n');
  for (let i = 0; i < queries.length; i++) assert.equal(is![i], was![i], `after the whole corpus: ${queries[i]}`);
  assert.match(is![0]!, /"count":"50"/);
  assert.match(is![1]!, /"count":"20"/);
});
