// Commands held for approval: psql and node-postgres wait with a NOTICE, a person answers with
// `gateway-action approve|deny` (found through the per-user runtime directory), a timeout or a
// Ctrl-C denies, and the session log records the request, who decided, when and why.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { CLI, appCluster, cli, cliAsync, policyFor, psqlAsync, readLog, startGateway, tempDir, waitFor, type Cluster, type LogRecord, type RunningGateway } from '../helpers/gateway.ts';
import { newPgClient, type PgError } from '../helpers/pg.ts';

// Every gateway and CLI of this file announces itself here, not in the user's real runtime dir.
process.env.GATEWAY_ACTION_RUNTIME_DIR = path.join(tempDir('gw-approvals-'), 'run');

const RULES = (timeout: string): string => `rules:
  - name: approve-destructive-ddl
    target: app-db
    when: { sql: [drop, truncate] }
    action: approve
    reason: "DROP and TRUNCATE need a second pair of eyes"
  - name: no-unbounded-writes
    when: { sql: [delete-without-where, update-without-where] }
    action: deny
default: allow
unclassified: deny
approvals: { timeout: ${timeout} }
`;

let cluster: Cluster;
let gw: RunningGateway;
const sql = (q: string): string => cluster.sql(q, 'app').trim();
const tableExists = (name: string): boolean => sql(`SELECT to_regclass('${name}') IS NOT NULL`) === 't';

before(async () => {
  cluster = await appCluster();
  gw = startGateway(policyFor(cluster) + RULES('10m'));
});
after(() => {
  try {
    gw?.stop();
  } finally {
    cluster?.stop();
  }
});

function makeTable(name: string): void {
  sql(`DROP TABLE IF EXISTS ${name}; CREATE TABLE ${name} (id int); ALTER TABLE ${name} OWNER TO deployer; INSERT INTO ${name} VALUES (1), (2)`);
}

/** The id from the waiting NOTICE, once the client has printed it. */
async function requestId(output: () => string): Promise<string> {
  const m = await waitFor(() => /holds this command as request ([a-z0-9]{8})/.exec(output()), 'the approval NOTICE');
  return m![1]!;
}

const records = (type: string): LogRecord[] => readLog(gw.logPath()).filter((r) => r.type === type);

test('psql: a held DROP waits with a NOTICE, is listed by pending, and runs once approved', async () => {
  makeTable('doomed');
  const p = psqlAsync(gw.env, ['-v', 'ON_ERROR_STOP=1', '-c', 'DROP TABLE doomed', '-c', "SELECT 'after' AS next"]);
  const id = await requestId(() => p.output.stderr());
  assert.match(p.output.stderr(), /NOTICE: {2}gateway: waiting for approval: rule "approve-destructive-ddl"/);
  assert.match(p.output.stderr(), new RegExp(`HINT: {2}approve with \`gateway-action approve ${id}\``));
  assert.ok(tableExists('doomed'), 'nothing reached the server while held');

  const listed = cli(['pending']);
  assert.equal(listed.status, 0, listed.stderr);
  assert.match(listed.stdout, new RegExp(`${id}\\s+app-db\\s+approve-destructive-ddl\\s+\\d+s\\s+DROP TABLE doomed`));
  const json = JSON.parse(cli(['pending', '--json']).stdout) as { id: string; text: string; rule: string }[];
  assert.deepEqual(json.map((r) => [r.id, r.text, r.rule]), [[id, 'DROP TABLE doomed', 'approve-destructive-ddl']]);

  const ok = cli(['approve', id]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, new RegExp(`approved ${id}: app-db s\\d+ rule "approve-destructive-ddl": DROP TABLE doomed`));
  const r = await p.done;
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /DROP TABLE\n[\s\S]*after/);
  assert.ok(!tableExists('doomed'));

  const cmd = readLog(gw.logPath()).find((x) => x.type === 'command' && x.text === 'DROP TABLE doomed')!;
  assert.equal(cmd.decision.action, 'approve');
  assert.equal(cmd.decision.rule, 'approve-destructive-ddl');
  const req = records('approval-request').find((x) => x.id === id)!;
  assert.equal(req.command, cmd.command);
  const verdict = records('approval').find((x) => x.id === id)!;
  assert.equal(verdict.outcome, 'approved');
  assert.equal(verdict.by, `local:${os.userInfo().username}`);
  assert.equal(verdict.via, 'local');
  assert.ok(Date.parse(verdict.at) >= Date.parse(req.time), 'the verdict comes after the request');
  assert.ok(verdict.waited_ms >= 0);
  const result = readLog(gw.logPath()).find((x) => x.type === 'result' && x.command === cmd.command)!;
  assert.equal(result.status, 'ok');
  assert.deepEqual(result.details.tags, ['DROP TABLE']);
});

