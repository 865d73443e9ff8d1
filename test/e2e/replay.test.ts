// `gateway-action replay` as an auditor at a terminal uses it: the whole run, one session, the
// chain's verdict first, colors only on a terminal.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { cli, CLI, tempDir } from '../helpers/gateway.ts';
import { writeRichLog, type RichLog } from '../helpers/rich-log.ts';

let rich: RichLog;
before(async () => {
  rich = await writeRichLog();
});
after(() => rich?.cluster.stop());

const plain = (args: string[]) => cli(['replay', ...args], { env: { ...process.env, NO_COLOR: '', FORCE_COLOR: '' } });

test('replay shows every session and command with decision, outcome, rows, duration, rule, approval and error', () => {
  const r = plain([rich.log]);
  assert.equal(r.status, 0, r.stderr);
  const out = r.stdout;
  assert.match(out, /^run [0-9a-f]{12} {2}\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}Z to \d{4}/);
  assert.match(out, /\nchain: VALID \(intact, signed, sealed\)\n/);
  assert.match(out, /session s1 {2}app-db {2}deployer@app {2}psql {2}127\.0\.0\.1:\d+ {2}[\d:.]+ to [\d:.]+ \(client terminated\)/);
  assert.match(out, /s1\.1 +ALLOW +ok +2 rows +[\d.]+ (µs|ms) +SELECT id, name, email, card FROM customers ORDER BY id\n +masked 3 values \(credit-card\)/);
  assert.match(out, /s1\.3 +ALLOW +error +0 rows .*SELECT \* FROM no_such_table\n +42P01 relation "no_such_table" does not exist/);
  assert.match(out, /s2\.1 +DENY +denied +[\d.]+ (µs|ms) +DELETE FROM scratch\n +rule "no-unbounded-writes": add a WHERE clause/);
  assert.match(out, new RegExp(`s3\\.1 +APPROVE +ok .*DROP TABLE old_audit\\n +rule "approve-destructive-ddl": DROP and TRUNCATE need a second pair of eyes\\n +request ${rich.approvalId} approved by local:\\w+ after [\\d.]+ (µs|ms|s)`));
  assert.match(out, new RegExp(`s4\\.1 +APPROVE +denied .*TRUNCATE customers\\n.*\\n +request ${rich.deniedId} denied by local:\\w+ after [\\d.]+ (µs|ms|s): customers stay`));
  assert.equal(out.includes('\x1b['), false, 'no colors when piped');
  assert.equal(out.includes('ada@example.com'), false, 'the log holds only the masked value');
});

test('replay --session shows one session; an unknown one is a usage error naming the sessions', () => {
  const r = plain([rich.log, '--session', 's2']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /session s2 /);
  assert.doesNotMatch(r.stdout, /session s1 |session s3 /);
  const bad = plain([rich.log, '--session', 's99']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /no session s99 in this log \(sessions: s1, s2, s3, s4\)/);
  assert.equal(plain([]).status, 2);
  assert.equal(plain([path.join(tempDir(), 'missing.jsonl')]).status, 1);
});

test('colors on a terminal (and with FORCE_COLOR), none with NO_COLOR', () => {
  // util-linux `script` gives replay a real pseudo-terminal.
  const tty = spawnSync('script', ['-qec', `${process.execPath} ${CLI} replay ${rich.log}`, '/dev/null'], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '', FORCE_COLOR: '' } });
  assert.equal(tty.status, 0, tty.stderr);
  assert.match(tty.stdout, /\x1b\[31mDENY/);
  assert.match(tty.stdout, /\x1b\[32mALLOW/);
  const forced = cli(['replay', rich.log], { env: { ...process.env, FORCE_COLOR: '1', NO_COLOR: '' } });
  assert.match(forced.stdout, /\x1b\[33mAPPROVE/);
  const noColor = spawnSync('script', ['-qec', `${process.execPath} ${CLI} replay ${rich.log}`, '/dev/null'], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  assert.equal(noColor.stdout.includes('\x1b['), false);
});

test('a tampered log replays with the verdict on top and exit 1', () => {
  const lines = fs.readFileSync(rich.log, 'utf8').split('\n');
  const i = lines.findIndex((l) => l.includes('DROP TABLE old_audit') && l.includes('"type":"command"'));
  const tampered = path.join(tempDir(), 'tampered.jsonl');
  fs.writeFileSync(tampered, lines.map((l, k) => (k === i ? l.replace('DROP TABLE old_audit', 'SELECT 1') : l)).join('\n'));
  const r = plain([tampered]);
  assert.equal(r.status, 1);
  assert.match(r.stdout.split('\n')[1]!, new RegExp(`^chain: TAMPERED: record ${i} \\(line ${i + 1}\\) has been modified`));
});
