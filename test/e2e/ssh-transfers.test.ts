// File transfers through the gateway with real OpenSSH clients against a real sshd: scp in its
// default SFTP mode and in legacy mode (-O), both ways, 200 MB with matching checksums and the
// digest in the log; sftp -b; path rules refusing a file; rsync; git clone and push; a client
// that disconnects mid-transfer.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { readLog, startGateway, tempDir, waitFor, type RunningGateway } from '../helpers/gateway.ts';
import { client, direct, sshPolicy, startSshd, viaGateway, type Sshd } from '../helpers/sshd.ts';

let sshd: Sshd;
let gw: RunningGateway;
let work: string;
// The host's files of this test: other test files share the login user, so its ~/.ssh stays untouched.
const remote = `/tmp/gw-ssh-xfer-${process.pid}`;
before(async () => {
  sshd = await startSshd();
  gw = startGateway(sshPolicy(sshd, `rules:
  - name: no-key-downloads
    when: { path: ["/etc/shadow", "/home/*/.ssh/**", "/root/**", "/tmp/gw-ssh-xfer-*/keys/**"] }
    action: deny
default: allow
`), 'unused', { DEPLOY_SSH_KEY: sshd.privateKey });
  work = tempDir('gw-ssh-xfer-');
  direct(sshd, `rm -rf ${remote} && mkdir -p ${remote}`);
});
after(() => {
  gw?.stop();
  direct(sshd, `rm -rf ${remote}`);
  sshd?.stop();
});

const cfg = (): string => gw.env.GATEWAY_SSH_CONFIG!;
const sha256File = (f: string): string => createHash('sha256').update(fs.readFileSync(f)).digest('hex');
const remoteSha = (f: string): string => direct(sshd, `sha256sum ${f}`).stdout.split(' ')[0]!;

function bigFile(name: string, mb: number): string {
  const f = path.join(work, name);
  spawnSync('sh', ['-c', `head -c ${mb}M /dev/urandom > ${f}`]);
  return f;
}

test('scp (SFTP mode) of 200 MB both ways: checksums match and the log holds the digest', () => {
  const src = bigFile('big.bin', 200);
  const want = sha256File(src);
  const up = client('scp', ['-F', cfg(), src, `web-vm:${remote}/big.bin`]);
  assert.equal(up.status, 0, up.stderr);
  assert.equal(remoteSha(`${remote}/big.bin`), want);
  const back = path.join(work, 'back.bin');
  const down = client('scp', ['-F', cfg(), `web-vm:${remote}/big.bin`, back]);
  assert.equal(down.status, 0, down.stderr);
  assert.equal(sha256File(back), want);
  const log = readLog(gw.logPath());
  const results = new Map(log.filter((r) => r.type === 'result').map((r) => [r.command, r]));
  const opens = log.filter((r) => r.type === 'command' && r.kind === 'ssh.sftp' && r.details?.op === 'open' && r.text.includes(`${remote}/big.bin`));
  const written = opens.map((c) => results.get(c.command)).find((r) => r?.details?.bytes_written === 200 * 1024 * 1024);
  const read = opens.map((c) => results.get(c.command)).find((r) => r?.details?.bytes_read === 200 * 1024 * 1024);
  assert.equal(written?.details.sha256, want, 'the upload digest');
  assert.equal(read?.details.sha256 ?? read?.details.read_sha256, want, 'the download digest');
});

test('legacy scp (-O) both ways: files arrive intact, each recorded with its digest; a path rule refuses a file', () => {
  const src = bigFile('legacy.bin', 3);
  const up = client('scp', ['-O', '-F', cfg(), src, `web-vm:${remote}/legacy.bin`]);
  assert.equal(up.status, 0, up.stderr);
  assert.equal(remoteSha(`${remote}/legacy.bin`), sha256File(src));
  const back = path.join(work, 'legacy-back.bin');
  const down = client('scp', ['-O', '-F', cfg(), `web-vm:${remote}/legacy.bin`, back]);
  assert.equal(down.status, 0, down.stderr);
  assert.equal(sha256File(back), sha256File(src));
  const log = readLog(gw.logPath());
  const scps = log.filter((r) => r.type === 'command' && r.kind === 'ssh.scp');
  assert.ok(scps.some((c) => /^scp .*-t/.test(c.text)), 'the upload line');
  assert.ok(scps.some((c) => /^scp .*-f/.test(c.text)), 'the download line');
  const results = log.filter((r) => r.type === 'result');
  assert.ok(results.some((r) => r.details?.sha256 === sha256File(src)), 'a file digest');
  // Downloading a key file is refused: the client is told, the transfer fails.
  direct(sshd, `mkdir -p ${remote}/keys && echo secret-key > ${remote}/keys/deploy_key`);
  const key = client('scp', ['-O', '-F', cfg(), `web-vm:${remote}/keys/deploy_key`, path.join(work, 'stolen')]);
  assert.notEqual(key.status, 0);
  assert.match(key.stderr, /no-key-downloads/);
  assert.equal(fs.existsSync(path.join(work, 'stolen')) && fs.readFileSync(path.join(work, 'stolen'), 'utf8').includes('secret-key'), false);
  const sftpKey = client('scp', ['-F', cfg(), `web-vm:${remote}/keys/deploy_key`, path.join(work, 'stolen2')]);
  assert.notEqual(sftpKey.status, 0);
  assert.equal(fs.existsSync(path.join(work, 'stolen2')) && fs.readFileSync(path.join(work, 'stolen2'), 'utf8').includes('secret-key'), false);
});

