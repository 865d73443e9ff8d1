import fs from 'node:fs';
import { operands, parseArgs, UsageError } from './args.ts';
import { readTimeline } from '../evidence/timeline.ts';
import { renderReplay, wantsColor } from '../evidence/replay-text.ts';
import { verifyChainFile } from '../evidence/log-verifier.ts';
import { RENDERERS } from '../adapters.ts';

export const help = `Usage: gateway-action replay LOG [--session ID]

Prints the run as a timeline: each session (target, client, open and close), and each command
with its decision, outcome, rows, duration, rule, approval, error and masking. The first line
says whether the log's chain and signatures verify; the identity is checked by
\`gateway-action verify\`. Colors on a terminal unless NO_COLOR is set.

Options:
  --session ID   only this session (s1, s2, ...)
`;

export async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv, { session: { type: 'string' } }, 'replay');
  if (args.values.help) return void process.stdout.write(help), 0;
  const logs = operands(args);
  if (logs.length !== 1) throw new UsageError('replay: give exactly one session log file (see gateway-action replay --help)');
  const file = logs[0]!;
  if (!fs.existsSync(file)) throw new Error(`cannot read ${file} (ENOENT)`);
  const timeline = await readTimeline(file);
  const session = args.values.session;
  if (session && !timeline.sessions.some((s) => s.id === session)) {
    throw new UsageError(`replay: no session ${session} in this log (sessions: ${timeline.sessions.map((s) => s.id).join(', ') || 'none'})`);
  }
  const chain = await verifyChainFile(file);
  const status = chain.status === 'valid' ? 'chain: VALID (intact, signed, sealed)' : `chain: ${chain.status.toUpperCase()}: ${chain.problem}`;
  process.stdout.write(renderReplay(timeline, RENDERERS, { color: wantsColor(process.stdout), session, status }));
  return chain.status === 'valid' ? 0 : 1;
}
