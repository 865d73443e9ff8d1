// Confined commands with real namespaces (the test machine runs as root): inside
// `gateway-action exec --confine`, psql through the gateway works, while a direct connection to
// PostgreSQL, a TCP connect to another local listener and a DNS lookup fail; the log file, the
// state directory and the control socket are closed to it; no token variable is present; the
// daemon cannot be seen; exit codes and signals pass through; the log records the command and
// ties its sessions to it. Without root or sudo, --confine refuses and runs nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { appCluster, cli, CLI, policyFor, readLog, tempDir, type Cluster, type LogRecord, startedGatewayEnv } from '../helpers/gateway.ts';

let cluster: Cluster & { password: string };
let dir: string;
let stateDir: string;
let env: Record<string, string>;
let other: net.Server;
let otherPort: number;
let daemonPid: number;

before(async () => {
  cluster = await appCluster();
  dir = tempDir('gw-confine-');
  fs.writeFileSync(path.join(dir, 'gateway.yml'), policyFor(cluster));
  stateDir = path.join(dir, 'state');
  env = await startedGatewayEnv(dir, stateDir, { env: { ...process.env, APP_DB_PASSWORD: cluster.password } });
  daemonPid = JSON.parse(fs.readFileSync(path.join(stateDir, 'daemon.json'), 'utf8')).pid;
  other = net.createServer((s) => s.end('hello from outside\n'));
  await new Promise<void>((r) => other.listen(0, '127.0.0.1', () => r()));
  otherPort = (other.address() as net.AddressInfo).port;
});

after(async () => {
  if (stateDir) cli(['stop', '--state-dir', stateDir]);
  other?.close();
  await cluster?.stop();
});

const logFile = (): string => fs.readdirSync(path.join(dir, 'logs')).map((f) => path.join(dir, 'logs', f))[0]!;
const log = (): LogRecord[] => readLog(logFile());

interface Ran { code: number | null; signal: string | null; stdout: string; stderr: string }

/** A process run to its end, without blocking this one (the stand-ins answer from it): its status and output. */
function ran(program: string, args: string[], opts: SpawnOptions = {}, onSpawn?: (pid: number) => void): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    onSpawn?.(child.pid!);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** `gateway-action exec --confine` from a world-readable directory, with extra variables in its environment. */
function confined(argv: string[], extraEnv: Record<string, string> = {}, onSpawn?: (pid: number) => void): Promise<Ran> {
  return ran(process.execPath, [CLI, 'exec', '--state-dir', stateDir, '--confine', '--', ...argv], { cwd: '/', env: { ...process.env, ...extraEnv } }, onSpawn);
}

test('psql through the gateway works inside; the command and its connection are recorded and tied to its session', async () => {
  const r = await confined(['psql', '-XAtc', 'select 40 + 2']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '42\n');
  const records = log();
  const start = records.filter((x) => x.type === 'confined-start').at(-1)!;
  assert.deepEqual(start.argv, ['psql', '-XAtc', 'select 40 + 2']);
  assert.equal(start.user, 'gateway-confined');
  const end = records.find((x) => x.type === 'confined-end' && x.confined === start.confined)!;
  assert.equal(end.exit_code, 0);
  const conn = records.find((x) => x.type === 'confined-connection' && x.confined === start.confined)!;
  assert.equal(conn.listener, `127.0.0.1:${env.PGPORT}`);
  const [host, port] = conn.client.split(':');
  const session = records.find((x) => x.type === 'session-open' && x.client?.address === host && String(x.client?.port) === port);
  assert.ok(session, `the session opened from ${conn.client} is found`);
  assert.ok(records.some((x) => x.type === 'command' && x.session === session.session && /select 40 \+ 2/.test(x.text)));
  // replay names the confined command and marks the session it opened.
  const replay = cli(['replay', logFile()]);
  assert.match(replay.stdout, new RegExp(`confined ${start.confined}  psql -XAtc 'select 40 \\+ 2'  as gateway-confined  .* exit 0  sessions ${session.session}`));
  assert.match(replay.stdout, new RegExp(`session ${session.session} .*\\(confined ${start.confined}\\)`));
});

