// The run as a terminal timeline: one block per session, one line per command with its
// decision, outcome, rows and duration, then what an auditor needs under it (approval, error,
// masking). Colors only when asked (a TTY without NO_COLOR). Everything the log says is printed
// through terminal-text.ts: a log's text never acts on the terminal.
import { argvLine, formatMicros, formatMillis, outcomeOf, type Timeline, type TimelineCommand, type TimelineSession, type TimelineConfined } from './timeline.ts';
import { terminalLines, terminalText as t } from './terminal-text.ts';
import { rendererSet, type Renderer, type RendererSet } from './renderers.ts';

export interface ReplayOptions { color: boolean; session?: string; status?: string }

/** Colors on a terminal; NO_COLOR turns them off, FORCE_COLOR on (for `less -R`). */
export function wantsColor(out: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR) return false;
  if (env.FORCE_COLOR && env.FORCE_COLOR !== '0') return true;
  return Boolean(out.isTTY);
}

const CODES = { red: 31, green: 32, yellow: 33, blue: 34, magenta: 35, cyan: 36, dim: 2, bold: 1 } as const;
type Style = keyof typeof CODES;

/** `renderers`: how each protocol's commands are shown (gateway/adapters.ts RENDERERS); others are shown generically. */
export function renderReplay(tl: Timeline, list: readonly Renderer[], opts: ReplayOptions): string {
  const renderers = rendererSet(list);
  const paint = (style: Style, s: string): string => (opts.color ? `\x1b[${CODES[style]}m${s}\x1b[0m` : s);
  const out: string[] = [];
  out.push(paint('bold', `run ${t(tl.run ?? '(unknown)')}`) + `  ${clock(tl.startedAt, true)} to ${tl.endedAt ? clock(tl.endedAt, true) : paint('yellow', '(not sealed)')}`);
  if (opts.status) out.push(t(opts.status));
  for (const target of tl.targets) out.push(paint('dim', `target ${t(target.name)}: ${t(target.kind)} ${t(target.address)}`));
  for (const c of tl.confined) out.push(paint('cyan', confinedLine(c)));
  const sessions = opts.session ? tl.sessions.filter((s) => s.id === opts.session) : tl.sessions;
  for (const s of sessions) out.push('', ...session(s, renderers, paint));
  for (const e of tl.events) if (e.kind !== 'gateway-query') out.push('', paint('red', `${clock(e.time)}  ${t(e.kind)}: ${t(e.message)}`));
  if (tl.omittedCommands) out.push('', paint('dim', `${tl.omittedCommands} more allowed commands are not shown (past the first ${tl.sessions.reduce((n, s) => n + s.commands.length, 0)}); every denied and held one is`));
  if (tl.unreadableLines) out.push('', paint('red', `${tl.unreadableLines} line(s) of the log could not be read`));
  if (tl.unknownTypes.size) out.push('', paint('yellow', `${[...tl.unknownTypes.values()].reduce((a, b) => a + b, 0)} record(s) of a type this version does not know (${[...tl.unknownTypes.keys()].map(t).join(', ')}): shown above as recorded`));
  return out.join('\n') + '\n';
}

function session(s: TimelineSession, renderers: RendererSet, paint: (style: Style, s: string) => string): string[] {
  const who = [s.client.user && s.client.database ? `${s.client.user}@${s.client.database}` : '', s.client.application, s.client.address].filter(Boolean).map(t).join('  ');
  const end = s.closedAt ? `${clock(s.closedAt)} (${t(s.closeReason ?? 'closed')})` : paint('yellow', 'still open when the log ends');
  const lines = [paint('bold', `session ${t(s.id)}`) + `  ${paint('cyan', t(s.target))}  ${who}  ${clock(s.openedAt)} to ${end}${s.confined ? `  (confined ${t(s.confined)})` : ''}`];
  if (s.login?.startsWith('failed')) lines.push(paint('red', `  upstream login ${t(s.login)}`));
  const events = [...s.events];
  for (const c of s.commands) {
    while (events.length && events[0]!.seq < c.seq) lines.push(eventLine(events.shift()!, paint));
    lines.push(...command(c, renderers, paint));
  }
  for (const e of events) lines.push(eventLine(e, paint));
  if (s.commands.length === 0) lines.push(paint('dim', '  (no commands)'));
  return lines;
}

