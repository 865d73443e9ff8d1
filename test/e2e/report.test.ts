// `gateway-action report` as an auditor opens it: the shipped CLI writes the HTML for a real
// gateway's log, and headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core)
// loads it from file:// with no network, checks the verdict, the highlighted rows, the filters, a
// tampered log's banner, that hostile log content renders as text, and that it actually paints.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { cli, readLog, tempDir, type Cluster } from '../helpers/gateway.ts';
import { writeRichLog } from '../helpers/rich-log.ts';
import { resign } from '../helpers/log-forgery.ts';
import { BREAKOUT, writeTerminalLog } from '../helpers/terminal-log.ts';

const dir = tempDir('gw-report-');
let browser: Browser | undefined;
let cluster: Cluster | undefined;
let log = '';

before(async () => {
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  ({ log, cluster } = await writeRichLog());
});
after(async () => {
  try {
    await browser?.close();
  } finally {
    cluster?.stop();
  }
});

/** Runs `gateway-action report`; returns the HTML file and the status it printed. */
function report(logFile: string, name: string): { out: string; status: string } {
  const out = path.join(dir, name);
  const r = cli(['report', logFile, '-o', out]);
  assert.equal(r.status, 0, `report exit ${r.status}: ${r.stderr}`);
  const m = /^report: (.+) \(([a-z-]+)\)\n$/.exec(r.stdout);
  assert.ok(m, `unexpected stdout: ${r.stdout}`);
  assert.equal(m[1], out);
  return { out, status: m[2]! };
}

interface Opened { page: Page; url: string; requests: string[]; errors: string[] }

/** Opens the report in a fresh page, recording every request and every error the page reports. */
async function open(file: string): Promise<Opened> {
  const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
  const url = pathToFileURL(file).href;
  const requests: string[] = [];
  const errors: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(url, { waitUntil: 'load' });
  return { page, url, requests, errors };
}

