// The scp reader is pure: a transfer's two byte streams, cut at any points and fed in any
// interleaving, must give the same bytes on each side, the same events and the same digests.
// Each scenario is what OpenSSH's scp source and sink exchange (the sink's answers as it sends
// them, the source's bytes as it sends them given the answers it gets). Malformed streams are
// ScpProtocolError, never anything else.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { MAX_AHEAD, MAX_LINE, ScpProtocolError, ScpTransfer, type ScpEvent, type ScpOut } from '../../gateway/ssh/scp-stream.ts';
import { entryPaths, parseScpCommand, type ScpCommand } from '../../gateway/ssh/scp-command.ts';

const b = (s: string | Buffer) => (typeof s === 'string' ? Buffer.from(s, 'latin1') : s);
const Z = '\0';
const sha = (s: string | Buffer) => createHash('sha256').update(b(s)).digest('hex');

interface Scenario {
  name: string;
  recursive: boolean;
  /** What the source sends, in order. */
  source: (string | Buffer)[];
  /** What the sink sends, in order (its answers). */
  sink: string[];
  /** Names (joined by /) the gateway refuses. */
  refuse?: string[];
  /** What the sink must receive, and the source. */
  toSink: (string | Buffer)[];
  toSource: string[];
  /** The events, shortened: `entry a/b`, `end a/b 5 <sha>`, `end a/b error: msg`, `source-error: msg`. */
  events: string[];
}

const T1 = 'T1700000000 0 1700000100 0\n';
const T2 = 'T1600000000 0 1600000100 0\n';
const blob = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7 + 3) & 0xff));

