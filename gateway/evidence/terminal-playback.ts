// A command's terminal recording played back to the auditor's terminal (`replay --play`), or
// exported as an asciicast v2 file (`replay --asciicast`) for `asciinema play` and other players.
// Both send output through TerminalSanitizer: a recording may colour and move the cursor, not
// write the clipboard, retitle, answer for the auditor, switch modes or hide text. Playback
// keeps the recorded timing (divided by the speed), shows resizes where they happened, and ends
// with the terminal restored and the gateway's own lines last: whatever a recording drew, the
// verdict printed after it is the one at the bottom of the screen.
import { setTimeout as sleep } from 'node:timers/promises';
import { neutralisedText, TERMINAL_RESTORE, TerminalSanitizer } from './terminal-sanitizer.ts';
import { terminalOneLine, terminalText as t } from './terminal-text.ts';
import type { RecordedCommand, RecordingEnd, RecordingPart } from './terminal-recording-reader.ts';

export interface PlayOptions {
  /** Recorded time is divided by this; Infinity plays with no delays. */
  speed: number;
  /** Where the played bytes go; the terminal when playing for a person. */
  write: (s: string) => void;
  /** The chain's verdict line, printed before and again after the recording. */
  status: string;
  /** Stops playback (Ctrl-C): the terminal is still restored and the closing lines printed. */
  signal?: AbortSignal;
}

export interface PlayResult { events: number; resizes: number; interrupted: boolean; neutralised: Map<string, number> }

