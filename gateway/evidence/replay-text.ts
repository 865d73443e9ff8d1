// The run as a terminal timeline: one block per session, one line per command with its
// decision, outcome, rows and duration, then what an auditor needs under it (approval, error,
// masking). Colors only when asked (a TTY without NO_COLOR).
import { formatMicros, formatMillis, outcomeOf, type Timeline, type TimelineCommand, type TimelineSession } from './timeline.ts';

export interface ReplayOptions { color: boolean; session?: string; status?: string }

/** Colors on a terminal; NO_COLOR turns them off, FORCE_COLOR on (for `less -R`). */
export function wantsColor(out: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR) return false;
  if (env.FORCE_COLOR && env.FORCE_COLOR !== '0') return true;
  return Boolean(out.isTTY);
}

const CODES = { red: 31, green: 32, yellow: 33, blue: 34, magenta: 35, cyan: 36, dim: 2, bold: 1 } as const;
type Style = keyof typeof CODES;

export function renderReplay(t: Timeline, opts: ReplayOptions): string {
  const paint = (style: Style, s: string): string => (opts.color ? `\x1b[${CODES[style]}m${s}\x1b[0m` : s);
  const out: string[] = [];
  out.push(paint('bold', `run ${t.run ?? '(unknown)'}`) + `  ${clock(t.startedAt, true)} to ${t.endedAt ? clock(t.endedAt, true) : paint('yellow', '(not sealed)')}`);
  if (opts.status) out.push(opts.status);
  for (const target of t.targets) out.push(paint('dim', `target ${target.name}: ${target.kind} ${target.host}:${target.port}/${target.database}`));
  const sessions = opts.session ? t.sessions.filter((s) => s.id === opts.session) : t.sessions;
  for (const s of sessions) out.push('', ...session(s, paint));
  for (const e of t.events) if (e.kind !== 'gateway-query') out.push('', paint('red', `${clock(e.time)}  ${e.kind}: ${e.message}`));
  if (t.omittedCommands) out.push('', paint('dim', `${t.omittedCommands} more allowed commands are not shown (past the first ${t.sessions.reduce((n, s) => n + s.commands.length, 0)}); every denied and held one is`));
  if (t.unreadableLines) out.push('', paint('red', `${t.unreadableLines} line(s) of the log could not be read`));
  return out.join('\n') + '\n';
}

function session(s: TimelineSession, paint: (style: Style, s: string) => string): string[] {
  const who = [s.client.user && s.client.database ? `${s.client.user}@${s.client.database}` : '', s.client.application, s.client.address].filter(Boolean).join('  ');
  const end = s.closedAt ? `${clock(s.closedAt)} (${s.closeReason ?? 'closed'})` : paint('yellow', 'still open when the log ends');
  const lines = [paint('bold', `session ${s.id}`) + `  ${paint('cyan', s.target)}  ${who}  ${clock(s.openedAt)} to ${end}`];
  if (s.login?.startsWith('failed')) lines.push(paint('red', `  upstream login ${s.login}`));
  const events = [...s.events];
  for (const c of s.commands) {
    while (events.length && events[0]!.seq < c.seq) lines.push(eventLine(events.shift()!, paint));
    lines.push(...command(c, paint));
  }
  for (const e of events) lines.push(eventLine(e, paint));
  if (s.commands.length === 0) lines.push(paint('dim', '  (no commands)'));
  return lines;
}

function eventLine(e: { time: string; kind: string; message: string }, paint: (style: Style, s: string) => string): string {
  return paint(e.kind === 'cancel-request' ? 'yellow' : 'red', `  ${clock(e.time)}  ${e.kind}: ${e.message}`);
}

const DECISION_STYLE: Record<string, Style> = { allow: 'green', deny: 'red', approve: 'yellow', none: 'dim' };
const OUTCOME_STYLE: Record<string, Style> = { ok: 'green', error: 'red', denied: 'red', held: 'yellow', skipped: 'dim', unfinished: 'yellow' };

function command(c: TimelineCommand, paint: (style: Style, s: string) => string): string[] {
  const outcome = outcomeOf(c);
  const rows = c.rows === null || outcome === 'denied' ? '' : `${c.rows} row${c.rows === 1 ? '' : 's'}`;
  const head = [
    `  ${clock(c.time)}`,
    c.id.padEnd(6),
    paint(DECISION_STYLE[c.decision] ?? 'dim', (c.decision === 'none' ? '-' : c.decision.toUpperCase()).padEnd(7)),
    paint(OUTCOME_STYLE[outcome] ?? 'dim', outcome.padEnd(8)),
    rows.padStart(9),
    (c.durationUs === null ? '' : formatMicros(c.durationUs)).padStart(9),
  ].join(' ');
  const [first, ...more] = c.text.split('\n');
  const lines = [`${head}  ${first}`, ...more.map((l) => `${' '.repeat(60)}${l}`)];
  const note = (style: Style, s: string): number => lines.push(paint(style, `${' '.repeat(18)}${s}`));
  if (c.decision !== 'allow' && c.decision !== 'none' && c.rule) note(c.decision === 'deny' ? 'red' : 'yellow', `rule "${c.rule}"${c.reason ? `: ${c.reason}` : ''}`);
  const a = c.approval;
  if (a) {
    const waited = a.waitedMs === null ? '' : ` after ${formatMillis(a.waitedMs)}`;
    note(a.outcome === 'approved' ? 'green' : 'red', a.outcome === 'pending'
      ? `held as request ${a.id}; no verdict in the log`
      : `request ${a.id} ${a.outcome} by ${a.by ?? '?'}${waited}${a.reason ? `: ${a.reason}` : ''}${a.url ? ` (${a.url})` : ''}`);
  }
  if (c.error) note('red', `${c.error.code} ${c.error.message}`);
  if (c.masked) note('magenta', `masked ${c.masked.values} value${c.masked.values === 1 ? '' : 's'}${c.masked.detectors.length ? ` (${c.masked.detectors.join(', ')})` : ''}`);
  return lines;
}

/** HH:MM:SS.mmm in UTC; with the date when `full`. */
function clock(iso: string | null, full = false): string {
  if (!iso) return '?';
  return full ? iso.replace('T', ' ') : iso.slice(11, 23);
}
