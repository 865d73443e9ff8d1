// SSH channels beyond a plain exec, with real OpenSSH: a pty shell driven by `ssh -tt`, recorded
// and played back by replay; shells denied by an `ssh: [shell]` rule; env requests passed on;
// port forwards denied unless a rule allows them (then working); agent forwarding refused; an
// exec held for approval that tells the client how to approve and runs once approved.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { cli, cliAsync, readLog, startGateway, tempDir, waitFor, type RunningGateway } from '../helpers/gateway.ts';
import { client, direct, sshPolicy, startSshd, viaGateway, type Sshd } from '../helpers/sshd.ts';

process.env.GATEWAY_ACTION_RUNTIME_DIR = path.join(tempDir('gw-ssh-channels-'), 'run');

let sshd: Sshd;
const running: RunningGateway[] = [];
before(async () => {
  sshd = await startSshd();
});
after(() => {
  for (const g of running) g.stop();
  sshd?.stop();
});

function gateway(extra: string): RunningGateway {
  const g = startGateway(sshPolicy(sshd, extra), 'unused', { DEPLOY_SSH_KEY: sshd.privateKey });
  running.push(g);
  return g;
}

test('a pty shell through ssh -tt runs, gives back its exit status, and is recorded as a terminal recording that replay plays', async () => {
  const gw = gateway('default: allow\n');
  const r = viaGateway(gw.env, '', { args: ['-tt'], input: 'echo "shell says $((6*7))"\nexit 7\n' });
  // ssh with no command after the host opens a shell; an empty command string is not sent as exec.
  assert.equal(r.status, 7, r.stderr);
  assert.match(r.stdout.toString(), /shell says 42/);
  const log = readLog(gw.logPath());
  const shell = log.find((x) => x.type === 'command' && x.kind === 'ssh.shell')!;
  assert.ok(shell, 'the shell is a command');
  assert.match(shell.text, /^shell \(pty \S+ \d+x\d+\)$/);
  const result = log.find((x) => x.type === 'result' && x.command === shell.command)!;
  assert.equal(result.details.exit_status, 7);
  assert.ok(log.some((x) => x.type === 'terminal' && x.command === shell.command), 'terminal records');
  const logFile = gw.stop();
  const played = cli(['replay', logFile, '--play', shell.command, '--speed', 'max']);
  assert.equal(played.status, 0, played.stderr);
  assert.match(played.stdout, /shell says 42/);
});

test('ssh: [shell] deny refuses a shell with the rule named; exec still runs', () => {
  const gw = gateway(`rules:
  - name: no-interactive-shell
    when: { ssh: [shell] }
    action: deny
default: allow
`);
  const r = viaGateway(gw.env, '', { args: ['-tt'], input: 'echo should-not-run\nexit\n' });
  assert.equal(r.status, 126);
  assert.match(r.stderr + r.stdout.toString(), /gateway: denied by rule "no-interactive-shell"/);
  assert.doesNotMatch(r.stdout.toString(), /should-not-run\r?\n.*should-not-run/s);
  assert.equal(viaGateway(gw.env, 'echo exec-ok').stdout.toString(), 'exec-ok\n');
});

test('env requests reach the host as they would directly', () => {
  const gw = gateway('default: allow\n');
  const args = ['-o', 'SendEnv=GW_TEST_COLOUR'];
  const env = { ...process.env, GW_TEST_COLOUR: 'teal' };
  const g = client('ssh', ['-F', gw.env.GATEWAY_SSH_CONFIG!, ...args, 'web-vm', 'echo "$GW_TEST_COLOUR"'], { env: env as Record<string, string> });
  const d = client('ssh', ['-F', sshd.directConfig, ...args, 'direct', 'echo "$GW_TEST_COLOUR"'], { env: env as Record<string, string> });
  assert.equal(g.stdout.toString(), 'teal\n');
  assert.deepEqual(g.stdout, d.stdout);
  const cmd = readLog(gw.logPath()).find((x) => x.type === 'command' && x.text === 'echo "$GW_TEST_COLOUR"')!;
  assert.deepEqual(cmd.details.env, ['GW_TEST_COLOUR']);
});

