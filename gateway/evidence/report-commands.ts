// The report's command views: what needs attention (denied and held commands), then the timeline
// of every session with its filters. Each command's own view (text, details) comes from the
// renderer of its kind; the parts every protocol shares (decision, outcome, approval, error,
// sample) are drawn here. Everything taken from the log goes through esc().
import { esc, safeUrl } from './html-text.ts';
import { formatMicros as fmtUs, formatMillis as fmtMs, outcomeOf, valueText, type Timeline, type TimelineCommand, type TimelineSession } from './timeline.ts';
import type { RendererSet } from './renderers.ts';
import { playerBlock } from './report-player.ts';

/** The first record not covered by the verified chain, and what to call such records. */
export type Boundary = { from: number; label: string } | null;

export const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
export const timeOfDay = (iso: string): string => (/^\d{4}-\d\d-\d\dT(\d\d:\d\d:\d\d(?:\.\d+)?)/.exec(iso)?.[1] ?? iso);
export const when = (iso: string | null): string => (iso ? esc(iso.replace('T', ' ').replace(/Z$/, ' UTC')) : '<span class="empty">none</span>');
export const span = (from: string | null, to: string | null): string => {
  const ms = from && to ? Date.parse(to) - Date.parse(from) : NaN;
  return Number.isFinite(ms) && ms >= 0 ? ` (${fmtMs(ms)})` : '';
};
const cmdAnchor = (c: TimelineCommand): string => `cmd-${c.id}`;

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

export function attention(commands: TimelineCommand[], boundary: Boundary, renderers: RendererSet): string {
  const items = commands.filter((c) => isDenied(c) || isHeld(c));
  const li = (c: TimelineCommand): string => {
    const shown = renderers.for(c.kind).kinds ? c.text : renderers.for(c.kind).line(c);
    return `<li class="${isDenied(c) ? 'is-denied' : 'is-held'}" data-id="${esc(c.id)}"><div class="what">
<a class="mono" href="#${esc(encodeURIComponent(cmdAnchor(c)))}">${esc(c.id)}</a> <span class="mono empty">${esc(timeOfDay(c.time))}</span> ${decisionBadge(c)} ${outcomeBadge(c)}${trustBadge(c, boundary)}
<span>on <strong>${esc(c.target)}</strong></span> <span>rule <strong class="mono">${esc(c.rule ?? '(none)')}</strong></span>${c.reason ? ` <span>“${esc(c.reason)}”</span>` : ''}</div>
<code class="q">${esc(shown.length > 400 ? `${shown.slice(0, 400)}…` : shown)}</code>${approvalLine(c)}${c.error && isDenied(c) ? `<div class="line err">${esc(c.error.message)}</div>` : ''}</li>`;
  };
  const body = items.length ? `<ul class="attention">${items.map(li).join('\n')}</ul>` : '<p class="empty">Nothing needs attention: no command was denied or held for approval.</p>';
  return `<section id="attention"><h2>Needs attention (${items.length})</h2>
<p class="note">Commands the policy denied and commands held for a person's approval, approved or not.</p>${body}</section>`;
}

const decisionBadge = (c: TimelineCommand): string => `<span class="badge d-${esc(c.decision)}" title="policy decision">${esc(c.decision === 'none' ? 'no decision' : c.decision)}</span>`;
const outcomeBadge = (c: TimelineCommand): string => `<span class="badge o-${outcomeOf(c)}" title="outcome">${outcomeOf(c)}</span>`;

