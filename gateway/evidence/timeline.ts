// A session log read as a story: sessions, and in each the commands with their decision,
// approval, outcome, rows, duration and response sample. Shared by `replay` (terminal) and
// `report` (HTML). It reads whatever parses, tampered or not: the verdict comes from the
// verifier and is shown next to it, never inferred here.
import { readLogLines } from './log-lines.ts';
import { emptyTotals, TotalsTally, type LogTotals } from './log-totals.ts';
import { addTerminal, commandShape, resultShape, type Sample } from './record-shapes.ts';

type Rec = Record<string, unknown>;

export type Decision = 'allow' | 'deny' | 'approve' | 'none';
export type { Sample } from './record-shapes.ts';

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

/**
 * A command and how it ended, in the shape every protocol shares. What only its protocol
 * understands is in `details` and `resultDetails`, for the renderer of its `kind`.
 */
export interface TimelineCommand {
  id: string;
  session: string;
  target: string;
  seq: number;
  time: string;
  /** `pg.query`, `ssh.exec`...; empty when the record names none (shown by the generic renderer). */
  kind: string;
  text: string;
  /** What the policy matched on, one entry per unit. */
  facts: Rec[];
  /** The command's protocol specifics (PostgreSQL: protocol, params, portal...). */
  details: Rec;
  decision: Decision;
  rule: string | null;
  reason: string | null;
  /** Why the adapter could not know what the command runs. */
  unclassified: string | null;
  approval: TimelineApproval | null;
  /** ok, error, denied, skipped, approved (decided before it ran), or null while it never finished. */
  status: string | null;
  /** How many units it returned or affected, in its renderer's unit (rows for PostgreSQL). */
  count: number | null;
  durationUs: number | null;
  error: { code: string; message: string } | null;
  /** The result's protocol specifics (PostgreSQL: tags, transaction). */
  resultDetails: Rec;
  sample: Sample | null;
  masked: { values: number; detectors: string[] } | null;
  /** Members of its records that fit nowhere above, for renderers that show every field. */
  extra: { command: Rec; result: Rec };
}

export interface TimelineEvent {
  seq: number;
  time: string;
  kind: string;
  message: string;
}

export interface TimelineSession {
  id: string;
  target: string;
  /** The protocol the session spoke (`postgres`), as its session-open record says. */
  protocol: string;
  openedAt: string;
  closedAt: string | null;
  closeReason: string | null;
  client: { user: string; database: string; application: string; address: string };
  login: string | null;
  commands: TimelineCommand[];
  /** Protocol errors, server errors, cancels and records of types this version does not know, in order. */
  events: TimelineEvent[];
  /** The confined command whose connection opened it (`gateway-action exec --confine`), if any. */
  confined: string | null;
}

