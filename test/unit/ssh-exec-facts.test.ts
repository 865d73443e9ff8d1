// The facts the SSH exec-line reader gives the policy: which units a line runs, their options
// and paths, why a part is unclassified, the reader's bounds; and the SSH conditions that
// match them (compile errors, globs meeting patterns).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { PolicyError } from '../../gateway/config/policy.ts';
import { SSH_CONDITIONS } from '../../gateway/ssh/conditions.ts';
import { loadShellParser, readExecLine, type ExecReading, type SshUnit } from '../../gateway/ssh/exec-facts.ts';
import { MAX_EXEC_LINE } from '../../gateway/ssh/shell-parser.ts';
import { ROOT } from '../helpers/gateway.ts';

const HOME = '/home/deploy';
const read = (line: string): Promise<ExecReading> => readExecLine(line, { home: HOME });
const programs = async (line: string): Promise<string[]> => (await read(line)).units.map((u) => u.program ?? '');
const unitOf = async (line: string, program: string): Promise<SshUnit> => {
  const u = (await read(line)).units.find((x) => x.program === program);
  assert.ok(u, `no ${program} unit in ${line}`);
  return u;
};

test('every simple command of a line is a unit, wherever it sits', async () => {
  await loadShellParser();
  const cases: [string, string[]][] = [
    ['a; b && c || d', ['a', 'b', 'c', 'd']],
    ['a | b |& c', ['a', 'b', 'c']],
    ['(a; (b)) && { c; }', ['a', 'b', 'c']],
    ['a $(b "$(c)") `d` <(e) >(f)', ['c', 'b', 'd', 'e', 'f', 'a']],
    ['if a; then b; elif c; then d; else e; fi', ['a', 'b', 'c', 'd', 'e']],
    ['while a; do b; done; until c; do d; done', ['a', 'b', 'c', 'd']],
    ['for x in $(a); do b; done; for ((i=$(c); i<3; i++)); do d; done', ['a', 'b', 'c', 'd']],
    ['case $(a) in x) b;; y|z) c;; esac', ['a', 'b', 'c']],
    ['f() { a; }; function g { b; }; f', ['a', 'b', 'f']],
    ['X=$(a) Y=`b` c', ['a', 'b', 'c']],
    ['export A=$(a) B; local C; unset D', ['a', 'export', 'local', 'unset']],
    ['[[ $(a) == x ]] && (( $(b) > 1 ))', ['a', 'b']],
    ['echo ${X:-$(a)} ${#Y[@]} ${Z[$(b)]}', ['a', 'b', 'echo']],
    ['a &\nb # c\n  d', ['a', 'b', 'd']],
    ['! a', ['a']],
    ['a <<EOF\n$(b)\nEOF', ['b', 'a']],
    ['a <<"EOF"\n$(b)\nEOF', ['a']],
  ];
  for (const [line, expected] of cases) assert.deepEqual(await programs(line), expected, line);
});

test('wrappers are a unit of their own and run their command', async () => {
  const cases: [string, string[]][] = [
    ['sudo -u app -g app -- env -i A=1 nice -n 5 nohup timeout -k 5 30 ionice -c 3 stdbuf -o0 setsid -w time -p x', ['sudo', 'env', 'nice', 'nohup', 'timeout', 'ionice', 'stdbuf', 'setsid', 'time', 'x']],
    ['command -p x; builtin cd /; exec -a name x', ['command', 'x', 'builtin', 'cd', 'exec', 'x']],
    ['command -v x; sudo -l x; sudo -e /etc/hosts', ['command', 'sudo', 'sudo']],
    ['sh -c "a; b" argv0 arg1', ['sh', 'a', 'b']],
    ['bash -xec \'a\'', ['bash', 'a']],
    ['su app -c a; su -l -c b; runuser -u app -- c', ['su', 'a', 'su', 'b', 'runuser', 'c']],
    ['ssh -i k -J j h a b; ssh h -p 22 c', ['ssh', 'a', 'ssh', 'c']],
    ['xargs -0 -n 1 -P 4 a; xargs', ['xargs', 'a', 'xargs', 'echo']],
    ['find . -name x -exec a {} \\; -o -execdir b {} +', ['find', 'a', 'b']],
    ['watch -x a; watch "b | c"', ['watch', 'a', 'watch', 'b', 'c']],
    ['trap "a" EXIT; trap - INT', ['trap', 'a', 'trap']],
    ['busybox a; flock /l b; flock /l -c c; doas -u app d', ['busybox', 'a', 'flock', 'b', 'flock', 'c', 'doas', 'd']],
    ['bash <<< "a"; sh <<EOF\nb\nEOF', ['bash', 'a', 'sh', 'b']],
  ];
  for (const [line, expected] of cases) assert.deepEqual(await programs(line), expected, line);
});