test('sftp -b: put, get, rename, mkdir, chmod, rm through the gateway; each operation recorded', () => {
  fs.writeFileSync(path.join(work, 'a.txt'), 'alpha\n');
  const batch = path.join(work, 'batch');
  fs.writeFileSync(batch, [`cd ${remote}`, 'mkdir sub', `put ${path.join(work, 'a.txt')} sub/a.txt`, 'chmod 600 sub/a.txt', 'rename sub/a.txt sub/b.txt', `get sub/b.txt ${path.join(work, 'b.txt')}`, 'ls sub', 'rm sub/b.txt', 'rmdir sub', ''].join('\n'));
  const r = client('sftp', ['-F', cfg(), '-b', batch, 'web-vm']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(fs.readFileSync(path.join(work, 'b.txt'), 'utf8'), 'alpha\n');
  assert.equal(direct(sshd, `test -e ${remote}/sub && echo left || echo gone`).stdout, 'gone\n');
  const ops = readLog(gw.logPath()).filter((c) => c.type === 'command' && c.kind === 'ssh.sftp').map((c) => c.details.op);
  for (const op of ['mkdir', 'open', 'setstat', 'rename', 'remove', 'rmdir', 'opendir']) assert.ok(ops.includes(op), `${op} recorded`);
  const denied = path.join(work, 'denied-batch');
  fs.writeFileSync(denied, `get /etc/shadow ${path.join(work, 'shadow')}\n`);
  const d = client('sftp', ['-F', cfg(), '-b', denied, 'web-vm']);
  assert.notEqual(d.status, 0);
  assert.equal(fs.existsSync(path.join(work, 'shadow')), false);
  // The client's first request on the path (a stat) is refused; sftp reports it its own way.
  const refused = readLog(gw.logPath()).filter((c) => c.type === 'command' && c.kind === 'ssh.sftp' && c.text.includes('/etc/shadow'));
  assert.ok(refused.length > 0 && refused.every((c) => c.decision.action === 'deny' && c.decision.rule === 'no-key-downloads'), JSON.stringify(refused));
});

test('rsync over the gateway: a tree arrives; git clone and push to a bare repository on the host', () => {
  const tree = path.join(work, 'tree');
  fs.mkdirSync(path.join(tree, 'd'), { recursive: true });
  fs.writeFileSync(path.join(tree, 'one'), '1\n');
  fs.writeFileSync(path.join(tree, 'd', 'two'), '2\n');
  const r = client('rsync', ['-a', '-e', `ssh -F ${cfg()}`, `${tree}/`, `web-vm:${remote}/tree/`]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(direct(sshd, `cat ${remote}/tree/one ${remote}/tree/d/two`).stdout, '1\n2\n');
  const rsyncCmd = readLog(gw.logPath()).find((c) => c.type === 'command' && /^rsync --server/.test(c.text));
  assert.ok(rsyncCmd, 'the rsync server line is recorded');

  direct(sshd, `git init -q --bare ${remote}/repo.git`);
  const env = { GIT_SSH_COMMAND: `ssh -F ${cfg()}`, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x' };
  const clone = path.join(work, 'clone');
  assert.equal(client('git', ['clone', '-q', `web-vm:${remote}/repo.git`, clone], { env }).status, 0);
  fs.writeFileSync(path.join(clone, 'README'), 'hello\n');
  client('git', ['-C', clone, 'add', 'README'], { env });
  client('git', ['-C', clone, 'commit', '-qm', 'first'], { env });
  const push = client('git', ['-C', clone, 'push', '-q', 'origin', 'HEAD:main'], { env });
  assert.equal(push.status, 0, push.stderr);
  assert.equal(direct(sshd, `git --git-dir=${remote}/repo.git log --format=%s main`).stdout, 'first\n');
  const log = readLog(gw.logPath());
  assert.ok(log.some((c) => c.type === 'command' && /^git-upload-pack /.test(c.text)));
  assert.ok(log.some((c) => c.type === 'command' && /^git-receive-pack /.test(c.text)));
});

test('a client that disconnects mid-transfer: its command ends, the gateway serves the next one', async () => {
  const src = bigFile('cut.bin', 100);
  const p = spawn('scp', ['-F', cfg(), src, `web-vm:${remote}/cut.bin`], { stdio: 'ignore' });
  await waitFor(() => direct(sshd, `stat -c %s ${remote}/cut.bin 2>/dev/null || echo 0`).stdout.trim() !== '0', 'the transfer to start', 30_000);
  p.kill('SIGKILL');
  await new Promise((r) => p.on('close', r));
  assert.equal(viaGateway(gw.env, 'echo next').stdout.toString(), 'next\n');
  await waitFor(() => {
    const log = readLog(gw.logPath());
    const open = log.find((c) => c.type === 'command' && c.kind === 'ssh.sftp' && c.details?.op === 'open' && c.text.includes('cut.bin'));
    return open && log.some((r) => r.type === 'result' && r.command === open.command);
  }, 'the cut transfer to have a result');
});