/** Opens `ssh -N -L` through the gateway and tries a connection through the tunnel: what comes back. */
async function throughTunnel(gw: RunningGateway, destPort: number): Promise<string> {
  const local = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const ssh = spawn('ssh', ['-F', gw.env.GATEWAY_SSH_CONFIG!, '-N', '-L', `${local}:127.0.0.1:${destPort}`, 'web-vm'], { stdio: 'ignore' });
  try {
    await waitFor(() => new Promise<boolean>((resolve) => {
      const s = net.connect(local, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      }).on('error', () => resolve(false));
    }), 'the local forward');
    return await new Promise<string>((resolve) => {
      let got = '';
      const s = net.connect(local, '127.0.0.1');
      s.on('data', (d) => {
        got += d.toString('latin1');
        if (got.includes('\n')) s.destroy();
      });
      s.on('close', () => resolve(got));
      s.on('error', () => resolve(got));
      setTimeout(() => s.destroy(), 5000);
    });
  } finally {
    ssh.kill();
  }
}

test('port forwards are denied unless a rule allows them; allowed, the tunnel works and is recorded', async () => {
  const denied = gateway('default: allow\n');
  assert.equal(await throughTunnel(denied, sshd.port), '', 'nothing through a denied tunnel');
  const d = readLog(denied.logPath()).find((x) => x.type === 'command' && x.kind === 'ssh.forward')!;
  assert.equal(d.decision.action, 'deny');
  assert.match(d.decision.reason, /denied unless a rule allows it/);
  const allowed = gateway(`rules:
  - name: tunnels-to-ssh
    when: { ssh: [port-forward] }
    action: allow
default: allow
`);
  // Through the tunnel to the host's own sshd: its banner comes back.
  assert.match(await throughTunnel(allowed, sshd.port), /^SSH-2\.0-OpenSSH/);
  const log = readLog(allowed.logPath());
  const a = log.find((x) => x.type === 'command' && x.kind === 'ssh.forward')!;
  assert.equal(a.text, `local forward to 127.0.0.1:${sshd.port}`);
  assert.equal(a.decision.rule, 'tunnels-to-ssh');
});

test('agent forwarding is refused and recorded', async () => {
  const gw = gateway('default: allow\n');
  // A real agent, so the client asks to forward it.
  const agent = spawn('ssh-agent', ['-D', '-a', path.join(tempDir('gw-agent-'), 'agent.sock')], { stdio: ['ignore', 'pipe', 'ignore'] });
  const sock = (await new Promise<string>((resolve) => agent.stdout.once('data', (d: Buffer) => resolve(d.toString())))).match(/SSH_AUTH_SOCK=([^;]+)/)![1]!;
  try {
    // A user who edits the exported config to forward their agent: the gateway still refuses.
    const config = path.join(tempDir('gw-agent-cfg-'), 'config');
    fs.writeFileSync(config, fs.readFileSync(gw.env.GATEWAY_SSH_CONFIG!, 'utf8').replace(/^\s*(IdentityAgent|ForwardAgent) .*$/gm, ''));
    const r = client('ssh', ['-F', config, '-A', 'web-vm', 'echo "agent:${SSH_AUTH_SOCK:-none}"'], { env: { ...process.env, SSH_AUTH_SOCK: sock } as Record<string, string> });
    assert.equal(r.stdout.toString(), 'agent:none\n', r.stderr);
  } finally {
    agent.kill();
  }
  const log = readLog(gw.logPath());
  const f = log.find((x) => x.type === 'command' && x.kind === 'ssh.forward' && x.text === 'agent forwarding')!;
  assert.ok(f, 'recorded');
  assert.equal(f.decision.action, 'deny');
});

test('an exec held for approval tells the client how to approve, waits, and runs once approved', async () => {
  const gw = gateway(`rules:
  - name: restarts-need-review
    when: { command: ["systemctl restart *", "systemctl stop *"] }
    action: approve
default: allow
approvals: { timeout: 5m }
`);
  const marker = `/tmp/gw-ssh-held-${process.pid}`;
  direct(sshd, `rm -f ${marker}`);
  const line = `systemctl restart nginx || touch ${marker}`;
  const p = spawn('ssh', ['-F', gw.env.GATEWAY_SSH_CONFIG!, 'web-vm', line]);
  let stderr = '';
  p.stderr.on('data', (d: Buffer) => (stderr += d));
  const closed = new Promise<number | null>((resolve) => p.on('close', resolve));
  const id = (await waitFor(() => /holds this command as request ([a-z0-9]{8})/.exec(stderr), 'the waiting line'))![1]!;
  assert.match(stderr, /gateway-action approve/);
  assert.equal(direct(sshd, `test -e ${marker} && echo ran || echo waiting`).stdout, 'waiting\n', 'nothing ran while held');
  const approve = await cliAsync(['approve', id]);
  assert.equal(approve.status, 0, approve.stderr);
  await closed;
  assert.equal(direct(sshd, `test -e ${marker} && echo ran || echo waiting`).stdout, 'ran\n');
  const log = readLog(gw.logPath());
  assert.ok(log.some((x) => x.type === 'approval' && x.id === id && x.outcome === 'approved'));
});