test('units carry the command as words joined by spaces, the first being the basename', async () => {
  const u = await unitOf("/usr/bin/systemctl   restart  'my app' \"$SVC\" x*y 'a*b' \\[c", 'systemctl');
  assert.equal(u.command, 'systemctl restart my app * x*y a\\*b \\[c');
  assert.equal(u.ssh, 'exec');
  assert.equal((await unitOf('scp -v -t -- /srv/x', 'scp')).ssh, 'scp');
  assert.equal((await unitOf('scp -f /srv/x', 'scp')).ssh, 'scp');
  assert.equal((await unitOf('scp /a h:/b', 'scp')).ssh, 'exec');
});

test('options: clusters expanded, long options without values, nothing after --, any option from a word the shell fills', async () => {
  const opts = async (line: string): Promise<string[] | undefined> => (await read(line)).units.at(-1)?.options;
  assert.deepEqual(await opts('rm -rf x'), ['-rf', '-r', '-f']);
  assert.deepEqual(await opts('rm x --recursive=yes -v'), ['--recursive', '-v']);
  assert.deepEqual(await opts('rm -v -- -r --force'), ['-v']);
  assert.deepEqual(await opts('rm $F x'), ['*']);
  assert.deepEqual(await opts('rm "$F"'), ['*']);
  assert.deepEqual(await opts('rm *.log'), ['*']);
  assert.deepEqual(await opts('rm ./*.log /tmp/$X'), []);
  assert.deepEqual(await opts('head -n5 x'), ['-n5', '-n']);
  assert.deepEqual(await opts('wget -qO- u'), ['-qO-', '-q', '-O']);
});

test('paths: normalised, resolved against the home and the working directory, cd followed', async () => {
  const paths = async (line: string, program = 'cat'): Promise<string[] | undefined> => (await unitOf(line, program)).paths;
  assert.deepEqual(await paths('cat /a//b/./c/../d x ~/y ~root/z ~deploy/w'), ['/a/b/d', `${HOME}/x`, `${HOME}/y`, '/root/z', `${HOME}/w`]);
  assert.deepEqual(await paths('cat ../../../../etc/x'), ['/etc/x']);
  assert.deepEqual(await paths('cd /srv && cat x'), ['/srv/x']);
  assert.deepEqual(await paths('cd /srv; cat x'), ['/srv/x', `${HOME}/x`]);
  assert.deepEqual(await paths('cd /srv || cat x'), [`${HOME}/x`]);
  assert.deepEqual(await paths('cd /srv && cd app && cat x'), ['/srv/app/x']);
  assert.deepEqual(await paths('cd /srv && cd && cat x'), [`${HOME}/x`]);
  assert.deepEqual(await paths('(cd /srv) && cat x'), [`${HOME}/x`]);
  assert.deepEqual(await paths('cd /srv | true; cat x'), [`${HOME}/x`]);
  // a cd in a branch may fail too: the if then ends where it started
  assert.deepEqual(await paths('if true; then cd /a; else cd /b; fi && cat x'), ['/a/x', `${HOME}/x`, '/b/x']);
  assert.deepEqual(await paths('command cd /srv && cat x'), ['/srv/x']);
  assert.deepEqual(await paths('cd /srv && cat ~+/x'), ['/srv/x']);
  assert.deepEqual(await paths('sudo -D /srv cat x'), ['/srv/x']);
  assert.deepEqual(await paths('sudo -i cat x'), ['/root/x']);
  assert.deepEqual(await paths("sudo sh -c 'cat ~/x'"), ['/root/x']);
  assert.deepEqual(await paths('env -C /srv cat x'), ['/srv/x']);
  assert.deepEqual(await paths("cat 'a*b' a\\?b"), [`${HOME}/a\\*b`, `${HOME}/a\\?b`]);
  assert.deepEqual(await paths('cat /etc/*.conf /x/[ab]?'), ['/etc/*.conf', '/x/[ab]?']);
  assert.deepEqual(await paths('cat <(true) < /in > /out 2>&1 2>/err >&-'), ['/dev/fd/*', '/in', '/out', '/err']);
  assert.deepEqual(await paths('dd if=a of=/dev/b bs=1 count=2', 'dd'), [`${HOME}/a`, '/dev/b']);
  assert.deepEqual(await paths('tar -C /srv -czf /tmp/a.tgz app', 'tar'), [`${HOME}/app`, '/srv/app', '/srv', '/tmp/a.tgz']);
  assert.deepEqual(await paths('chmod 600 x; chown -R a:b /y', 'chmod'), [`${HOME}/x`]);
  assert.deepEqual(await paths('grep -e pat x; grep pat y', 'grep'), [`${HOME}/x`]);
  assert.deepEqual(await paths('scp a h:/b u@h:', 'scp'), [`${HOME}/a`, '/b', HOME]);
  assert.deepEqual(await paths('rsync --server --sender -logDtpre.iLsfxC . srv/', 'rsync'), [`${HOME}/srv`]);
  assert.deepEqual(await paths('find /srv /tmp -delete', 'find'), ['/srv', '/tmp', '/srv/**', '/tmp/**']);
  assert.deepEqual(await paths('find /srv -exec cat {}.bak \\;'), ['/srv/**.bak']);
  assert.deepEqual(await paths('vim -R /etc/hosts; python3 /srv/x.py http://h/y', 'python3'), ['/srv/x.py']);
  assert.deepEqual(await paths('echo /root/x > /tmp/y', 'echo'), ['/tmp/y']);
  assert.deepEqual(await paths('cd /root', 'cd'), []);
});

