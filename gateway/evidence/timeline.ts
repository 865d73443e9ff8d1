// A session log read as a story: sessions, and in each the commands with their decision,
// approval, outcome, rows, duration and response sample. Shared by `replay` (terminal) and
// `report` (HTML). It reads whatever parses, tampered or not: the verdict comes from the
// verifier and is shown next to it, never inferred here.
import { readLogLines } from './log-lines.ts';

type Rec = Record<string, unknown>;

export type Decision = 'allow' | 'deny' | 'approve' | 'none';

export interface TimelineApproval {
  id: string;
  requestedAt: string;
  outcome: 'approved' | 'denied' | 'pending';
  by: string | null;
  via: string | null;
  at: string | null;
  waitedMs: number | null;
  reason: string | null;
  /** The PR comment the request was posted as, when it was (as the log says: renderers link only http(s)). */
  url: string | null;
}

export interface TimelineCommand {
  id: string;
  session: string;
  target: string;
  seq: number;
  time: string;
  text: string;
  protocol: string;
  params: unknown[] | null;
  decision: Decision;
  rule: string | null;
  reason: string | null;
  classes: string[];
  tables: string[];
  approval: TimelineApproval | null;
  /** ok, error, denied, skipped, approved (Parse-time), or null while it never finished. */
  status: string | null;
  tags: string[];
  rows: number | null;
  durationUs: number | null;
  error: { code: string; message: string } | null;
  columns: string[] | null;
  sample: unknown[][];
  masked: { values: number; detectors: string[] } | null;
}

export interface TimelineSession {
  id: string;
  target: string;
  openedAt: string;
  closedAt: string | null;
  closeReason: string | null;
  client: { user: string; database: string; application: string; address: string };
  login: string | null;
  commands: TimelineCommand[];
  /** Protocol errors, server errors and cancels, in order. */
  events: { seq: number; time: string; kind: string; message: string }[];
}

export interface Timeline {
  run: string | null;
  startedAt: string | null;
  endedAt: string | null;
  targets: { name: string; kind: string; host: string; port: number; database: string }[];
  sessions: TimelineSession[];
  /** Gateway-level events: gateway queries and errors, protocol errors outside sessions. */
  events: { seq: number; time: string; kind: string; message: string }[];
  /** Lines that did not parse (a torn tail or tampering). */
  unreadableLines: number;
  /** Allowed commands past the timeline's size limit: counted, not kept. */
  omittedCommands: number;
}

/** Past this many commands only denied and held ones are kept (the rest are counted). */
export const TIMELINE_MAX_COMMANDS = 20_000;

/**
 * Reads a log into a timeline, streaming: logs reach gigabytes. Beyond `maxCommands` commands,
 * allowed ones are counted in `omittedCommands` instead of kept; denied and held ones always are.
 */
export async function readTimeline(file: string, maxCommands = TIMELINE_MAX_COMMANDS): Promise<Timeline> {
  const b = new TimelineBuilder(maxCommands);
  for await (const l of readLogLines(file)) {
    if (l.kind === 'too-long') break;
    if (l.kind === 'not-utf8') {
      b.t.unreadableLines++;
      continue;
    }
    if (!l.text) continue;
    try {
      const r = JSON.parse(l.text) as unknown;
      if (r && typeof r === 'object' && !Array.isArray(r)) b.add(r as Rec);
      else b.t.unreadableLines++;
    } catch {
      b.t.unreadableLines++;
    }
  }
  return b.t;
}

const str = (v: unknown): string => (typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v));
const num = (v: unknown): number | null => (typeof v === 'number' ? v : null);

export function buildTimeline(records: Rec[], unreadableLines = 0): Timeline {
  const b = new TimelineBuilder(Infinity);
  b.t.unreadableLines = unreadableLines;
  for (const r of records) b.add(r);
  return b.t;
}

class TimelineBuilder {
  readonly t: Timeline = { run: null, startedAt: null, endedAt: null, targets: [], sessions: [], events: [], unreadableLines: 0, omittedCommands: 0 };
  private readonly sessions = new Map<string, TimelineSession>();
  private readonly commands = new Map<string, TimelineCommand>();
  private readonly approvals = new Map<string, TimelineApproval>();
  private kept = 0;
  private readonly maxCommands: number;

  constructor(maxCommands: number) {
    this.maxCommands = maxCommands;
  }

