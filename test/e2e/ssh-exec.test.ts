// SSH exec through the gateway with real OpenSSH on both ends: outputs, stderr and exit codes
// identical to going direct; every exec recorded with its exit status and output digest; the
// issue's deny rules refusing before the host hears of the command; a host presenting another
// key refused with both fingerprints; garbage on the listener ending that connection only.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { readLog, startGateway, type RunningGateway } from '../helpers/gateway.ts';
import { direct, sshPolicy, startSshd, viaDirect, viaGateway, type Sshd } from '../helpers/sshd.ts';

const RULES = `rules:
  - name: no-recursive-rm
    target: web-vm
    when: { program: [rm], option: [-r, -R, --recursive] }
    action: deny
    reason: "Recursive deletes on servers are never run from CI"
  - name: no-disk-tools
    when: { command: ["mkfs*", "dd * of=/dev/*", "shutdown*", "reboot*"] }
    action: deny
  - name: no-key-downloads
    when: { path: ["/etc/shadow", "/home/*/.ssh/**", "/root/**"] }
    action: deny
`;

let sshd: Sshd;
let gw: RunningGateway;
before(async () => {
  sshd = await startSshd();
  gw = startGateway(sshPolicy(sshd, RULES), 'unused', { DEPLOY_SSH_KEY: sshd.privateKey });
});
after(() => {
  gw?.stop();
  sshd?.stop();
});

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

test('exec output, stderr and exit status are the same as direct', () => {
  const commands = [
    'echo hello',
    'echo out; echo err >&2; exit 3',
    "printf 'a\\0b\\377c'",
    'seq 1 20000',
    'cat',
    'exit 0',
    'false',
    'sh -c \'kill -TERM $$\'',
    'for i in 1 2 3; do echo "line $i"; echo "e$i" >&2; done; exit 42',
    'echo "$SSH_ORIGINAL_COMMAND" "${LANG:-unset}"',
    'printf "%s\\n" "quoted \\"words\\" and $HOME"',
  ];
  for (const c of commands) {
    const input = c === 'cat' ? Buffer.from('stdin bytes\n\x00\xff') : undefined;
    const d = viaDirect(sshd, c, { input });
    const g = viaGateway(gw.env, c, { input });
    assert.equal(g.status, d.status, `exit status of ${c}: ${g.stderr}`);
    assert.deepEqual(g.stdout, d.stdout, `stdout of ${c}`);
    assert.equal(g.stderr, d.stderr, `stderr of ${c}`);
  }
  const log = readLog(gw.logPath());
  const cmds = log.filter((r) => r.type === 'command' && r.kind === 'ssh.exec');
  const results = new Map(log.filter((r) => r.type === 'result').map((r) => [r.command, r]));
  for (const c of commands) assert.ok(cmds.some((r) => r.text === c), `recorded: ${c}`);
  const three = cmds.find((r) => r.text === 'echo out; echo err >&2; exit 3')!;
  const r3 = results.get(three.command)!;
  assert.equal(r3.status, 'error');
  assert.equal(r3.details.exit_status, 3);
  assert.equal(r3.response.sha256, sha256('out\n'));
  assert.equal(r3.details.stderr.sha256, sha256('err\n'));
  const seq = results.get(cmds.find((r) => r.text === 'seq 1 20000')!.command)!;
  assert.equal(seq.response.bytes, Buffer.byteLength(Array.from({ length: 20000 }, (_, i) => `${i + 1}\n`).join('')));
  const killed = results.get(cmds.find((r) => r.text.startsWith('sh -c'))!.command)!;
  assert.equal(killed.details.exit_signal, 'TERM');
  const cat = results.get(cmds.find((r) => r.text === 'cat')!.command)!;
  assert.equal(cat.input.sha256, sha256(Buffer.from('stdin bytes\n\x00\xff')));
});

test('the deny rules refuse before the host hears of it: stderr names the rule, exit 126', () => {
  const dir = `/tmp/gw-ssh-deny-${process.pid}`;
  direct(sshd, `mkdir -p ${dir}/sub && touch ${dir}/sub/f`);
  const denied = [
    [`rm -rf ${dir}`, 'no-recursive-rm'],
    [`rm -r -f ${dir}`, 'no-recursive-rm'],
    [`sudo rm --recursive ${dir}`, 'no-recursive-rm'],
    [`sh -c 'cd /tmp && rm -R ${dir}'`, 'no-recursive-rm'],
    [`true && /bin/rm -fr ${dir}`, 'no-recursive-rm'],
    ['dd if=/dev/zero of=/dev/sda bs=1M', 'no-disk-tools'],
    ['cat /etc/shadow', 'no-key-downloads'],
    ['cat ~/.ssh/authorized_keys', 'no-key-downloads'],
    ['cd /root; ls', 'no-key-downloads'],
  ];
  for (const [line, rule] of denied) {
    const g = viaGateway(gw.env, line!);
    assert.equal(g.status, 126, `${line}: ${g.stderr}`);
    assert.match(g.stderr, new RegExp(`gateway: denied by rule "${rule}"`), line);
    assert.equal(g.stdout.length, 0);
  }
  assert.equal(direct(sshd, `test -f ${dir}/sub/f && echo still-there`).stdout, 'still-there\n');
  const log = readLog(gw.logPath());
  for (const [line, rule] of denied) {
    const c = log.find((r) => r.type === 'command' && r.text === line)!;
    assert.equal(c.decision.action, 'deny', line);
    assert.equal(c.decision.rule, rule, line);
    const res = log.find((r) => r.type === 'result' && r.command === c.command)!;
    assert.equal(res.status, 'denied');
  }
  direct(sshd, `rm -rf ${dir}`);
});

