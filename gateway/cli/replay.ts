import fs from 'node:fs';
import { operands, parseArgs, UsageError } from './args.ts';
import { readTimeline } from '../evidence/timeline.ts';
import { renderReplay, wantsColor } from '../evidence/replay-text.ts';
import { verifyChainFile } from '../evidence/log-verifier.ts';
import { readRecording, RecordingNotFound } from '../evidence/terminal-recording-reader.ts';
import { asciicastLines, exportNotes, parseSpeed, playRecording } from '../evidence/terminal-playback.ts';
import { terminalText } from '../evidence/terminal-text.ts';
import { RENDERERS } from '../adapters.ts';

export const help = `Usage: gateway-action replay LOG [--session ID]
       gateway-action replay LOG --play COMMAND [--speed N|max]
       gateway-action replay LOG --asciicast COMMAND > FILE.cast

Prints the run as a timeline: each session (target, client, open and close), and each command
with its decision, outcome, rows, duration, rule, approval, error and masking. The first line
says whether the log's chain and signatures verify; the identity is checked by
\`gateway-action verify\`. Colors on a terminal unless NO_COLOR is set.

With --play, plays the terminal recording of one command (an SSH shell, s2.1, ...) in this
terminal with its recorded timing, after the chain's verdict and again after the recording.
Colors and cursor movement are played; what could act on your terminal (clipboard writes,
titles, terminal reports, mode switches, hidden text) is left out and counted at the end.
A resize is shown as a line of its own. Ctrl-C stops it.

With --asciicast, writes that recording as an asciicast v2 file to stdout (for \`asciinema
play\`), with the same sequences left out of the output; the verdict goes to stderr.

Options:
  --session ID          only this session (s1, s2, ...)
  --play COMMAND        play this command's terminal recording
  --speed N|max         with --play: N times the recorded speed (default 1); max (or 0): no delays
  --asciicast COMMAND   write this command's terminal recording as asciicast v2 to stdout

Exit status: 0 the chain verifies; 1 it does not (the timeline or recording is still shown),
or the log or the command's recording cannot be read; 2 usage error; 130 --play stopped by Ctrl-C.
`;

const SPEC = { session: { type: 'string' }, play: { type: 'string' }, speed: { type: 'string' }, asciicast: { type: 'string' } } as const;

export async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv, SPEC, 'replay');
  if (args.values.help) return void process.stdout.write(help), 0;
  const logs = operands(args);
  if (logs.length !== 1) throw new UsageError('replay: give exactly one session log file (see gateway-action replay --help)');
  const { play, asciicast, session } = args.values;
  if (play !== undefined && asciicast !== undefined) throw new UsageError('replay: --play and --asciicast go one at a time');
  if (session !== undefined && (play !== undefined || asciicast !== undefined)) throw new UsageError(`replay: --session does not go with --${play !== undefined ? 'play' : 'asciicast'} (a command id names its session)`);
  const speedText = args.values.speed;
  if (speedText !== undefined && play === undefined) throw new UsageError('replay: --speed goes with --play');
  const speed = speedText === undefined ? 1 : parseSpeed(speedText);
  if (speed === null) throw new UsageError(`replay: --speed takes a positive number or max, not ${terminalText(speedText!)}`);
  const file = logs[0]!;
  if (!fs.existsSync(file)) throw new Error(`cannot read ${file} (ENOENT)`);
  if (play !== undefined) return playCommand(file, play, speed);
  if (asciicast !== undefined) return exportCommand(file, asciicast);
  const timeline = await readTimeline(file);
  if (session && !timeline.sessions.some((s) => s.id === session)) {
    throw new UsageError(`replay: no session ${session} in this log (sessions: ${timeline.sessions.map((s) => s.id).join(', ') || 'none'})`);
  }
  const chain = await verifyChainFile(file);
  process.stdout.write(renderReplay(timeline, RENDERERS, { color: wantsColor(process.stdout), session, status: chainStatus(chain) }));
  return chain.status === 'valid' ? 0 : 1;
}

function chainStatus(chain: Awaited<ReturnType<typeof verifyChainFile>>): string {
  return chain.status === 'valid' ? 'chain: VALID (intact, signed, sealed)' : `chain: ${chain.status.toUpperCase()}: ${chain.problem}`;
}

/** Plays one recording; Ctrl-C ends it with the terminal restored and the verdict printed. */
async function playCommand(file: string, id: string, speed: number): Promise<number> {
  const chain = await verifyChainFile(file);
  const stop = new AbortController();
  const onSigint = (): void => stop.abort(new Error('interrupted'));
  process.on('SIGINT', onSigint);
  // A reader that goes away (`| head`) ends playback, not the process with a stack trace.
  let gone = false;
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    gone = true;
    stop.abort(e);
  });
  try {
    const r = await playRecording(readRecording(file, id), { speed, status: chainStatus(chain), signal: stop.signal, write: (s) => void (gone || process.stdout.write(s)) });
    if (r.interrupted) return gone ? 1 : 130;
    return chain.status === 'valid' ? 0 : 1;
  } catch (e) {
    if (e instanceof RecordingNotFound) throw new Error(`replay: ${e.message}`);
    throw e;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

async function exportCommand(file: string, id: string): Promise<number> {
  const chain = await verifyChainFile(file);
  let notes: string[] = [];
  try {
    for await (const lines of asciicastLines(readRecording(file, id), (end, neutralised) => void (notes = exportNotes(end, neutralised)))) {
      if (!process.stdout.write(lines)) await new Promise((resolve) => process.stdout.once('drain', resolve));
    }
  } catch (e) {
    if (e instanceof RecordingNotFound) throw new Error(`replay: ${e.message}`);
    throw e;
  }
  for (const n of [...notes, chainStatus(chain)]) process.stderr.write(`gateway-action: replay: ${terminalText(n)}\n`);
  return chain.status === 'valid' ? 0 : 1;
}
