// Role passwords in SQL text (CREATE ROLE / ALTER USER ... PASSWORD, psql's \password, a user
// mapping's password option) must reach the server as sent, and nowhere else: not the session
// log, not an approval request, not `pending`, `approve` or `replay`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { appCluster, cli, directEnv, policyFor, psql, psqlAsync, readLog, startGateway, tempDir, waitFor, type Cluster, type RunningGateway } from '../helpers/gateway.ts';
import { newPgClient, type PgError } from '../helpers/pg.ts';

process.env.GATEWAY_ACTION_RUNTIME_DIR = path.join(tempDir('gw-passwords-'), 'run');

const RULES = `rules:
  - name: approve-role-changes
    when: { sql: [role], text-matches: "valid until" }
    action: approve
default: allow
unclassified: allow
approvals: { timeout: 10m }
`;

let cluster: Cluster;
before(async () => {
  cluster = await appCluster();
  cluster.sql('ALTER ROLE deployer CREATEROLE');
});
after(() => cluster?.stop());

/** Logs in straight to the cluster as `user` with `password`: proves the statement ran. */
function canLogIn(user: string, password: string): boolean {
  const r = spawnSync('psql', ['-X', '-tAc', 'SELECT current_user'], { encoding: 'utf8', env: { ...process.env, ...directEnv(cluster, user, password) } });
  return r.status === 0 && r.stdout.trim() === user;
}