test('what cannot be read statically is unclassified (refused by default)', () => {
  for (const line of ['eval "$CMD"', 'echo cm0gLXJmIC8= | base64 -d | sh', '$(echo rm) -rf /tmp/x']) {
    const g = viaGateway(gw.env, line);
    assert.equal(g.status, 126, `${line}: ${g.stderr}`);
    assert.match(g.stderr, /unclassified/);
  }
});

test('a host presenting another key is refused, showing both fingerprints; nothing runs', () => {
  const other = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl';
  const bad = startGateway(sshPolicy(sshd, '', other), 'unused', { DEPLOY_SSH_KEY: sshd.privateKey });
  try {
    const marker = `/tmp/gw-ssh-mismatch-${process.pid}`;
    const g = viaGateway(bad.env, `touch ${marker}`);
    assert.equal(g.status, 255, g.stderr);
    assert.match(g.stderr, /host key mismatch/);
    assert.match(g.stderr, /expected SHA256:\S+/);
    assert.match(g.stderr, /presented SHA256:\S+/);
    assert.equal(direct(sshd, `test -e ${marker} && echo exists || echo absent`).stdout, 'absent\n');
  } finally {
    bad.stop();
  }
});

test('garbage on the listener ends that connection only', async () => {
  const port = Number(gw.env.GATEWAY_WEB_VM_SSH!.split(':')[1]);
  for (const junk of ['GET / HTTP/1.1\r\n\r\n', 'SSH-2.0-x\r\n' + '\x00\xff'.repeat(5000), '\x16\x03\x01\x02\x00']) {
    await new Promise<void>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => s.write(junk, 'latin1'));
      s.on('error', () => resolve());
      s.on('close', () => resolve());
      setTimeout(() => s.destroy(), 3000);
    });
  }
  assert.equal(viaGateway(gw.env, 'echo still serving').stdout.toString(), 'still serving\n');
});

test('20 concurrent exec sessions: exactly 20 sessions, commands and results in the log', async () => {
  const { spawn } = await import('node:child_process');
  const before = readLog(gw.logPath()).filter((r) => r.type === 'session-open').length;
  const runs = Array.from({ length: 20 }, (_, i) => new Promise<{ code: number | null; out: string }>((resolve) => {
    const p = spawn('ssh', ['-F', gw.env.GATEWAY_SSH_CONFIG!, 'web-vm', `echo concurrent-${i}; sleep 0.2`]);
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d));
    p.on('close', (code) => resolve({ code, out }));
  }));
  const done = await Promise.all(runs);
  done.forEach((r, i) => {
    assert.equal(r.code, 0);
    assert.equal(r.out, `concurrent-${i}\n`);
  });
  // The session-close records land once each client has gone.
  const deadline = Date.now() + 10_000;
  let log = readLog(gw.logPath());
  while (log.filter((r) => r.type === 'session-close').length < log.filter((r) => r.type === 'session-open').length && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    log = readLog(gw.logPath());
  }
  const opens = log.filter((r) => r.type === 'session-open');
  assert.equal(opens.length - before, 20);
  const conc = log.filter((r) => r.type === 'command' && /^echo concurrent-\d+; sleep 0.2$/.test(r.text));
  assert.equal(conc.length, 20);
  assert.equal(new Set(conc.map((c) => c.text)).size, 20);
  for (const c of conc) assert.equal(log.filter((r) => r.type === 'result' && r.command === c.command).length, 1);
});

test('later steps get a config, a run key and known_hosts; the upstream key is nowhere in them', () => {
  const cfg = fs.readFileSync(gw.env.GATEWAY_SSH_CONFIG!, 'utf8');
  assert.match(cfg, /^Host web-vm$/m);
  assert.match(cfg, /StrictHostKeyChecking yes/);
  const state = gw.stateDir;
  const keyBody = sshd.privateKey.split('\n').slice(1, 3).join('');
  for (const f of fs.readdirSync(state)) {
    const p = path.join(state, f);
    if (fs.statSync(p).isFile()) assert.equal(fs.readFileSync(p, 'utf8').replace(/\n/g, '').includes(keyBody), false, `${f} holds the upstream key`);
  }
  assert.equal(JSON.stringify(gw.env).includes(keyBody), false);
  assert.equal(fs.readFileSync(gw.logPath(), 'utf8').replace(/\\n/g, '').includes(keyBody), false, 'the log holds the upstream key');
});
