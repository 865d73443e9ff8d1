// A log can hold what this version was never told about: a record type it does not know (a
// later version's), a command kind no renderer claims (a protocol shipped later), a terminal
// recording. The log writer and recorder write them like any other; `verify` counts them,
// and replay, the report and the job summary show them with every field, escaped: never dropped.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { cli, tempDir } from '../helpers/gateway.ts';
import { SessionLogWriter, LOG_FORMAT } from '../../gateway/evidence/log-writer.ts';
import { CheckpointSigner } from '../../gateway/evidence/checkpoint.ts';
import { Recorder } from '../../gateway/core/recorder.ts';
import { jobSummaryOf } from '../helpers/job-summary.ts';

const dir = tempDir('gw-unknown-');
let log = '';
const savedSummary = process.env.GITHUB_STEP_SUMMARY;

before(() => {
  const writer = SessionLogWriter.create(dir, 'mixed.jsonl');
  const signer = new CheckpointSigner();
  writer.signWith('r1', signer, { everyRecords: 5, everyMs: 0 });
  writer.append('run-start', {
    format: LOG_FORMAT, run: 'r1', identity: { kind: 'local', user: 'u', host: 'h' }, attestation: 'unattested',
    targets: [{ name: 'app-db', kind: 'postgres', host: '127.0.0.1', port: 5433, database: 'app' }, { name: 'bridge', kind: 'warp', host: 'enterprise', port: 1701 }],
    key: { alg: 'EdDSA', jwk: signer.jwk, thumbprint: signer.thumbprint },
  });
  const recorder = new Recorder(writer, { sampleRows: 5 });
  const pg = recorder.openSession('app-db', 'postgres', { client: { user: 'deployer', database: 'app' } });
  const q = pg.beginCommand({ kind: 'pg.query', text: 'SELECT 1', details: { protocol: 'simple' }, decision: { action: 'allow', rule: 'default' }, facts: [{ classes: ['select'], tables: [] }] });
  q.setColumns(['?column?']);
  q.addSampleRow(['1']);
  q.finish({ status: 'ok', count: 1, details: { tags: ['SELECT 1'], transaction: 'I' } });
  pg.close('client terminated');
  const warp = recorder.openSession('bridge', 'warp', { client: { user: 'kirk' } });
  const jump = warp.beginCommand({ kind: 'warp.jump', text: 'engage <b>warp 9</b>', details: { heading: 'Vulcan' }, decision: { action: 'deny', rule: 'no-warp', reason: 'not in CI' }, facts: [{ speed: 9 }] });
  jump.finish({ status: 'denied', rule: 'no-warp', reason: 'not in CI' });
  writer.append('teleport', { session: warp.id, beam: 'up', crew: ['<script>spock</script>'] });
  const consoleCmd = warp.beginCommand({ kind: 'warp.console', text: 'console', decision: { action: 'allow', rule: 'default' }, facts: [{ station: 'helm' }] });
  const rec = consoleCmd.startRecording({ width: 80, height: 24 });
  rec.input('status\r');
  rec.output('shields up\r\nhull 100%\r\n\x1b[31mred alert\x1b[0m\r\n');
  consoleCmd.finish({ status: 'ok' });
  const scan = warp.beginCommand({ kind: 'warp.scan', text: 'scan sector 7', decision: { action: 'allow', rule: 'default' }, facts: [{ sector: 7 }] });
  scan.addSampleText('no <life> signs\n');
  scan.addSampleText('x'.repeat(5000));
  scan.finish({ status: 'ok', count: 0 });
  warp.close('client terminated');
  writer.close('run-end', { run: 'r1' });
  log = writer.path;
});
after(() => {
  if (savedSummary === undefined) delete process.env.GITHUB_STEP_SUMMARY;
  else process.env.GITHUB_STEP_SUMMARY = savedSummary;
});

