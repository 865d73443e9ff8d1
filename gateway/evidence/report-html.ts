// `gateway-action report`: one self-contained HTML file for an auditor with five minutes. The
// verdict first, then who ran it, the totals, what needs attention, and the whole timeline with
// filters. No external resources: it must work opened from a downloaded artifact (file://).
// Everything taken from the log is attacker-controlled and goes through esc() (or attr()).
import { createHash } from 'node:crypto';
import { headline, identitySummary, IDENTITY_FIELDS, type Verification, type VerifyStatus } from './verification.ts';
import { argvLine, type Timeline } from './timeline.ts';
import { REPORT_CSS, REPORT_JS } from './report-assets.ts';
import { VERSION } from '../version.ts';
import { esc } from './html-text.ts';
import { attention, gatewayEvents, plural, span, timeline, when, type Boundary } from './report-commands.ts';
import { rendererSet, type Renderer } from './renderers.ts';
import { playerAssets, type PlayerAssets } from './report-player.ts';
import type { LogTotals } from './log-totals.ts';

export { esc, safeUrl } from './html-text.ts';

/** What the log holds that this version cannot read, for the top of a report or summary. */
export function unknownTypesText(types: Map<string, number>): string {
  const n = [...types.values()].reduce((a, b) => a + b, 0);
  return `${n} record${n === 1 ? '' : 's'} of a type this version does not know (${[...types].map(([type, k]) => `${type} ×${k}`).join(', ')})`;
}

export interface ReportOptions {
  /** When the report was made (ISO 8601); defaults to now. */
  generatedAt?: string;
  /** The log file's SHA-256, so the report can be matched to the artifact it describes. */
  logSha256?: string;
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
const hashes = (texts: string[]): string => texts.map((x) => `'sha256-${sha256b64(x)}'`).join(' ');
/**
 * The report's own script and stylesheet by hash; with terminal recordings also the player's, and
 * 'wasm-unsafe-eval' (the player's terminal emulator is WebAssembly): it compiles WebAssembly
 * only, and only a script the hashes allow could ask for that.
 */
function csp(player: PlayerAssets | null): string {
  const styles = hashes(player ? [REPORT_CSS, player.css] : [REPORT_CSS]);
  const scripts = hashes(player ? [REPORT_JS, player.js] : [REPORT_JS]) + (player ? " 'wasm-unsafe-eval'" : '');
  return `default-src 'none'; style-src ${styles}; script-src ${scripts}; img-src data:; base-uri 'none'; form-action 'none'`;
}

const byList = (m: Map<string, number>): string => [...m].map(([who, n]) => `${who}${n > 1 ? ` ×${n}` : ''}`).join(', ');

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

/** `list`: how each protocol's commands are shown (gateway/adapters.ts RENDERERS); others are shown generically. */
export function renderReport(v: Verification, t: Timeline, list: readonly Renderer[], opts: ReportOptions = {}): string {
  const renderers = rendererSet(list);
  const generatedAt = opts.generatedAt ?? new Date().toISOString();
  const tone = TONE[v.status];
  const boundary = trustBoundary(v);
  const commands = t.sessions.flatMap((s) => s.commands);
  const title = `${LABEL[v.status]}: session log report${t.run ? ` for run ${t.run}` : ''}`;
  const player = commands.some((c) => c.sample?.kind === 'terminal') ? playerAssets() : null;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${esc(csp(player))}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="gateway-action ${esc(VERSION)}">
<title>${esc(title)}</title>
<style>${REPORT_CSS}</style>${player ? `\n<style>${player.css}</style>` : ''}
</head>
<body>
${banner(v, t, tone)}
<main>
<h1>Session log report${t.run ? `: run <span class="mono">${esc(t.run)}</span>` : ''}</h1>
<p class="sub">${esc(v.file)} · ${plural(t.sessions.length, 'session')}, ${plural(commands.length, 'command')} · times are UTC</p>
<div class="panels">${identityPanel(v)}${runPanel(v, t, opts)}</div>
${totalsCards(v, t)}
${attention(commands, boundary, renderers)}
${timeline(t, commands, boundary, renderers)}
${gatewayEvents(t)}
<footer>Generated by gateway-action ${esc(VERSION)} at ${esc(generatedAt)} from <span class="mono">${esc(v.file)}</span>${opts.logSha256 ? ` (SHA-256 <span class="mono">${esc(opts.logSha256)}</span>)` : ''}.
Check the log itself with <code>gateway-action verify</code>: this page shows the verifier's verdict, it is not a proof.</footer>
</main>
<script>${REPORT_JS}</script>${player ? `\n<script>${player.js}</script>` : ''}
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
  if (t.unknownTypes.size) extra.push(`${esc(unknownTypesText(t.unknownTypes))}: shown below as recorded.`);
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
  const targets = t.targets.map((x) => `${esc(x.name)} <span class="empty">(${esc(x.kind)} ${esc(x.address)})</span>`).join('<br>');
  const rows: [string, string][] = [
    ['run id', t.run ? `<span class="mono">${esc(t.run)}</span>` : '<span class="empty">unknown</span>'],
    ['started', when(t.startedAt)],
    ['ended', `${t.endedAt ? when(t.endedAt) : '<span class="empty">no run-end record</span>'}${esc(span(t.startedAt, t.endedAt))}`],
    ['targets', targets || '<span class="empty">none</span>'],
    ...(t.confined.length ? [['confined commands', t.confined.map((c) => `<span class="mono">${esc(argvLine(c.argv))}</span> <span class="empty">(${esc(c.id)}, as ${esc(c.user)}, ${c.error ? `failed: ${esc(c.error)}` : c.signal ? `ended by ${esc(c.signal)}` : c.exitCode !== null ? `exit ${c.exitCode}` : 'not ended'}; sessions ${esc(c.sessions.join(', ') || 'none')})</span>`).join('<br>')] as [string, string]] : []),
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
  // The same count as verify's (log-totals.ts): of the verified records, or of all records as read.
  const trusted = v.status !== 'tampered' && v.status !== 'unreadable';
  const x: LogTotals = trusted ? v.chain.totals : t.totals;
  const card = (label: string, n: number, extra = '', hot = ''): string =>
    `<div class="card${n && hot ? ` hot-${hot}` : ''}" data-total="${esc(label)}"><div class="n">${n}</div><div class="l">${esc(label)}</div>${extra ? `<div class="x">${extra}</div>` : ''}</div>`;
  const by = byList(x.approvedBy);
  const held = [x.approved ? `${x.approved} approved` : '', x.deniedAfterHold ? `${x.deniedAfterHold} denied` : '', x.pending ? `${x.pending} pending` : ''].filter(Boolean).join(', ');
  return `<section id="totals"><div class="cards">
${card('sessions', x.sessions)}${card('commands', x.commands)}${card('denied', x.denied, x.deniedAfterHold ? `${x.deniedAfterHold} of them after a hold` : '', 'bad')}
${card('held', x.held, held, 'warn')}${card('approved', x.approved, by ? `by ${esc(by)}` : '', 'warn')}
${card('masked', x.maskedCommands, x.maskedValues ? `commands, ${plural(x.maskedValues, 'value')} masked` : '')}${card('errors', x.errors, '', 'warn')}
</div>${trusted ? '' : '<p class="note">Counted from the records as read: the log did not verify, so these numbers are not trustworthy.</p>'}</section>`;
}