const commandRow = (page: Page, sql: string) => page.locator('.command').filter({ has: page.locator('pre.sql', { hasText: new RegExp(`^${sql.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) }) });
/** Page functions run in the browser; this project's TypeScript has no DOM library. */
type Win = { getComputedStyle(el: unknown): { backgroundColor: string }; __pwned?: unknown };
const background = (page: Page, sql: string): Promise<string> => commandRow(page, sql).evaluate((el) => (globalThis as unknown as Win).getComputedStyle(el).backgroundColor);
const visibleIds = (page: Page): Promise<string[]> => page.locator('.command:visible').evaluateAll((els) => els.map((e) => e.getAttribute('data-id')!));

test('the report of a real run: verdict, rows, attention list, masking and filters, with no network', async () => {
  const { out, status } = report(log, 'rich.html');
  assert.equal(status, 'valid');
  const html = fs.readFileSync(out, 'utf8');
  assert.doesNotMatch(html, /\b(?:src|href|action)\s*=\s*["']?(?!#|data:)[a-z]+:/i, 'a reference to another resource');
  assert.doesNotMatch(html, /url\(|@import/i);
  assert.ok(!html.includes('ada@example.com') && !html.includes('bob@example.com'), 'a raw e-mail address in the report');
  assert.ok(!html.includes('4111 1111 1111 1111'), 'a raw card number in the report');

  const records = readLog(log).filter((r) => r.type === 'command');
  const { page, url, requests, errors } = await open(out);
  try {
    assert.deepEqual([...new Set(requests)], [url], 'the page fetched something besides itself');
    assert.deepEqual(errors, [], 'console or script errors (a CSP violation?)');

    const banner = page.locator('#verification');
    assert.equal(await banner.getAttribute('data-status'), 'valid');
    assert.match(await banner.innerText(), /VALID/);
    assert.match(await page.locator('#identity').innerText(), /unattested: local user \S+ on host \S+/i);

    for (const sql of ['DROP TABLE old_audit', 'DELETE FROM scratch', 'TRUNCATE customers', 'SELECT id, name, email, card FROM customers ORDER BY id']) {
      assert.ok(await commandRow(page, sql).isVisible(), `${sql} is not shown`);
    }
    assert.equal(await page.locator('.command').count(), records.length);
    const attrs = async (sql: string) => commandRow(page, sql).evaluate((el) => [el.getAttribute('data-target'), el.getAttribute('data-decision'), el.getAttribute('data-outcome')]);
    assert.deepEqual(await attrs('DELETE FROM scratch'), ['app-db', 'deny', 'denied']);
    assert.deepEqual(await attrs('DROP TABLE old_audit'), ['app-db', 'approve', 'ok']);
    assert.deepEqual(await attrs('TRUNCATE customers'), ['app-db', 'approve', 'denied']);
    assert.deepEqual(await attrs('SELECT count(*) FROM scratch'), ['app-db', 'allow', 'ok']);

    // Denied and approval-held rows stand out from an allowed one, and from each other.
    const allowed = await background(page, 'SELECT count(*) FROM scratch');
    const denied = await background(page, 'DELETE FROM scratch');
    const held = await background(page, 'DROP TABLE old_audit');
    const heldDenied = await background(page, 'TRUNCATE customers');
    for (const [what, bg] of [['denied', denied], ['approved after a hold', held], ['denied after a hold', heldDenied]]) assert.notEqual(bg, allowed, `the ${what} row is not highlighted`);
    assert.notEqual(held, denied);

    // Needs attention: every denied and held command, with its rule, the approver and the reason.
    const attention = page.locator('#attention li');
    assert.equal(await attention.count(), 3);
    const item = async (text: string) => attention.filter({ hasText: text }).innerText();
    assert.match(await item('DELETE FROM scratch'), /no-unbounded-writes[\s\S]*add a WHERE clause/);
    assert.match(await item('DROP TABLE old_audit'), /approve-destructive-ddl[\s\S]*approved by local:\S+/);
    assert.match(await item('TRUNCATE customers'), /approve-destructive-ddl[\s\S]*denied by local:\S+[\s\S]*customers stay/);
    assert.ok((await attention.first().boundingBox())!.y < (await page.locator('#timeline').boundingBox())!.y, 'the attention list comes before the timeline');

    // Masked values show as masked, marked as such.
    const maskedCell = page.locator('td.masked', { hasText: 'a***@***.com' });
    assert.ok(await maskedCell.isVisible());
    assert.ok(await page.locator('td.masked', { hasText: '****1111' }).isVisible());
    assert.match(await commandRow(page, 'SELECT id, name, email, card FROM customers ORDER BY id').innerText(), /masked 3/i);

    // Filters.
    const count = page.locator('#match-count');
    assert.equal(await count.innerText(), `${records.length} of ${records.length} commands`);
    const targets = await page.locator('#filter-target option').evaluateAll((os) => os.map((o) => (o as unknown as { value: string }).value));
    assert.deepEqual(targets, ['', 'app-db']);

    await page.selectOption('#filter-decision', 'deny');
    const deniedIds = records.filter((r) => r.decision?.action === 'deny').map((r) => r.command as string);
    assert.ok(deniedIds.length > 0);
    assert.deepEqual(await visibleIds(page), deniedIds);
    assert.equal(await count.innerText(), `${deniedIds.length} of ${records.length} commands`);
    assert.ok(!(await commandRow(page, 'DROP TABLE old_audit').isVisible()));
    assert.equal(await page.locator('.session:visible').count(), new Set(records.filter((r) => r.decision?.action === 'deny').map((r) => r.session)).size, 'sessions with no matching command stay visible');

    await page.selectOption('#filter-decision', '');
    await page.selectOption('#filter-outcome', 'error');
    assert.deepEqual(await visibleIds(page), [records.find((r) => r.text === 'SELECT * FROM no_such_table')!.command]);
    await page.selectOption('#filter-outcome', '');

    await page.fill('#filter-text', 'customers');
    const withCustomers = records.filter((r) => String(r.text).toLowerCase().includes('customers')).map((r) => r.command as string);
    assert.ok(withCustomers.length >= 3);
    assert.deepEqual(await visibleIds(page), withCustomers);
    assert.equal(await count.innerText(), `${withCustomers.length} of ${records.length} commands`);
    await page.selectOption('#filter-target', 'app-db');
    assert.deepEqual(await visibleIds(page), withCustomers);

    await page.fill('#filter-text', 'no command has this text');
    assert.deepEqual(await visibleIds(page), []);
    assert.ok(await page.locator('#no-match').isVisible());

    await page.click('#filter-reset');
    assert.equal((await visibleIds(page)).length, records.length);
    assert.deepEqual([...new Set(requests)], [url]);
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
  }
});

/** A PNG's size and pixels (8-bit, non-interlaced: what Chromium writes). */
function decodePng(png: Buffer): { width: number; height: number; colors: number } {
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'not a PNG');
  let width = 0, height = 0, channels = 0;
  const idat: Buffer[] = [];
  for (let off = 8; off < png.length;) {
    const len = png.readUInt32BE(off);
    const kind = png.toString('latin1', off + 4, off + 8);
    const data = png.subarray(off + 8, off + 8 + len);
    if (kind === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      assert.equal(data[8], 8, 'bit depth');
      assert.equal(data[12], 0, 'interlaced');
      channels = ({ 0: 1, 2: 3, 4: 2, 6: 4 } as Record<number, number>)[data[9]!]!;
    } else if (kind === 'IDAT') idat.push(data);
    else if (kind === 'IEND') break;
    off += 12 + len;
  }
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  assert.equal(raw.length, (stride + 1) * height);
  const px = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    for (let x = 0; x < stride; x++) {
      const v = raw[y * (stride + 1) + 1 + x]!;
      const a = x >= channels ? px[y * stride + x - channels]! : 0;
      const b = y > 0 ? px[(y - 1) * stride + x]! : 0;
      const c = x >= channels && y > 0 ? px[(y - 1) * stride + x - channels]! : 0;
      const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
      const pred = [0, a, b, (a + b) >> 1, pa <= pb && pa <= pc ? a : pb <= pc ? b : c][filter];
      assert.ok(pred !== undefined, `PNG filter ${filter}`);
      px[y * stride + x] = (v + pred) & 0xff;
    }
  }
  const colors = new Set<number>();
  for (let i = 0; i < px.length; i += channels) {
    let k = 0;
    for (let j = 0; j < Math.min(channels, 3); j++) k = (k << 8) | px[i + j]!;
    colors.add(k);
  }
  return { width, height, colors: colors.size };
}

test('the report paints: a full-page screenshot and a command row that is not a blank area', async () => {
  const { out } = report(log, 'shot.html');
  const { page } = await open(out);
  const blankPage = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
  try {
    const full = await page.screenshot({ fullPage: true, path: path.join(dir, 'full.png') });
    const f = decodePng(full);
    assert.equal(f.width, 1280);
    assert.ok(f.height > 900, `full page only ${f.height}px high: the timeline is missing`);
    assert.ok(f.colors > 50, `the page has only ${f.colors} colors`);

    const row = page.locator('.command').first();
    const box = (await row.boundingBox())!;
    assert.ok(box.width > 600 && box.height > 30, `first command row is ${box.width}x${box.height}`);
    const rowShot = await row.screenshot({ path: path.join(dir, 'row.png') });
    await blankPage.setContent('<!DOCTYPE html><body style="margin:0;background:#fff"></body>');
    const blankShot = await blankPage.screenshot({ clip: { x: 0, y: 0, width: box.width, height: box.height }, path: path.join(dir, 'blank.png') });
    const r = decodePng(rowShot);
    const b = decodePng(blankShot);
    assert.equal(b.colors, 1, 'the blank reference is not blank');
    assert.ok(r.colors >= 8, `the command row has only ${r.colors} colors: it renders flat`);
    assert.ok(!rowShot.equals(blankShot));
    assert.ok(rowShot.length > blankShot.length * 2, `row PNG ${rowShot.length} bytes vs blank ${blankShot.length}`);
  } finally {
    await blankPage.close();
    await page.close();
  }
});

test('a tampered log: the report is written, and the banner at the top says TAMPERED and where', async () => {
  const lines = fs.readFileSync(log, 'utf8').split('\n');
  const i = lines.findIndex((l) => l.includes('"type":"command"') && l.includes('"text":"DROP TABLE old_audit"'));
  assert.ok(i > 0 && i < lines.length - 3, 'the DROP command is not in the middle of the log');
  lines[i] = lines[i]!.replace('"text":"DROP TABLE old_audit"', '"text":"SELECT 1"');
  const tampered = path.join(dir, 'tampered.jsonl');
  fs.writeFileSync(tampered, lines.join('\n'));
  const verdict = JSON.parse(cli(['verify', tampered, '--json']).stdout) as { status: string; problem: string };
  assert.equal(verdict.status, 'tampered');
  assert.match(verdict.problem, new RegExp(`^record ${i} \\(line ${i + 1}\\)`));

  const { out, status } = report(tampered, 'tampered.html');
  assert.equal(status, 'tampered');
  const { page } = await open(out);
  try {
    const banner = page.locator('#verification');
    assert.equal(await banner.getAttribute('data-status'), 'tampered');
    const text = await banner.innerText();
    assert.match(text, /TAMPERED/);
    assert.ok(text.includes(verdict.problem), `the banner does not name the problem: ${text}`);
    assert.match(text, new RegExp(`record ${i}\\b`));
    const top = (await banner.boundingBox())!;
    const timeline = (await page.locator('#timeline').boundingBox())!;
    assert.ok(top.y <= 10, `the banner is at y=${top.y}, not at the top`);
    assert.ok(top.y + top.height <= timeline.y, 'the banner is not above the timeline');
    const [r, g] = (await banner.evaluate((el) => (globalThis as unknown as Win).getComputedStyle(el).backgroundColor)).match(/\d+/g)!.map(Number);
    assert.ok(r! > g!, 'the tampered banner is not red');
    // The edited record is shown as recorded, and marked as not covered by the verified chain.
    const edited = commandRow(page, 'SELECT 1');
    assert.equal(await edited.getAttribute('data-seq'), String(i));
    assert.match(await edited.innerText(), /unverified/i);
    assert.match(await page.locator('#totals').innerText(), /not trustworthy/);
  } finally {
    await page.close();
  }
});

test('log content is text: markup in SQL, names, samples, errors and approvals does not run or render', async () => {
  const evilSql = `SELECT '</pre><script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'`;
  const evilApp = '<script>window.__pwned=3</script>';
  const evilCell = '<img src=y onerror="window.__pwned=4">';
  const evilUrl = 'javascript:window.__pwned=5';
  const evilError = '</div></section><script>window.__pwned=6</script>';
  const evilBy = '"><svg onload="window.__pwned=7">';
  const evilRule = "x' onmouseover='window.__pwned=8";
  const lines = fs.readFileSync(log, 'utf8').split('\n').filter(Boolean);
  const forged = resign(lines, (r) => {
    if (r.type === 'session-open') (r.client as Record<string, unknown>).application_name = evilApp;
    if (r.type === 'command' && String(r.text).startsWith('UPDATE customers')) r.text = evilSql;
    if (r.type === 'command' && r.text === 'DELETE FROM scratch') (r.decision as Record<string, unknown>).rule = evilRule;
    if (r.type === 'result' && (r.response as { sample?: unknown[][] })?.sample?.length) (r.response as { sample: unknown[][] }).sample[0]![1] = evilCell;
    if (r.type === 'result' && (r.error as { code?: string } | undefined)?.code === '42P01') (r.error as Record<string, unknown>).message = evilError;
    // The comment link an approver records, here hostile.
    if (r.type === 'approval-request') return [r, { type: 'approval-comment', time: r.time, session: r.session, command: r.command, id: r.id, issue: 7, comment_id: 1, url: evilUrl }];
    if (r.type === 'approval') r.by = evilBy;
    return r;
  });
  const file = path.join(dir, 'hostile.jsonl');
  fs.writeFileSync(file, forged.join('\n') + '\n');
  const { out, status } = report(file, 'hostile.html');
  assert.equal(status, 'valid', 'the re-signed log should verify (it is unattested)');

  const { page, url, requests, errors } = await open(out);
  try {
    await page.waitForTimeout(200);
    assert.equal(await page.evaluate(() => typeof (globalThis as unknown as Win).__pwned), 'undefined');
    assert.deepEqual([...new Set(requests)], [url], 'an injected element fetched something');
    assert.deepEqual(errors, []);
    assert.equal(await page.locator('script').count(), 1);
    assert.equal(await page.locator('img, svg, iframe, object, embed').count(), 0);
    assert.equal(await page.locator('a[href^="javascript:" i]').count(), 0);
    assert.equal(await page.locator('[onerror], [onload], [onmouseover]').count(), 0);

    assert.ok(await commandRow(page, evilSql).isVisible(), 'the SQL is not shown literally');
    assert.equal(await commandRow(page, evilSql).locator('pre.sql').textContent(), evilSql);
    assert.ok(await page.locator('.session-head', { hasText: evilApp }).first().isVisible());
    assert.ok(await page.locator('td', { hasText: evilCell }).first().isVisible());
    assert.ok(await page.locator('.command .line.err', { hasText: evilError }).isVisible());
    assert.ok(await page.locator('#attention', { hasText: evilUrl }).isVisible());
    assert.ok(await page.locator('#attention', { hasText: evilBy }).isVisible());
    assert.ok(await page.locator('.command .rule', { hasText: evilRule }).isVisible());

    await page.fill('#filter-text', '</script>');
    assert.equal(await page.locator('#match-count').innerText(), `1 of ${await page.locator('.command').count()} commands`);
    assert.equal(await page.evaluate(() => typeof (globalThis as unknown as Win).__pwned), 'undefined');
  } finally {
    await page.close();
  }
});

test('a terminal recording plays inline: the bundled asciinema-player starts on click and draws the recorded text, under the CSP, offline; without JS the text view stays', async () => {
  const rec = writeTerminalLog(dir, 'terminal.jsonl');
  const { out, status } = report(rec.log, 'terminal.html');
  assert.equal(status, 'valid');
  const html = fs.readFileSync(out, 'utf8');
  const csp = /http-equiv="Content-Security-Policy" content="([^"]*)"/.exec(html)![1]!.replaceAll('&#39;', "'");
  assert.match(csp, /script-src 'sha256-[^']+' 'sha256-[^']+' 'wasm-unsafe-eval';/, 'the player is allowed by hash; WebAssembly only besides');
  assert.doesNotMatch(csp, /unsafe-inline|'unsafe-eval'|https?:/);
  // The recording holds `</script>` and `<!--`: embedded, neither may end or open anything.
  assert.equal(html.split('</script>').length - 1, 4, 'the report script, the player and the two recordings\' data, nothing more');
  assert.ok(!html.includes('<!--'));
  assert.doesNotMatch(html, /\b(?:src|href|action)\s*=\s*["']?(?!#|data:)[a-z]+:/i, 'a reference to another resource');

  const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
  const url = pathToFileURL(out).href;
  const requests: string[] = [];
  const errors: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  page.on('pageerror', (e) => errors.push(e.message));
  type Doc = { addEventListener(type: string, f: (e: { violatedDirective: string; blockedURI: string }) => void): void };
  await page.addInitScript(() => {
    const w = globalThis as unknown as { __violations: string[]; document: Doc };
    w.__violations = [];
    w.document.addEventListener('securitypolicyviolation', (e) => w.__violations.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  try {
    await page.goto(url, { waitUntil: 'load' });
    const shell = page.locator(`.command[data-id="${rec.shell}"]`);
    const button = shell.locator('.term-play');
    assert.ok(await button.isVisible(), 'the play button shows where the player loaded');
    assert.match(await button.innerText(), /Play the recording \(80x24, [\d.]+ s\)/);
    assert.equal(await page.locator('.term-play:visible').count(), 2, 'one player per recording');
    await button.click();
    const screen = shell.locator('.term-screen');
    await screen.locator('.ap-line', { hasText: 'deploy@web:~$ logout' }).waitFor();
    const text = (await screen.locator('.ap-line').allTextContents()).map((l) => l.trimEnd()).join('\n');
    for (const line of ['deploy@web:~$ uptime', '12:00:01 up 3 days', 'red alert and hidden text', BREAKOUT]) assert.ok(text.includes(line), `the player shows ${line}: ${text}`);
    assert.ok(!text.includes('pwned title') && !text.includes('cm0gLXJmIH4K'));
    const red = await screen.locator('span', { hasText: /^red alert\s*$/ }).first().evaluate((el) => (globalThis as unknown as { getComputedStyle(e: unknown): { color: string } }).getComputedStyle(el).color);
    const [r, g, b] = red.match(/\d+/g)!.map(Number);
    assert.ok(r! > g! + 80 && r! > b! + 80, `red alert is drawn in ${red}`);
    assert.equal(await page.evaluate(() => typeof (globalThis as unknown as Win).__pwned), 'undefined');
    assert.deepEqual(await page.evaluate(() => (globalThis as unknown as { __violations: string[] }).__violations), [], 'CSP violations');
    assert.deepEqual(errors, [], 'console or script errors');
    assert.deepEqual([...new Set(requests)], [url], 'the page fetched something besides itself');
    await shell.locator('.term-player').screenshot({ path: path.join(dir, 'player.png') });
  } finally {
    await page.close();
  }

  const noJs = await browser!.newContext({ javaScriptEnabled: false });
  try {
    const p = await noJs.newPage();
    await p.goto(url, { waitUntil: 'load' });
    const shell = p.locator(`.command[data-id="${rec.shell}"]`);
    assert.equal(await shell.locator('.term-player').isVisible(), false, 'no button that cannot work');
    assert.match(await shell.locator('pre.sample-text').innerText(), /red alert/);
  } finally {
    await noJs.close();
  }
});
