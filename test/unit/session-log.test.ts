// The log's chain is what an auditor relies on: canonical JSON must follow RFC 8785, and the
// verifier must catch every kind of edit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { canonicalJson } from '../../gateway/evidence/canonical-json.ts';
import { SessionLogWriter, LOG_FORMAT } from '../../gateway/evidence/log-writer.ts';
import { verifyChainFile, verifyChainText as verifyLogText } from '../../gateway/evidence/log-verifier.ts';
import { CheckpointSigner } from '../../gateway/evidence/checkpoint.ts';
import { tempDir } from '../helpers/gateway.ts';
import { resign } from '../helpers/log-forgery.ts';
import { readTimeline } from '../../gateway/evidence/timeline.ts';

test('canonical JSON follows RFC 8785 for the values the log uses', () => {
  assert.equal(canonicalJson({ b: 1, a: [true, null, 'x'], c: { z: 1.5, y: -0 } }), '{"a":[true,null,"x"],"b":1,"c":{"y":0,"z":1.5}}');
  // Member order is by UTF-16 code units (RFC 8785 section 3.2.3 example, abridged).
  assert.equal(canonicalJson({ '\u20ac': 1, '\r': 2, '\ud83d\ude00': 3, '1': 4, '\u0080': 5, '\u00f6': 6 }), '{"\\r":2,"1":4,"\u0080":5,"\u00f6":6,"\u20ac":1,"\ud83d\ude00":3}');
  assert.equal(canonicalJson('tab\tquote"nl\n\u0001'), '"tab\\tquote\\"nl\\n\\u0001"');
  assert.equal(canonicalJson(1e21), '1e+21');
  assert.equal(canonicalJson({ a: undefined, b: 2 }), '{"b":2}');
  assert.throws(() => canonicalJson(Number.NaN), /no representation/);
  assert.throws(() => canonicalJson({ f: () => 1 }), /no representation/);
});

/** A signed log with a checkpoint after every 5 records (records 5, 11 and 17), then the seal. */
function writeSampleLog(dir: string, records = 6, seal = true): string {
  const w = SessionLogWriter.create(dir, 'sample.jsonl');
  const signer = new CheckpointSigner();
  w.signWith('r1', signer, { everyRecords: 5, everyMs: 0 });
  w.append('run-start', { format: LOG_FORMAT, run: 'r1', identity: { kind: 'local', user: 'u', host: 'h' }, targets: [{ name: 'app-db' }], key: { alg: 'EdDSA', jwk: signer.jwk, thumbprint: signer.thumbprint }, attestation: 'unattested' });
  w.append('session-open', { session: 's1', target: 'app-db' });
  for (let i = 0; i < records; i++) {
    w.append('command', { session: 's1', command: `s1.${i + 1}`, text: `SELECT ${i} -- “quoted” ü` });
    w.append('result', { session: 's1', command: `s1.${i + 1}`, status: i === 2 ? 'error' : 'ok', rows: i });
  }
  w.append('session-close', { session: 's1', reason: 'client terminated' });
  if (seal) w.close('run-end', { run: 'r1' });
  else w.flushSync();
  return w.path;
}

test('a written log verifies, and each line hashes to its hash member as documented', () => {
  const file = writeSampleLog(tempDir());
  const text = fs.readFileSync(file, 'utf8');
  const r = verifyLogText(text);
  assert.equal(r.status, 'valid', r.problem ?? '');
  assert.equal(r.totals.commands, 6);
  assert.equal(r.totals.errors, 1);
  assert.equal(r.totals.sessions, 1);
  assert.equal(r.totals.checkpoints, 4, 'after every 5 records, then the seal');
  assert.equal(r.signing.unsignedRecords, 0);
  // The documented recipe without a JCS library: strip the trailing hash member textually.
  let prev = '0'.repeat(64);
  for (const line of text.trimEnd().split('\n')) {
    const m = /^(.*),"hash":"([0-9a-f]{64})"}$/.exec(line);
    assert.ok(m, 'hash is the last member');
    const body = m[1] + '}';
    assert.equal(createHash('sha256').update(body).digest('hex'), m[2]);
    assert.equal(JSON.parse(body).prev, prev);
    prev = m[2]!;
  }
  assert.equal(fs.statSync(file).mode & 0o777, 0o600, 'the log is readable by its owner only');
});