test('masking: exec output is masked as it streams (a secret cut across writes too), for the client and in the log', () => {
  const gw = gateway(`default: allow
masking:
  detectors: [github-token, email]
  apply-to: [client, log]
`);
  const token = `ghp_${'A1b2C3d4E5'.repeat(3)}abcdef`;
  // The token is printed in two writes with a pause between: the stream masker holds the start back.
  const line = `printf 'token=%s' '${token.slice(0, 12)}'; sleep 0.3; printf '%s\\n' '${token.slice(12)}'; echo "mail ops@example.com" >&2`;
  const r = viaGateway(gw.env, line);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.toString().includes(token), false, 'the client sees no token');
  assert.match(r.stdout.toString(), /token=.*masked/);
  assert.equal(r.stderr.includes('ops@example.com'), false, 'stderr is masked too');
  const log = readLog(gw.logPath());
  const text = JSON.stringify(log);
  assert.equal(text.includes(token), false, 'the log holds no token');
  const cmd = log.find((x) => x.type === 'command' && x.kind === 'ssh.exec')!;
  const res = log.find((x) => x.type === 'result' && x.command === cmd.command)!;
  assert.ok(res.masked?.values >= 2, JSON.stringify(res.masked));
});

test('a host that drops mid-command ends the client channel with 255 and says so', async () => {
  const gw = gateway('default: allow\n');
  const p = spawn('ssh', ['-F', gw.env.GATEWAY_SSH_CONFIG!, 'web-vm', 'sleep 61.25']);
  let stderr = '';
  p.stderr.on('data', (d: Buffer) => (stderr += d));
  const closed = new Promise<number | null>((resolve) => p.on('close', resolve));
  // The host's side of this one connection: the sshd process that runs the sleep.
  const sleeper = await waitFor(() => {
    const r = spawnSync('pgrep', ['-f', '^sleep 61.25$'], { encoding: 'utf8' });
    return r.stdout.trim().split('\n').filter(Boolean)[0];
  }, 'the command on the host');
  const sshdPid = fs.readFileSync(`/proc/${sleeper}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]!;
  process.kill(Number(sshdPid), 'SIGKILL');
  process.kill(Number(sleeper), 'SIGKILL');
  assert.equal(await closed, 255);
  assert.match(stderr, /gateway: the connection to the host was lost before the command ended/);
  await waitFor(() => readLog(gw.logPath()).some((x) => x.type === 'result' && x.error?.code === 'upstream'), 'the result');
});

test('a remote forward (ssh -R), allowed by a rule: the host connects back through the gateway, each connection recorded', async () => {
  const gw = gateway(`rules:
  - name: callbacks
    when: { ssh: [port-forward] }
    action: allow
default: allow
`);
  const local = net.createServer((s) => s.end('hello-from-runner\n'));
  await new Promise<void>((resolve) => local.listen(0, '127.0.0.1', resolve));
  const localPort = (local.address() as net.AddressInfo).port;
  const ssh = spawn('ssh', ['-F', gw.env.GATEWAY_SSH_CONFIG!, '-N', '-o', 'ExitOnForwardFailure=yes', '-R', `0:127.0.0.1:${localPort}`, 'web-vm']);
  let stderr = '';
  ssh.stderr.on('data', (d: Buffer) => (stderr += d));
  try {
    const port = (await waitFor(() => /Allocated port (\d+) for remote forward/.exec(stderr), 'the allocated port'))![1]!;
    // Asynchronously: the runner-side server lives in this process's event loop.
    const got = await new Promise<string>((resolve) => {
      const p = spawn('ssh', ['-F', sshd.directConfig, 'direct', `timeout 20 bash -c 'cat < /dev/tcp/127.0.0.1/${port}'`]);
      let out = '';
      p.stdout.on('data', (d: Buffer) => (out += d));
      p.on('close', () => resolve(out));
    });
    assert.equal(got, 'hello-from-runner\n');
  } finally {
    ssh.kill();
    local.close();
  }
  const log = readLog(gw.logPath());
  const fwd = log.filter((x) => x.type === 'command' && x.kind === 'ssh.forward');
  assert.ok(fwd.some((x) => /^remote forward from /.test(x.text) && x.decision.rule === 'callbacks'));
  assert.ok(fwd.some((x) => /^remote forward connection /.test(x.text)));
});