/** psql's \password, typed at a terminal (util-linux `script` gives psql one). */
async function psqlPasswordCommand(env: Record<string, string>, role: string, password: string): Promise<string> {
  const child = spawn('script', ['-qec', `psql -X -c '\\password ${role}'`, '/dev/null'], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let typed = 0;
  child.stdout.on('data', (d: Buffer) => {
    out += d;
    if (typed === 0 && out.includes('Enter new password')) typed = 1, child.stdin.write(`${password}\n`);
    if (typed === 1 && out.includes('Enter it again')) typed = 2, child.stdin.write(`${password}\n`);
  });
  const kill = setTimeout(() => child.kill(), 60_000);
  await new Promise((resolve) => child.on('close', resolve));
  clearTimeout(kill);
  return out;
}

/** Every place a recorded text can be read: the raw log, replay, and the log's verification. */
function assertNowhere(log: string, secrets: string[], also: string[] = []): void {
  const replay = cli(['replay', log], { env: { ...process.env, NO_COLOR: '1' } });
  assert.equal(replay.status, 0, replay.stderr);
  const raw = fs.readFileSync(log, 'utf8');
  for (const s of secrets) {
    assert.equal(raw.includes(s), false, `${s} is in the session log`);
    assert.equal(replay.stdout.includes(s), false, `${s} is in the replay`);
    for (const a of also) assert.equal(a.includes(s), false, `${s} is in ${a}`);
  }
}

test('role passwords in Query, multi-statement Query, Parse, Bind parameters, psql \\password and a held command are masked everywhere they are recorded', async () => {
  const gw: RunningGateway = startGateway(policyFor(cluster) + RULES);
  try {
    const secrets = ['Secret-One-111', 'Secret-Two-222', 'SCRAM-SHA-256$', 'Secret-Four-444', 'Secret-Five-555', 'Secret-Six-666', 'Secret-Seven-777', 'Secret-Eight-888'];
    // Simple Query, ENCRYPTED, with a comment between keyword and literal.
    let r = psql(gw.env, ['-v', 'ON_ERROR_STOP=1', '-c', "CREATE ROLE r1 LOGIN; ALTER USER r1 WITH ENCRYPTED PASSWORD /* new */ 'Secret-One-111'"]);
    assert.equal(r.status, 0, r.stderr);
    // Several statements in one Query; dollar quoting.
    r = psql(gw.env, ['-v', 'ON_ERROR_STOP=1', '-c', 'SELECT 1; CREATE ROLE r2 LOGIN PASSWORD $q$Secret-Two-222$q$; SELECT 2']);
    assert.equal(r.status, 0, r.stderr);
    // psql's \password sends ALTER USER r3 PASSWORD 'SCRAM-SHA-256$...' (the verifier).
    cluster.sql("CREATE ROLE r3 LOGIN PASSWORD 'old-pw'");
    const typed = await psqlPasswordCommand(gw.env, 'r3', 'Typed-Three-333');
    assert.match(typed, /Enter it again/);
    // Parse (a named statement through node-postgres), and PASSWORD $1 with the password bound.
    const client = newPgClient(gw.env);
    await client.connect();
    await client.query({ name: 'mk4', text: "CREATE ROLE r4 LOGIN PASSWORD 'Secret-Four-444'" });
    await assert.rejects(client.query('CREATE ROLE r5 LOGIN PASSWORD $1', ['Secret-Five-555']), (e: PgError) => e.code === '42601');
    // A string the parser does not look into (a DO body).
    await client.query("DO $$BEGIN EXECUTE 'ALTER ROLE r1 PASSWORD ''Secret-Six-666'''; END$$");
    // A statement the parser rejects: masked from PASSWORD to its end.
    await assert.rejects(client.query("ALTER ROLE r1 PASSWORD 'Secret-Seven-777' 'junk'"), (e: PgError) => e.code === '42601');
    await client.end();

    // Held for approval: the request shows the masked text.
    const p = psqlAsync(gw.env, ['-v', 'ON_ERROR_STOP=1', '-c', "ALTER ROLE r2 PASSWORD 'Secret-Eight-888' VALID UNTIL 'infinity'"]);
    const id = (await waitFor(() => /holds this command as request ([a-z0-9]{8})/.exec(p.output.stderr()), 'the approval NOTICE'))![1]!;
    const pending = cli(['pending']);
    const pendingJson = cli(['pending', '--json']);
    assert.match(pending.stdout, /ALTER ROLE r2 PASSWORD '\[masked:password\]' VALID UNTIL 'infinity'/);
    const approved = cli(['approve', id]);
    assert.equal(approved.status, 0, approved.stderr);
    assert.equal((await p.done).status, 0);

    const log = gw.stop();
    assertNowhere(log, secrets, [pending.stdout, pendingJson.stdout, approved.stdout, p.output.stderr()]);
    const texts = readLog(log).filter((x) => x.type === 'command').map((x) => x.text as string);
    assert.ok(texts.includes("CREATE ROLE r1 LOGIN; ALTER USER r1 WITH ENCRYPTED PASSWORD /* new */ '[masked:password]'"), texts.join('\n'));
    assert.ok(texts.includes("SELECT 1; CREATE ROLE r2 LOGIN PASSWORD '[masked:password]'; SELECT 2"));
    assert.ok(texts.includes("ALTER USER r3 PASSWORD '[masked:password]'"));
    assert.ok(texts.includes("CREATE ROLE r4 LOGIN PASSWORD '[masked:password]'"));
    assert.ok(texts.includes("ALTER ROLE r1 PASSWORD [masked:password]"));
    const bound = readLog(log).find((x) => x.type === 'command' && x.text === 'CREATE ROLE r5 LOGIN PASSWORD [masked:password]' && Array.isArray(x.details?.params));
    assert.deepEqual(bound?.details.params, ['[masked:password]'], 'the bound password is masked');

    // Each statement still ran as sent.
    assert.ok(canLogIn('r1', 'Secret-Six-666'), 'the DO block set r1 password');
    assert.ok(canLogIn('r2', 'Secret-Eight-888'), 'the approved ALTER ROLE ran');
    assert.ok(canLogIn('r3', 'Typed-Three-333'), '\\password changed r3');
    assert.ok(canLogIn('r4', 'Secret-Four-444'));
  } finally {
    gw.stop();
  }
});

test('without rules (the parser is not loaded) a text naming a password is masked from there to its end', () => {
  const gw = startGateway(policyFor(cluster));
  try {
    const r = psql(gw.env, ['-v', 'ON_ERROR_STOP=1', '-c', "CREATE ROLE r6 LOGIN PASSWORD 'Secret-Nine-999' VALID UNTIL 'infinity'"]);
    assert.equal(r.status, 0, r.stderr);
    const log = gw.stop();
    assertNowhere(log, ['Secret-Nine-999']);
    assert.ok(readLog(log).some((x) => x.type === 'command' && x.text === 'CREATE ROLE r6 LOGIN PASSWORD [masked:password]'));
    assert.ok(canLogIn('r6', 'Secret-Nine-999'));
  } finally {
    gw.stop();
  }
});