export function timeline(t: Timeline, commands: TimelineCommand[], boundary: Boundary, renderers: RendererSet): string {
  const targets = [...new Set([...t.targets.map((x) => x.name), ...t.sessions.map((s) => s.target)])].filter(Boolean);
  const count = (f: (c: TimelineCommand) => boolean): number => commands.filter(f).length;
  const opt = (value: string, label: string, n: number): string => `<option value="${esc(value)}">${esc(label)} (${n})</option>`;
  const outcomes = ['ok', 'error', 'denied', 'held', 'skipped', 'unfinished'].filter((o) => ['ok', 'error', 'denied'].includes(o) || count((c) => outcomeOf(c) === o));
  const label = renderers.searchLabel(new Set(commands.map((c) => c.kind)));
  const filters = `<div class="filters" role="search">
<label>Target <select id="filter-target"><option value="">all</option>${targets.map((x) => opt(x, x, count((c) => c.target === x))).join('')}</select></label>
<label>Decision <select id="filter-decision"><option value="">all</option>${['allow', 'deny', 'approve'].map((d) => opt(d, d, count((c) => c.decision === d))).join('')}</select></label>
<label>Outcome <select id="filter-outcome"><option value="">all</option>${outcomes.map((o) => opt(o, o, count((c) => outcomeOf(c) === o))).join('')}</select></label>
<label>${esc(label)} contains <input id="filter-text" type="search" placeholder="text in the ${esc(label)}" autocomplete="off"></label>
<button type="button" id="filter-reset">Clear</button>
<span id="match-count" aria-live="polite">${plural(commands.length, 'command')}</span></div>`;
  const sessions = t.sessions.length ? t.sessions.map((s) => session(s, boundary, renderers)).join('\n') : '<p class="empty">The log records no client sessions.</p>';
  const omitted = t.omittedCommands ? `<p class="empty">${esc(plural(t.omittedCommands, 'more allowed command'))} past the first ${commands.length} ${t.omittedCommands === 1 ? 'is' : 'are'} not shown here; every denied and held command is, and the totals above count them all.</p>` : '';
  return `<section id="timeline"><h2>Timeline</h2>${filters}${omitted}
<p id="no-match" class="empty" hidden>No command matches these filters.</p>
${sessions}</section>`;
}

function session(s: TimelineSession, boundary: Boundary, renderers: RendererSet): string {
  const client = `${esc(s.client.user || '?')}${s.client.database ? `@${esc(s.client.database)}` : ''}${s.client.application ? ` (${esc(s.client.application)})` : ''}${s.client.address ? ` from ${esc(s.client.address)}` : ''}`;
  const closed = s.closedAt ? `closed ${esc(timeOfDay(s.closedAt))}${s.closeReason ? `: ${esc(s.closeReason)}` : ''}${esc(span(s.openedAt, s.closedAt))}` : 'never closed';
  const events = s.events.length ? `<ul class="session-events">${s.events.map((e) => `<li><span class="mono">${esc(timeOfDay(e.time))}</span> ${esc(e.kind)}: ${esc(e.message)}</li>`).join('')}</ul>` : '';
  return `<section class="session" data-target="${esc(s.target)}" id="session-${esc(s.id)}">
<div class="session-head"><h3>Session <span class="mono">${esc(s.id)}</span> → ${esc(s.target)}</h3>
<span class="meta">${client}</span><span class="meta">opened ${when(s.openedAt)}, ${closed}</span>${s.login ? `<span class="meta">login: ${esc(s.login)}</span>` : ''}</div>
${events}${s.commands.length ? s.commands.map((c) => command(c, boundary, renderers)).join('\n') : '<div class="command-none empty">No commands.</div>'}
</section>`;
}

export const trustBadge = (c: TimelineCommand, b: Boundary): string =>
  b && c.seq >= b.from ? ` <span class="badge b-trust" title="record ${c.seq} is not covered by the verified chain">${esc(b.label)}</span>` : '';