/** `confined c1a2b3c4  ./agent.sh --task x  as gateway-confined  12:00:01 to 12:03:10  exit 0  sessions s2, s3`. */
function confinedLine(c: TimelineConfined): string {
  const end = c.endedAt ? `${clock(c.startedAt)} to ${clock(c.endedAt)}` : `${clock(c.startedAt)}, not ended when the log ends`;
  const how = c.error ? `failed: ${c.error}` : c.signal ? `ended by ${c.signal}` : c.exitCode !== null ? `exit ${c.exitCode}` : '';
  return t(`confined ${c.id}  ${argvLine(c.argv)}  as ${c.user}  ${end}  ${how}  ${c.sessions.length ? `sessions ${c.sessions.join(', ')}` : `${c.connections} connection(s)`}`);
}

function eventLine(e: { time: string; kind: string; message: string }, paint: (style: Style, s: string) => string): string {
  return paint(e.kind === 'cancel-request' ? 'yellow' : 'red', `  ${clock(e.time)}  ${t(e.kind)}: ${t(e.message)}`);
}

const DECISION_STYLE: Record<string, Style> = { allow: 'green', deny: 'red', approve: 'yellow', none: 'dim' };
const OUTCOME_STYLE: Record<string, Style> = { ok: 'green', error: 'red', denied: 'red', held: 'yellow', skipped: 'dim', unfinished: 'yellow' };

function command(c: TimelineCommand, renderers: RendererSet, paint: (style: Style, s: string) => string): string[] {
  const r = renderers.for(c.kind);
  const outcome = outcomeOf(c);
  const rows = c.count === null || outcome === 'denied' ? '' : r.count(c.count);
  const head = [
    `  ${clock(c.time)}`,
    t(c.id).padEnd(6),
    paint(DECISION_STYLE[c.decision] ?? 'dim', (c.decision === 'none' ? '-' : t(c.decision.toUpperCase())).padEnd(7)),
    paint(OUTCOME_STYLE[outcome] ?? 'dim', outcome.padEnd(8)),
    rows.padStart(9),
    (c.durationUs === null ? '' : formatMicros(c.durationUs)).padStart(9),
  ].join(' ');
  // Lines of the text after the first start at column 60, where no line of the replay's own does.
  // A kind no renderer claims shows its kind before its text (and every field below).
  const lines = [`${head}  ${terminalLines(r.kinds ? c.text : r.line(c), ' '.repeat(60))}`];
  const note = (style: Style, s: string): number => lines.push(paint(style, `${' '.repeat(18)}${s}`));
  for (const n of r.notes(c)) note('dim', t(n));
  if (c.decision !== 'allow' && c.decision !== 'none' && c.rule) note(c.decision === 'deny' ? 'red' : 'yellow', `rule "${t(c.rule)}"${c.reason ? `: ${t(c.reason)}` : ''}`);
  const a = c.approval;
  if (a) {
    const waited = a.waitedMs === null ? '' : ` after ${formatMillis(a.waitedMs)}`;
    note(a.outcome === 'approved' ? 'green' : 'red', a.outcome === 'pending'
      ? `held as request ${t(a.id)}; no verdict in the log`
      : `request ${t(a.id)} ${a.outcome} by ${t(a.by ?? '?')}${waited}${a.reason ? `: ${t(a.reason)}` : ''}${a.url ? ` (${t(a.url)})` : ''}`);
  }
  if (c.error) note('red', `${t(c.error.code)} ${t(c.error.message)}`);
  if (c.masked) note('magenta', `masked ${c.masked.values} value${c.masked.values === 1 ? '' : 's'}${c.masked.detectors.length ? ` (${c.masked.detectors.map((d) => t(String(d))).join(', ')})` : ''}`);
  if (c.sample?.kind === 'terminal') {
    const s = c.sample;
    note('dim', `terminal recording: ${s.events.length} event${s.events.length === 1 ? '' : 's'}, ${s.width}x${s.height}${s.truncated ? ' (cut here; the log holds all of it)' : ''}; output:`);
    lines.push(`${' '.repeat(60)}${terminalLines(screenText(s.events), ' '.repeat(60))}`);
    note('dim', `(replay LOG --play ${t(c.id)} plays it in the terminal with its timing)`);
  }
  return lines;
}

/** A recording's output as plain lines: CR LF as newlines, terminal control sequences left out. */
function screenText(events: [number, string, string][]): string {
  return events.filter((e) => e[1] === 'o').map((e) => e[2]).join('')
    .replace(/\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]/g, '')
    .replace(/\r+\n/g, '\n')
    .replace(/\n+$/, '');
}

/** HH:MM:SS.mmm in UTC; with the date when `full`. */
function clock(iso: string | null, full = false): string {
  if (!iso) return '?';
  return t(full ? iso.replace('T', ' ') : iso.slice(11, 23));
}