const scenarios: Scenario[] = [
  {
    name: 'one file',
    recursive: false,
    source: ['C0644 5 a.txt\n', 'hello', Z],
    sink: [Z, Z, Z],
    toSink: ['C0644 5 a.txt\n', 'hello', Z],
    toSource: [Z, Z, Z],
    events: ['entry a.txt', `end a.txt 5 ${sha('hello')}`],
  },
  {
    name: 'a recursive tree with times, an empty file and binary data',
    recursive: true,
    source: [T1, 'D0755 0 dir\n', T2, 'C0640 5 a.txt\n', 'hello', Z, 'C0600 0 empty\n', Z, 'D0700 0 sub\n', `C0644 ${blob.length} b.bin\n`, blob, Z, 'E\n', 'E\n'],
    // initial, T(D), D, T(C), C, a done, C, empty done, D sub, C b, b done, E, E
    sink: [Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z],
    toSink: [T1, 'D0755 0 dir\n', T2, 'C0640 5 a.txt\n', 'hello', Z, 'C0600 0 empty\n', Z, 'D0700 0 sub\n', `C0644 ${blob.length} b.bin\n`, blob, Z, 'E\n', 'E\n'],
    // The source waits 13 times: the gateway answers its two T lines, the sink's answers to them are not passed on.
    toSource: [Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z],
    events: ['entry dir', 'entry dir/a.txt', `end dir/a.txt 5 ${sha('hello')}`, 'entry dir/empty', `end dir/empty 0 ${sha('')}`, 'entry dir/sub', 'entry dir/sub/b.bin', `end dir/sub/b.bin ${blob.length} ${sha(blob)}`, 'end dir/sub', 'end dir'],
  },
  {
    name: 'a refused directory: its times and header never reach the sink, the source skips it',
    recursive: true,
    source: ['D0755 0 dir\n', T2, 'D0700 0 .ssh\n', 'C0644 2 ok\n', 'ok', Z, 'E\n'],
    refuse: ['dir/.ssh'],
    sink: [Z, Z, Z, Z, Z],
    toSink: ['D0755 0 dir\n', 'C0644 2 ok\n', 'ok', Z, 'E\n'],
    toSource: [Z, Z, Z, '\x01scp: refused dir/.ssh\n', Z, Z, Z],
    events: ['entry dir', 'entry dir/.ssh', 'entry dir/ok', `end dir/ok 2 ${sha('ok')}`, 'end dir'],
  },
  {
    name: 'a refused file: its bytes are never sent, the next file is read as a header',
    recursive: false,
    source: ['C0600 6 secret\n', 'C0644 4 next\n', 'next', Z],
    refuse: ['secret'],
    sink: [Z, Z, Z],
    toSink: ['C0644 4 next\n', 'next', Z],
    toSource: [Z, '\x01scp: refused secret\n', Z, Z],
    events: ['entry secret', 'entry next', `end next 4 ${sha('next')}`],
  },
  {
    name: 'the sink refuses a header: the source skips the file, the next header is read as one',
    recursive: false,
    source: ['C0644 5 a\n', 'C0644 5 b\n', 'bbbbb', Z],
    sink: [Z, '\x01scp: a: Permission denied\n', Z, Z],
    toSink: ['C0644 5 a\n', 'C0644 5 b\n', 'bbbbb', Z],
    toSource: [Z, '\x01scp: a: Permission denied\n', Z, Z],
    events: ['entry a', 'end a error: scp: a: Permission denied', 'entry b', `end b 5 ${sha('bbbbb')}`],
  },
  {
    name: 'errors after the bytes: the source could not read (its trailer), the sink could not write',
    recursive: false,
    source: ['C0644 3 a\n', 'xyz', '\x01scp: a: Input/output error\n', 'C0644 3 b\n', 'uvw', Z],
    sink: [Z, Z, Z, Z, '\x01scp: b: No space left on device\n'],
    toSink: ['C0644 3 a\n', 'xyz', '\x01scp: a: Input/output error\n', 'C0644 3 b\n', 'uvw', Z],
    toSource: [Z, Z, Z, Z, '\x01scp: b: No space left on device\n'],
    events: ['entry a', `end a error: scp: a: Input/output error`, 'entry b', 'end b error: scp: b: No space left on device'],
  },
  {
    name: "the source's own error lines between entries pass on unanswered",
    recursive: false,
    source: ['\x01scp: missing: No such file or directory\n', 'C0644 1 x\n', 'x', Z],
    sink: [Z, Z, Z],
    toSink: ['\x01scp: missing: No such file or directory\n', 'C0644 1 x\n', 'x', Z],
    toSource: [Z, Z, Z],
    events: ['source-error: scp: missing: No such file or directory', 'entry x', `end x 1 ${sha('x')}`],
  },
  {
    name: 'names with spaces, UTF-8 and a leading dash',
    recursive: false,
    source: ['C0644 1 -a b ü.txt\n', 'q', Z],
    sink: [Z, Z, Z],
    toSink: ['C0644 1 -a b ü.txt\n', 'q', Z].map((s) => Buffer.from(s, 'utf8')),
    toSource: [Z, Z, Z],
    events: ['entry -a b ü.txt', `end -a b ü.txt 1 ${sha('q')}`],
  },
];

// The 'names' scenario is UTF-8 on the wire.
scenarios.find((s) => s.name.startsWith('names'))!.source = ['C0644 1 -a b ü.txt\n', 'q', Z].map((s) => Buffer.from(s, 'utf8'));

function short(e: ScpEvent): string {
  switch (e.type) {
    case 'entry':
      return `entry ${e.entry.names.join('/')}`;
    case 'entry-end':
      return e.error !== undefined ? `end ${e.entry.names.join('/')} error: ${e.error}` : e.entry.kind === 'file' ? `end ${e.entry.names.join('/')} ${e.bytes} ${e.sha256}` : `end ${e.entry.names.join('/')}`;
    case 'source-error':
      return `source-error: ${e.message}`;
  }
}

