// `gateway-action replay --play` and `--asciicast` as an auditor uses them on a log with
// terminal recordings written by the real recorder: the shipped CLI plays the recorded output
// with colors and without what could act on the terminal (checked in a real terminal emulator,
// tmux, against the raw bytes as a control), exports an asciicast v2 file that asciinema plays,
// plays a recording cut short, stops on Ctrl-C, and names what is wrong with a bad command id.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { cli, CLI, tempDir } from '../helpers/gateway.ts';
import { BREAKOUT, writeTerminalLog, type TerminalLog } from '../helpers/terminal-log.ts';

const dir = tempDir('gw-playback-');
let rec: TerminalLog;
before(() => {
  rec = writeTerminalLog(dir);
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const replay = (args: string[]) => cli(['replay', rec.log, ...args]);

test('--play prints the recorded output between the verdicts: colors kept, the clipboard write, title, report request and concealment left out', () => {
  const r = replay(['--play', rec.shell, '--speed', '1000']);
  assert.equal(r.status, 0, r.stderr);
  const out = r.stdout;
  assert.match(out, /^chain: VALID \(intact, signed, sealed\)\nplaying s1\.1 \(ssh\.shell, session s1, on web-vm\): \(interactive shell\)\nrecorded at 80x24 from \d{4}-.*, at 1000x speed; .*\n──── recording s1\.1 ────\n/);
  assert.ok(out.includes('deploy@web:~$ uptime\r\n\x1b[32m 12:00:01 up 3 days\x1b[0m\r\n'), 'output with its colors');
  assert.ok(out.includes('[terminal resized to 100x30 at '), 'the resize where it happened');
  assert.ok(out.includes('\x1b[1;31mred alert\x1b[0m and hidden\x1b[0m text\r\n'), 'concealed text shown');
  assert.ok(out.includes(`${BREAKOUT}\r\ndeploy@web:~$ logout\r\n`));
  for (const bad of ['\x1b]', '\x1b[6n', '\x1b[8m', 'pwned title']) assert.ok(!out.includes(bad), `${JSON.stringify(bad)} reached the terminal`);
  assert.ok(!out.includes('exit'), 'input is not played (its echo is in the output)');
  assert.match(out, /\x1b\[0m\x1b\(B\x1b\[\?25h\x1b\[\?7h\x1b\[4l\x1b7\x1b\[r\x1b8\x1b\[999;1H\n──── end of recording, [\d.]+ s recorded ────\n1 resize, shown as a line of its own\nnot sent to your terminal: clipboard write \(OSC 52\) ×1, window title \(OSC 0\) ×1, terminal report request ×1, concealed text \(SGR 8\) ×1\nchain: VALID \(intact, signed, sealed\)\n$/);
});

const TMUX_DONE = 'gw-test-output-ends-here';

/** Runs `command` in a fresh tmux server (a real terminal emulator that acts on OSC 52 and titles) and returns what it shows. */
function inTmux(command: string): { screen: string; title: string; buffers: string } {
  const sock = path.join(dir, `tmux-${Math.random().toString(36).slice(2)}`);
  const conf = path.join(dir, 'tmux.conf');
  fs.writeFileSync(conf, 'set -g set-clipboard on\nset -g remain-on-exit on\nset -g history-limit 1000\n');
  const tmux = (...a: string[]) => spawnSync('tmux', ['-S', sock, '-f', conf, ...a], { encoding: 'utf8' });
  try {
    // A marker after the command's output: tmux may mark the pane dead before it has read and acted
    // on all the pane's output (seen under CI load: the title not yet set), and it acts in order, so
    // once the marker shows, everything before it has been acted on.
    const started = tmux('new-session', '-d', '-x', '120', '-y', '40', `${command}; printf '%s\\n' ${TMUX_DONE}`);
    assert.equal(started.status, 0, started.stderr);
    // Wait for the command to exit (remain-on-exit keeps its pane) and its output to be read: a
    // deadline, not a timing assertion.
    const deadline = Date.now() + 60_000;
    const capture = () => tmux('capture-pane', '-p', '-e', '-S', '-100').stdout;
    while (tmux('display', '-p', '#{pane_dead}').stdout.trim() !== '1' || !capture().includes(TMUX_DONE)) {
      assert.ok(Date.now() < deadline, 'the command in tmux did not finish');
      spawnSync('sleep', ['0.1']);
    }
    // tmux's own "Pane is dead" line (remain-on-exit) and the marker are not the command's.
    const screen = capture().replace(/^Pane is dead .*\n?/m, '').replace(new RegExp(`^${TMUX_DONE}\\n?`, 'm'), '');
    return { screen, title: tmux('display', '-p', '#{pane_title}').stdout.trim(), buffers: tmux('list-buffers').stdout };
  } finally {
    tmux('kill-server');
  }
}

test('in a real terminal (tmux): the raw recording would set the clipboard and the title; played, it sets neither and the text shows', () => {
  const raw = path.join(dir, 'raw-output.bin');
  const records = fs.readFileSync(rec.log, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as { type: string; command?: string; events?: [number, string, string][] });
  fs.writeFileSync(raw, records.filter((r) => r.type === 'terminal' && r.command === rec.shell).flatMap((r) => r.events!).filter((e) => e[1] === 'o').map((e) => e[2]).join(''));
  const control = inTmux(`cat ${raw}`);
  assert.equal(control.title, 'pwned title', 'the control: tmux acts on a title change');
  assert.match(control.buffers, /rm -rf ~/, 'the control: tmux acts on OSC 52');

  const played = inTmux(`${process.execPath} ${CLI} replay ${rec.log} --play ${rec.shell} --speed max`);
  assert.notEqual(played.title, 'pwned title');
  assert.equal(played.buffers, '', 'no clipboard buffer was set');
  assert.match(played.screen, /\x1b\[32m 12:00:01 up 3 days/, 'colors reach the terminal');
  assert.match(played.screen, /\x1b\[1m\x1b\[31mred alert\x1b\[0m.* and hidden text\n/, 'bold red; the concealed text visible');
  assert.match(played.screen, /chain: VALID \(intact, signed, sealed\)\s*$/, 'the verdict is the last line');
});

test('--asciicast writes an asciicast v2 file: a header, then events in seconds; the verdict goes to stderr', () => {
  const r = replay(['--asciicast', rec.shell]);
  assert.equal(r.status, 0, r.stderr);
  const [headerLine, ...eventLines] = r.stdout.trimEnd().split('\n');
  const header = JSON.parse(headerLine!) as Record<string, unknown>;
  assert.equal(header.version, 2);
  assert.equal(header.width, 80);
  assert.equal(header.height, 24);
  assert.ok(Number.isInteger(header.timestamp) && Math.abs((header.timestamp as number) * 1000 - Date.now()) < 3_600_000, `timestamp ${header.timestamp}`);
  const events = eventLines.map((l) => JSON.parse(l) as [number, string, string]);
  let last = 0;
  for (const e of events) {
    assert.ok(Array.isArray(e) && e.length === 3 && typeof e[0] === 'number' && ['o', 'i', 'r'].includes(e[1]) && typeof e[2] === 'string', JSON.stringify(e));
    assert.ok(e[0] >= last, 'times do not go back');
    last = e[0];
  }
  const output = events.filter((e) => e[1] === 'o').map((e) => e[2]).join('');
  assert.ok(output.includes('\x1b[32m 12:00:01 up 3 days\x1b[0m') && output.includes('red alert'));
  assert.ok(!output.includes('\x1b]') && !output.includes('\x1b[6n'), 'the same sequences are left out as in --play');
  assert.deepEqual(events.filter((e) => e[1] !== 'o').map((e) => [e[1], e[2]]), [['i', 'uptime\r'], ['r', '100x30'], ['i', 'exit\r']]);
  assert.match(r.stderr, /left out of the output events: clipboard write \(OSC 52\) ×1.*\n.*chain: VALID/);
  // asciinema itself plays the file.
  const cast = path.join(dir, 'shell.cast');
  fs.writeFileSync(cast, r.stdout);
  const played = spawnSync('asciinema', ['play', '-s', '1000', cast], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
  assert.equal(played.status, 0, played.stderr);
  assert.ok(played.stdout.includes('\x1b[32m 12:00:01 up 3 days\x1b[0m\r\n\x1b[1;31mred alert\x1b[0m and hidden\x1b[0m text\r\n'), played.stdout);
});

test('a recording cut short (the session never finished) plays what is there and says so', () => {
  const r = replay(['--play', rec.cut, '--speed', 'max']);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(r.stdout.includes('deploy@web:~$ tail -f /var/log/syslog\r\nstill running when the session died\r\n'));
  assert.match(r.stdout, /the log holds no result for this command: the session or the gateway ended before it finished, or the log was cut; played what was recorded\nchain: VALID/);
  const cast = replay(['--asciicast', rec.cut]);
  assert.equal(cast.status, 0, cast.stderr);
  assert.equal(cast.stdout.trimEnd().split('\n').length, 2, 'header and the one event');
});

test('a log cut in the middle of a recording plays up to the cut; a tampered one plays under its TAMPERED verdict; both exit 1', () => {
  const lines = fs.readFileSync(rec.log, 'utf8').split('\n');
  const at = lines.findIndex((l) => l.includes('"type":"terminal"') && l.includes(`"command":"${rec.shell}"`) && l.includes('red alert'));
  assert.ok(at > 0 && lines[at]!.includes('"chunk":1'));
  const torn = path.join(dir, 'torn.jsonl');
  fs.writeFileSync(torn, lines.slice(0, at).join('\n') + '\n' + lines[at]!.slice(0, lines[at]!.indexOf('red alert')));
  const cut = cli(['replay', torn, '--play', rec.shell, '--speed', 'max']);
  assert.equal(cut.status, 1, cut.stderr);
  assert.match(cut.stdout, /^chain: (UNSEALED|TAMPERED)/);
  assert.ok(cut.stdout.includes('\x1b[32m 12:00:01 up 3 days\x1b[0m'), 'the chunk before the cut is played');
  assert.ok(!cut.stdout.includes('red alert'));
  assert.match(cut.stdout, /the log holds no result for this command/);
  const tampered = path.join(dir, 'tampered.jsonl');
  fs.writeFileSync(tampered, lines.map((l, i) => (i === at ? l.replace('red alert', 'all clear') : l)).join('\n'));
  const r = cli(['replay', tampered, '--play', rec.shell, '--speed', 'max']);
  assert.equal(r.status, 1);
  assert.match(r.stdout, /^chain: TAMPERED: .*record \d+/);
  assert.ok(r.stdout.includes('all clear'));
  assert.match(r.stdout, /\nchain: TAMPERED: .*\n$/, 'the verdict again after the recording');
});

test('Ctrl-C during playback ends it with the terminal restored and the verdict printed (exit 130)', async () => {
  // At a thousandth of the speed the pause before `uptime` lasts 40 s: the interrupt comes first.
  const child = spawn(process.execPath, [CLI, 'replay', rec.log, '--play', rec.shell, '--speed', '0.001'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let sent = false;
  child.stdout.on('data', (d: Buffer) => {
    out += d;
    if (!sent && out.includes('deploy@web:~$ ')) sent = child.kill('SIGINT');
  });
  const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(status, 130);
  assert.ok(!out.includes('uptime'), 'stopped before the next event');
  assert.match(out, /deploy@web:~\$ \x1b\[0m\x1b\(B\x1b\[\?25h.*──── end of recording, [\d.]+ s recorded: playback interrupted ────\n(.*\n)*chain: VALID \(intact, signed, sealed\)\n$/s);
});

test('the timeline says how to play a recording', () => {
  const r = cli(['replay', rec.log], { env: { ...process.env, NO_COLOR: '1' } });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /terminal recording: 8 events, 80x24; output:\n(.*\n)* {18}\(replay LOG --play s1\.1 plays it in the terminal with its timing\)\n/);
});

test('clear errors: an unknown command, one without a recording, a bad speed, options that do not go together', () => {
  const unknown = replay(['--play', 's9.9']);
  assert.equal(unknown.status, 1);
  assert.match(unknown.stderr, /no command s9\.9 in this log \(commands with a recording: s1\.1, s2\.1\)/);
  assert.equal(unknown.stdout, '');
  const none = replay(['--asciicast', rec.exec]);
  assert.equal(none.status, 1);
  assert.match(none.stderr, /command s1\.2 has no terminal recording \(commands with a recording: s1\.1, s2\.1\)/);
  assert.equal(none.stdout, '');
  for (const [args, message] of [
    [['--play', rec.shell, '--speed', 'fast'], /--speed takes a positive number or max, not fast/],
    [['--play', rec.shell, '--speed', '-2'], /--speed needs a value, not -2/],
    [['--speed', '2'], /--speed goes with --play/],
    [['--play', rec.shell, '--asciicast', rec.shell], /--play and --asciicast go one at a time/],
    [['--play', rec.shell, '--session', 's1'], /--session does not go with --play/],
    [['--play'], /--play needs a value/],
  ] as [string[], RegExp][]) {
    const r = replay(args);
    assert.equal(r.status, 2, args.join(' '));
    assert.match(r.stderr, message);
  }
});