test('deny with a reason: the client gets 42501 with the reason, the table stays, the session goes on', async () => {
  makeTable('kept');
  const p = psqlAsync(gw.env, ['-v', 'VERBOSITY=verbose', '-c', 'TRUNCATE kept', '-c', 'SELECT count(*) AS n FROM kept']);
  const id = await requestId(() => p.output.stderr());
  const no = cli(['deny', id, '--reason', 'not during business hours']);
  assert.equal(no.status, 0, no.stderr);
  const r = await p.done;
  assert.match(r.stderr, new RegExp(`ERROR: {2}42501: gateway: denied by rule "approve-destructive-ddl": request ${id} was denied by local:${os.userInfo().username}: not during business hours`));
  assert.match(r.stdout, /\n\s+2\n/, 'the next command ran');
  assert.equal(sql('SELECT count(*) FROM kept'), '2');
  const verdict = records('approval').find((x) => x.id === id)!;
  assert.equal(verdict.outcome, 'denied');
  assert.equal(verdict.reason, 'not during business hours');
  const cmd = readLog(gw.logPath()).find((x) => x.type === 'command' && x.text === 'TRUNCATE kept')!;
  const result = readLog(gw.logPath()).find((x) => x.type === 'result' && x.command === cmd.command)!;
  assert.equal(result.status, 'denied');
});

test('inside a transaction: a denied hold aborts the block; an approved one commits with it', async () => {
  makeTable('tx_a');
  const denied = psqlAsync(gw.env, ['-c', 'BEGIN', '-c', 'INSERT INTO tx_a VALUES (3)', '-c', 'DROP TABLE tx_a', '-c', 'INSERT INTO tx_a VALUES (4)', '-c', 'COMMIT']);
  cli(['deny', await requestId(() => denied.output.stderr())]);
  const d = await denied.done;
  assert.match(d.stderr, /current transaction is aborted/);
  assert.match(d.stdout, /ROLLBACK/, 'COMMIT of an aborted block rolls back');
  assert.equal(sql('SELECT string_agg(id::text, \',\' ORDER BY id) FROM tx_a'), '1,2');

  makeTable('tx_b');
  const approved = psqlAsync(gw.env, ['-c', 'BEGIN', '-c', 'INSERT INTO tx_b VALUES (3)', '-c', 'TRUNCATE tx_b', '-c', 'INSERT INTO tx_b VALUES (4)', '-c', 'COMMIT']);
  cli(['approve', await requestId(() => approved.output.stderr())]);
  const a = await approved.done;
  assert.equal(a.status, 0, a.stderr);
  assert.equal(sql('SELECT string_agg(id::text, \',\') FROM tx_b'), '4');
});

test('node-postgres (extended protocol): held at Parse, the query resolves once approved', async () => {
  makeTable('pg_held');
  const client = newPgClient({ connectionString: gw.env.GATEWAY_APP_DB_URL! });
  const notices: string[] = [];
  (client as unknown as { on(e: 'notice', f: (n: { message: string }) => void): void }).on('notice', (n) => notices.push(n.message));
  await client.connect();
  try {
    const q = client.query({ name: 'drop-it', text: 'DROP TABLE pg_held' });
    const id = await requestId(() => notices.join('\n'));
    cli(['approve', id]);
    const res = await q;
    assert.equal(res.command, 'DROP');
    assert.ok(!tableExists('pg_held'));
    const after = await client.query('SELECT $1::int AS n', [7]);
    assert.deepEqual(after.rows, [{ n: 7 }]);

    makeTable('pg_kept');
    const q2 = client.query({ text: 'DROP TABLE pg_kept', name: 'drop-2' }).then(() => null, (e: PgError) => e);
    cli(['deny', await requestId(() => notices.slice(1).join('\n')), '--reason', 'no']);
    const err = await q2;
    assert.equal(err?.code, '42501');
    assert.match(err!.message, /denied by rule "approve-destructive-ddl".*: no$/);
    assert.ok(tableExists('pg_kept'));
    assert.deepEqual((await client.query('SELECT count(*)::int AS n FROM pg_kept')).rows, [{ n: 2 }]);
  } finally {
    await client.end();
  }
});

