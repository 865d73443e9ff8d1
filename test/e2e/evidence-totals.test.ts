// One count for every view: `verify --json`, the HTML report and the job summary count the same
// commands the same way. A command held and then denied (by a reviewer, or by the timeout) is
// denied everywhere, and held, and not approved; a held-then-approved one is held and approved.
// Checked on a real run of the current gateway (format @3) and on the committed @2 log.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { cli, CLI, ROOT, tempDir } from '../helpers/gateway.ts';
import { writeSessionLogs } from '../fixtures/make-session-logs.ts';
import { jobSummaryOf } from '../helpers/job-summary.ts';
import { verifyLog } from '../../gateway/evidence/verification.ts';
import { readTimeline } from '../../gateway/evidence/timeline.ts';
import { summarize } from '../../action/outcome.ts';

const dir = tempDir('gw-totals-');
const V2 = path.join(ROOT, 'test/fixtures/session-log-v2-local.jsonl');
let v3 = '';
const savedSummary = process.env.GITHUB_STEP_SUMMARY;

before(async () => {
  // The same run as the @2 fixture's, by today's gateway: allowed, denied by rule, and three
  // holds: approved by a person, denied by a person, denied by the timeout.
  await writeSessionLogs(CLI, path.join(dir, 'now'), { attested: false });
  v3 = path.join(dir, 'now-local.jsonl');
});
after(() => {
  if (savedSummary === undefined) delete process.env.GITHUB_STEP_SUMMARY;
  else process.env.GITHUB_STEP_SUMMARY = savedSummary;
});

/** What each run holds: 10 commands; s2.1 denied by a rule; s4.1 approved; s5.1 denied by a reviewer; s6.1 timed out. */
const EXPECTED = { commands: 10, denied: 3, held: 3, approved: 1, denied_after_hold: 2, pending: 0 };

const summaryOf = (log: string): ReturnType<typeof jobSummaryOf> => jobSummaryOf(log, dir);

function reportCards(log: string): Record<string, { n: number; extra: string }> {
  const out = path.join(dir, `${path.basename(log)}.html`);
  const r = cli(['report', log, '-o', out]);
  assert.equal(r.status, 0, r.stderr);
  const cards: Record<string, { n: number; extra: string }> = {};
  for (const m of fs.readFileSync(out, 'utf8').matchAll(/data-total="([a-z]+)"><div class="n">(\d+)<\/div><div class="l">[a-z]+<\/div>(?:<div class="x">([^<]*)<\/div>)?/g)) {
    cards[m[1]!] = { n: Number(m[2]), extra: m[3] ?? '' };
  }
  return cards;
}

for (const [name, log] of [['format @3 (a run now)', () => v3], ['format @2 (the committed fixture)', () => V2]] as const) {
  test(`${name}: verify --json, the report and the job summary agree on held, approved, denied after hold and denied`, async () => {
    const file = log();
    const held = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.includes('"type":"approval"')).map((l) => JSON.parse(l) as Record<string, string>);
    assert.deepEqual(held.map((a) => [a.outcome, a.by.replace(/:.*/, '')]), [['approved', 'local'], ['denied', 'local'], ['denied', 'timeout']], 'the run has the three holds');

    const v = cli(['verify', file, '--json']);
    assert.equal(v.status, 0, v.stderr);
    const totals = (JSON.parse(v.stdout) as { totals: Record<string, number> }).totals;
    assert.deepEqual({ commands: totals.commands, denied: totals.denied, held: totals.held, approved: totals.approved, denied_after_hold: totals.denied_after_hold, pending: totals.pending }, EXPECTED);
    const text = cli(['verify', file]).stdout;
    assert.match(text, /\n {2}denied: {4}3 \(2 after a hold\)\n {2}held: {6}3 \(1 approved, 2 denied\)\n {2}approved: {2}1 \(by local:\S+\)\n/);

    const cards = reportCards(file);
    assert.equal(cards.commands!.n, 10);
    assert.deepEqual(cards.denied, { n: 3, extra: '2 of them after a hold' });
    assert.deepEqual(cards.held, { n: 3, extra: '1 approved, 2 denied' });
    assert.equal(cards.approved!.n, 1);

    const { html, description } = await summaryOf(file);
    // target, commands, allowed, denied, held, approved, not approved
    assert.match(html, /<td><code>app-db<\/code><\/td><td>10<\/td><td>6<\/td><td>3<\/td><td>3<\/td><td>1<\/td><td>2<\/td>/);
    assert.equal(description, '10 commands, 3 denied, 1 approved, 2 not approved; log verified');
    // Every held or denied command is listed, the timed-out one with its verdict.
    assert.match(html, /<td><code>s6\.1<\/code><\/td><td><code>app-db<\/code><\/td><td>approve<\/td><td><code>approve-destructive-ddl<\/code><\/td><td>denied<\/td><td>denied by timeout/);
    assert.match(html, /<th>SQL<\/th>/);
  });
}

test('a held command whose verdict is not in the log is pending: not approved, failing fail-on, counted alike everywhere', async () => {
  // Cut the run right after the timed-out request: no verdict, no result (an unsealed log).
  const lines = fs.readFileSync(v3, 'utf8').split('\n');
  const request = lines.findIndex((l) => l.includes('"type":"approval-request"') && l.includes('"command":"s6.1"'));
  const cut = path.join(dir, 'cut.jsonl');
  fs.writeFileSync(cut, lines.slice(0, request + 1).join('\n') + '\n');
  const v = cli(['verify', cut, '--json']);
  assert.equal(v.status, 4, 'unsealed');
  const totals = (JSON.parse(v.stdout) as { totals: Record<string, number> }).totals;
  assert.deepEqual({ held: totals.held, approved: totals.approved, denied_after_hold: totals.denied_after_hold, pending: totals.pending, denied: totals.denied }, { held: 3, approved: 1, denied_after_hold: 1, pending: 1, denied: 2 });
  assert.deepEqual(reportCards(cut).held, { n: 3, extra: '1 approved, 1 denied, 1 pending' });
  const o = summarize(await verifyLog(cut), await readTimeline(cut), 'unapproved', false);
  assert.equal(o.targets[0]!.unapproved, 2, 'denied after the hold, and pending');
  assert.equal(o.state, 'failure');
});
