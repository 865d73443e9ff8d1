// One command's terminal recording, read from a session log in full and streaming (a shell
// session can print gigabytes; the timeline keeps only its first 64K characters). What it yields
// is what the log says, tampered or not: the chain's verdict comes from the verifier. A recording
// cut short (the session died, the daemon was killed, the log was cut) yields what is there and
// says what is missing.
import { readLogLines } from './log-lines.ts';
import type { TerminalEventView } from './record-shapes.ts';

type Rec = Record<string, unknown>;

/** The command a recording belongs to, as its command record says (every string from the log). */
export interface RecordedCommand { id: string; session: string; target: string; kind: string; text: string; time: string }

export type RecordingPart =
  | { type: 'start'; command: RecordedCommand; width: number; height: number }
  | { type: 'events'; events: TerminalEventView[] }
  | { type: 'end'; end: RecordingEnd };

export interface RecordingEnd {
  chunks: number;
  events: number;
  /** What the result record says was recorded, or null when the log holds no result for the command. */
  expected: { chunks: number; events: number; duration_ms: number } | null;
  /** Chunk numbers missing between those read (a log cut or edited). */
  missingChunks: number[];
}

/** A command id that is not in the log, or a command with no recording: the message says which. */
export class RecordingNotFound extends Error {}

const str = (v: unknown): string => (typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v));
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

async function* records(file: string, needle: string | null): AsyncGenerator<Rec> {
  for await (const l of readLogLines(file)) {
    if (l.kind === 'too-long') return;
    if (l.kind === 'not-utf8' || !l.text) continue;
    if (needle !== null && !l.text.includes(needle)) continue;
    try {
      const r = JSON.parse(l.text) as unknown;
      if (r && typeof r === 'object' && !Array.isArray(r)) yield r as Rec;
    } catch {
      // A torn or unreadable line: the verifier reports it.
    }
  }
}

/** Events of one `terminal` record that have the asciicast shape ([number, string, string]). */
function eventsOf(r: Rec): TerminalEventView[] {
  const out: TerminalEventView[] = [];
  for (const e of Array.isArray(r.events) ? (r.events as unknown[]) : []) {
    if (Array.isArray(e) && num(e[0]) !== null && typeof e[1] === 'string' && typeof e[2] === 'string') out.push([e[0] as number, e[1], e[2]]);
  }
  return out;
}

/**
 * The recording of command `id`: a `start` part, its events chunk by chunk, then an `end` part.
 * Throws RecordingNotFound (before yielding anything) for an unknown command or one without a
 * recording, naming the commands that have one.
 */
export async function* readRecording(file: string, id: string): AsyncGenerator<RecordingPart> {
  let command: RecordedCommand | null = null;
  let started = false;
  let chunks = 0;
  let events = 0;
  let nextChunk = 0;
  const missingChunks: number[] = [];
  let expected: RecordingEnd['expected'] = null;
  // Only lines naming the id (as a JSON string) are parsed: a log's other records pass unread.
  for await (const r of records(file, JSON.stringify(id))) {
    if (r.command !== id) continue;
    if (r.type === 'command' && !command) {
      command = { id, session: str(r.session), target: str(r.target), kind: str(r.kind), text: str(r.text), time: str(r.time) };
    } else if (r.type === 'terminal') {
      if (!started) {
        started = true;
        const c = command ?? { id, session: str(r.session), target: '', kind: '', text: '', time: '' };
        yield { type: 'start', command: c, width: num(r.width) ?? 80, height: num(r.height) ?? 24 };
      }
      const chunk = num(r.chunk);
      if (chunk !== null && chunk > nextChunk && chunk - nextChunk <= 1_000_000) for (let k = nextChunk; k < chunk; k++) missingChunks.push(k);
      if (chunk !== null) nextChunk = Math.max(nextChunk, chunk + 1);
      chunks++;
      const ev = eventsOf(r);
      events += ev.length;
      if (ev.length) yield { type: 'events', events: ev };
    } else if (r.type === 'result') {
      const rec = (r.response as Rec | undefined)?.recording as Rec | undefined;
      if (rec && typeof rec === 'object') expected = { chunks: num(rec.chunks) ?? 0, events: num(rec.events) ?? 0, duration_ms: num(rec.duration_ms) ?? 0 };
      // The recorder writes a command's last chunk before its result: nothing of it follows.
      if (started || command) break;
    }
  }
  if (!started) throw new RecordingNotFound(await notFoundMessage(file, id, command !== null));
  yield { type: 'end', end: { chunks, events, expected, missingChunks } };
}

async function notFoundMessage(file: string, id: string, known: boolean): Promise<string> {
  const withRecording: string[] = [];
  for await (const r of records(file, '"terminal"')) {
    const c = str(r.command);
    if (r.type === 'terminal' && c && !withRecording.includes(c)) withRecording.push(c);
  }
  const list = withRecording.length ? `commands with a recording: ${withRecording.slice(0, 20).join(', ')}${withRecording.length > 20 ? `, ... (${withRecording.length})` : ''}` : 'no command in this log has a recording';
  return known ? `command ${id} has no terminal recording (${list})` : `no command ${id} in this log (${list})`;
}