test('nothing else is reachable: the PostgreSQL port, another local listener, DNS', async () => {
  const direct = await confined(['psql', `host=127.0.0.1 port=${cluster.port} user=deployer dbname=app password=${cluster.password} connect_timeout=3`, '-XAtc', 'select 1']);
  assert.notEqual(direct.code, 0);
  assert.match(direct.stderr, /Connection refused|could not connect/);
  const tcp = await confined(['bash', '-c', `exec 3<>/dev/tcp/127.0.0.1/${otherPort} && cat <&3`]);
  assert.notEqual(tcp.code, 0);
  assert.doesNotMatch(tcp.stdout, /hello from outside/);
  // A Unix socket on the filesystem crosses network namespaces: the directories they live in are empty inside.
  const socket = await confined(['psql', `host=${cluster.socketDir} port=${cluster.port} user=postgres dbname=app`, '-XAtc', 'select current_user']);
  assert.notEqual(socket.code, 0, `PostgreSQL's own Unix socket is out of reach: ${socket.stdout}`);
  assert.match(socket.stderr, /No such file or directory/);
  // What is left there: the command's HOME, the bridges' directory (closed to it), mount's own table.
  const hidden = await confined(['bash', '-c', 'ls -A /tmp /run /var/tmp /dev/shm | grep -v "^/\\|^$\\|^gateway-confined-home$\\|^gateway-action\\|^mount$" || echo EMPTY']);
  assert.match(hidden.stdout, /EMPTY/, hidden.stdout);
  const dns = await confined(['getent', 'hosts', 'example.com']);
  assert.notEqual(dns.code, 0, `no name resolves inside: ${dns.stdout}`);
  const routes = await confined(['bash', '-c', 'exec 3<>/dev/tcp/1.1.1.1/443']);
  assert.notEqual(routes.code, 0);
  assert.match(routes.stderr, /unreachable|refused/i);
});

test('the log, the state directory, the control socket and the daemon are closed to it; no token variable is set', async () => {
  const tokens = { ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'oidc-request-token-x1', ACTIONS_ID_TOKEN_REQUEST_URL: 'https://token.example/x2', ACTIONS_RUNTIME_TOKEN: 'runtime-token-x3', ACTIONS_RESULTS_URL: 'https://results.example/x4', GITHUB_TOKEN: 'ghs_secret_x5' };
  const r = await confined(['bash', '-c', [
    'id -un',
    `cat ${logFile()} >/dev/null 2>&1 && echo LOG-READABLE`,
    `ls ${stateDir} >/dev/null 2>&1 && echo STATE-READABLE`,
    `test -r ${stateDir}/control.sock && echo SOCKET-READABLE`,
    `kill -0 ${daemonPid} 2>/dev/null && echo DAEMON-VISIBLE`,
    'ls /proc | grep -c "^[0-9]"',
    'grep ^NoNewPrivs: /proc/self/status',
    'env',
  ].join('; ')], tokens);
  assert.equal(r.code, 0, r.stderr);
  const [user, ...rest] = r.stdout.split('\n');
  assert.equal(user, 'gateway-confined');
  assert.doesNotMatch(r.stdout, /LOG-READABLE|STATE-READABLE|SOCKET-READABLE|DAEMON-VISIBLE/);
  assert.ok(Number(rest[0]) <= 5, `only the namespace's few processes are visible: ${rest[0]}`);
  // No way back to root: sudo and setuid programs do not raise it.
  assert.match(rest[1]!, /^NoNewPrivs:\s+1$/);
  const root = await ran(process.execPath, [CLI, 'exec', '--state-dir', stateDir, '--confine', '--user', 'root', '--', 'id'], { cwd: '/' });
  assert.equal(root.code, 125);
  assert.match(root.stderr, /--user: root is root/);
  assert.equal(root.stdout, '');
  for (const [k, v] of Object.entries(tokens)) {
    assert.doesNotMatch(r.stdout, new RegExp(`^${k}=`, 'm'), `${k} is not inside`);
    assert.ok(!r.stdout.includes(v));
  }
  assert.match(r.stdout, new RegExp(`^PGPORT=${env.PGPORT}$`, 'm'), 'the connection environment is inside');
});