function command(c: TimelineCommand, boundary: Boundary, renderers: RendererSet): string {
  const r = renderers.for(c.kind);
  const outcome = outcomeOf(c);
  const cls = ['command', isDenied(c) ? 'is-denied' : isHeld(c) ? 'is-held' : '', outcome === 'error' ? 'is-error' : ''].filter(Boolean).join(' ');
  const meta = [c.durationUs !== null ? fmtUs(c.durationUs) : '', c.count !== null ? r.count(c.count) : '', ...r.meta(c)].filter(Boolean).join(' · ');
  const untrusted = trustBadge(c, boundary);
  const masked = c.masked ? ` <span class="badge b-masked" title="masked by the gateway before it was logged">masked ${c.masked.values}${c.masked.detectors.length ? ` · ${esc(c.masked.detectors.join(', '))}` : ''}</span>` : '';
  const unclassified = c.unclassified ? `<div class="line"><span class="k">unclassified:</span> ${esc(c.unclassified)}</div>` : '';
  return `<div class="${cls}" id="${esc(cmdAnchor(c))}" data-id="${esc(c.id)}" data-target="${esc(c.target)}" data-decision="${esc(c.decision)}" data-outcome="${outcome}" data-kind="${esc(c.kind)}" data-seq="${c.seq}">
<div class="cmd-head"><time datetime="${esc(c.time)}" title="${esc(c.time)}">${esc(timeOfDay(c.time))}</time><a class="cid" href="#${esc(encodeURIComponent(cmdAnchor(c)))}">${esc(c.id)}</a>
${decisionBadge(c)}${outcomeBadge(c)}${masked}${untrusted}<span class="rule" title="policy rule">${esc(c.rule ?? '')}</span><span class="meta">${esc(meta)}</span></div>
${r.html(c, esc)}${unclassified}${c.reason ? `<div class="line"><span class="k">reason:</span> ${esc(c.reason)}</div>` : ''}${approvalLine(c)}
${c.error ? `<div class="line err"><span class="mono">${esc(c.error.code)}</span> ${esc(c.error.message)}</div>` : ''}${sample(c)}</div>`;
}

function sample(c: TimelineCommand): string {
  const s = c.sample;
  if (!s) return '';
  if (s.kind === 'text') {
    const caption = `response sample: ${plural(s.text.length, 'character')}${s.bytes !== null ? ` of ${plural(s.bytes, 'byte')}` : ''}${c.masked ? ', masked before it was logged' : ''}`;
    return `<div class="sample-caption">${esc(caption)}</div><pre class="sample-text">${esc(s.text)}</pre>`;
  }
  if (s.kind === 'terminal') {
    const output = s.events.filter((e) => e[1] === 'o').map((e) => e[2]).join('');
    const caption = `terminal recording: ${plural(s.events.length, 'event')}, ${s.width}x${s.height}${s.truncated ? ', cut (replay the log for all of it)' : ''}; output shown as text`;
    return `<div class="sample-caption">${esc(caption)}</div><pre class="sample-text">${esc(output)}</pre>${playerBlock(s)}`;
  }
  const looksMasked = (x: string): boolean => c.masked !== null && /\*{3,}/.test(x);
  const cell = (v: unknown): string => {
    const x = valueText(v);
    const cls = v === null ? ' class="null"' : looksMasked(x) ? ' class="masked" title="masked"' : '';
    return `<td${cls}>${esc(x)}</td>`;
  };
  const caption = `response sample: ${s.rows.length}${c.count !== null && c.count > s.rows.length ? ` of ${c.count}` : ''} row${s.rows.length === 1 ? '' : 's'}${c.masked ? ', masked values highlighted' : ''}`;
  const head = s.columns?.length ? `<thead><tr>${s.columns.map((x) => `<th>${esc(x)}</th>`).join('')}</tr></thead>` : '';
  const rows = s.rows.map((r) => `<tr>${r.map(cell).join('')}</tr>`).join('');
  return `<div class="sample-caption">${esc(caption)}</div><table class="sample">${head}<tbody>${rows}</tbody></table>`;
}

export function gatewayEvents(t: Timeline): string {
  if (!t.events.length) return '';
  const li = t.events.map((e) => `<li><span class="mono">${esc(timeOfDay(e.time))}</span> ${esc(e.kind)}: ${esc(e.message)}</li>`).join('');
  return `<details class="events" id="gateway-events"><summary>Gateway events outside sessions (${t.events.length})</summary><ul>${li}</ul></details>`;
}
