// The shipped CLI (dist/cli.js) as a user runs it: usage, run, start/stop, verify and demo,
// against a real PostgreSQL cluster with real psql.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { appCluster, cli, parseEnv, policyFor, psql, readLog, tempDir, waitFor, type Cluster } from '../helpers/gateway.ts';

const VERBS = ['run', 'start', 'stop', 'pending', 'approve', 'deny', 'verify', 'replay', 'report', 'demo'];

/** process.env without anything that would leak into or confuse the commands under test. */
function baseEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (/^(PG|GATEWAY_)/.test(k) || k.endsWith('_DB_PASSWORD')) delete env[k];
  return { ...env, ...extra };
}

/** The `gateway-action: session log: PATH` line's PATH. */
function sessionLogOf(stderr: string): string {
  const m = /^gateway-action: session log: (.+)$/m.exec(stderr);
  assert.ok(m, `no session log line on stderr:\n${stderr}`);
  return m[1]!;
}

function assertOneLineUsageError(r: { status: number | null; stdout: string; stderr: string }, pattern: RegExp): void {
  assert.equal(r.status, 2, `exit status: ${r.status}\n${r.stderr}`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^gateway-action: /);
  assert.match(lines[0]!, pattern);
}

describe('usage', () => {
  for (const verb of VERBS) {
    test(`${verb} --help prints the verb's usage and exits 0`, () => {
      const r = cli([verb, '--help']);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^Usage: gateway-action ${verb}\\b`));
      assert.equal(r.stderr, '');
      const short = cli([verb, '-h']);
      assert.equal(short.status, 0, short.stderr);
      assert.equal(short.stdout, r.stdout);
    });
  }

  test('--help lists every verb and exits 0', () => {
    const r = cli(['--help']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Usage: gateway-action <verb>/);
    for (const verb of VERBS) assert.match(r.stdout, new RegExp(`^  ${verb}\\b`, 'm'));
  });

  test('no verb prints the usage and exits 2', () => {
    const r = cli([]);
    assert.equal(r.status, 2);
    assert.match(r.stdout + r.stderr, /Usage: gateway-action <verb>/);
  });

  test('an unknown verb is one line on stderr, exit 2', () => {
    assertOneLineUsageError(cli(['frobnicate']), /"frobnicate"/);
  });

  test('an unknown option is one line on stderr, exit 2', () => {
    assertOneLineUsageError(cli(['run', '--polcy', 'x.yml', '--', 'true']), /--polcy/);
    assertOneLineUsageError(cli(['start', '--verbose']), /--verbose/);
    assertOneLineUsageError(cli(['verify', '--jsn', 'x.jsonl']), /--jsn/);
  });

  test('missing required options or arguments are one line on stderr, exit 2', () => {
    assertOneLineUsageError(cli(['run', '--', 'true']), /--policy/);
    assertOneLineUsageError(cli(['start', '--state-dir', tempDir('gw-cli-')]), /--policy/);
    assertOneLineUsageError(cli(['start', '--policy', 'gateway.yml']), /--state-dir/);
    assertOneLineUsageError(cli(['stop']), /--state-dir/);
    assertOneLineUsageError(cli(['verify']), /verify/);
    assertOneLineUsageError(cli(['run', '--policy']), /--policy/);
    assertOneLineUsageError(cli(['run', '--policy', 'gateway.yml']), /--/);
  });
});

describe('with a PostgreSQL cluster', () => {
  let cluster: Cluster;
  let work: string;
  let policy: string;

  before(async () => {
    cluster = await appCluster();
    cluster.sql(`CREATE ROLE reporter LOGIN PASSWORD 'reporter-pw'`);
    cluster.sql('GRANT CONNECT ON DATABASE app TO reporter');
    work = tempDir('gw-cli-');
    policy = path.join(work, 'gateway.yml');
    fs.writeFileSync(policy, policyFor(cluster));
  });
  after(() => {
    cluster?.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test('run: the command gets the connection env but not the upstream password', () => {
    const cwd = tempDir('gw-cwd-');
    const r = cli(['run', '--policy', policy, '--', 'sh', '-c', 'echo "$PGHOST $PGPORT"; env'], { cwd, env: baseEnv({ APP_DB_PASSWORD: 'deployer-pw' }) });
    assert.equal(r.status, 0, r.stderr);
    const [first, ...rest] = r.stdout.split('\n');
    const env = parseEnv(rest.join('\n'));
    assert.equal(first, `127.0.0.1 ${env.PGPORT}`);
    assert.match(env.PGPORT!, /^\d+$/);
    assert.notEqual(env.PGPORT, String(cluster.port), 'clients reach the gateway, not the server');
    assert.equal(env.PGUSER, 'deployer');
    assert.equal(env.PGDATABASE, 'app');
    assert.equal(env.PGSSLMODE, 'disable');
    assert.ok(env.PGPASSWORD && env.PGPASSWORD !== 'deployer-pw');
    assert.equal(env.APP_DB_PASSWORD, undefined, 'the upstream password variable is removed');
    assert.ok(!r.stdout.includes('deployer-pw'), 'the upstream password appears nowhere in the environment');
    const url = new URL(env.GATEWAY_APP_DB_URL!);
    assert.equal(url.protocol, 'postgresql:');
    assert.equal(url.hostname, '127.0.0.1');
    assert.equal(url.port, env.PGPORT);
    assert.equal(url.username, 'deployer');
    assert.equal(decodeURIComponent(url.password), env.PGPASSWORD);
    assert.equal(url.pathname, '/app');

    const log = sessionLogOf(r.stderr);
    assert.equal(path.dirname(log), path.join(fs.realpathSync(cwd), 'gateway-logs'), 'default log dir is ./gateway-logs');
    const v = cli(['verify', log]);
    assert.equal(v.status, 0, v.stderr);
    assert.match(v.stdout, /VALID/);
    fs.rmSync(cwd, { recursive: true, force: true });
  });

  test('run: GATEWAY_APP_DB_URL works on its own, and the session log records the command', () => {
    const logDir = path.join(work, 'logs-url');
    const script = `env -u PGHOST -u PGPORT -u PGUSER -u PGPASSWORD -u PGDATABASE -u PGSSLMODE psql -X -At "$GATEWAY_APP_DB_URL" -c 'select 41 + 1'`;
    const r = cli(['run', '--policy', policy, '--log-dir', logDir, '--', 'sh', '-c', script], { cwd: work, env: baseEnv({ APP_DB_PASSWORD: 'deployer-pw' }) });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), '42');
    const log = sessionLogOf(r.stderr);
    assert.equal(path.dirname(log), logDir);
    const records = readLog(log);
    assert.ok(records.some((x) => x.type === 'command' && x.text === 'select 41 + 1'), 'the command is in the session log');
    const v = cli(['verify', '--json', log]);
    assert.equal(v.status, 0, v.stderr);
    const summary = JSON.parse(v.stdout) as { status: string; sealed: boolean; totals: { commands: number } };
    assert.equal(summary.status, 'valid');
    assert.equal(summary.sealed, true);
    assert.ok(summary.totals.commands >= 1);
  });

  test("run: the exit status is the command's", () => {
    const r = cli(['run', '--policy', policy, '--log-dir', path.join(work, 'logs-exit'), '--', 'sh', '-c', 'exit 7'], { cwd: work, env: baseEnv({ APP_DB_PASSWORD: 'deployer-pw' }) });
    assert.equal(r.status, 7, r.stderr);
    const v = cli(['verify', sessionLogOf(r.stderr)]);
    assert.equal(v.status, 0, v.stderr);

    const missing = cli(['run', '--policy', policy, '--log-dir', path.join(work, 'logs-exit'), '--', 'no-such-command-gw-test'], { cwd: work, env: baseEnv({ APP_DB_PASSWORD: 'deployer-pw' }) });
    assert.equal(missing.status, 127);
    assert.match(missing.stderr, /no-such-command-gw-test/);
    assert.match(missing.stderr, /not found/);
  });

  test('run: a missing upstream password variable is a clear error naming it', () => {
    const cwd = tempDir('gw-cwd-');
    const r = cli(['run', '--policy', policy, '--', 'true'], { cwd, env: baseEnv() });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /APP_DB_PASSWORD/);
    assert.match(r.stderr, /not set/);
    assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
    fs.rmSync(cwd, { recursive: true, force: true });
  });

  test('run: two targets each get a URL; PG* point to the first; both work', () => {
    const two = path.join(work, 'two.yml');
    fs.writeFileSync(two, [
      'version: 1',
      'targets:',
      '  app-db:',
      '    kind: postgres',
      '    host: 127.0.0.1',
      `    port: ${cluster.port}`,
      '    database: app',
      '    user: deployer',
      '    auth: { password-env: APP_DB_PASSWORD }',
      '    tls: disable',
      '  reports-db:',
      '    kind: postgres',
      '    host: 127.0.0.1',
      `    port: ${cluster.port}`,
      '    database: app',
      '    user: reporter',
      '    auth: { password-env: REPORTS_DB_PASSWORD }',
      '    tls: disable',
      '',
    ].join('\n'));
    const script = [
      'env',
      'echo "app=$(psql -X -At "$GATEWAY_APP_DB_URL" -c "select current_user")"',
      'echo "reports=$(psql -X -At "$GATEWAY_REPORTS_DB_URL" -c "select current_user")"',
      'echo "pg=$(psql -X -At -c "select current_user")"',
    ].join('; ');
    const r = cli(['run', '--policy', two, '--log-dir', path.join(work, 'logs-two'), '--', 'sh', '-c', script], {
      cwd: work,
      env: baseEnv({ APP_DB_PASSWORD: 'deployer-pw', REPORTS_DB_PASSWORD: 'reporter-pw' }),
    });
    assert.equal(r.status, 0, r.stderr);
    const env = parseEnv(r.stdout);
    const app = new URL(env.GATEWAY_APP_DB_URL!);
    const reports = new URL(env.GATEWAY_REPORTS_DB_URL!);
    assert.notEqual(app.port, reports.port, 'one listener per target');
    assert.equal(reports.username, 'reporter');
    assert.equal(env.PGPORT, app.port);
    assert.equal(env.PGUSER, 'deployer');
    assert.equal(env.PGPASSWORD, decodeURIComponent(app.password));
    assert.equal(env.APP_DB_PASSWORD, undefined);
    assert.equal(env.REPORTS_DB_PASSWORD, undefined);
    assert.ok(!r.stdout.includes('deployer-pw') && !r.stdout.includes('reporter-pw'));
    assert.equal(env.app, 'deployer');
    assert.equal(env.reports, 'reporter');
    assert.equal(env.pg, 'deployer');
    const records = readLog(sessionLogOf(r.stderr));
    const logins = records.filter((x) => x.type === 'upstream-login' && x.ok === true);
    assert.equal(logins.length, 3);
  });

  test('start and stop: env file, state dir, control socket, log path; a second stop fails clearly', async () => {
    const dir = tempDir('gw-start-');
    const stateDir = path.join(dir, 'state');
    const logDir = path.join(dir, 'logs');
    const r = cli(['start', '--policy', policy, '--state-dir', stateDir, '--log-dir', logDir], { cwd: dir, env: baseEnv({ APP_DB_PASSWORD: 'deployer-pw' }) });
    assert.equal(r.status, 0, r.stderr);
    const envFile = path.join(stateDir, 'env');
    assert.equal(fs.statSync(envFile).mode & 0o777, 0o600);
    assert.equal(fs.statSync(stateDir).mode & 0o777, 0o700);
    assert.ok(fs.statSync(path.join(stateDir, 'control.sock')).isSocket(), 'the control socket exists');
    const text = fs.readFileSync(envFile, 'utf8');
    assert.equal(r.stdout, text, 'start prints exactly the lines it writes to the env file');
    const env = parseEnv(text);
    for (const k of ['GATEWAY_APP_DB_URL', 'PGHOST', 'PGPORT', 'PGUSER', 'PGPASSWORD', 'PGDATABASE', 'PGSSLMODE']) assert.ok(env[k], `${k} in env file`);
    assert.equal(Object.keys(env).length, 7);
    assert.ok(!text.includes('deployer-pw'), 'the upstream password is not in the env file');
    const q = psql(env, ['-At', '-c', 'select current_user']);
    assert.equal(q.status, 0, q.stderr);
    assert.equal(q.stdout.trim(), 'deployer');

    const pid = (JSON.parse(fs.readFileSync(path.join(stateDir, 'daemon.json'), 'utf8')) as { pid: number }).pid;
    const s = cli(['stop', '--state-dir', stateDir], { cwd: dir });
    assert.equal(s.status, 0, s.stderr);
    const log = s.stdout.trim();
    assert.equal(path.dirname(log), logDir);
    const records = readLog(log);
    assert.ok(records.some((x) => x.type === 'command' && x.text === 'select current_user'));
    const v = cli(['verify', log]);
    assert.equal(v.status, 0, v.stderr);
    assert.match(v.stdout, /VALID/);
    await waitFor(() => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    }, 'the daemon to exit after stop');

    const again = cli(['stop', '--state-dir', stateDir], { cwd: dir });
    assert.equal(again.status, 1);
    assert.match(again.stderr, /no gateway is running/);
    assert.equal(again.stderr.trimEnd().split('\n').length, 1, again.stderr);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('start with a bad policy fails fast with FILE:LINE and starts no daemon', () => {
    const dir = tempDir('gw-start-');
    const bad = path.join(dir, 'bad.yml');
    fs.writeFileSync(bad, policyFor(cluster).replace('    tls: disable\n', '    tls: sometimes\n'));
    const stateDir = path.join(dir, 'state');
    const r = cli(['start', '--policy', bad, '--state-dir', stateDir, '--log-dir', path.join(dir, 'logs')], { cwd: dir, env: baseEnv({ APP_DB_PASSWORD: 'deployer-pw' }) });
    assert.equal(r.status, 1);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:9: .*tls`));
    assert.ok(!fs.existsSync(path.join(stateDir, 'control.sock')), 'no daemon is listening');
    assert.ok(!fs.existsSync(path.join(stateDir, 'daemon.json')), 'no daemon was started');
    assert.ok(!fs.existsSync(path.join(dir, 'logs')), 'no session log was started');
    const s = cli(['stop', '--state-dir', stateDir], { cwd: dir });
    assert.equal(s.status, 1);
    assert.match(s.stderr, /no gateway is running/);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('start without the upstream password variable fails with an error naming it', () => {
    const dir = tempDir('gw-start-');
    const stateDir = path.join(dir, 'state');
    const r = cli(['start', '--policy', policy, '--state-dir', stateDir, '--log-dir', path.join(dir, 'logs')], { cwd: dir, env: baseEnv() });
    assert.equal(r.status, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /APP_DB_PASSWORD/);
    assert.match(r.stderr, /not set/);
    assert.ok(!fs.existsSync(path.join(stateDir, 'control.sock')), 'no daemon is listening');
    assert.ok(!fs.existsSync(path.join(stateDir, 'env')), 'no env file is written');
    const s = cli(['stop', '--state-dir', stateDir], { cwd: dir });
    assert.equal(s.status, 1);
    assert.match(s.stderr, /no gateway is running/);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

test('demo shows masking, a denied DELETE, a DROP approved with `gateway-action approve`, then verify, replay and the report', () => {
  const cwd = tempDir('gw-demo-cwd-');
  const logDir = path.join(tempDir('gw-demo-logs-'), 'logs');
  const r = cli(['demo', '--log-dir', logDir], { cwd, env: baseEnv({ NO_COLOR: '1' }) });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const out = r.stdout;
  // Every step, in order, with a heading a first-time user can follow.
  assert.deepEqual([...out.matchAll(/^── (\d\. .+?) ─+$/gm)].map((m) => m[1]), [
    '1. A throwaway PostgreSQL', '2. The policy', '3. A query with personal data: masked', '4. A DELETE without WHERE: denied',
    '5. A DROP TABLE: held until someone approves', '6. The session log, verified', '7. The session log, replayed', '8. A report for auditors',
  ]);
  assert.match(out, /^ {2}rules:\n {4}- name: no-unbounded-deletes$/m, 'the policy is shown');
  assert.match(out, /^ {2}masking:$/m);
  // Masked in psql's own output: the email column by name, card numbers by the detector.
  assert.match(out, /Ada Lovelace +\| a\*\*\*@\*\*\*\.com +\| \*\*\*\*1111/);
  for (const clear of ['ada@example.com', 'grace@example.com', '4111 1111 1111 1111', '5555 5555 5555 4444']) assert.equal(out.includes(clear), false, `${clear} is shown`);
  assert.match(out, /\$ psql -c 'DELETE FROM orders'\n {2}ERROR: {2}gateway: denied by rule "no-unbounded-deletes"/);
  // Held, then approved by the real verb in its own process.
  const id = /holds this command as request ([a-z0-9]{8})/.exec(out)?.[1];
  assert.ok(id, out);
  assert.match(out, new RegExp(`\\$ gateway-action approve ${id}\\n {2}approved ${id}: app-db s\\d+ rule "drops-need-approval": DROP TABLE orders_2019\\n\\npsql goes on once approved:\\n {2}DROP TABLE\\n`));
  assert.match(out, /^ {2}status: {6}VALID: hash chain intact/m);
  assert.match(out, /DENY +denied .*DELETE FROM orders/);
  assert.match(out, new RegExp(`request ${id} approved by local:\\S+ after`));
  assert.match(out, /masked 6 values \(credit-card\)/);

  const log = /^Session log: (.+)$/m.exec(out)?.[1];
  const report = /^HTML report: (.+)$/m.exec(out)?.[1];
  assert.ok(log && report, out);
  assert.equal(path.dirname(log), logDir);
  assert.equal(report, log.replace(/\.jsonl$/, '.html'), 'the report is written next to the log');
  assert.match(fs.readFileSync(report, 'utf8'), /^<!doctype html>/i);
  assert.match(out, /^Verification: VALID$/m);
  const v = cli(['verify', log]);
  assert.equal(v.status, 0, v.stderr);
  const records = readLog(log);
  assert.ok(records.some((x) => x.type === 'approval' && x.id === id && x.outcome === 'approved' && x.via === 'local'), 'the approval is recorded');
  assert.ok(records.some((x) => x.type === 'command' && x.text === 'DELETE FROM orders' && x.decision?.action === 'deny'));
  assert.equal(JSON.stringify(records).includes('ada@example.com'), false, 'the log holds only masked values');
  assert.ok(!fs.existsSync(path.join(cwd, 'gateway-logs')), '--log-dir is honoured');
  fs.rmSync(cwd, { recursive: true, force: true });
  fs.rmSync(path.dirname(logDir), { recursive: true, force: true });
});