test('no descriptor of the caller but stdio reaches the command', async () => {
  // Descriptor 9 open in the caller (an inherited pipe, a runner's file) is closed before the namespace.
  // No pipeline in the listing shell: a pipe's ends are the shell's own descriptors until it has
  // forked both sides, and `ls` may read the list before that (seen under load). `; true` keeps
  // bash from exec'ing ls, so the list is the shell's, not that of the ls reading it.
  const r = await ran('bash', ['-c', `exec 9>/dev/null; exec "$0" "$@"`, process.execPath, CLI, 'exec', '--state-dir', stateDir, '--confine', '--', 'bash', '-c', 'ls /proc/$$/fd; true'], { cwd: '/' });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.split(/\s+/).filter(Boolean), ['0', '1', '2']);
});

test('exit codes and signals pass through, and the log records how it ended', async () => {
  const seven = await confined(['sh', '-c', 'exit 7']);
  assert.equal(seven.code, 7);
  let outer = 0;
  const pending = confined(['sleep', '30'], {}, (pid) => (outer = pid));
  await new Promise((r) => setTimeout(r, 1500));
  process.kill(outer, 'SIGTERM');
  const killed = await pending;
  assert.equal(killed.code, 143);
  const end = log().filter((x) => x.type === 'confined-end').at(-1)!;
  assert.equal(end.signal, 'SIGTERM');
  // Ctrl-C without a terminal (a cancelled job's SIGINT to the step): passed in, 128 + 2 out.
  const interrupted = confined(['sleep', '30'], {}, (pid) => (outer = pid));
  await new Promise((r) => setTimeout(r, 1500));
  process.kill(outer, 'SIGINT');
  assert.equal((await interrupted).code, 130);
  // The outside killed outright (SIGKILL: no handler runs): the namespace ends with it.
  const orphan = confined(['sleep', '31'], {}, (pid) => (outer = pid));
  await new Promise((r) => setTimeout(r, 1500));
  process.kill(outer, 'SIGKILL');
  await orphan;
  let left = '';
  for (let i = 0; i < 50; i++) {
    left = spawnSync('pgrep', ['-f', '^sleep 31$'], { encoding: 'utf8' }).stdout.trim();
    if (!left) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(left, '', 'nothing it started outlives it');
  // As a shell says it: 127, not found.
  const missing = await confined(['no-such-command-here']);
  assert.equal(missing.code, 127);
  assert.match(missing.stderr, /no-such-command-here/);
});

test('without root or passwordless sudo, --confine refuses and runs nothing', async () => {
  const r = await ran('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, CLI, 'exec', '--state-dir', stateDir, '--confine', '--', 'touch', '/tmp/should-not-exist'], { cwd: '/', env: { PATH: process.env.PATH! } });
  assert.equal(r.code, 125);
  assert.match(r.stderr, /--confine needs root or passwordless sudo/);
  assert.ok(!fs.existsSync('/tmp/should-not-exist'));
});

test('gateway-action run --confine: the gateway and the confined command in one go; the upstream password is not inside', async () => {
  const runDir = tempDir('gw-confine-run-');
  fs.writeFileSync(path.join(runDir, 'gateway.yml'), policyFor(cluster));
  const r = await ran(process.execPath, [CLI, 'run', '--policy', path.join(runDir, 'gateway.yml'), '--log-dir', path.join(runDir, 'logs'), '--confine', '--', 'bash', '-c', 'psql -XAtc "select 6 * 7" && env'],
      { cwd: '/', env: { ...process.env, APP_DB_PASSWORD: cluster.password } });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^42$/m);
  assert.doesNotMatch(r.stdout, /APP_DB_PASSWORD/);
  assert.ok(!r.stdout.includes(cluster.password));
  const records = readLog(fs.readdirSync(path.join(runDir, 'logs')).map((f) => path.join(runDir, 'logs', f))[0]!);
  assert.equal(records.filter((x) => x.type === 'confined-end').at(-1)?.exit_code, 0);
});

test('exec without --confine runs COMMAND with the connection environment; the state directory defaults to $GATEWAY_STATE_DIR', async () => {
  const r = await ran(process.execPath, [CLI, 'exec', '--', 'psql', '-XAtc', 'select current_user'], { env: { ...process.env, GATEWAY_STATE_DIR: stateDir } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'deployer\n');
});

test('egress from inside: a declared host is reached through the forward proxy and recorded; an undeclared one is refused', async () => {
  const { makeCertificates } = await import('../helpers/entra-stand-in.ts');
  const https = await import('node:https');
  // World-readable and outside /tmp (hidden inside): the confined user reads the CA to check the server end to end.
  const pub = fs.mkdtempSync('/var/lib/gw-confine-egress-');
  fs.chmodSync(pub, 0o755);
  const certs = await makeCertificates(pub, 'IP:127.0.0.1', 'egress host');
  fs.chmodSync(certs.caFile, 0o644);
  const server = https.createServer({ key: fs.readFileSync(certs.keyFile), cert: fs.readFileSync(certs.certFile) }, (_req, res) => res.end('model api says hi\n'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  const egressDir = tempDir('gw-confine-egress-gw-');
  fs.writeFileSync(path.join(egressDir, 'gateway.yml'), `${policyFor(cluster)}egress:\n  - host: 127.0.0.1\n    ports: [${port}]\n`);
  const egressState = path.join(egressDir, 'state');
  await startedGatewayEnv(egressDir, egressState, { env: { ...process.env, APP_DB_PASSWORD: cluster.password } });
  try {
    const run = (script: string): Promise<Ran> => ran(process.execPath, [CLI, 'exec', '--state-dir', egressState, '--confine', '--', 'bash', '-c', script], { cwd: '/' });
    // The server is on loopback, which NO_PROXY names: these requests ask for the proxy explicitly.
    const declared = await run(`curl -sS --noproxy '' --cacert ${certs.caFile} https://127.0.0.1:${port}/`);
    assert.equal(declared.code, 0, declared.stderr);
    assert.equal(declared.stdout, 'model api says hi\n');
    const direct = await run(`curl -sS --noproxy '*' --max-time 5 --cacert ${certs.caFile} https://127.0.0.1:${port}/`);
    assert.notEqual(direct.code, 0, 'not without the proxy');
    const undeclared = await run(`curl -sS --noproxy '' --max-time 5 https://example.com/`);
    assert.notEqual(undeclared.code, 0);
    assert.match(undeclared.stderr, /403/);
    const logDir = path.join(egressDir, 'logs');
    const records = readLog(path.join(logDir, fs.readdirSync(logDir)[0]!));
    const connects = records.filter((x) => x.type === 'command' && x.kind === 'egress.connect');
    assert.ok(connects.some((c) => c.text === `CONNECT 127.0.0.1:${port}` && c.decision.action === 'allow'));
    assert.ok(connects.some((c) => c.text === 'CONNECT example.com:443' && c.decision.action === 'deny'));
  } finally {
    cli(['stop', '--state-dir', egressState]);
    server.close();
    fs.rmSync(pub, { recursive: true, force: true });
  }
});

test('inside, ssh and kubectl find their gateway files (the SSH config, key and known hosts; the kubeconfig) as outside', async () => {
  const { startSshd, sshPolicy } = await import('../helpers/sshd.ts');
  const { startKubeApi } = await import('../helpers/kube-api-stand-in.ts');
  const { kubectlPath } = await import('../helpers/kube-api-kubectl.ts');
  const sshd = await startSshd();
  const kube = await startKubeApi({ token: 'confined-kube-token-0123456789' });
  const d = tempDir('gw-confine-files-');
  fs.writeFileSync(path.join(d, 'gateway.yml'), `${sshPolicy(sshd)}
  cluster:
    kind: kubernetes
    server: ${kube.server}
    ca-file: ${kube.caFile}
    auth: { token-env: KUBE_TOKEN }
`);
  const s = path.join(d, 'state');
  await startedGatewayEnv(d, s, { env: { ...process.env, DEPLOY_SSH_KEY: sshd.privateKey, KUBE_TOKEN: 'confined-kube-token-0123456789' } });
  try {
    const r = await ran(process.execPath, [CLI, 'exec', '--state-dir', s, '--confine', '--', 'bash', '-c', `ssh -F "$GATEWAY_SSH_CONFIG" web-vm 'echo via-ssh' && ${kubectlPath()} get pods -n default -o name`], { cwd: '/' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'via-ssh\npod/web-0\n');
  } finally {
    cli(['stop', '--state-dir', s]);
    sshd.stop();
    await kube.close();
  }
});