/** Feeds the two streams as `order` says, deciding each entry at once; returns what came out. */
function run(s: Scenario, sourceChunks: Buffer[], sinkChunks: Buffer[], order: 'source-first' | 'sink-first' | 'alternate') {
  const t = new ScpTransfer({ recursive: s.recursive });
  const toSink: Buffer[] = [];
  const toSource: Buffer[] = [];
  const events: string[] = [];
  const take = (outs: ScpOut[]): void => {
    outs.forEach((o, i) => {
      if ('toSink' in o) toSink.push(o.toSink);
      else if ('toSource' in o) toSource.push(o.toSource);
      else {
        events.push(short(o.event));
        if (o.event.type === 'entry') {
          assert.equal(i, outs.length - 1, 'nothing comes after an entry until it is decided');
          const name = o.event.entry.names.join('/');
          take(s.refuse?.includes(name) ? t.refuse(`scp: refused ${name}`) : t.allow());
        }
      }
    });
  };
  const src = [...sourceChunks];
  const snk = [...sinkChunks];
  if (order === 'source-first') {
    for (const c of src) take(t.fromSource(c));
    for (const c of snk) take(t.fromSink(c));
  } else if (order === 'sink-first') {
    for (const c of snk) take(t.fromSink(c));
    for (const c of src) take(t.fromSource(c));
  } else {
    while (src.length || snk.length) {
      if (snk.length) take(t.fromSink(snk.shift()!));
      if (src.length) take(t.fromSource(src.shift()!));
    }
  }
  return { toSink: Buffer.concat(toSink), toSource: Buffer.concat(toSource), events, atRest: t.atRest };
}

function splitAt(buf: Buffer, points: number[]): Buffer[] {
  const out: Buffer[] = [];
  let last = 0;
  for (const p of points) {
    out.push(buf.subarray(last, p));
    last = p;
  }
  out.push(buf.subarray(last));
  return out.filter((c) => c.length > 0);
}

function check(s: Scenario, sourceChunks: Buffer[], sinkChunks: Buffer[], order: 'source-first' | 'sink-first' | 'alternate', how: string) {
  const r = run(s, sourceChunks, sinkChunks, order);
  const label = `${s.name} (${order}, ${how})`;
  assert.deepEqual(r.events, s.events, label);
  assert.equal(r.toSink.toString('hex'), Buffer.concat(s.toSink.map(b)).toString('hex'), `${label}: to the sink`);
  assert.equal(r.toSource.toString('hex'), Buffer.concat(s.toSource.map(b)).toString('hex'), `${label}: to the source`);
  assert.ok(r.atRest, `${label}: ends at rest`);
}

test('each scenario gives the same bytes and events, whole or cut at every byte, in any interleaving', () => {
  for (const s of scenarios) {
    const source = Buffer.concat(s.source.map(b));
    const sink = Buffer.concat(s.sink.map(b));
    for (const order of ['source-first', 'sink-first', 'alternate'] as const) {
      check(s, [source], [sink], order, 'whole');
      check(s, s.source.map(b), s.sink.map(b), order, 'as sent');
      check(s, splitAt(source, Array.from({ length: source.length }, (_, i) => i)), splitAt(sink, Array.from({ length: sink.length }, (_, i) => i)), order, 'byte by byte');
    }
    for (let i = 1; i < source.length; i++) check(s, splitAt(source, [i]), s.sink.map(b), 'alternate', `source cut at ${i}`);
    for (let i = 1; i < sink.length; i++) check(s, s.source.map(b), splitAt(sink, [i]), 'alternate', `sink cut at ${i}`);
  }
});

test('an entry carries its path names, mode, size, times and the bytes allow() will send', () => {
  const t = new ScpTransfer({ recursive: true });
  t.fromSink(b(Z));
  const outs = t.fromSource(b(`${T1}D0751 0 top\n`));
  assert.deepEqual(outs.map((o) => ('toSource' in o ? 'toSource' : 'toSink' in o ? 'toSink' : o.event.type)), ['toSource', 'entry'], 'the gateway answers the time line itself');
  const ev = (outs[1] as { event: ScpEvent }).event as Extract<ScpEvent, { type: 'entry' }>;
  assert.deepEqual(ev.entry, { kind: 'directory', names: ['top'], exactNames: true, mode: 0o751, size: 0, times: { mtime: 1700000000, atime: 1700000100 } });
  assert.deepEqual(ev.forwarded.map((x) => x.toString()), [T1, 'D0751 0 top\n']);
  assert.deepEqual(t.allow().map((o) => ('toSink' in o ? o.toSink.toString() : '?')), [T1, 'D0751 0 top\n']);
  // A name that is not UTF-8 is passed on, flagged: the log cannot name it exactly.
  t.fromSink(b(Z + Z));
  const odd = t.fromSource(Buffer.concat([b('C0644 0 '), Buffer.from([0xff, 0xfe]), b('\n')]));
  const entry = (odd.at(-1) as { event: Extract<ScpEvent, { type: 'entry' }> }).event.entry;
  assert.equal(entry.exactNames, false);
  assert.deepEqual(t.unfinished().map((e) => e.names.join('/')), ['top']);
});