  add(r: Rec): void {
    const { t, sessions, commands, approvals } = this;
    const event = (x: Rec, kind: string, message: string) => ({ seq: num(x.seq) ?? -1, time: str(x.time), kind, message });
    switch (r.type) {
      case 'run-start':
        t.run = str(r.run);
        t.startedAt = str(r.time);
        t.targets = Array.isArray(r.targets) ? (r.targets as Rec[]).map((x) => ({ name: str(x.name), kind: str(x.kind), host: str(x.host), port: num(x.port) ?? 0, database: str(x.database) })) : [];
        break;
      case 'run-end':
        t.endedAt = str(r.time);
        break;
      case 'session-open': {
        const c = (r.client ?? {}) as Rec;
        const s: TimelineSession = {
          id: str(r.session), target: str(r.target), openedAt: str(r.time), closedAt: null, closeReason: null,
          client: { user: str(c.user), database: str(c.database), application: str(c.application_name), address: c.address ? `${str(c.address)}:${str(c.port)}` : '' },
          login: null, commands: [], events: [],
        };
        sessions.set(s.id, s);
        t.sessions.push(s);
        break;
      }
      case 'upstream-login': {
        const s = sessions.get(str(r.session));
        if (s) s.login = r.ok ? `${str(r.auth)}${r.tls ? ', TLS' : ''}` : `failed: ${str((r.error as Rec | undefined)?.message ?? r.error)}`;
        break;
      }
      case 'session-close': {
        const s = sessions.get(str(r.session));
        if (s) {
          s.closedAt = str(r.time);
          s.closeReason = str(r.reason);
        }
        break;
      }
      case 'command': {
        const d = (r.decision ?? null) as Rec | null;
        const action = d ? str(d.action) : 'none';
        if (this.kept >= this.maxCommands && (action === 'allow' || action === 'none')) {
          t.omittedCommands++;
          break;
        }
        this.kept++;
        const statements = Array.isArray(r.statements) ? (r.statements as Rec[]) : [];
        const c: TimelineCommand = {
          id: str(r.command), session: str(r.session), target: str(r.target), seq: num(r.seq) ?? -1, time: str(r.time),
          text: str(r.text), protocol: str(r.protocol), params: Array.isArray(r.params) ? (r.params as unknown[]) : null,
          decision: d ? (str(d.action) as Decision) : 'none', rule: d ? str(d.rule) || null : null, reason: d ? str(d.reason) || null : null,
          classes: [...new Set(statements.flatMap((s) => (Array.isArray(s.classes) ? (s.classes as string[]) : [])))],
          tables: [...new Set(statements.flatMap((s) => (Array.isArray(s.tables) ? (s.tables as string[]) : [])))],
          approval: null, status: null, tags: [], rows: null, durationUs: null, error: null, columns: null, sample: [], masked: null,
        };
        commands.set(c.id, c);
        sessions.get(c.session)?.commands.push(c);
        break;
      }
      case 'approval-request': {
        const a: TimelineApproval = { id: str(r.id), requestedAt: str(r.time), outcome: 'pending', by: null, via: null, at: null, waitedMs: null, reason: null, url: null };
        approvals.set(a.id, a);
        const c = commands.get(str(r.command));
        if (c) c.approval = a;
        break;
      }
      case 'approval-comment': {
        const a = approvals.get(str(r.id));
        // Carried as written; renderers link only http(s) URLs.
        if (a) a.url = str(r.url) || null;
        break;
      }
      case 'approval': {
        const a = approvals.get(str(r.id));
        if (a) Object.assign(a, { outcome: r.outcome === 'approved' ? 'approved' : 'denied', by: str(r.by) || null, via: str(r.via) || null, at: str(r.at) || null, waitedMs: num(r.waited_ms), reason: str(r.reason) || null });
        break;
      }
      case 'result': {
        const c = commands.get(str(r.command));
        if (!c) break;
        const resp = (r.response ?? {}) as Rec;
        const err = r.error as Rec | undefined;
        Object.assign(c, {
          status: str(r.status), tags: Array.isArray(r.tags) ? (r.tags as string[]) : [], rows: num(r.rows), durationUs: num(r.duration_us),
          error: err ? { code: str(err.code), message: str(err.message) } : null,
          columns: Array.isArray(resp.columns) ? (resp.columns as string[]) : null,
          sample: Array.isArray(resp.sample) ? (resp.sample as unknown[][]) : [],
          masked: r.masked ? { values: num((r.masked as Rec).values) ?? 0, detectors: ((r.masked as Rec).detectors as string[]) ?? [] } : null,
        });
        break;
      }
      case 'protocol-error':
      case 'server-error':
      case 'cancel-request': {
        const msg = r.type === 'cancel-request' ? `cancel request${r.forwarded ? ' forwarded' : ' not forwarded'}` : str((r.error as Rec | undefined)?.message ?? r.message);
        const s = sessions.get(str(r.session));
        (s ? s.events : t.events).push(event(r, str(r.type), msg));
        break;
      }
      case 'gateway-error':
      case 'gateway-query':
        t.events.push(event(r, str(r.type), r.type === 'gateway-query' ? `${str(r.purpose)}` : str(r.message)));
        break;
    }
  }
}

/** How a command ended, as one word for display and filtering. */
export function outcomeOf(c: TimelineCommand): 'ok' | 'error' | 'denied' | 'held' | 'skipped' | 'unfinished' {
  if (c.status === 'denied') return 'denied';
  if (c.status === 'error') return 'error';
  if (c.status === 'skipped') return 'skipped';
  if (c.status === null) return c.approval?.outcome === 'pending' ? 'held' : 'unfinished';
  return 'ok';
}

/** A value from a sample or params as text: SQL NULL, binary as hex. */
export function valueText(v: unknown): string {
  if (v === null) return 'NULL';
  if (typeof v === 'string') return v;
  const b = v as { format?: string; hex?: string } | undefined;
  if (b?.format === 'binary') return `\\x${b.hex ?? ''}`;
  return JSON.stringify(v);
}

/** A duration for people: µs below a millisecond, then ms, s, and minutes. */
export function formatMicros(us: number): string {
  if (us < 1000) return `${us} µs`;
  if (us < 1_000_000) return `${(us / 1000).toFixed(us < 10_000 ? 1 : 0)} ms`;
  return formatMillis(us / 1000);
}

export function formatMillis(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}