test('the writer never overwrites an existing log', () => {
  const dir = tempDir();
  writeSampleLog(dir);
  assert.throws(() => SessionLogWriter.create(dir, 'sample.jsonl'), /EEXIST/);
});

test('every kind of tampering is detected and the first bad record named', () => {
  const text = fs.readFileSync(writeSampleLog(tempDir()), 'utf8');
  const lines = text.trimEnd().split('\n');
  const join = (ls: string[]): string => ls.join('\n') + '\n';
  const edit = (i: number, f: (r: Record<string, unknown>) => void): string[] => {
    const ls = [...lines];
    const r = JSON.parse(ls[i]!) as Record<string, unknown>;
    f(r);
    ls[i] = JSON.stringify(r);
    return ls;
  };
  const cases: [string, string, string, RegExp][] = [
    ['edited text', join(edit(4, (r) => (r.text = 'DROP TABLE customers'))), 'tampered', /record 4 \(line 5\) has been modified/],
    ['edited status', join(edit(7, (r) => (r.status = 'ok'))), 'tampered', /record 7 \(line 8\)/],
    ['re-hashed edit', join(rehash(edit(4, (r) => (r.text = 'x')), 4)), 'tampered', /record 5 \(line 6\) does not chain/],
    ['deleted record', join(lines.filter((_, i) => i !== 3)), 'tampered', /record 3 \(line 4\) has sequence number 4, expected 3/],
    ['reordered records', join([...lines.slice(0, 3), lines[4]!, lines[3]!, ...lines.slice(5)]), 'tampered', /record 3 \(line 4\)/],
    ['inserted record', join([...lines.slice(0, 3), lines[3]!, ...lines.slice(3)]), 'tampered', /record 4 \(line 5\)/],
    ['appended after seal', join([...lines, lines[3]!]), 'tampered', /appended after the seal/],
    ['truncated after a record', join(lines.slice(0, 8)), 'unsealed', /no seal.*the last signed checkpoint is record 5; the 2 records after it are unsigned/],
    ['truncated after a checkpoint', join(lines.slice(0, 6)), 'unsealed', /no seal.*checkpoint is record 5; the 0 records after it/],
    ['truncated before any checkpoint', join(lines.slice(0, 3)), 'unsealed', /no checkpoint was signed, so none of its 3 records is signed/],
    ['truncated mid-line', join(lines.slice(0, 8)) + lines[8]!.slice(0, 40), 'unsealed', /record 8 \(line 9\) is torn/],
    ['the seal removed', join(lines.slice(0, -1)), 'unsealed', /no seal/],
    ['re-hashed from an edit to the end', join(rehashFrom(edit(4, (r) => (r.text = 'x')), 4)), 'tampered', /record 5 \(line 6\), a checkpoint, signs .* which is not this position in the chain/],
    ['a checkpoint signed by another key', join(rehashFrom(edit(5, (r) => (r.jws = new CheckpointSigner().sign({ run: 'r1', seq: 4, head: String(r.prev), seal: false, time: String(r.time) }))), 5)), 'tampered', /record 5 \(line 6\), a checkpoint, has a signature that does not verify with the log's public key/],
    ['a seal moved before the end', join(rehashFrom(edit(5, (r) => (r.seal = true)), 5)), 'tampered', /record 5 \(line 6\), a checkpoint, signs .*"seal":false/],
    ['no key in run-start', join(rehashFrom(edit(0, (r) => delete r.key), 0)), 'tampered', /record 0 \(line 1\): the run-start key is not an Ed25519 public JWK/],
    ['garbage line in the middle', join([...lines.slice(0, 3), '{not json', ...lines.slice(4)]), 'tampered', /record 3 \(line 4\) is not valid JSON/],
    ['not a log at all', 'hello\n', 'unreadable', /line 1/],
    ['a duplicate member that parsers disagree on', join(lines.map((l, i) => (i === 4 ? l.replace('{', '{"text":"SELECT 1",') : l))), 'tampered', /record 4 \(line 5\) is not in canonical form/],
    ['reformatted with spaces', join(lines.map((l, i) => (i === 2 ? l.replace(/,"/g, ', "') : l))), 'tampered', /record 2 \(line 3\) is not in canonical form/],
    ['CRLF line endings', lines.join('\r\n') + '\r\n', 'tampered', /record 0 \(line 1\) is not in canonical form/],
    ['empty file', '', 'unreadable', /empty/],
  ];
  for (const [name, input, status, problem] of cases) {
    const r = verifyLogText(input);
    assert.equal(r.status, status, `${name}: ${r.problem}`);
    assert.match(r.problem ?? '', problem, name);
  }
});

/** Recomputes every hash from record i on, as a forger without the signing key would. */
function rehashFrom(lines: string[], i: number): string[] {
  let out = lines;
  for (let j = i; j < lines.length; j++) {
    if (j > 0) out = out.map((l, k) => (k === j ? JSON.stringify({ ...JSON.parse(l), prev: JSON.parse(out[j - 1]!).hash }) : l));
    out = rehash(out, j);
  }
  return out;
}

test('a forger who holds a key of their own can re-sign a whole log: the chain verifies, under another key', () => {
  const lines = fs.readFileSync(writeSampleLog(tempDir()), 'utf8').trimEnd().split('\n');
  const original = verifyLogText(lines.join('\n') + '\n');
  const forged = verifyLogText(resign(lines, (r) => (r.type === 'command' ? { ...r, text: 'SELECT harmless' } : r)).join('\n') + '\n');
  assert.equal(forged.status, 'valid', forged.problem ?? '');
  // Only the identity binding (the OIDC token's audience) can tell them apart.
  assert.notEqual(forged.signing.thumbprint, original.signing.thumbprint);
});

function rehash(lines: string[], i: number): string[] {
  const r = JSON.parse(lines[i]!) as Record<string, unknown>;
  delete r.hash;
  const body = canonicalJson(r);
  const out = [...lines];
  out[i] = body.slice(0, -1) + ',"hash":"' + createHash('sha256').update(body).digest('hex') + '"}';
  return out;
}

test('a write failure makes the writer refuse further records', () => {
  const dir = tempDir();
  const w = SessionLogWriter.create(dir, 'x.jsonl');
  w.append('run-start', { format: LOG_FORMAT });
  w.flushSync();
  // Closing the descriptor underneath the writer makes the next write fail like a dead disk.
  fs.closeSync((w as unknown as { fd: number }).fd);
  w.append('command', { text: 'SELECT 1' });
  assert.match(String(w.flushSync()), /session log cannot be written \(EBADF/);
  assert.throws(() => w.append('command', { text: 'SELECT 2' }), /session log cannot be written/);
  assert.equal(path.basename(w.path), 'x.jsonl');
});

test('a log directory that cannot be created is reported, never looped on', () => {
  assert.throws(() => SessionLogWriter.create('/proc/no-such-dir', 'x.jsonl'), /cannot create the session log \/proc\/no-such-dir\/x\.jsonl \(ENOENT\)/);
  assert.throws(() => SessionLogWriter.create('/etc/hostname/sub', 'x.jsonl'), /cannot create the session log .* \(ENOTDIR\)/);
});

test('the seal directly follows run-end whatever the count schedule, and every schedule verifies', () => {
  for (const everyRecords of [0, 1, 2, 3, 4, 5, 7]) {
    const dir = tempDir();
    const w = SessionLogWriter.create(dir, 'x.jsonl');
    const signer = new CheckpointSigner();
    w.signWith('r1', signer, { everyRecords, everyMs: 0 });
    w.append('run-start', { format: LOG_FORMAT, run: 'r1', key: { alg: 'EdDSA', jwk: signer.jwk, thumbprint: signer.thumbprint }, attestation: 'unattested' });
    for (let i = 0; i < 9; i++) w.append('command', { text: `SELECT ${i}` });
    w.close('run-end', { run: 'r1' });
    const text = fs.readFileSync(w.path, 'utf8');
    const r = verifyLogText(text);
    assert.equal(r.status, 'valid', `every ${everyRecords}: ${r.problem}`);
    const types = text.trimEnd().split('\n').map((l) => (JSON.parse(l) as { type: string }).type);
    assert.deepEqual(types.slice(-2), ['run-end', 'checkpoint']);
    // Ten records before run-end, which never triggers a count checkpoint of its own.
    assert.equal(r.totals.checkpoints, 1 + (everyRecords ? Math.floor(10 / everyRecords) : 0), `every ${everyRecords}`);
  }
});

test('hostile files end in a verdict naming the record, never a crash or a wrong "valid"', async () => {
  const dir = tempDir();
  const file = writeSampleLog(dir);
  const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
  const seal = lines.length - 1;
  const put = (name: string, content: string | Buffer): string => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, content);
    return f;
  };
  const cases: [string, string, string, RegExp][] = [
    // The seal is covered by no later record: every member of it must be signed or derived.
    ['seal with an extra member', put('extra.jsonl', rehash(edit(lines, seal, (r) => (r.note = 'x')), seal).join('\n') + '\n'), 'tampered', new RegExp(`record ${seal} \\(line ${seal + 1}\\), a checkpoint, has the members covers,jws,note,prev`)],
    ['seal with another time', put('time.jsonl', rehash(edit(lines, seal, (r) => (r.time = '2030-01-01T00:00:00.000Z')), seal).join('\n') + '\n'), 'tampered', /a checkpoint, signs .* which is not this position/],
    ['seal signature re-spelled', put('spelled.jsonl', rehash(edit(lines, seal, (r) => (r.jws = String(r.jws).slice(0, -20) + '!*~' + String(r.jws).slice(-20))), seal).join('\n') + '\n'), 'tampered', /not canonical base64url/],
    ['a checkpoint header that is null', put('null-header.jsonl', rehashFrom(edit(lines, 5, (r) => (r.jws = Buffer.from('null').toString('base64url') + String(r.jws).slice(String(r.jws).indexOf('.')))), 5).join('\n') + '\n'), 'tampered', /header is not a JSON object/],
    ['targets: [null]', put('null-target.jsonl', rehashFrom(edit(lines, 0, (r) => (r.targets = [null])), 0).join('\n') + '\n'), 'tampered', /record 5 \(line 6\), a checkpoint/],
    ['deeply nested seq', put('deep.jsonl', lines.map((l, i) => (i === 3 ? l.replace(/"seq":3/, '"seq":' + '['.repeat(200000) + ']'.repeat(200000)) : l)).join('\n') + '\n'), 'tampered', /^record 3 \(line 4\)/],
    ['a NUL byte in a record', put('nul.jsonl', lines.map((l, i) => (i === 2 ? l.replace('"session"', '"sess\u0000ion"') : l)).join('\n') + '\n'), 'tampered', /^record 2 \(line 3\)/],
  ];
  // Invalid UTF-8 that a lenient decoder maps to the U+FFFD a record really contains.
  const withReplacement = lines.findIndex((l) => l.includes('\ufffd'));
  assert.equal(withReplacement, -1);
  const bytes = Buffer.from(lines.join('\n') + '\n');
  const at = bytes.indexOf(Buffer.from('“'));
  const invalid = Buffer.concat([bytes.subarray(0, at), Buffer.from([0xff]), bytes.subarray(at + 3)]);
  const badLine = bytes.subarray(0, at).toString().split('\n').length - 1;
  cases.push(['invalid UTF-8', put('ff.jsonl', invalid), 'tampered', new RegExp(`^record ${badLine} \\(line ${badLine + 1}\\) is not valid UTF-8`)]);
  for (const [name, f, status, problem] of cases) {
    const r = await verifyChainFile(f);
    assert.equal(r.status, status, `${name}: ${r.problem}`);
    assert.match(r.problem ?? '', problem, name);
  }
  // A torn tail that ends inside a multibyte character is a crash's torn line, not tampering.
  const torn = put('torn-utf8.jsonl', Buffer.concat([Buffer.from(lines.slice(0, 4).join('\n') + '\n'), Buffer.from(lines[4]!).subarray(0, Buffer.from(lines[4]!).indexOf(Buffer.from('“')) + 1)]));
  assert.equal((await verifyChainFile(torn)).status, 'unsealed');
});

function edit(lines: string[], i: number, f: (r: Record<string, unknown>) => void): string[] {
  const r = JSON.parse(lines[i]!) as Record<string, unknown>;
  f(r);
  return lines.map((l, k) => (k === i ? JSON.stringify(r) : l));
}

test('the timeline streams the log and stays bounded: past the limit allowed commands are counted, denied ones kept', async () => {
  const dir = tempDir();
  const w = SessionLogWriter.create(dir, 'big.jsonl');
  const signer = new CheckpointSigner();
  w.signWith('r1', signer, { everyRecords: 100, everyMs: 0 });
  w.append('run-start', { format: LOG_FORMAT, run: 'r1', key: { alg: 'EdDSA', jwk: signer.jwk, thumbprint: signer.thumbprint }, attestation: 'unattested', targets: [{ name: 'app-db' }] });
  w.append('session-open', { session: 's1', target: 'app-db', client: { user: 'u', database: 'd' } });
  for (let i = 1; i <= 30; i++) {
    w.append('command', { session: 's1', command: `s1.${i}`, target: 'app-db', text: `SELECT ${i}`, decision: { action: 'allow', rule: 'default' } });
    w.append('result', { session: 's1', command: `s1.${i}`, status: 'ok', rows: 1 });
  }
  w.append('command', { session: 's1', command: 's1.31', target: 'app-db', text: 'DELETE FROM t', decision: { action: 'deny', rule: 'no-deletes', reason: 'no' } });
  w.append('result', { session: 's1', command: 's1.31', status: 'denied', rule: 'no-deletes' });
  w.close('run-end', { run: 'r1' });
  const t = await readTimeline(w.path, 10);
  const kept = t.sessions[0]!.commands;
  assert.deepEqual(kept.map((c) => c.id), [...Array.from({ length: 10 }, (_, i) => `s1.${i + 1}`), 's1.31']);
  assert.equal(kept.at(-1)!.status, 'denied');
  assert.equal(t.omittedCommands, 20);
  assert.equal((await readTimeline(w.path)).omittedCommands, 0);
});

test('records queued in one event-loop turn are in the file before any waiting command is released, and a failed write releases none', async () => {
  const dir = tempDir();
  const w = SessionLogWriter.create(dir, 'turn.jsonl');
  w.append('run-start', { format: LOG_FORMAT });
  w.flushSync();
  const onDisk = (): string[] => fs.readFileSync(w.path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l).command as string);
  w.openSessions = 2;
  // Two sessions each record a command in the same turn and wait for it.
  const seen: string[][] = [];
  w.append('command', { session: 's1', command: 's1.1', text: 'SELECT 1' });
  w.whenWritten((failure) => (assert.equal(failure, null), seen.push(onDisk())));
  w.append('command', { session: 's2', command: 's2.1', text: 'SELECT 2' });
  w.whenWritten((failure) => (assert.equal(failure, null), seen.push(onDisk())));
  assert.deepEqual(onDisk(), [undefined], 'nothing is written before the turn ends');
  await new Promise((r) => setImmediate(r));
  // Both waiters ran once both records were in the file: one write for the turn.
  assert.deepEqual(seen, [[undefined, 's1.1', 's2.1'], [undefined, 's1.1', 's2.1']]);

  fs.closeSync((w as unknown as { fd: number }).fd);
  w.append('command', { session: 's1', command: 's1.2', text: 'SELECT 3' });
  const failures: string[] = [];
  w.whenWritten((failure) => failures.push(String(failure)));
  await new Promise((r) => setImmediate(r));
  assert.equal(failures.length, 1);
  assert.match(failures[0]!, /session log cannot be written \(EBADF/);
  // Once failed, a waiter hears so at once.
  w.whenWritten((failure) => failures.push(String(failure)));
  assert.equal(failures.length, 2);

  // A sealed log forwards nothing new on its strength either.
  const sealed = SessionLogWriter.create(dir, 'sealed.jsonl');
  sealed.append('run-start', { format: LOG_FORMAT });
  sealed.close('run-end', {});
  let told = '';
  sealed.whenWritten((failure) => (told = String(failure)));
  assert.match(told, /the log is sealed/);
});

test('records staged as bytes: multibyte text, a record larger than the stage, and a batch of many, all verify byte for byte', () => {
  const w = SessionLogWriter.create(tempDir(), 'staged.jsonl');
  const signer = new CheckpointSigner();
  w.signWith('r1', signer, { everyRecords: 0, everyMs: 0 });
  w.append('run-start', { format: LOG_FORMAT, run: 'r1', identity: { kind: 'local', user: 'u', host: 'h' }, targets: [{ name: 'app-db' }], key: { alg: 'EdDSA', jwk: signer.jwk, thumbprint: signer.thumbprint }, attestation: 'unattested' });
  const texts = ['é ü “q” \u{1F600} \u2028', 'x'.repeat(200_000), '\u20ac'.repeat(70_000), 'lone \ud800 surrogate'];
  for (const [i, text] of texts.entries()) w.append('command', { session: 's1', command: `s1.${i}`, text });
  // Many small ones in one batch: more than the 64 KiB stage holds.
  for (let i = 0; i < 2000; i++) w.append('command', { session: 's1', command: `s1.x${i}`, text: `SELECT ${i} -- ü` });
  assert.equal(w.flushSync(), null);
  w.append('command', { session: 's1', command: 's1.after', text: 'after the flush' });
  w.close('run-end', { run: 'r1' });
  const text = fs.readFileSync(w.path, 'utf8');
  const r = verifyLogText(text);
  assert.equal(r.status, 'valid', r.problem ?? '');
  const lines = text.trimEnd().split('\n');
  assert.equal(lines.length, 1 + texts.length + 2000 + 1 + 1 + 1, 'and the seal');
  assert.deepEqual(lines.slice(1, 1 + texts.length).map((l) => JSON.parse(l).text), texts.map((t) => JSON.parse(JSON.stringify(t))));
});

test('a session alone writes its record at once: the waiter runs before whenWritten returns, with the record on disk', () => {
  const w = SessionLogWriter.create(tempDir(), 'alone.jsonl');
  w.append('run-start', { format: LOG_FORMAT });
  w.openSessions = 1;
  const onDisk = (): number => fs.readFileSync(w.path, 'utf8').split('\n').filter(Boolean).length;
  w.append('command', { session: 's1', command: 's1.1', text: 'SELECT 1' });
  let seen = -1;
  w.whenWritten((failure) => (assert.equal(failure, null), (seen = onDisk())));
  assert.equal(seen, 2, 'run-start and the command were written before the waiter ran');
  // A second session makes it wait for the turn again.
  w.openSessions = 2;
  w.append('command', { session: 's2', command: 's2.1', text: 'SELECT 2' });
  let later = -1;
  w.whenWritten(() => (later = onDisk()));
  assert.equal(later, -1);
  w.flushSync();
});