test('Ctrl-C in psql withdraws the held command: it never runs', async () => {
  makeTable('cancelled');
  const p = psqlAsync(gw.env, ['-c', 'DROP TABLE cancelled']);
  const id = await requestId(() => p.output.stderr());
  p.child.kill('SIGINT');
  const r = await p.done;
  assert.match(r.stderr, /ERROR: {2}gateway: denied by rule "approve-destructive-ddl": request \w+ was cancelled by the client/);
  assert.ok(tableExists('cancelled'));
  assert.equal(cli(['approve', id]).status, 1, 'a withdrawn request cannot be approved later');
  await waitFor(() => records('approval').some((x) => x.id === id && x.via === 'client'), 'the cancellation in the log');
});

test('a client that disconnects while held withdraws the request; the log says so', async () => {
  makeTable('abandoned');
  const p = psqlAsync(gw.env, ['-c', 'DROP TABLE abandoned']);
  const id = await requestId(() => p.output.stderr());
  p.child.kill('SIGKILL');
  await p.done;
  await waitFor(() => JSON.parse(cli(['pending', '--json']).stdout).length === 0, 'the request to be withdrawn');
  assert.equal(cli(['approve', id]).status, 1);
  assert.ok(tableExists('abandoned'));
  const verdict = await waitFor(() => records('approval').find((x) => x.id === id), 'the approval record');
  assert.deepEqual([verdict!.outcome, verdict!.via], ['denied', 'client']);
  const req = records('approval-request').find((x) => x.id === id)!;
  const result = await waitFor(() => records('result').find((x) => x.command === req.command), 'the result record');
  assert.equal(result!.status, 'denied');
});

test('approve with an unknown id names what is waiting; usage errors exit 2', () => {
  const r = cli(['approve', 'zzzzzzzz']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /no command is waiting for approval with request id zzzzzzzz \(nothing is waiting\)/);
  assert.equal(cli(['approve']).status, 2);
  assert.equal(cli(['deny', 'a', '--bogus']).status, 2);
});

test('the control socket and its directory are private to the user', () => {
  const dir = process.env.GATEWAY_ACTION_RUNTIME_DIR!;
  assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
  const sockets = fs.readdirSync(dir).filter((n) => n.endsWith('.sock'));
  assert.ok(sockets.length >= 1);
  for (const s of sockets) assert.equal(fs.statSync(path.join(dir, s)).mode & 0o777, 0o600);
});

test('no verdict in time: denied by timeout, with progress NOTICEs meanwhile; a stop withdraws what waits', async () => {
  const short = startGateway(policyFor(cluster) + RULES('3s'));
  try {
    makeTable('timed');
    const p = psqlAsync(short.env, ['-c', 'DROP TABLE timed']);
    const r = await p.done;
    assert.match(r.stderr, /still waiting for approval of request \w+ \(\d+s left\)/);
    assert.match(r.stderr, /denied by rule "approve-destructive-ddl": request \w+ timed out: no verdict within 3s/);
    assert.ok(tableExists('timed'));

    const waiting = psqlAsync(short.env, ['-c', 'DROP TABLE timed']);
    await requestId(() => waiting.output.stderr());
    const stopping = cliAsync(['stop', '--state-dir', short.stateDir]);
    const w = await waiting.done;
    assert.match(w.stderr, /was withdrawn: the gateway is stopping/);
    assert.equal((await stopping).status, 0);
    assert.ok(tableExists('timed'));
    const verdicts = readLog(short.logPath()).filter((x) => x.type === 'approval').map((x) => x.via);
    assert.deepEqual(verdicts, ['timeout', 'gateway']);
    assert.equal(cli(['verify', short.logPath()]).status, 0);
  } finally {
    try {
      short.stop();
    } catch {
      // already stopped by the test
    }
  }
});

test('`gateway-action run` holds too: approve from another terminal while COMMAND waits', async () => {
  makeTable('run_held');
  const dir = tempDir('gw-run-approve-');
  const policy = path.join(dir, 'gateway.yml');
  fs.writeFileSync(policy, policyFor(cluster) + RULES('10m'));
  const child = spawn(process.execPath, [CLI, 'run', '--policy', policy, '--log-dir', dir, '--', 'psql', '-X', '-c', 'DROP TABLE run_held'], {
    env: { ...process.env, APP_DB_PASSWORD: 'deployer-pw' },
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const id = await requestId(() => stderr);
  const ok = cli(['approve', id]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(await exited, 0, stderr);
  assert.ok(!tableExists('run_held'));
});