test('malformed streams are protocol errors, whatever the cut', () => {
  const cases: { name: string; recursive?: boolean; source?: string; sink?: string }[] = [
    { name: 'a line longer than OpenSSH reads', source: 'C0644 1 ' + 'x'.repeat(MAX_LINE) + '\n' },
    { name: 'an empty line', source: '\n' },
    { name: 'an unknown line', source: 'X hello\n' },
    { name: 'a mode of three digits', source: 'C644 5 a\n' },
    { name: 'a mode with a non-octal digit', source: 'C0684 5 a\n' },
    { name: 'a size that is not a number', source: 'C0644 five a\n' },
    { name: 'a size beyond 2^53', source: 'C0644 99999999999999999999 a\n' },
    { name: 'no name', source: 'C0644 5 \n' },
    { name: 'a name with a slash', source: 'C0644 5 ../../etc/passwd\n' },
    { name: 'a name ..', source: 'D0755 0 ..\n', recursive: true },
    { name: 'a name .', source: 'C0644 5 .\n' },
    { name: 'a name with a NUL', source: 'C0644 5 a\0b\n' },
    { name: 'a directory without -r', source: 'D0755 0 d\n' },
    { name: 'an end of directory at the top', source: 'E\n', recursive: true },
    { name: 'an end of directory with more', source: 'D0755 0 d\nEXTRA\n', recursive: true, sink: Z + Z },
    { name: 'a trailer that is neither \\0 nor an error', source: 'C0644 1 a\nxZ', sink: Z + Z },
    { name: 'a time line with three numbers', source: 'T1 0 2\n' },
    { name: 'a time line with microseconds too large', source: 'T1 1000000 2 0\n' },
    { name: 'two time lines', source: `${T1}${T2}` },
    { name: 'a time line before an end of directory', source: `D0755 0 d\n${T1}E\n`, recursive: true, sink: Z + Z },
    { name: 'bytes after a fatal line', source: '\x02scp: fatal\nC0644 1 a\n' },
    { name: 'a source that does not wait', source: 'C0644 1 a\n' + 'x'.repeat(MAX_AHEAD + 10) },
    { name: 'a sink that answers nobody', sink: Z.repeat(40) },
    { name: 'an endless answer line', sink: '\x01' + 'e'.repeat(MAX_LINE + 1) },
  ];
  for (const c of cases) {
    for (const cut of [0, 1, 3]) {
      const t = new ScpTransfer({ recursive: c.recursive ?? false });
      const feed = (what: 'source' | 'sink', s: string) => {
        const bytes = b(s);
        const step = cut === 0 ? bytes.length || 1 : cut;
        for (let i = 0; i < bytes.length; i += step) {
          const outs = what === 'source' ? t.fromSource(bytes.subarray(i, i + step)) : t.fromSink(bytes.subarray(i, i + step));
          for (const o of outs) if ('event' in o && o.event.type === 'entry') t.allow();
        }
      };
      assert.throws(() => {
        feed('sink', c.sink ?? Z);
        feed('source', c.source ?? '');
      }, ScpProtocolError, `${c.name} (cut ${cut})`);
    }
  }
});

