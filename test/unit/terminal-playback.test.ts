// What a played recording may send to the auditor's terminal (terminal-sanitizer.ts), cut at
// every position as recordings are cut into events and chunks; --speed; the report's data JSON;
// the asciicast export of a recording's parts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TerminalSanitizer, neutralisedText } from '../../gateway/evidence/terminal-sanitizer.ts';
import { asciicastLines, parseSpeed, playRecording } from '../../gateway/evidence/terminal-playback.ts';
import type { RecordingPart } from '../../gateway/evidence/terminal-recording-reader.ts';
import { playerRecording, scriptJson } from '../../gateway/evidence/report-player.ts';

const clean = (text: string): string => {
  const s = new TerminalSanitizer();
  return s.write(text) + s.end();
};

/** [recorded, what may reach the terminal] */
const PASSED: [string, string][] = [
  ['plain text, ünïcödé ✓ 😀', 'plain text, ünïcödé ✓ 😀'],
  ['a\r\nb\tc\bd\x07', 'a\r\nb\tc\bd\x07'],
  ['\x1b[31mred\x1b[0m \x1b[1;4;38;5;8;48;2;1;8;3mext\x1b[m', '\x1b[31mred\x1b[0m \x1b[1;4;38;5;8;48;2;1;8;3mext\x1b[m'],
  ['\x1b[38:2::255:8:0mcolon', '\x1b[38:2::255:8:0mcolon'],
  ['\x1b[H\x1b[2J\x1b[10;20H\x1b[K\x1b[3A\x1b[2P\x1b[4@\x1b[1;24r\x1b[5X\x1b[d', '\x1b[H\x1b[2J\x1b[10;20H\x1b[K\x1b[3A\x1b[2P\x1b[4@\x1b[1;24r\x1b[5X\x1b[d'],
  ['\x1b7\x1b8\x1bM\x1bD\x1bE', '\x1b7\x1b8\x1bM\x1bD\x1bE'],
  ['\x1b(0lqqk\x1b(B', '\x1b(0lqqk\x1b(B'],
  ['\x1b[?25l\x1b[?25h\x1b[?7l\x1b[4h\x1b[4l', '\x1b[?25l\x1b[?25h\x1b[?7l\x1b[4h\x1b[4l'],
  // C0 controls act inside a sequence; the sequence goes on.
  ['\x1b[3\n1mx', '\n\x1b[31mx'],
];