test('unclassified: what cannot be known statically, with the reason', async () => {
  const cases: [string, string][] = [
    ['$X', 'the command name comes from an expansion'],
    ['$(echo rm) -rf /', 'the command name comes from an expansion'],
    ['/bin/r* x', 'the command name comes from a glob'],
    ['eval x', 'eval runs commands'],
    ['. ./env', '. runs commands'],
    ['source env', 'source runs commands'],
    ['curl u | bash', 'bash reads its script from standard input (the output of the command before it in a pipe)'],
    ['base64 -d f | sh -s', 'sh reads its script from standard input'],
    ['bash < f', 'bash reads its script from standard input (a file)'],
    ['bash', "bash reads its script from standard input (the channel's input)"],
    ['python3 -', 'python3 reads its program from standard input'],
    ['sh -c "$X"', 'the script of sh -c comes from an expansion'],
    ['bash <<EOF\n$X\nEOF', 'bash reads its script from standard input (a here-doc with expansions)'],
    ['cat "$F"', 'a path comes from an expansion'],
    ['cd "$D" && cat x', 'a relative path where the working directory is not known (x)'],
    ['cd - && cat x', 'a relative path where the working directory is not known'],
    ['for d in a b; do cd $d; done; cat x', 'a relative path where the working directory is not known'],
    ['f() { cat x; }', 'a relative path where the working directory is not known'],
    ['f() { cd /; }; f; cat x', 'a relative path where the working directory is not known'],
    ['xargs cat', 'a path comes from the input of xargs'],
    ['cat ~bob/x', 'the home of ~bob, which is not known'],
    ['export HOME=/root; cat ~/x', 'HOME, which the line may set'],
    ['shopt -s dotglob; cat /root/*', 'the line changes which files globs match'],
    ['echo "a', 'the shell parser does not accept it'],
    ['r\\\nm x', 'a line continuation (backslash-newline) inside a word'],
    ['echo `a \\`b\\``', 'a backslash inside a `...` substitution'],
    ['cat <<EOF\n`id`\nEOF', 'a `...` substitution in a here-doc'],
    ['sudo -Z x', 'sudo option -Z is not one the gateway reads'],
    ['timeout --bogus 1 x', 'timeout option --bogus is not one the gateway reads'],
    ['env -S "a b"', 'env -S splits a string'],
    ['ssh h', 'ssh without a command runs a shell on the other host'],
    ['ssh -o ProxyCommand=x h y', 'ssh -o ProxyCommand runs a command'],
    ['ssh h "echo $C"', 'the command ssh sends to the other host comes from an expansion'],
    ['ssh h "$C"', 'an argument of ssh that may be an option comes from an expansion'],
    ['find / -exec rm {}', 'find -exec without its closing ; or +'],
    ['strace x', 'strace runs commands the gateway does not read'],
    ['tar -I "sh -c x" -xf a', 'tar -I runs a command'],
    ['rsync -e "sh -c x" a h:b', 'rsync -e runs a command'],
    ['hash -p /bin/rm ls', 'hash -p makes a name run another program'],
    ['bash -O expand_aliases -c ls', 'bash -O expand_aliases'],
    ['chroot /mnt x', 'chroot to another root changes what paths mean'],
    ['cat /proc/self/root/etc/shadow', 'a path through a /proc link to another file'],
    ['cd /proc/1/cwd && cat x', 'a path through a /proc link to another file'],
    ['', 'the line runs no command'],
    ['X=1', 'the line runs no command'],
  ];
  for (const [line, reason] of cases) {
    const r = await read(line);
    assert.ok(r.unclassified?.includes(reason), `${JSON.stringify(line)}: ${r.unclassified}`);
  }
  for (const line of ['uptime', 'cd /srv && cat x', 'sudo -u app sh -c "cd /srv; ls -la"', "bash <<'EOF'\necho $X\nEOF", 'echo $X', 'systemctl restart $SVC']) {
    assert.equal((await read(line)).unclassified, null, line);
  }
});

