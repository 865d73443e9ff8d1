// The detached daemon as later CI steps meet it: no upstream secret anywhere they can read, one
// daemon per state directory, clear word after a crash, and startup parameters passed as given.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { CLI, appCluster, cli, policyFor, psql, startGateway, tempDir, waitFor, type Cluster } from '../helpers/gateway.ts';

let cluster: Cluster;
before(async () => {
  cluster = await appCluster();
});
after(() => cluster?.stop());

test('the upstream password is nowhere in the daemon environment, the env file or the log', () => {
  const gw = startGateway(policyFor(cluster));
  try {
    const environ = fs.readFileSync(`/proc/${gw.pid}/environ`, 'utf8');
    assert.ok(!environ.includes('APP_DB_PASSWORD'), 'the variable is not in /proc/<daemon>/environ');
    assert.ok(!environ.includes('deployer-pw'));
    assert.ok(!fs.readFileSync(path.join(gw.stateDir, 'env'), 'utf8').includes('deployer-pw'));
    const r = psql(gw.env, ['-c', 'SELECT 1']);
    assert.equal(r.status, 0, r.stderr);
  } finally {
    const log = gw.stop();
    assert.ok(!fs.readFileSync(log, 'utf8').includes('deployer-pw'));
  }
});

test('a second start on the same state directory is refused while the first runs', () => {
  const gw = startGateway(policyFor(cluster));
  try {
    const policy = path.join(gw.stateDir, '..', 'gateway.yml');
    const again = cli(['start', '--policy', policy, '--state-dir', gw.stateDir], { env: { ...process.env, APP_DB_PASSWORD: 'deployer-pw' } });
    assert.equal(again.status, 1);
    assert.match(again.stderr, new RegExp(`a gateway is already running for .* \\(pid ${gw.pid}\\)`));
  } finally {
    gw.stop();
  }
});

test('stop after the daemon was killed names the unsealed log', () => {
  const gw = startGateway(policyFor(cluster));
  process.kill(gw.pid, 'SIGKILL');
  const r = cli(['stop', '--state-dir', gw.stateDir]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /no gateway is running/);
  assert.ok(r.stderr.includes(gw.logPath()), r.stderr);
  assert.equal(cli(['verify', gw.logPath()]).status, 4);
});

test("the client's startup parameters reach the server as given (client_encoding, options)", () => {
  const gw = startGateway(policyFor(cluster));
  try {
    const latin1 = psql({ ...gw.env, PGCLIENTENCODING: 'LATIN1' }, ['-At', '-c', 'SHOW client_encoding']);
    assert.equal(latin1.stdout.trim(), 'LATIN1', latin1.stderr);
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'latin1.sql'), Buffer.from("SELECT 'M\xfcller' AS name, length('M\xfcller');\n", 'latin1'));
    const script = psql({ ...gw.env, PGCLIENTENCODING: 'LATIN1' }, ['-At', '-f', path.join(dir, 'latin1.sql')]);
    assert.equal(script.status, 0, script.stderr);
    assert.equal(Buffer.from(script.stdout, 'utf8').length > 0, true);
    assert.match(script.stdout, /\|6$/m);
    const opts = psql({ ...gw.env, PGOPTIONS: '-c statement_timeout=1234' }, ['-At', '-c', 'SHOW statement_timeout']);
    assert.equal(opts.stdout.trim(), '1234ms');
  } finally {
    gw.stop();
  }
});

test('Ctrl-C during `run` reaches the command once, and the gateway still seals the log', async () => {
  const dir = tempDir();
  const policy = path.join(dir, 'gateway.yml');
  fs.writeFileSync(policy, policyFor(cluster));
  const traps = path.join(dir, 'traps');
  const ready = path.join(dir, 'ready');
  // The shell counts the SIGINTs it receives, then finishes on its own.
  const script = `trap 'echo INT >> ${traps}' INT; echo > ${ready}; i=0; while [ $i -lt 30 ]; do sleep 0.1; i=$((i+1)); done`;
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [CLI, 'run', '--policy', policy, '--log-dir', path.join(dir, 'logs'), '--', 'sh', '-c', script], {
    env: { ...process.env, APP_DB_PASSWORD: 'deployer-pw' },
    detached: true, // its own process group, like a job in a terminal
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  await waitFor(() => fs.existsSync(ready), 'the command to start');
  process.kill(-child.pid!, 'SIGINT'); // what the terminal does on Ctrl-C: the whole group
  assert.equal(await exited, 0, stderr);
  assert.equal(fs.readFileSync(traps, 'utf8'), 'INT\n', 'exactly one SIGINT reached the command');
  const log = /session log: (.*)/.exec(stderr)![1]!;
  assert.equal(cli(['verify', log]).status, 0, 'the log is sealed');
});