/** `--speed`: a positive number, or `max` (or 0) for no delays. Null when it is neither. */
export function parseSpeed(text: string): number | null {
  if (text === 'max') return Infinity;
  if (!/^\d+(\.\d+)?$/.test(text)) return null;
  const n = Number(text);
  return n === 0 ? Infinity : Number.isFinite(n) ? n : null;
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

function describe(c: RecordedCommand): string {
  const what = [c.kind && t(c.kind), c.session && `session ${t(c.session)}`, c.target && `on ${t(c.target)}`].filter(Boolean).join(', ');
  return `${t(c.id)}${what ? ` (${what})` : ''}${c.text ? `: ${terminalOneLine(c.text, 80)}` : ''}`;
}

function endNote(end: RecordingEnd): string[] {
  const notes: string[] = [];
  if (!end.expected) notes.push('the log holds no result for this command: the session or the gateway ended before it finished, or the log was cut; played what was recorded');
  else if (end.expected.events > end.events) notes.push(`the result says ${end.expected.events} events were recorded; the log holds ${end.events}: played what is there`);
  if (end.missingChunks.length) notes.push(`chunk${end.missingChunks.length === 1 ? '' : 's'} ${end.missingChunks.slice(0, 10).join(', ')}${end.missingChunks.length > 10 ? ', ...' : ''} of the recording ${end.missingChunks.length === 1 ? 'is' : 'are'} missing from the log`);
  return notes;
}

/**
 * Plays `parts` (from readRecording) through `opts.write`. Output events are written at their
 * recorded time divided by the speed, measured from the start so delays do not add up; input
 * events are not written (the recorded output holds their echo); a resize is a line of its own.
 */
export async function playRecording(parts: AsyncIterable<RecordingPart>, opts: PlayOptions): Promise<PlayResult> {
  const sanitizer = new TerminalSanitizer();
  const result: PlayResult = { events: 0, resizes: 0, interrupted: false, neutralised: sanitizer.neutralised };
  let end: RecordingEnd | null = null;
  let startedAt = 0;
  let begun = false;
  let lineStart = true;
  let firstMs: number | null = null;
  let lastMs = 0;
  const w = opts.write;
  try {
    for await (const part of parts) {
      if (part.type === 'start') {
        w(`${t(opts.status)}\n`);
        w(`playing ${describe(part.command)}\n`);
        w(`recorded at ${part.width}x${part.height}${part.command.time ? ` from ${t(part.command.time)}` : ''}, ${opts.speed === Infinity ? 'with no delays' : `at ${opts.speed}x speed`}; control sequences that could act on your terminal are left out\n`);
        w(`──── recording ${t(part.command.id)} ────\n`);
        startedAt = performance.now();
        begun = true;
      } else if (part.type === 'events') {
        for (const [ms, code, data] of part.events) {
          if (opts.signal?.aborted) throw opts.signal.reason;
          firstMs ??= ms;
          lastMs = Math.max(lastMs, ms);
          if (code !== 'o' && code !== 'r') continue;
          if (opts.speed !== Infinity) {
            // In steps of at most a day: a timer takes no more than 2^31-1 ms, and a log's times are its own.
            for (let due = startedAt + (ms - firstMs) / opts.speed - performance.now(); due > 1; due = startedAt + (ms - firstMs) / opts.speed - performance.now()) {
              await sleep(Math.min(due, 86_400_000), undefined, { signal: opts.signal });
            }
          }
          if (code === 'o') {
            const safe = sanitizer.write(data);
            if (safe) w(safe);
            if (safe) lineStart = safe.endsWith('\n');
            result.events++;
          } else {
            result.resizes++;
            w(`\x1b[0m${lineStart ? '' : '\r\n'}[terminal resized to ${t(data)} at ${seconds(ms)}]\r\n`);
            lineStart = true;
          }
        }
      } else end = part.end;
    }
  } catch (e) {
    // Anything else (a log that cannot be read on) ends playback too, the terminal restored first.
    if (!opts.signal?.aborted) {
      if (begun) w(`${TERMINAL_RESTORE}\n`);
      throw e;
    }
    result.interrupted = true;
  }
  sanitizer.end();
  // Restore the terminal, then go to its last line so nothing the recording drew lies below.
  w(`${TERMINAL_RESTORE}\x1b[999;1H\n`);
  const lines = [`──── end of recording${firstMs !== null ? `, ${seconds(lastMs - firstMs)} recorded` : ''}${result.interrupted ? ': playback interrupted' : ''} ────`];
  if (end) lines.push(...endNote(end));
  if (result.events === 0) lines.push('the recording has no output');
  if (result.resizes) lines.push(result.resizes === 1 ? '1 resize, shown as a line of its own' : `${result.resizes} resizes, each shown as a line of its own`);
  if (sanitizer.neutralised.size) lines.push(`not sent to your terminal: ${neutralisedText(sanitizer.neutralised)}`);
  lines.push(t(opts.status));
  w(lines.join('\n') + '\n');
  return result;
}

/**
 * The recording as an asciicast v2 file (https://docs.asciinema.org/manual/asciicast/v2/), line
 * by line: a header (width, height, timestamp of the command), then one event per line with its
 * time in seconds. Output events pass through the same sanitizer as playback (a part of a
 * sequence cut between events moves to the event that completes it); input and resize events
 * are kept as recorded (players do not send input to the terminal). `end` is set when done.
 */
export async function* asciicastLines(parts: AsyncIterable<RecordingPart>, done?: (end: RecordingEnd, neutralised: Map<string, number>) => void): AsyncGenerator<string> {
  const sanitizer = new TerminalSanitizer();
  for await (const part of parts) {
    if (part.type === 'start') {
      const time = Date.parse(part.command.time);
      yield JSON.stringify({ version: 2, width: part.width, height: part.height, ...(Number.isFinite(time) ? { timestamp: Math.floor(time / 1000) } : {}) }) + '\n';
    } else if (part.type === 'events') {
      let out = '';
      for (const [ms, code, data] of part.events) {
        const safe = code === 'o' ? sanitizer.write(data) : code === 'i' || code === 'r' ? data : '';
        if (safe) out += JSON.stringify([ms / 1000, code, safe]) + '\n';
      }
      if (out) yield out;
    } else {
      sanitizer.end();
      done?.(part.end, sanitizer.neutralised);
    }
  }
}

/** What the end of an export says on stderr: what is missing and what was left out. */
export function exportNotes(end: RecordingEnd, neutralised: Map<string, number>): string[] {
  const notes = endNote(end);
  if (neutralised.size) notes.push(`left out of the output events: ${neutralisedText(neutralised)}`);
  return notes;
}