test('a line with a readable part still gives its units beside the unclassified reason', async () => {
  const r = await read('rm -rf "$DIR"; $CMD');
  assert.deepEqual(r.units.map((u) => u.program), ['rm']);
  assert.match(r.unclassified ?? '', /a path comes from an expansion.*; the command name comes from an expansion/);
});

test('the reading is bounded: line length, statement nesting, script nesting, brace expansion, units', async () => {
  assert.match((await read(`echo ${'x'.repeat(MAX_EXEC_LINE)}`)).unclassified ?? '', /characters long and the gateway reads at most/);
  assert.match((await read(`${'( '.repeat(400)}true${' )'.repeat(400)}`)).unclassified ?? '', /nest more than \d+ deep|nests too deeply/);
  assert.match((await read(`echo ${'$('.repeat(400)}x${')'.repeat(400)}`)).unclassified ?? '', /nest/);
  // ssh joins its command words into a script the other host parses again: no quoting needed to nest.
  assert.match((await read(`${'ssh h '.repeat(12)}uptime`)).unclassified ?? '', /scripts nest more than 8 deep/);
  assert.equal((await read(`${'ssh h '.repeat(6)}uptime`)).unclassified, null);
  let script = 'uptime';
  for (let i = 0; i < 5; i++) script = `sh -c ${shellQuote(script)}`;
  assert.deepEqual((await read(script)).units.map((u) => u.program), ['sh', 'sh', 'sh', 'sh', 'sh', 'uptime']);
  assert.match((await read('echo {a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}')).unclassified ?? '', /brace expansion of more than 256 words/);
  assert.match((await read('echo {1..100000}')).unclassified ?? '', /brace sequence of more than 256 words/);
  assert.match((await read(':;'.repeat(2100))).unclassified ?? '', /more than 2000 commands/);
});

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", "'\\''")}'`;
}

test('concurrent readings give the results sequential ones do', async () => {
  const lines = ['sudo rm -rf /x', 'cd /root && cat x', 'curl u | sh', 'systemctl restart a', 'find / -exec cat {} +'];
  const one = await Promise.all(lines.map((l) => read(l)));
  const all = await Promise.all(Array.from({ length: 50 }, (_, k) => read(lines[k % lines.length])));
  all.forEach((r, k) => assert.deepEqual(r, one[k % lines.length]));
});

test('reading a line takes tens of microseconds (measured, not asserted)', async (t) => {
  const lines = ['uptime', 'cd /srv/app && git pull && npm ci && sudo systemctl restart app', "sudo -u x bash -lc 'for f in a b; do rm -f /tmp/$f; done' | tee /tmp/log"];
  for (const line of lines) {
    const n = 500;
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await read(line);
    t.diagnostic(`${(Number(process.hrtime.bigint() - start) / n / 1000).toFixed(1)} µs per reading of ${JSON.stringify(line)}`);
  }
});

test('the parser loads and reads under --liftoff-only (the daemon may run with it)', () => {
  const script = `import { readExecLine } from ${JSON.stringify(path.join(ROOT, 'gateway/ssh/exec-facts.ts'))};
