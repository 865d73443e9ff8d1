// The durability rule, end to end: a command reaches the target only after its record is in the
// session log file. Checked by SIGKILLing the daemon under load, by running it on a disk that fills
// up, and by handing `verify` logs that were cut, edited, truncated or extended.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  appCluster, cli, cliAsync, parseEnv, policyFor, psql, readLog, startGateway, tempDir, waitFor,
  type Cluster, type LogRecord,
} from '../helpers/gateway.ts';
import { newPgClient, type PgClient, type PgError } from '../helpers/pg.ts';
import { canonicalJson } from '../../gateway/evidence/canonical-json.ts';


let cluster: Cluster;
const cleanups: (() => void)[] = [];

before(async () => {
  cluster = await appCluster();
});

after(() => {
  for (const c of cleanups.reverse()) {
    try {
      c();
    } catch {
      // keep cleaning up
    }
  }
  cluster?.stop();
});

async function connect(env: Record<string, string>): Promise<PgClient> {
  const client = newPgClient(env);
  client.on('error', () => undefined); // connection loss is expected here; queries report it
  await client.connect();
  return client;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The complete records of a log that may end in a torn line (which is returned separately). */
function completeRecords(file: string): { records: LogRecord[]; torn: string | null } {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const last = lines.pop()!;
  return { records: lines.map((l) => JSON.parse(l) as LogRecord), torn: last === '' ? null : last };
}

/** SQL as the superuser in database app, one value per output line. */
function appRows(sql: string): string[] {
  return cluster.sql(sql, 'app').split('\n').filter(Boolean);
}

test('SIGKILL under load: the log is unsealed but intact, and every row that reached the database is in it', { timeout: 90_000 }, async () => {
  cluster.sql('CREATE TABLE marks (id text PRIMARY KEY); ALTER TABLE marks OWNER TO deployer', 'app');
  const gw = startGateway(policyFor(cluster));
  cleanups.push(() => alive(gw.pid) && process.kill(gw.pid, 'SIGKILL'));
  const clients = await Promise.all([1, 2, 3, 4].map(() => connect(gw.env)));

  let acknowledged = 0;
  const failures: PgError[] = [];
  const workers = clients.map(async (c, w) => {
    for (let n = 0; ; n++) {
      try {
        await c.query('INSERT INTO marks VALUES ($1)', [`w${w}-${n}`]);
        acknowledged++;
      } catch (e) {
        failures.push(e as PgError);
        return;
      }
    }
  });
  await waitFor(() => acknowledged >= 1000 || failures.length > 0, 'the clients to insert rows');
  assert.deepEqual(failures, [], 'no insert fails before the gateway is killed');
  process.kill(gw.pid, 'SIGKILL');
  await Promise.all(workers);
  assert.equal(failures.length, 4, 'every client sees its connection fail');
  await waitFor(() => !alive(gw.pid), 'the daemon to be gone');

  const logPath = gw.logPath();
  const v = cli(['verify', logPath]);
  assert.equal(v.status, 4, v.stderr);
  // Killed mid-write, the last line may be torn; either way every complete record verifies.
  const { records, torn } = completeRecords(logPath);
  assert.match(v.stderr, torn === null ? /UNSEALED: the log has no seal/ : /UNSEALED: record \d+ \(line \d+\) is torn/);
  // Over a thousand commands: checkpoints were signed along the way, and the tail is named.
  assert.match(v.stderr, /the last signed checkpoint is record \d+; the \d+ records after it are unsigned/);
  const json = JSON.parse(cli(['verify', logPath, '--json']).stdout) as { status: string; totals: { records: number; commands: number }; signed_totals: { commands: number }; signing: { last_checkpoint: number; unsigned_records: number; checkpoints: number } };
  assert.equal(json.status, 'unsealed');
  assert.equal(json.totals.records, records.length, 'every complete record verifies');
  assert.ok(json.signing.checkpoints >= 2, `checkpoints every 1000 records (${json.signing.checkpoints})`);
  assert.equal(records[json.signing.last_checkpoint]!.type, 'checkpoint');
  assert.equal(json.signing.unsigned_records, records.length - 1 - json.signing.last_checkpoint, 'the unsigned tail is every record after the last checkpoint');
  const unsignedCommands = records.slice(json.signing.last_checkpoint + 1).filter((r) => r.type === 'command').length;
  assert.equal(json.signed_totals.commands, json.totals.commands - unsignedCommands, 'signed totals stop at the last checkpoint');
  if (unsignedCommands > 0) assert.match(v.stderr, new RegExp(`commands: +${json.totals.commands}, ${unsignedCommands} of them after the last checkpoint \\(unsigned\\)`));

  const logged = new Set<string>();
  for (const r of records) {
    if (r.type === 'command' && r.text === 'INSERT INTO marks VALUES ($1)') logged.add(r.details.params[0] as string);
  }
  const inserted = appRows('SELECT id FROM marks');
  assert.ok(inserted.length >= acknowledged, 'every acknowledged insert is in the table');
  const unrecorded = inserted.filter((id) => !logged.has(id));
  assert.deepEqual(unrecorded, [], 'rows in the database whose command is not in the log');
});

test('a session log that cannot be written: the command is refused with 58030 and never reaches the database', { timeout: 90_000 }, async () => {
  cluster.sql('CREATE TABLE big (id int PRIMARY KEY, payload text); ALTER TABLE big OWNER TO deployer', 'app');
  const dir = tempDir('gw-full-');
  const logDir = path.join(dir, 'logs');
  fs.mkdirSync(logDir);
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', logDir], { encoding: 'utf8' });
  assert.equal(mount.status, 0, `mounting a tmpfs: ${mount.stderr}`);
  let pid = 0;
  cleanups.push(() => {
    if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
    const u = spawnSync('umount', [logDir]);
    if (u.status !== 0) spawnSync('umount', ['-l', logDir]);
  });

  const policy = path.join(dir, 'gateway.yml');
  fs.writeFileSync(policy, policyFor(cluster));
  const stateDir = path.join(dir, 'state');
  const started = cli(['start', '--policy', policy, '--state-dir', stateDir, '--log-dir', logDir], { env: { ...process.env, APP_DB_PASSWORD: 'deployer-pw' } });
  assert.equal(started.status, 0, started.stderr);
  const env = parseEnv(fs.readFileSync(path.join(stateDir, 'env'), 'utf8'));
  const info = JSON.parse(fs.readFileSync(path.join(stateDir, 'daemon.json'), 'utf8')) as { pid: number; log: string };
  pid = info.pid;

  const client = await connect(env);
  const other = await connect(env);
  await other.query('SELECT 1');
  const payload = (i: number): string => `row-${i}-`.padEnd(20_000, String.fromCharCode(97 + (i % 26)));
  let failed: { id: number; error: PgError } | null = null;
  for (let i = 1; i <= 100 && !failed; i++) {
    await client.query(`INSERT INTO big VALUES (${i}, '${payload(i)}')`).catch((e: PgError) => (failed = { id: i, error: e }));
  }
  assert.ok(failed, 'a 256 KiB log fills up within 100 inserts of 20 KB');
  const { id: failedId, error } = failed as { id: number; error: PgError };
  assert.ok(failedId > 1, 'some inserts succeed before the log is full');
  assert.equal(error.code, '58030');
  assert.equal(error.severity, 'FATAL');
  assert.match(error.message, /session log cannot be written \(ENOSPC.*\); the command was not forwarded/);

  // A session opened before the failure gets the same answer for its next command.
  const otherErr = await other.query('INSERT INTO big VALUES (1000, \'from another session\')').then(() => null, (e: PgError) => e);
  assert.ok(otherErr, 'the other session\'s insert fails');

  // Nothing unrecorded reached the database; everything that did is recorded.
  const ids = appRows('SELECT id FROM big ORDER BY id').map(Number);
  assert.ok(!ids.includes(failedId), `the refused insert ${failedId} is not in the table`);
  assert.ok(!ids.includes(1000), 'the other session\'s refused insert is not in the table');
  assert.deepEqual(ids, Array.from({ length: failedId - 1 }, (_, k) => k + 1));
  const { records } = completeRecords(info.log);
  for (const id of ids) {
    const text = `INSERT INTO big VALUES (${id}, '${payload(id)}')`;
    assert.ok(records.some((r) => r.type === 'command' && r.text === text), `the command record of insert ${id} is in the log`);
  }

  // New connections are refused with the same clear reason.
  const refused = psql(env, ['-c', 'SELECT 1']);
  assert.notEqual(refused.status, 0);
  assert.match(refused.stderr, /session log cannot be written .*no session can be opened/);
  await assert.rejects(connect(env), (e: PgError) => e.code === '58030');

  // The log is evidence up to the failure: unsealed, not tampered.
  const v = cli(['verify', info.log]);
  assert.equal(v.status, 4, v.stderr);

  // A confined command is refused as well: nothing runs whose start cannot be recorded.
  const confined = await cliAsync(['exec', '--state-dir', stateDir, '--confine', '--', 'echo', 'the confined command ran'], { cwd: '/' });
  assert.notEqual(confined.status, 0, 'exec --confine fails');
  assert.doesNotMatch(confined.stdout, /the confined command ran/);
  assert.match(confined.stderr, /session log cannot be written/);

  // Stop it (it cannot seal the log; all that matters here is that it ends). Run asynchronously so
  // this process keeps answering the gateway's end of the refused connections.
  await client.end().catch(() => undefined);
  await other.end().catch(() => undefined);
  await cliAsync(['stop', '--state-dir', stateDir]);
  if (alive(pid)) process.kill(pid, 'SIGKILL');
  await waitFor(() => !alive(pid), 'the daemon to be gone');

  // The other session was told why, in the same terms as the first one.
  assert.equal(otherErr.code, '58030', `got ${otherErr.code}: ${otherErr.message}`);
  assert.equal(otherErr.severity, 'FATAL');
  assert.match(otherErr.message, /session log cannot be written \(ENOSPC.*\)/);
  assert.doesNotMatch(otherErr.message, /protocol error/);
});

test('verify tells tampered, torn, unsealed and unreadable logs apart', { timeout: 60_000 }, async () => {
  const gw = startGateway(policyFor(cluster));
  cleanups.push(() => alive(gw.pid) && process.kill(gw.pid, 'SIGKILL'));
  for (const word of ['alpha', 'beta', 'gamma']) {
    const r = psql(gw.env, ['-tA', '-c', `SELECT '${word}'`]);
    assert.equal(r.status, 0, r.stderr);
  }
  const original = gw.stop();
  const valid = cli(['verify', original]);
  assert.equal(valid.status, 0, valid.stderr);

  const text = fs.readFileSync(original, 'utf8');
  const lines = text.split('\n').slice(0, -1);
  const log = readLog(original);
  const dir = tempDir('gw-verify-');
  const variant = (name: string, content: string): string => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, content);
    return file;
  };
  const indexOf = (pred: (r: LogRecord) => boolean): number => {
    const i = log.findIndex(pred);
    assert.ok(i > 0);
    assert.equal(log[i]!.seq, i, 'records are numbered from 0 in file order');
    return i;
  };

  // Unreadable: missing, empty, not a session log.
  const missing = cli(['verify', path.join(dir, 'no-such.jsonl')]);
  assert.equal(missing.status, 3);
  assert.match(missing.stderr, /UNREADABLE: cannot read .*no-such\.jsonl \(ENOENT\)/);
  const empty = cli(['verify', variant('empty.jsonl', '')]);
  assert.equal(empty.status, 3);
  assert.match(empty.stderr, /UNREADABLE: the file is empty/);
  const notALog = cli(['verify', variant('policy.jsonl', policyFor(cluster))]);
  assert.equal(notALog.status, 3);
  assert.match(notALog.stderr, /UNREADABLE: line 1 is not a session log record/);

  // A field edited in place.
  const beta = indexOf((r) => r.type === 'command' && r.text === "SELECT 'beta'");
  const edited = lines.map((l, i) => (i === beta ? l.replace("SELECT 'beta'", "SELECT 'BETA'") : l));
  assert.notEqual(edited[beta], lines[beta]);
  const e1 = cli(['verify', variant('edited.jsonl', edited.join('\n') + '\n')]);
  assert.equal(e1.status, 1);
  assert.match(e1.stderr, new RegExp(`TAMPERED: record ${beta} \\(line ${beta + 1}\\) has been modified`));

  // The same edit with the record's own hash recomputed: the next record no longer chains.
  const { hash: _old, ...body } = JSON.parse(edited[beta]!) as LogRecord;
  const canonical = canonicalJson(body);
  const rehashed = [...edited];
  rehashed[beta] = canonical.slice(0, -1) + `,"hash":"${createHash('sha256').update(canonical).digest('hex')}"}`;
  const e2 = cli(['verify', variant('rehashed.jsonl', rehashed.join('\n') + '\n')]);
  assert.equal(e2.status, 1);
  assert.match(e2.stderr, new RegExp(`TAMPERED: record ${beta + 1} \\(line ${beta + 2}\\) does not chain`));

  // A record deleted.
  const gamma = indexOf((r) => r.type === 'command' && r.text === "SELECT 'gamma'");
  const deleted = lines.filter((_, i) => i !== gamma);
  const e3 = cli(['verify', variant('deleted.jsonl', deleted.join('\n') + '\n')]);
  assert.equal(e3.status, 1);
  assert.match(e3.stderr, new RegExp(`TAMPERED: record ${gamma} \\(line ${gamma + 1}\\) has sequence number ${gamma + 1}, expected ${gamma}`));

  // The last line cut in the middle (as a crash mid-write leaves it).
  const lastLine = lines.at(-1)!;
  const cut = lines.slice(0, -1).join('\n') + '\n' + lastLine.slice(0, Math.floor(lastLine.length / 2));
  const e4 = cli(['verify', variant('torn.jsonl', cut)]);
  assert.equal(e4.status, 4);
  assert.match(e4.stderr, new RegExp(`UNSEALED: record ${lines.length - 1} \\(line ${lines.length}\\) is torn`));

  // A well-formed, correctly chained record appended after the seal.
  const sealed = log.at(-1)!;
  assert.equal(sealed.type, 'checkpoint');
  assert.equal(sealed.seal, true);
  const extra = canonicalJson({ type: 'command', session: 's1', command: 's1.99', target: 'app-db', text: 'DROP TABLE evidence', protocol: 'simple', seq: sealed.seq + 1, prev: sealed.hash, time: new Date().toISOString() });
  const appended = text + extra.slice(0, -1) + `,"hash":"${createHash('sha256').update(extra).digest('hex')}"}\n`;
  const e5 = cli(['verify', variant('appended.jsonl', appended)]);
  assert.equal(e5.status, 1);
  assert.match(e5.stderr, new RegExp(`TAMPERED: record ${lines.length} \\(line ${lines.length + 1}\\) was appended after the seal`));

  // The original still verifies: every variant above was a copy.
  assert.equal(cli(['verify', original]).status, 0);
});
