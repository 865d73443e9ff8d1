// Command and result records read into the one shape every protocol shares (format @3): kind,
// text, facts and details of the command; status, count, error, details and sample of its
// result. Logs of format @2 (PostgreSQL only, every member at the top) are read into the same
// shape, so replay, the report and the summary read old logs as they read new ones. Members
// that fit nowhere are kept apart (`extra`) for renderers that show every field.

type Rec = Record<string, unknown>;

export const FORMAT_V2 = 'gateway-action/session-log@2';

/** Events of a terminal recording: [milliseconds since it started, o|i|r, data]. */
export type TerminalEventView = [number, string, string];

export type Sample =
  | { kind: 'rows'; columns: string[] | null; rows: unknown[][] }
  | { kind: 'text'; text: string; bytes: number | null }
  | { kind: 'terminal'; width: number; height: number; events: TerminalEventView[]; chars: number; truncated: boolean };

export interface CommandShape {
  kind: string;
  text: string;
  facts: Rec[];
  details: Rec;
  unclassified: string | null;
  extra: Rec;
}

export interface ResultShape {
  status: string;
  count: number | null;
  error: { code: string; message: string } | null;
  details: Rec;
  sample: Sample | null;
  extra: Rec;
}

const CHAIN = ['type', 'seq', 'prev', 'hash', 'time', 'session', 'command'];
const COMMAND_MEMBERS = new Set([...CHAIN, 'target', 'kind', 'text', 'facts', 'details', 'decision', 'unclassified']);
const RESULT_MEMBERS = new Set([...CHAIN, 'status', 'count', 'error', 'details', 'duration_us', 'response', 'masked', 'rule', 'reason']);
/** What a @2 command held at the top that @3 keeps in `details`. */
const V2_COMMAND_DETAILS = ['protocol', 'params', 'portal', 'max_rows', 'phase', 'statement'];
const V2_RESULT_DETAILS = ['tags', 'transaction', 'suspended'];

const str = (v: unknown): string => (typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v));
const obj = (v: unknown): Rec => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Rec) : {});
const num = (v: unknown): number | null => (typeof v === 'number' ? v : null);

function rest(r: Rec, known: Set<string>, moved: readonly string[] = []): Rec {
  const out: Rec = {};
  for (const [k, v] of Object.entries(r)) if (!known.has(k) && !moved.includes(k)) out[k] = v;
  return out;
}

export function commandShape(r: Rec, format: string | null): CommandShape {
  const v2 = format === FORMAT_V2 && r.kind === undefined;
  const details: Rec = v2 ? {} : { ...obj(r.details) };
  if (v2) for (const k of V2_COMMAND_DETAILS) if (r[k] !== undefined) details[k] = r[k];
  const facts = v2 ? r.statements : r.facts;
  return {
    // @2 wrote PostgreSQL commands only: a Query or an Execute (pg.query), or a FunctionCall.
    kind: v2 ? (r.protocol === 'function-call' ? 'pg.function-call' : 'pg.query') : str(r.kind),
    text: str(r.text),
    facts: Array.isArray(facts) ? (facts as unknown[]).map(obj) : [],
    details,
    unclassified: typeof r.unclassified === 'string' ? r.unclassified : null,
    extra: rest(r, COMMAND_MEMBERS, v2 ? [...V2_COMMAND_DETAILS, 'statements'] : []),
  };
}

export function resultShape(r: Rec, format: string | null): ResultShape {
  const v2 = format === FORMAT_V2;
  const details: Rec = v2 ? {} : { ...obj(r.details) };
  if (v2) for (const k of V2_RESULT_DETAILS) if (r[k] !== undefined) details[k] = r[k];
  const err = r.error;
  const e = err !== undefined && err !== null ? obj(err) : null;
  return {
    status: str(r.status),
    count: num(v2 ? r.rows : r.count),
    error: e ? { code: str(e.code), message: str(e.message ?? err) } : null,
    details,
    sample: sampleOf(obj(r.response)),
    extra: rest(r, RESULT_MEMBERS, v2 ? [...V2_RESULT_DETAILS, 'rows'] : []),
  };
}

/** The response's sample: rows (with their columns), text, or none (a recording comes in `terminal` records). */
function sampleOf(resp: Rec): Sample | null {
  if (typeof resp.text === 'string') return { kind: 'text', text: resp.text, bytes: num(resp.text_bytes) };
  const columns = Array.isArray(resp.columns) ? (resp.columns as unknown[]).map(str) : null;
  const rows = Array.isArray(resp.sample) ? (resp.sample as unknown[]).map((row) => (Array.isArray(row) ? row : [row])) : [];
  return columns || rows.length ? { kind: 'rows', columns, rows } : null;
}

/** Keeps this much terminal data of one command in a timeline; the rest is counted as cut. */
export const MAX_TERMINAL_CHARS = 64 * 1024;

/** Adds a `terminal` record's events to a command's recording, up to MAX_TERMINAL_CHARS. */
export function addTerminal(sample: Sample | null, r: Rec): Sample {
  const rec: Sample = sample?.kind === 'terminal' ? sample : { kind: 'terminal', width: num(r.width) ?? 80, height: num(r.height) ?? 24, events: [], chars: 0, truncated: false };
  for (const e of Array.isArray(r.events) ? (r.events as unknown[]) : []) {
    if (!Array.isArray(e)) continue;
    const data = str(e[2]);
    if (rec.chars + data.length > MAX_TERMINAL_CHARS) {
      rec.truncated = true;
      break;
    }
    rec.chars += data.length;
    rec.events.push([num(e[0]) ?? 0, str(e[1]), data]);
  }
  return rec;
}

/**
 * A recording as an asciicast v2 file (https://docs.asciinema.org/manual/asciicast/v2/): a
 * header line, then one event per line with its time in seconds, as asciinema plays it.
 */
export function asciicast(s: Extract<Sample, { kind: 'terminal' }>, timestamp?: number): string {
  const header: Rec = { version: 2, width: s.width, height: s.height, ...(timestamp !== undefined ? { timestamp } : {}) };
  return [header, ...s.events.map(([ms, code, data]) => [ms / 1000, code, data])].map((x) => JSON.stringify(x)).join('\n') + '\n';
}