/** [recorded, what may reach the terminal, what is counted] */
const DROPPED: [string, string, string][] = [
  ['a\x1b]52;c;cm0gLXJmIH4K\x07b', 'ab', 'clipboard write (OSC 52) ×1'],
  ['a\x1b]52;p;?\x1b\\b', 'ab', 'clipboard write (OSC 52) ×1'],
  ['\x1b]0;title\x07\x1b]2;t2\x9cok', 'ok', 'window title (OSC 0) ×1, window title (OSC 2) ×1'],
  ['\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\', 'click', 'hyperlink (OSC 8) ×2'],
  ['\x1b]11;rgb:0000/0000/0000\x07\x1b]4;1;#000\x07x', 'x', 'color change (OSC 11) ×1, palette change (OSC 4) ×1'],
  ['\x1bPq#0;2;0;0;0#0~~@@\x1b\\x', 'x', 'device control string (DCS) ×1'],
  ['\x1b_Gf=100;AAAA\x1b\\\x1b^pm\x1b\\\x1bXsos\x1b\\x', 'x', 'application program command (APC) ×1, privacy message (PM) ×1, start of string (SOS) ×1'],
  ['\x1b[6n\x1b[c\x1b[>c\x1b[5n\x1b[?6nx', 'x', 'terminal report request ×5'],
  ['\x1b[21t\x1b[8;100;200tx', 'x', 'window operation (CSI t) ×2'],
  ['\x1b[?1049h\x1b[?1000h\x1b[?2004h\x1b[20hx', 'x', 'terminal mode change ×4'],
  ['\x1b[?25;1049h', '\x1b[?25h', 'terminal mode change ×1'],
  ['\x1bc\x1b[!px', 'x', 'terminal reset (RIS) ×1, terminal reset (DECSTR) ×1'],
  ['\x1b=\x1b>x', 'x', 'keypad mode change ×2'],
  ['\x1b#8x', 'x', 'screen fill (DECALN) ×1'],
  ['\x1b[8mhidden\x1b[0m \x1b[1;8;31mred\x1b[08m', 'hidden\x1b[0m \x1b[1;31mred', 'concealed text (SGR 8) ×3'],
  ['a\x05b\x00c\x7fd\x9b31me\x0ef', 'abcd31mef', 'control character ×5'],
  ['\x1b[4ix\x1b[ 2qy', 'xy', 'printer control (CSI i) ×1, other escape sequence ×1'],
  // CAN and SUB abort a sequence, ESC starts another: the text after it is the terminal's to show.
  ['\x1b]52;c;AAAA\x18visible', 'visible', 'clipboard write (OSC 52) ×1'],
  ['\x1b]0;title\x1b[31mred', '\x1b[31mred', 'window title (OSC 0) ×1'],
  ['\x1b[12\x1aok', 'ok', 'cancelled escape sequence ×1'],
  ['\x1b[3ébc', 'ébc', 'other escape sequence ×1'],
  [`\x1b[${'1;'.repeat(200)}mshown`, 'shown', 'other escape sequence ×1'],
  ['cut \x1b]52;c;AAA', 'cut ', 'clipboard write (OSC 52) ×1'],
  ['cut \x1b[3', 'cut ', 'unfinished escape sequence ×1'],
];

test('colors, cursor movement, editing and the modes playback needs pass unchanged', () => {
  for (const [input, out] of PASSED) assert.equal(clean(input), out, JSON.stringify(input));
});

test('what could act on the terminal or hide text is left out and counted; the text around it stays', () => {
  for (const [input, out, counted] of DROPPED) {
    const s = new TerminalSanitizer();
    assert.equal(s.write(input) + s.end(), out, JSON.stringify(input));
    assert.equal(neutralisedText(s.neutralised), counted, JSON.stringify(input));
  }
});

test('a recording cut anywhere between events gives the same output as in one piece', () => {
  for (const [input, out] of [...PASSED, ...DROPPED]) {
    const units = [...input].length;
    for (let i = 0; i <= units; i++) {
      for (const j of [i, Math.min(units, i + 1), Math.min(units, i + 3)]) {
        const cps = [...input];
        const s = new TerminalSanitizer();
        const got = s.write(cps.slice(0, i).join('')) + s.write(cps.slice(i, j).join('')) + s.write(cps.slice(j).join('')) + s.end();
        assert.equal(got, out, `${JSON.stringify(input)} cut at ${i}, ${j}`);
      }
    }
  }
});

test('--speed: positive numbers, max or 0 for no delays; anything else refused', () => {
  assert.equal(parseSpeed('1'), 1);
  assert.equal(parseSpeed('2.5'), 2.5);
  assert.equal(parseSpeed('1000'), 1000);
  assert.equal(parseSpeed('max'), Infinity);
  assert.equal(parseSpeed('0'), Infinity);
  for (const bad of ['-1', 'fast', '1e3', 'Infinity', '', '.', '1.']) assert.equal(parseSpeed(bad), null, bad);
});

test('recording JSON for the report cannot end its data element and keeps its value', () => {
  const hostile = '</script><script>alert(1)</script><!-- & \u2028 </SCRIPT';
  const json = scriptJson([{ version: 2 }, [0.5, 'o', hostile]]);
  assert.doesNotMatch(json, /[<>&\u2028\u2029]/);
  assert.deepEqual(JSON.parse(json), [{ version: 2 }, [0.5, 'o', hostile]]);
  const rec = playerRecording({ kind: 'terminal', width: 80, height: 24, chars: 0, truncated: false, events: [[0, 'o', 'a\x1b]52;c;AAAA\x07\x1b[32mb'], [5, 'i', 'secret typed'], [1500, 'r', '100x30']] });
  assert.deepEqual(rec, [{ version: 2, width: 80, height: 24 }, [0, 'o', 'a\x1b[32mb'], [1.5, 'r', '100x30']]);
});

async function* parts(list: RecordingPart[]): AsyncGenerator<RecordingPart> {
  yield* list;
}

const RECORDING: RecordingPart[] = [
  { type: 'start', command: { id: 's1.1', session: 's1', target: 'web-vm', kind: 'ssh.shell', text: 'shell', time: '2025-01-02T03:04:05.678Z' }, width: 80, height: 24 },
  { type: 'events', events: [[0, 'o', '$ '], [120, 'i', 'ls\r'], [130, 'o', 'ls\r\n\x1b]52;c;QUFB']] },
  { type: 'events', events: [[131, 'o', '\x07\x1b[34mdir\x1b[0m\r\n'], [2000, 'r', '120x40']] },
  { type: 'end', end: { chunks: 2, events: 5, expected: { chunks: 2, events: 5, duration_ms: 2000 }, missingChunks: [] } },
];

test('asciicast export: a header, then events in seconds; a sequence cut between events is left out whole', async () => {
  let notes = '';
  const lines: string[] = [];
  for await (const l of asciicastLines(parts(RECORDING), (_end, n) => void (notes = neutralisedText(n)))) lines.push(...l.trimEnd().split('\n'));
  assert.deepEqual(lines.map((l) => JSON.parse(l) as unknown), [
    { version: 2, width: 80, height: 24, timestamp: 1735787045 },
    [0, 'o', '$ '], [0.12, 'i', 'ls\r'], [0.13, 'o', 'ls\r\n'], [0.131, 'o', '\x1b[34mdir\x1b[0m\r\n'], [2, 'r', '120x40'],
  ]);
  assert.equal(notes, 'clipboard write (OSC 52) ×1');
});

test('playback: the verdict before and after, output played, input not, the resize on a line of its own, the terminal restored', async () => {
  let out = '';
  const r = await playRecording(parts(RECORDING), { speed: Infinity, status: 'chain: VALID', write: (s) => void (out += s) });
  assert.deepEqual([r.events, r.resizes, r.interrupted], [3, 1, false]);
  assert.match(out, /^chain: VALID\nplaying s1\.1 \(ssh\.shell, session s1, on web-vm\): shell\n/);
  assert.ok(out.includes('$ ls\r\n\x1b[34mdir\x1b[0m\r\n\x1b[0m[terminal resized to 120x40 at 2.0 s]\r\n'), JSON.stringify(out));
  assert.ok(!out.includes('ls\r\r') && !out.includes(']52'), 'input is not played; the clipboard write is left out');
  assert.match(out, /\x1b\[0m\x1b\(B\x1b\[\?25h.*\x1b\[999;1H\n──── end of recording, 2\.0 s recorded ────\n1 resize, shown as a line of its own\nnot sent to your terminal: clipboard write \(OSC 52\) ×1\nchain: VALID\n$/s);
});