test('verify: a log with an unknown record type and kind and a terminal recording is valid and counted', () => {
  const records = fs.readFileSync(log, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const terminal = records.filter((r) => r.type === 'terminal');
  assert.equal(terminal.length, 1);
  assert.deepEqual(terminal[0]!.events instanceof Array && (terminal[0]!.events as unknown[][]).map((e) => e[1]), ['i', 'o']);
  const result = records.find((r) => r.type === 'result' && r.command === 's2.2')!;
  assert.deepEqual((result.response as Record<string, unknown>).recording, { chunks: 1, events: 2, duration_ms: (terminal[0]!.events as number[][])[1]![0] });
  assert.ok(records.indexOf(terminal[0]!) < records.indexOf(result), 'the recording is written before its result');
  const r = cli(['verify', log, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { status: string; totals: Record<string, number> };
  assert.equal(j.status, 'valid');
  assert.deepEqual([j.totals.commands, j.totals.denied, j.totals.sessions], [4, 1, 2]);
  const scan = records.find((r) => r.type === 'result' && r.command === 's2.3')!.response as Record<string, unknown>;
  assert.equal(scan.text, `no <life> signs\n${'x'.repeat(4096 - 16)}`, 'a text sample keeps its first 4096 characters');
  assert.equal(scan.text_bytes, 16 + 5000);
  assert.equal(scan.sample, undefined);
});

test('replay shows the unknown record with every member, the unknown kind with its fields, and the recording', () => {
  const r = cli(['replay', log], { env: { ...process.env, NO_COLOR: '1' } });
  assert.equal(r.status, 0, r.stderr);
  const out = r.stdout;
  assert.match(out, /s1\.1 +ALLOW +ok +1 row .*SELECT 1\n/, 'PostgreSQL is drawn by its renderer');
  assert.match(out, /s2\.1 +DENY +denied .*\[warp\.jump\] engage <b>warp 9<\/b>\n +kind warp\.jump \(no renderer for it\): \{"kind":"warp\.jump","status":"denied","facts":\[\{"speed":9\}\],"details":\{"heading":"Vulcan"\}/);
  assert.match(out, /teleport: \(record type unknown to this version\) \{"beam":"up","crew":\["<script>spock<\/script>"\],"session":"s2"\}/);
  assert.match(out, /terminal recording: 2 events, 80x24; output:\n {60}shields up\n {60}hull 100%\n {60}red alert\n(?! {60})/);
  assert.equal(out.includes('\x1b'), false, 'the recording cannot drive the terminal');
  assert.match(out, /1 record\(s\) of a type this version does not know \(teleport\): shown above as recorded/);
});

test('the report shows them, escaped', () => {
  const out = path.join(dir, 'mixed.html');
  const r = cli(['report', log, '-o', out]);
  assert.equal(r.status, 0, r.stderr);
  const html = fs.readFileSync(out, 'utf8');
  assert.ok(!html.includes('<script>spock') && !html.includes('<b>warp'), 'log content is escaped');
  assert.match(html, /1 record of a type this version does not know \(teleport ×1\): shown below as recorded/);
  assert.match(html, /teleport: \(record type unknown to this version\) \{&quot;beam&quot;:&quot;up&quot;,&quot;crew&quot;:\[&quot;&lt;script&gt;spock&lt;\/script&gt;&quot;\],&quot;session&quot;:&quot;s2&quot;\}/);
  assert.match(html, /<pre class="cmd-text">engage &lt;b&gt;warp 9&lt;\/b&gt;<\/pre>\n<div class="line"><span class="k">kind warp\.jump, shown as recorded:<\/span><\/div><pre class="fields">[^<]*&quot;heading&quot;: &quot;Vulcan&quot;/);
  assert.match(html, /<code class="q">\[warp\.jump\] engage &lt;b&gt;warp 9&lt;\/b&gt;<\/code>/, 'in the attention list with its kind');
  assert.match(html, /<pre class="cmd-text sql">SELECT 1<\/pre>/, 'PostgreSQL is drawn by its renderer');
  assert.match(html, /terminal recording: 2 events, 80x24; output shown as text<\/div><pre class="sample-text">shields up\r\nhull 100%\r\n\x1b\[31mred alert/);
  assert.match(html, /<label>SQL or text contains/);
  assert.match(html, /response sample: 4096 characters of 5016 bytes<\/div><pre class="sample-text">no &lt;life&gt; signs\nxxx/);
});

test('the job summary lists the unknown kind and says the log holds records it cannot read', async () => {
  const { html, outcome: o } = await jobSummaryOf(log, dir);
  assert.match(html, /<td><code>bridge<\/code><\/td><td>3<\/td><td>2<\/td><td>1<\/td>/);
  assert.match(html, /<th>text<\/th>/);
  assert.match(html, /<td><code>\[warp\.jump\] engage &lt;b&gt;warp 9&lt;\/b&gt;<\/code><\/td>/);
  assert.match(html, /The log holds 1 record of a type this version does not know \(teleport ×1\)/);
  assert.equal(o.state, 'failure', 'fail-on: denied');
});