test('random bytes never crash the reader: they are read or a protocol error', () => {
  let seed = 12345;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const pieces = ['C0644 3 a\n', 'D0755 0 d\n', 'E\n', T1, '\x01scp: x\n', 'abc', Z, '\n', 'C', '0644 ', '\x02'];
  for (let round = 0; round < 3000; round++) {
    const t = new ScpTransfer({ recursive: rand(2) === 0 });
    try {
      for (let step = 0; step < 12; step++) {
        const piece = rand(3) === 0 ? Buffer.from(Array.from({ length: 1 + rand(6) }, () => rand(256))) : b(pieces[rand(pieces.length)]!);
        const outs = rand(2) === 0 ? t.fromSource(piece) : t.fromSink(piece);
        for (const o of outs) if ('event' in o && o.event.type === 'entry') (rand(2) ? t.allow() : t.refuse('no'));
      }
    } catch (e) {
      assert.ok(e instanceof ScpProtocolError, `round ${round}: ${(e as Error).stack}`);
    }
  }
});

test('scp command lines: the server side flags only, one of -t and -f', () => {
  assert.deepEqual(parseScpCommand(['scp', '-r', '-p', '-t', '--', '/srv/x']), { direction: 'upload', paths: ['/srv/x'], recursive: true, preserveTimes: true, targetIsDirectory: false });
  assert.deepEqual(parseScpCommand(['/usr/bin/scp', '-vf', 'a', 'b*', '-r']), { direction: 'download', paths: ['a', 'b*'], recursive: true, preserveTimes: false, targetIsDirectory: false });
  assert.deepEqual(parseScpCommand(['scp', '-t', '--', '-d']), { direction: 'upload', paths: ['-d'], recursive: false, preserveTimes: false, targetIsDirectory: false });
  for (const bad of [['scp', '-t'], ['scp', '-t', 'a', 'b'], ['scp', '-f'], ['scp', '-tf', 'x'], ['scp', 'x'], ['scp', '-S', 'evil', '-t', 'x'], ['cp', '-t', 'x']]) {
    assert.ok('error' in parseScpCommand(bad), bad.join(' '));
  }
});

test('where an entry is: a target that may not be a directory names both places; a download names what was asked', () => {
  const cmd = (words: string[]) => parseScpCommand(words) as ScpCommand;
  const home = '/home/u';
  assert.deepEqual(entryPaths(cmd(['scp', '-t', 'drop']), ['f'], home), { paths: ['/home/u/drop/f', '/home/u/drop'] });
  assert.deepEqual(entryPaths(cmd(['scp', '-d', '-t', 'drop']), ['f'], home), { paths: ['/home/u/drop/f'] });
  assert.deepEqual(entryPaths(cmd(['scp', '-t', '.']), ['f'], home), { paths: ['/home/u/f'] });
  assert.deepEqual(entryPaths(cmd(['scp', '-r', '-t', '/srv/new']), ['app', 'lib', 'x.js'], home), { paths: ['/srv/new/app/lib/x.js', '/srv/new/lib/x.js'] });
  assert.deepEqual(entryPaths(cmd(['scp', '-t', '~/a/../.ssh/']), ['authorized_keys'], home), { paths: ['/home/u/.ssh/authorized_keys'] });
  assert.ok('error' in entryPaths(cmd(['scp', '-t', '~root/x']), ['f'], home));
  assert.deepEqual(entryPaths(cmd(['scp', '-f', '/var/log/app.log']), ['app.log'], home), { paths: ['/var/log/app.log'] });
  assert.deepEqual(entryPaths(cmd(['scp', '-f', '/var/log/*.log', 'x']), ['sys.log'], home), { paths: ['/var/log/sys.log'] });
  assert.deepEqual(entryPaths(cmd(['scp', '-r', '-f', 'site/']), ['site', 'index.html'], home), { paths: ['/home/u/site/index.html'] });
  assert.deepEqual(entryPaths(cmd(['scp', '-f', '~']), ['u'], home), { paths: ['/home/u'] });
  assert.ok('error' in entryPaths(cmd(['scp', '-f', '/var/log/app.log']), ['shadow'], home), 'a name nobody asked for');
  assert.ok('error' in entryPaths(cmd(['scp', '-f', '/ho*/u/.ssh/id']), ['id'], home), 'a pattern in the directory part');
  assert.deepEqual(entryPaths(cmd(['scp', '-f', 'r{a,b}.txt']), ['rb.txt'], home), { paths: ['/home/u/rb.txt'] });
});