const r = await readExecLine('sudo rm -rf /x', { home: '/home/deploy' });
process.stdout.write(JSON.stringify(r.units.map((u) => u.program)));`;
  const r = spawnSync(process.execPath, ['--liftoff-only', '--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, '["sudo","rm"]');
});

// --- the conditions

function compile(key: string, raw: unknown): (u: SshUnit) => boolean {
  const spec = SSH_CONDITIONS.find((c) => c.key === key)!;
  return spec.compile(raw, (message, at) => {
    throw new PolicyError('p.yml', null, `${message}${at ? ` at ${at.join('.')}` : ''}`);
  });
}

test('each condition validates its value and names what is wrong', () => {
  const bad: [string, unknown, RegExp][] = [
    ['ssh', ['exec', 'tunnel'], /unknown SSH class "tunnel".* at 1/],
    ['option', ['-r', 'r'], /bad option "r".* at 1/],
    ['option', ['--recursive=yes'], /bad option/],
    ['option', ['-*'], /bad option/],
    ['path', ['etc/shadow'], /bad path glob "etc\/shadow": paths are absolute/],
    ['command', ['systemctl  restart *'], /single spaces/],
    ['command', [' x'], /single spaces/],
    ['command', ['* * * * * * * x'], /more than 6 words that are only \*/],
    ['program', ['/bin/rm'], /a program is a command's basename/],
  ];
  for (const [key, raw, message] of bad) assert.throws(() => compile(key, raw), message, `${key} ${JSON.stringify(raw)}`);
  for (const spec of SSH_CONDITIONS) assert.equal(typeof spec.schema, 'object');
});

test('option: short clusters, long options and their abbreviations, any option', () => {
  const recursive = compile('option', ['-r', '--recursive']);
  assert.equal(recursive({ ssh: 'exec', options: ['-rf', '-r', '-f'] }), true);
  assert.equal(recursive({ ssh: 'exec', options: ['--recur'] }), true);
  assert.equal(recursive({ ssh: 'exec', options: ['--rec'] }), true);
  assert.equal(recursive({ ssh: 'exec', options: ['--'] }), false);
  assert.equal(recursive({ ssh: 'exec', options: ['--force'] }), false);
  assert.equal(recursive({ ssh: 'exec', options: ['*'] }), true);
  assert.equal(recursive({ ssh: 'exec' }), false);
});

test('path: a plain path through the one glob; a glob or pattern path when some file it may name matches', () => {
  const keys = compile('path', ['/etc/shadow', '/home/*/.ssh/**', '/root/**']);
  const p = (...paths: string[]): boolean => keys({ ssh: 'exec', paths });
  for (const yes of ['/etc/shadow', '/root', '/root/.x', '/home/a/.ssh', '/home/a/.ssh/k', '/etc/sha*', '/etc/*', '/etc/s?adow', '/etc/[rs]hadow', '/etc/[!a]hadow', '/home/*/.ssh/*', '/home/a/.*/k', '/**', '/r**', '/e*c/shadow']) {
    assert.equal(p(yes), true, yes);
  }
  for (const no of ['/etc/shadow.bak', '/etc/shadowx', '/etc/passwd', '/rootx', '/home/a/.sshx/k', '/home/a/ssh/k', '/etc/*.conf', '/etc/[!s]hadow', '/home/a/*/k', '/home/*/*/k', '/home/*', '/etc/sha\\*', '/tmp/**']) {
    assert.equal(p(no), false, no);
  }
});

test('command: words joined by spaces; a lone * word may be no word; an unknown word may be any', () => {
  const restart = compile('command', ['systemctl restart *']);
  const dd = compile('command', ['dd * of=/dev/*']);
  const c = (m: (u: SshUnit) => boolean, command: string): boolean => m({ ssh: 'exec', command });
  assert.equal(c(restart, 'systemctl restart nginx'), true);
  assert.equal(c(restart, 'systemctl restart'), true);
  assert.equal(c(restart, 'systemctl restartx'), false);
  assert.equal(c(restart, 'systemctl status nginx'), false);
  assert.equal(c(restart, 'systemctl * nginx'), true);
  assert.equal(c(restart, 'systemctl st* nginx'), false);
  assert.equal(c(restart, 'systemctl re\\* nginx'), false);
  assert.equal(c(dd, 'dd if=x of=/dev/sda'), true);
  assert.equal(c(dd, 'dd of=/dev/sda'), true);
  assert.equal(c(dd, 'dd if=x of=*'), true);
  assert.equal(c(dd, 'dd if=x of=/tmp/x'), false);
  assert.equal(compile('program', ['mkfs*'])({ ssh: 'exec', program: 'mkfs.ext4' }), true);
  assert.equal(compile('ssh', ['scp', 'sftp'])({ ssh: 'scp' }), true);
  assert.equal(compile('ssh', ['scp', 'sftp'])({ ssh: 'exec' }), false);
});
