// Startup options (PGOPTIONS) are read exactly as the server reads them: each corpus line marked
// `server` is checked against a real PostgreSQL, and through the gateway every spelling of a role
// switch is decided as the `role` statement it amounts to, refused, and logged with the startup
// parameters.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { appCluster, directEnv, policyFor, psql, readLog, startGateway, waitFor, type Cluster, type LogRecord, type RunningGateway } from '../helpers/gateway.ts';
import { readOptionsCorpus } from '../helpers/startup-options-corpus.ts';
import { parseOptions } from '../../gateway/postgres/startup-settings.ts';

const RULES = `rules:
  - name: no-role-switch
    when: { sql: [role] }
    action: deny
default: allow
unclassified: deny
`;

let cluster: Cluster;
let gw: RunningGateway;

before(async () => {
  cluster = await appCluster();
  // deployer may become admin_role: without the rule, a role switch in the options would work.
  cluster.sql('CREATE ROLE admin_role; GRANT admin_role TO deployer');
  gw = startGateway(policyFor(cluster) + RULES);
});
after(() => {
  try {
    gw?.stop();
  } finally {
    cluster?.stop();
  }
});

/** What a session started with these options runs as, and every setting its startup set. */
const PROBE = "SELECT current_user || ' ' || session_user UNION ALL (SELECT name || '=' || setting FROM pg_settings WHERE source = 'client' AND name <> 'application_name' ORDER BY name)";

function probeDirect(options: string): { ok: boolean; out: string; err: string } {
  const r = psql({ ...directEnv(cluster, 'postgres', '', 'app'), PGOPTIONS: options }, ['-At', '-c', PROBE]);
  return { ok: r.status === 0, out: r.stdout, err: r.stderr };
}

/** The gateway's reading written back as plain `-c name=value` switches. */
function canonical(options: string): string {
  const sets = parseOptions(options).switches.flatMap((s) => s.sets);
  return sets.map(([k, v]) => `-c ${k}=${v.replace(/[\\\s]/g, (c) => `\\${c}`)}`).join(' ');
}

test("the server reads each corpus options string as the gateway does: same settings, same role, or a refusal", () => {
  const cases = readOptionsCorpus().filter((c) => c.server);
  assert.ok(cases.length > 50);
  for (const c of cases) {
    const where = `startup-options.txt:${c.line} ${JSON.stringify(c.options)}`;
    const raw = probeDirect(c.options);
    if (c.expect.startsWith('refused: ')) {
      assert.equal(raw.ok, false, `${where}: the server accepted options the gateway refuses:\n${raw.out}`);
      assert.match(raw.err, /FATAL/, where);
      continue;
    }
    assert.equal(raw.ok, true, `${where}: ${raw.err}`);
    const asRead = probeDirect(canonical(c.options));
    assert.equal(asRead.ok, true, `${where}: ${asRead.err}`);
    assert.equal(raw.out, asRead.out, `${where}: the server's settings differ from the gateway's reading`);
  }
});

const ROLE_SWITCHES = [
  '-nc role=admin_role',
  '-c role=admin_role',
  '-crole=admin_role',
  '--role=admin_role',
  '-cROLE=admin_role',
  '-n-role=admin_role',
  '-nTc role=admin_role',
  '-E -c   role=admin_role',
  '-c role=admin\\_role',
  '-c session_authorization=admin_role',
  '--session-authorization=admin_role',
  '-c statement_timeout=5s -csession_authorization=admin_role',
];

/** The log once the session-open and session-close records of a connection with these options are written. */
async function logWithSession(options: string): Promise<{ log: LogRecord[]; open: LogRecord; close: LogRecord }> {
  const found = await waitFor((): { log: LogRecord[]; open: LogRecord; close: LogRecord } | null => {
    const log = readLog(gw.logPath());
    const open = log.find((x) => x.type === 'session-open' && x.startup?.parameters?.options === options);
    const close = open && log.find((x) => x.type === 'session-close' && x.session === open.session);
    return close ? { log, open, close } : null;
  }, `the session records of a connection with options ${JSON.stringify(options)}`);
  return found!;
}

test('every spelling of a role switch in PGOPTIONS is denied by the role rule and logged', async () => {
  for (const options of ROLE_SWITCHES) {
    const r = psql({ ...gw.env, PGOPTIONS: options }, ['-At', '-c', 'SELECT current_user']);
    assert.notEqual(r.status, 0, `${options}: ${r.stdout}`);
    assert.doesNotMatch(r.stdout, /admin_role/, options);
    assert.match(r.stderr, /FATAL: {2}gateway: denied by rule "no-role-switch": startup parameters set server variables \((statement_timeout, )?(role|session_authorization)\)/, options);
  }
  for (const options of ROLE_SWITCHES) {
    const { open, close } = await logWithSession(options);
    const role = open.startup.settings.find((s: { name: string }) => s.name === 'role' || s.name === 'session_authorization');
    assert.equal(role?.value, 'admin_role', options);
    assert.equal(role?.decided, true, options);
    assert.deepEqual(open.startup.decision, { action: 'deny', rule: 'no-role-switch', reason: 'denied by rule no-role-switch' }, options);
    assert.equal(close?.reason, 'refused by policy: startup parameters', options);
  }
});

test('options the server would read differently or reject are refused before login, and logged', async () => {
  for (const [options, why] of [
    ['-c\\ role=admin_role', /" role" is not a setting name/],
    ['-c role=admin_role extra', /"extra" is not a switch/],
    ['-c\u00a0role=admin_role', /U\+00A0/],
    ['-x', /-x \(in "-x"\) is not a switch the server accepts/],
  ] as const) {
    const r = psql({ ...gw.env, PGOPTIONS: options }, ['-At', '-c', 'SELECT current_user']);
    assert.notEqual(r.status, 0, options);
    assert.match(r.stderr, /FATAL: {2}gateway: options .* \(PGOPTIONS\) cannot be read as settings: /, options);
    assert.match(r.stderr, why, options);
  }
  const { open, close } = await logWithSession('-x');
  assert.match(open.startup.unreadable, /-x/);
  assert.equal(close?.reason, 'refused: startup options cannot be read');
});

test('allowed settings reach the server, and the session-open record holds every startup parameter', async () => {
  const r = psql({ ...gw.env, PGOPTIONS: '-nc statement_timeout=5s -S 2MB', PGAPPNAME: 'probe' }, ['-At', '-c', 'SHOW statement_timeout', '-c', 'SHOW work_mem']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, '5s\n2MB\n');
  const { open } = await logWithSession('-nc statement_timeout=5s -S 2MB');
  assert.equal(open.startup.parameters.user, 'deployer');
  assert.equal(open.startup.parameters.database, 'app');
  assert.deepEqual(open.startup.options, [
    { switch: '-n', sets: [] },
    { switch: '-c', argument: 'statement_timeout=5s', sets: [['statement_timeout', '5s']] },
    { switch: '-S', argument: '2MB', sets: [['work_mem', '2MB']] },
  ]);
  assert.deepEqual(open.startup.settings.filter((s: { decided: boolean }) => s.decided).map((s: { name: string; value: string }) => `${s.name}=${s.value}`), ['statement_timeout=5s', 'work_mem=2MB']);
  assert.deepEqual(open.startup.decision, { action: 'allow', rule: open.startup.decision.rule });
});
