// `gateway-action report`: one self-contained HTML file for an auditor with five minutes. The
// verdict first, then who ran it, the totals, what needs attention, and the whole timeline with
// filters. No external resources: it must work opened from a downloaded artifact (file://).
// Everything taken from the log is attacker-controlled and goes through esc() (or attr()).
import { createHash } from 'node:crypto';
import { headline, identitySummary, IDENTITY_FIELDS, type Verification, type VerifyStatus } from './verification.ts';
import { formatMicros as fmtUs, formatMillis as fmtMs, outcomeOf, valueText, type Timeline, type TimelineCommand, type TimelineSession } from './timeline.ts';
import { REPORT_CSS, REPORT_JS } from './report-assets.ts';
import { VERSION } from '../version.ts';

export interface ReportOptions {
  /** When the report was made (ISO 8601); defaults to now. */
  generatedAt?: string;
  /** The log file's SHA-256, so the report can be matched to the artifact it describes. */
  logSha256?: string;
}

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
/** HTML-escapes text for element content and quoted attribute values alike. */
export function esc(v: unknown): string {
  return String(v ?? '').replace(/[&<>"']/g, (ch) => ESC[ch]!);
}

const LABEL: Record<VerifyStatus, string> = {
  valid: 'VALID', tampered: 'TAMPERED', unsealed: 'UNSEALED', unreadable: 'UNREADABLE',
  'identity-mismatch': 'IDENTITY MISMATCH', 'identity-unchecked': 'IDENTITY NOT CHECKED',
};
const TONE: Record<VerifyStatus, 'good' | 'bad' | 'warn'> = {
  valid: 'good', tampered: 'bad', unreadable: 'bad', 'identity-mismatch': 'bad', unsealed: 'warn', 'identity-unchecked': 'warn',
};
const MARK = { good: '✓', bad: '✗', warn: '!' };
const MEANING: Record<VerifyStatus, string> = {
  valid: 'Every record is hash-chained and covered by a signed checkpoint, and the gateway sealed the log when it stopped: nothing was added, removed or changed after it was written.',
  tampered: 'The log was changed after the gateway wrote it. Records before the one named are intact; that record and everything after it (marked "unverified" below) cannot be trusted.',
  unsealed: 'Everything up to the last signed checkpoint verifies, but the log has no seal: the gateway did not stop cleanly, or the log was cut short. Records after the last checkpoint (marked "unsigned" below) are not protected by a signature.',
  unreadable: 'This file could not be read as a gateway-action session log. Nothing below is verified.',
  'identity-mismatch': 'The hash chain verifies, but the signing key is not bound to the expected workflow run: the log may have been rewritten and re-signed by someone else.',
  'identity-unchecked': 'The hash chain verifies, but the identity token could not be checked against its issuer (the key set was unreachable). Re-run with --jwks FILE to check it offline.',
};

const sha256b64 = (s: string): string => createHash('sha256').update(s).digest('base64');
const CSP = `default-src 'none'; style-src 'sha256-${sha256b64(REPORT_CSS)}'; script-src 'sha256-${sha256b64(REPORT_JS)}'; img-src data:; base-uri 'none'; form-action 'none'`;

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
const timeOfDay = (iso: string): string => (/^\d{4}-\d\d-\d\dT(\d\d:\d\d:\d\d(?:\.\d+)?)/.exec(iso)?.[1] ?? iso);
const when = (iso: string | null): string => (iso ? esc(iso.replace('T', ' ').replace(/Z$/, ' UTC')) : '<span class="empty">none</span>');
const span = (from: string | null, to: string | null): string => {
  const ms = from && to ? Date.parse(to) - Date.parse(from) : NaN;
  return Number.isFinite(ms) && ms >= 0 ? ` (${fmtMs(ms)})` : '';
};
/** Only web links become links: a javascript: URL in the log must not. */
/** Only http(s) links are made from log content (a javascript: URL stays text). */
export const safeUrl = (u: string | null): string | null => (u && /^https?:\/\//i.test(u) ? u : null);
const byList = (m: Map<string, number>): string => [...m].map(([who, n]) => `${who}${n > 1 ? ` ×${n}` : ''}`).join(', ');
const cmdAnchor = (c: TimelineCommand): string => `cmd-${c.id}`;

/** The first record not covered by the verified chain, and what to call such records. */
type Boundary = { from: number; label: string } | null;

interface Totals { sessions: number; commands: number; denied: number; approved: number; approvedBy: Map<string, number>; maskedCommands: number; maskedValues: number; errors: number }

/** Counted from the records as read: used when the verifier stopped early (tampered, unreadable). */
function timelineTotals(t: Timeline): Totals {
  const cmds = t.sessions.flatMap((s) => s.commands);
  const approvedBy = new Map<string, number>();
  for (const c of cmds) if (c.approval?.outcome === 'approved') approvedBy.set(c.approval.by ?? 'unknown', (approvedBy.get(c.approval.by ?? 'unknown') ?? 0) + 1);
  return {
    sessions: t.sessions.length, commands: cmds.length, denied: cmds.filter((c) => c.status === 'denied').length,
    approved: [...approvedBy.values()].reduce((a, b) => a + b, 0), approvedBy,
    maskedCommands: cmds.filter((c) => c.masked).length, maskedValues: cmds.reduce((a, c) => a + (c.masked?.values ?? 0), 0),
    errors: cmds.filter((c) => c.status === 'error').length,
  };
}

/** Where trust ends: the first unverified record (tampered or unreadable) or the first unsigned one. */
function trustBoundary(v: Verification): Boundary {
  if (v.status === 'unreadable') return { from: 0, label: 'unverified' };
  if (v.status === 'tampered') {
    const m = /record (\d+)/.exec(v.chain.problem ?? v.problem ?? '');
    return { from: m ? Number(m[1]) : 0, label: 'unverified' };
  }
  if (v.status === 'unsealed') return { from: (v.chain.signing.lastCheckpoint ?? -1) + 1, label: 'unsigned' };
  return null;
}

export function renderReport(v: Verification, t: Timeline, opts: ReportOptions = {}): string {
  const generatedAt = opts.generatedAt ?? new Date().toISOString();
  const tone = TONE[v.status];
  const boundary = trustBoundary(v);
  const commands = t.sessions.flatMap((s) => s.commands);
  const title = `${LABEL[v.status]}: session log report${t.run ? ` for run ${t.run}` : ''}`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${esc(CSP)}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="gateway-action ${esc(VERSION)}">
<title>${esc(title)}</title>
<style>${REPORT_CSS}</style>
</head>
<body>
${banner(v, t, tone)}
<main>
<h1>Session log report${t.run ? `: run <span class="mono">${esc(t.run)}</span>` : ''}</h1>
<p class="sub">${esc(v.file)} · ${plural(t.sessions.length, 'session')}, ${plural(commands.length, 'command')} · times are UTC</p>
<div class="panels">${identityPanel(v)}${runPanel(v, t, opts)}</div>
${totalsCards(v, t)}
${attention(commands, boundary)}
${timeline(t, commands, boundary)}
${gatewayEvents(t)}
<footer>Generated by gateway-action ${esc(VERSION)} at ${esc(generatedAt)} from <span class="mono">${esc(v.file)}</span>${opts.logSha256 ? ` (SHA-256 <span class="mono">${esc(opts.logSha256)}</span>)` : ''}.
Check the log itself with <code>gateway-action verify</code>: this page shows the verifier's verdict, it is not a proof.</footer>
</main>
<script>${REPORT_JS}</script>
</body>
</html>
`;
}

function banner(v: Verification, t: Timeline, tone: 'good' | 'bad' | 'warn'): string {
  const label = LABEL[v.status];
  const head = headline(v);
  const detail = head.startsWith(`${label}: `) ? head.slice(label.length + 2) : head;
  const extra: string[] = [];
  if (v.chain.problem && v.chain.problem !== v.problem) extra.push(`Also: ${esc(v.chain.problem)}`);
  if (t.unreadableLines) extra.push(`${plural(t.unreadableLines, 'line')} of the file could not be parsed and ${t.unreadableLines === 1 ? 'is' : 'are'} not shown.`);
  return `<header id="verification" class="banner ${tone}" data-status="${esc(v.status)}" role="status">
<div class="banner-inner"><div class="banner-mark" aria-hidden="true">${MARK[tone]}</div>
<div><div class="banner-title">${esc(label)}</div>
<div class="banner-detail">${esc(detail)}</div>
<div class="banner-note">${esc(MEANING[v.status])}</div>${extra.map((e) => `\n<div class="banner-note">${e}</div>`).join('')}</div></div>
</header>`;
}

function identityPanel(v: Verification): string {
  const id = identitySummary(v);
  const rows = (): string => IDENTITY_FIELDS.filter(([k]) => id.claims[k] !== undefined).map(([k, label]) => `<dt>${esc(label)}</dt><dd>${esc(id.claims[k])}</dd>`).join('');
  let body: string;
  if (id.status === 'verified') {
    body = `<p class="status-line good">Verified: token signed by ${esc(id.issuer)}</p><dl class="kv">${rows()}</dl>`;
  } else if (id.claims.kind === 'local') {
    body = `<p class="status-line warn">Unattested: local user ${esc(id.claims.user ?? '?')} on host ${esc(id.claims.host ?? '?')}</p>
<p class="note">The log was not written in a GitHub Actions job with an OIDC token, so nothing proves who wrote it.</p>`;
  } else {
    const problem = v.identity?.problem ? `<p class="note">${esc(v.identity.problem)}</p>` : '';
    const claimed = rows();
    body = `<p class="status-line ${v.identity ? 'bad' : 'warn'}">Not verified (${esc(id.status)})${claimed ? ': the log claims' : ''}</p>${problem}${claimed ? `<dl class="kv">${claimed}</dl>` : ''}`;
  }
  return `<section class="panel" id="identity"><h2>Identity</h2>${body}</section>`;
}

function runPanel(v: Verification, t: Timeline, opts: ReportOptions): string {
  const s = v.chain.signing;
  const targets = t.targets.map((x) => `${esc(x.name)} <span class="empty">(${esc(x.kind)} ${esc(x.host)}:${esc(x.port)}/${esc(x.database)})</span>`).join('<br>');
  const rows: [string, string][] = [
    ['run id', t.run ? `<span class="mono">${esc(t.run)}</span>` : '<span class="empty">unknown</span>'],
    ['started', when(t.startedAt)],
    ['ended', `${t.endedAt ? when(t.endedAt) : '<span class="empty">no run-end record</span>'}${esc(span(t.startedAt, t.endedAt))}`],
    ['targets', targets || '<span class="empty">none</span>'],
    ['signing key', s.thumbprint ? `Ed25519, thumbprint <span class="mono">${esc(s.thumbprint)}</span>` : '<span class="empty">not verified</span>'],
    ['checkpoints', checkpoints(v)],
  ];
  if (opts.logSha256) rows.push(['log SHA-256', `<span class="mono">${esc(opts.logSha256)}</span>`]);
  return `<section class="panel" id="run"><h2>Run and signing</h2><dl class="kv">${rows.map(([k, val]) => `<dt>${k}</dt><dd>${val}</dd>`).join('')}</dl></section>`;
}

function checkpoints(v: Verification): string {
  const s = v.chain.signing;
  const n = v.chain.totals.checkpoints;
  if (v.status === 'tampered' || v.status === 'unreadable') return `${n} verified before verification stopped`;
  if (s.lastCheckpoint === null) return `none signed: all ${plural(s.unsignedRecords, 'record')} unsigned`;
  return `${n} signed, the last is record ${s.lastCheckpoint}${s.unsignedRecords ? `; ${plural(s.unsignedRecords, 'record')} after it unsigned` : ''}${v.chain.sealed ? '; sealed' : ''}`;
}

function totalsCards(v: Verification, t: Timeline): string {
  const trusted = v.status !== 'tampered' && v.status !== 'unreadable';
  const x: Totals = trusted ? v.chain.totals : timelineTotals(t);
  const card = (label: string, n: number, extra = '', hot = ''): string =>
    `<div class="card${n && hot ? ` hot-${hot}` : ''}" data-total="${esc(label)}"><div class="n">${n}</div><div class="l">${esc(label)}</div>${extra ? `<div class="x">${extra}</div>` : ''}</div>`;
  const by = byList(x.approvedBy);
  return `<section id="totals"><div class="cards">
${card('sessions', x.sessions)}${card('commands', x.commands)}${card('denied', x.denied, '', 'bad')}
${card('approved', x.approved, by ? `by ${esc(by)}` : '', 'warn')}
${card('masked', x.maskedCommands, x.maskedValues ? `commands, ${plural(x.maskedValues, 'value')} masked` : '')}${card('errors', x.errors, '', 'warn')}
</div>${trusted ? '' : '<p class="note">Counted from the records as read: the log did not verify, so these numbers are not trustworthy.</p>'}</section>`;
}

const isDenied = (c: TimelineCommand): boolean => c.decision === 'deny' || outcomeOf(c) === 'denied';
const isHeld = (c: TimelineCommand): boolean => c.approval !== null || c.decision === 'approve';

function approvalLine(c: TimelineCommand): string {
  const a = c.approval;
  if (!a) return c.decision === 'approve' ? '<div class="line"><span class="k">approval:</span> no approval request recorded</div>' : '';
  const url = safeUrl(a.url);
  const link = url ? ` · <a href="${esc(url)}" rel="noopener noreferrer">review request</a>` : a.url ? ` · review at ${esc(a.url)}` : '';
  const who = a.outcome === 'pending'
    ? '<strong>pending</strong>: never answered'
    : `<strong>${esc(a.outcome)}</strong>${a.by ? ` by ${esc(a.by)}` : ''}${a.via ? ` via ${esc(a.via)}` : ''}${a.at ? ` at ${esc(timeOfDay(a.at))}` : ''}${a.waitedMs !== null ? `, waited ${esc(fmtMs(a.waitedMs))}` : ''}`;
  return `<div class="line"><span class="k">approval <span class="mono">${esc(a.id)}</span>:</span> ${who}${a.reason ? ` · “${esc(a.reason)}”` : ''}${link}</div>`;
}

function attention(commands: TimelineCommand[], boundary: Boundary): string {
  const items = commands.filter((c) => isDenied(c) || isHeld(c));
  const li = (c: TimelineCommand): string => `<li class="${isDenied(c) ? 'is-denied' : 'is-held'}" data-id="${esc(c.id)}"><div class="what">
<a class="mono" href="#${esc(encodeURIComponent(cmdAnchor(c)))}">${esc(c.id)}</a> <span class="mono empty">${esc(timeOfDay(c.time))}</span> ${decisionBadge(c)} ${outcomeBadge(c)}${trustBadge(c, boundary)}
<span>on <strong>${esc(c.target)}</strong></span> <span>rule <strong class="mono">${esc(c.rule ?? '(none)')}</strong></span>${c.reason ? ` <span>“${esc(c.reason)}”</span>` : ''}</div>
<code class="q">${esc(c.text.length > 400 ? `${c.text.slice(0, 400)}…` : c.text)}</code>${approvalLine(c)}${c.error && isDenied(c) ? `<div class="line err">${esc(c.error.message)}</div>` : ''}</li>`;
  const body = items.length ? `<ul class="attention">${items.map(li).join('\n')}</ul>` : '<p class="empty">Nothing needs attention: no command was denied or held for approval.</p>';
  return `<section id="attention"><h2>Needs attention (${items.length})</h2>
<p class="note">Commands the policy denied and commands held for a person's approval, approved or not.</p>${body}</section>`;
}

const decisionBadge = (c: TimelineCommand): string => `<span class="badge d-${esc(c.decision)}" title="policy decision">${esc(c.decision === 'none' ? 'no decision' : c.decision)}</span>`;
const outcomeBadge = (c: TimelineCommand): string => `<span class="badge o-${outcomeOf(c)}" title="outcome">${outcomeOf(c)}</span>`;

function timeline(t: Timeline, commands: TimelineCommand[], boundary: Boundary): string {
  const targets = [...new Set([...t.targets.map((x) => x.name), ...t.sessions.map((s) => s.target)])].filter(Boolean);
  const count = (f: (c: TimelineCommand) => boolean): number => commands.filter(f).length;
  const opt = (value: string, label: string, n: number): string => `<option value="${esc(value)}">${esc(label)} (${n})</option>`;
  const outcomes = ['ok', 'error', 'denied', 'held', 'skipped', 'unfinished'].filter((o) => ['ok', 'error', 'denied'].includes(o) || count((c) => outcomeOf(c) === o));
  const filters = `<div class="filters" role="search">
<label>Target <select id="filter-target"><option value="">all</option>${targets.map((x) => opt(x, x, count((c) => c.target === x))).join('')}</select></label>
<label>Decision <select id="filter-decision"><option value="">all</option>${['allow', 'deny', 'approve'].map((d) => opt(d, d, count((c) => c.decision === d))).join('')}</select></label>
<label>Outcome <select id="filter-outcome"><option value="">all</option>${outcomes.map((o) => opt(o, o, count((c) => outcomeOf(c) === o))).join('')}</select></label>
<label>SQL contains <input id="filter-text" type="search" placeholder="text in the SQL" autocomplete="off"></label>
<button type="button" id="filter-reset">Clear</button>
<span id="match-count" aria-live="polite">${plural(commands.length, 'command')}</span></div>`;
  const sessions = t.sessions.length ? t.sessions.map((s) => session(s, boundary)).join('\n') : '<p class="empty">The log records no client sessions.</p>';
  const omitted = t.omittedCommands ? `<p class="empty">${esc(plural(t.omittedCommands, 'more allowed command'))} past the first ${commands.length} ${t.omittedCommands === 1 ? 'is' : 'are'} not shown here; every denied and held command is, and the totals above count them all.</p>` : '';
  return `<section id="timeline"><h2>Timeline</h2>${filters}${omitted}
<p id="no-match" class="empty" hidden>No command matches these filters.</p>
${sessions}</section>`;
}

function session(s: TimelineSession, boundary: Boundary): string {
  const client = `${esc(s.client.user || '?')}@${esc(s.client.database || '?')}${s.client.application ? ` (${esc(s.client.application)})` : ''}${s.client.address ? ` from ${esc(s.client.address)}` : ''}`;
  const closed = s.closedAt ? `closed ${esc(timeOfDay(s.closedAt))}${s.closeReason ? `: ${esc(s.closeReason)}` : ''}${esc(span(s.openedAt, s.closedAt))}` : 'never closed';
  const events = s.events.length ? `<ul class="session-events">${s.events.map((e) => `<li><span class="mono">${esc(timeOfDay(e.time))}</span> ${esc(e.kind)}: ${esc(e.message)}</li>`).join('')}</ul>` : '';
  return `<section class="session" data-target="${esc(s.target)}" id="session-${esc(s.id)}">
<div class="session-head"><h3>Session <span class="mono">${esc(s.id)}</span> → ${esc(s.target)}</h3>
<span class="meta">${client}</span><span class="meta">opened ${when(s.openedAt)}, ${closed}</span>${s.login ? `<span class="meta">login: ${esc(s.login)}</span>` : ''}</div>
${events}${s.commands.length ? s.commands.map((c) => command(c, boundary)).join('\n') : '<div class="command-none empty">No commands.</div>'}
</section>`;
}

const trustBadge = (c: TimelineCommand, b: Boundary): string =>
  b && c.seq >= b.from ? ` <span class="badge b-trust" title="record ${c.seq} is not covered by the verified chain">${esc(b.label)}</span>` : '';

function command(c: TimelineCommand, boundary: Boundary): string {
  const outcome = outcomeOf(c);
  const cls = ['command', isDenied(c) ? 'is-denied' : isHeld(c) ? 'is-held' : '', outcome === 'error' ? 'is-error' : ''].filter(Boolean).join(' ');
  const meta = [
    c.durationUs !== null ? fmtUs(c.durationUs) : '',
    c.rows !== null ? plural(c.rows, 'row') : '',
    c.tags.length ? c.tags.join(', ') : '',
    c.tables.length ? `tables: ${c.tables.join(', ')}` : '',
    c.protocol && c.protocol !== 'simple' ? `${c.protocol} protocol` : '',
  ].filter(Boolean).join(' · ');
  const untrusted = trustBadge(c, boundary);
  const masked = c.masked ? ` <span class="badge b-masked" title="masked by the gateway before it was logged">masked ${c.masked.values}${c.masked.detectors.length ? ` · ${esc(c.masked.detectors.join(', '))}` : ''}</span>` : '';
  const params = c.params?.length ? `<div class="line"><span class="k">params:</span> <span class="mono">${c.params.map((p, i) => `$${i + 1} = ${esc(valueText(p))}`).join(', ')}</span></div>` : '';
  return `<div class="${cls}" id="${esc(cmdAnchor(c))}" data-id="${esc(c.id)}" data-target="${esc(c.target)}" data-decision="${esc(c.decision)}" data-outcome="${outcome}" data-seq="${c.seq}">
<div class="cmd-head"><time datetime="${esc(c.time)}" title="${esc(c.time)}">${esc(timeOfDay(c.time))}</time><a class="cid" href="#${esc(encodeURIComponent(cmdAnchor(c)))}">${esc(c.id)}</a>
${decisionBadge(c)}${outcomeBadge(c)}${masked}${untrusted}<span class="rule" title="policy rule">${esc(c.rule ?? '')}</span><span class="meta">${esc(meta)}</span></div>
<pre class="sql">${esc(c.text)}</pre>${params}${c.reason ? `<div class="line"><span class="k">reason:</span> ${esc(c.reason)}</div>` : ''}${approvalLine(c)}
${c.error ? `<div class="line err"><span class="mono">${esc(c.error.code)}</span> ${esc(c.error.message)}</div>` : ''}${sample(c)}</div>`;
}

function sample(c: TimelineCommand): string {
  if (!c.columns?.length && !c.sample.length) return '';
  const looksMasked = (s: string): boolean => c.masked !== null && /\*{3,}/.test(s);
  const cell = (v: unknown): string => {
    const s = valueText(v);
    const cls = v === null ? ' class="null"' : looksMasked(s) ? ' class="masked" title="masked"' : '';
    return `<td${cls}>${esc(s)}</td>`;
  };
  const caption = `response sample: ${c.sample.length}${c.rows !== null && c.rows > c.sample.length ? ` of ${c.rows}` : ''} row${c.sample.length === 1 ? '' : 's'}${c.masked ? ', masked values highlighted' : ''}`;
  const head = c.columns?.length ? `<thead><tr>${c.columns.map((x) => `<th>${esc(x)}</th>`).join('')}</tr></thead>` : '';
  const rows = c.sample.map((r) => `<tr>${(Array.isArray(r) ? r : [r]).map(cell).join('')}</tr>`).join('');
  return `<div class="sample-caption">${esc(caption)}</div><table class="sample">${head}<tbody>${rows}</tbody></table>`;
}

function gatewayEvents(t: Timeline): string {
  if (!t.events.length) return '';
  const li = t.events.map((e) => `<li><span class="mono">${esc(timeOfDay(e.time))}</span> ${esc(e.kind)}: ${esc(e.message)}</li>`).join('');
  return `<details class="events" id="gateway-events"><summary>Gateway events outside sessions (${t.events.length})</summary><ul>${li}</ul></details>`;
}