/** An argv as a shell would read it back: plain words as they are, others single-quoted. */
export function argvLine(argv: readonly string[]): string {
  return argv.map((w) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** A command run confined (gateway/confine/): what ran, as whom, how it ended, what it connected to. */
export interface TimelineConfined {
  id: string;
  argv: string[];
  user: string;
  cwd: string;
  startedAt: string;
  endedAt: string | null;
  exitCode: number | null;
  signal: string | null;
  error: string | null;
  /** Sessions its connections opened. */
  sessions: string[];
  connections: number;
}

export interface TimelineTarget {
  name: string;
  kind: string;
  host: string;
  port: number;
  database: string;
  /** Where the target is, as people write it: `host:port/database`, or the url (HTTP) or server (Kubernetes). */
  address: string;
}

/** A run-start target's address: its host and port (and database), else the url or server it names. */
function targetAddress(x: Rec): string {
  const host = str(x?.host);
  if (host) return `${host}:${num(x?.port) ?? 0}${str(x?.database) ? `/${str(x?.database)}` : ''}`;
  return str(x?.url) || str(x?.server) || '';
}

export interface Timeline {
  run: string | null;
  /** The log's format (`gateway-action/session-log@3`), as its run-start record says. */
  format: string | null;
  startedAt: string | null;
  endedAt: string | null;
  targets: TimelineTarget[];
  sessions: TimelineSession[];
  /** Gateway-level events: gateway queries and errors, protocol errors outside sessions, unknown records. */
  events: TimelineEvent[];
  /** Lines that did not parse (a torn tail or tampering). */
  unreadableLines: number;
  /** Allowed commands past the timeline's size limit: counted, not kept. */
  omittedCommands: number;
  /** Every record read, counted as `verify` counts (the same code): what the summary and an unverified report show. */
  totals: LogTotals;
  /** Records of types this version does not know (a later version's, another writer's), by type: shown as recorded. */
  unknownTypes: Map<string, number>;
  /** Commands run confined, in the order they started. */
  confined: TimelineConfined[];
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

/** Record types the timeline reads or deliberately leaves out; any other type is shown as it is. */
const KNOWN_TYPES = new Set([
  'run-start', 'run-end', 'checkpoint', 'approvals', 'listener', 'session-open', 'upstream-login', 'session-close', 'command',
  'approval-request', 'approval-comment', 'approval-reply', 'approval', 'result', 'terminal', 'protocol-error', 'server-error',
  'cancel-request', 'gateway-error', 'gateway-query', 'operation', 'confined-start', 'confined-connection', 'confined-end',
]);
const CHAIN_MEMBERS = new Set(['seq', 'prev', 'hash', 'time', 'type']);

/** A record of a type this version does not know: every member but the chain's, as escaped-later JSON. */
function unknownMessage(r: Rec): string {
  const fields: Rec = {};
  for (const [k, v] of Object.entries(r)) if (!CHAIN_MEMBERS.has(k)) fields[k] = v;
  return `(record type unknown to this version) ${JSON.stringify(fields)}`;
}

class TimelineBuilder {
  private tieConfined(s: TimelineSession, id: string): void {
    if (s.confined) return;
    s.confined = id;
    this.t.confined.find((x) => x.id === id)?.sessions.push(s.id);
  }

  readonly t: Timeline = { run: null, format: null, startedAt: null, endedAt: null, targets: [], sessions: [], events: [], unreadableLines: 0, omittedCommands: 0, totals: emptyTotals(), unknownTypes: new Map(), confined: [] };
  /** Client addresses of confined commands' connections, and sessions by client address: either may come first. */
  private readonly confinedClients = new Map<string, string>();
  private readonly sessionsByClient = new Map<string, TimelineSession>();
  private readonly tally = new TotalsTally(this.t.totals);
  private readonly sessions = new Map<string, TimelineSession>();
  private readonly commands = new Map<string, TimelineCommand>();
  private readonly approvals = new Map<string, TimelineApproval>();
  private kept = 0;
  private readonly maxCommands: number;

  constructor(maxCommands: number) {
    this.maxCommands = maxCommands;
  }

  add(r: Rec): void {
    this.tally.add(r);
    const { t, sessions, commands, approvals } = this;
    const event = (x: Rec, kind: string, message: string): TimelineEvent => ({ seq: num(x.seq) ?? -1, time: str(x.time), kind, message });
    switch (r.type) {
      case 'run-start':
        t.run = str(r.run);
        t.format = str(r.format) || null;
        t.startedAt = str(r.time);
        t.targets = Array.isArray(r.targets) ? (r.targets as Rec[]).map((x) => ({ name: str(x?.name), kind: str(x?.kind), host: str(x?.host), port: num(x?.port) ?? 0, database: str(x?.database), address: targetAddress(x) })) : [];
        break;
      case 'run-end':
        t.endedAt = str(r.time);
        break;
      case 'session-open': {
        const c = (r.client ?? {}) as Rec;
        const s: TimelineSession = {
          id: str(r.session), target: str(r.target), protocol: str(r.protocol), openedAt: str(r.time), closedAt: null, closeReason: null,
          client: { user: str(c.user), database: str(c.database), application: str(c.application_name), address: c.address ? `${str(c.address)}:${str(c.port)}` : '' },
          login: null, commands: [], events: [], confined: null,
        };
        const from = c.address ? `${str(c.address)}:${str(c.port)}` : typeof r.client === 'string' ? r.client : '';
        if (from) {
          this.sessionsByClient.set(from, s);
          const confined = this.confinedClients.get(from);
          if (confined) this.tieConfined(s, confined);
        }
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
        const shape = commandShape(r, t.format);
        const c: TimelineCommand = {
          id: str(r.command), session: str(r.session), target: str(r.target), seq: num(r.seq) ?? -1, time: str(r.time),
          kind: shape.kind, text: shape.text, facts: shape.facts, details: shape.details,
          decision: d ? (str(d.action) as Decision) : 'none', rule: d ? str(d.rule) || null : null, reason: d ? str(d.reason) || null : null,
          unclassified: shape.unclassified, approval: null, status: null, count: null, durationUs: null, error: null, resultDetails: {},
          sample: null, masked: null, extra: { command: shape.extra, result: {} },
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
        const shape = resultShape(r, t.format);
        Object.assign(c, {
          status: shape.status, count: shape.count, durationUs: num(r.duration_us), error: shape.error, resultDetails: shape.details,
          // A recording's events came in its terminal records, before the result.
          sample: c.sample?.kind === 'terminal' ? c.sample : shape.sample,
          masked: r.masked ? { values: num((r.masked as Rec).values) ?? 0, detectors: ((r.masked as Rec).detectors as string[]) ?? [] } : null,
          extra: { command: c.extra.command, result: shape.extra },
        });
        break;
      }
      case 'operation': {
        // A long-running operation's end, seen when a later request polled it: the command that
        // started it shows the final status (HTTP, Azure Resource Manager).
        const c = commands.get(str(r.command));
        if (c) c.resultDetails = { ...c.resultDetails, operation: { ...((c.resultDetails.operation as Rec | undefined) ?? {}), status: str(r.status), polled_by: str(r.poll) } };
        break;
      }
      case 'terminal': {
        const c = commands.get(str(r.command));
        if (c) c.sample = addTerminal(c.sample, r);
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
      case 'confined-start':
        t.confined.push({ id: str(r.confined), argv: Array.isArray(r.argv) ? r.argv.map(str) : [], user: str(r.user), cwd: str(r.cwd), startedAt: str(r.time), endedAt: null, exitCode: null, signal: null, error: null, sessions: [], connections: 0 });
        break;
      case 'confined-connection': {
        const c = t.confined.find((x) => x.id === str(r.confined));
        if (c) c.connections++;
        const from = str(r.client);
        this.confinedClients.set(from, str(r.confined));
        const s = this.sessionsByClient.get(from);
        if (s && !s.closedAt) this.tieConfined(s, str(r.confined));
        break;
      }
      case 'confined-end': {
        const c = t.confined.find((x) => x.id === str(r.confined));
        if (c) Object.assign(c, { endedAt: str(r.time), exitCode: num(r.exit_code), signal: str(r.signal) || null, error: str(r.error) || null });
        break;
      }
      case 'gateway-error':
      case 'gateway-query':
        t.events.push(event(r, str(r.type), r.type === 'gateway-query' ? `${str(r.purpose)}` : str(r.message)));
        break;
      default:
        // A record this version does not know (a later version's, or another writer's): shown, never dropped.
        if (!KNOWN_TYPES.has(str(r.type))) {
          const type = str(r.type) || '(no type)';
          t.unknownTypes.set(type, (t.unknownTypes.get(type) ?? 0) + 1);
          const s = sessions.get(str(r.session));
          (s ? s.events : t.events).push(event(r, type, unknownMessage(r)));
        }
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
