import fs from 'node:fs';
import { operands, parseArgs, UsageError } from './args.ts';
import { IDENTITY_OPTIONS, identityOptions } from './verify.ts';
import { verifyLog } from '../evidence/verification.ts';
import { readTimeline, type Timeline } from '../evidence/timeline.ts';
import { renderReport } from '../evidence/report-html.ts';
import { fileSha256 } from '../evidence/log-lines.ts';
import { terminalText } from '../evidence/terminal-text.ts';
import { RENDERERS } from '../adapters.ts';

export const help = `Usage: gateway-action report LOG -o FILE.html [--jwks FILE | --issuer URL]
                             [--repository OWNER/NAME] [--workflow REF] [--sha SHA]

Writes a self-contained HTML report of a session log for auditors: the verifier's verdict at the
top (the same checks as \`gateway-action verify\`), who ran it, the totals, the commands that were
denied or held for approval, and every session's commands with filters. The file loads nothing
from the network and can be opened straight from a downloaded artifact.

Options:
  -o, --output FILE       where to write the report (required)
  --jwks FILE             verify the identity token offline against this saved key set (JWKS)
  --issuer URL            the token issuer (default https://token.actions.githubusercontent.com)
  --repository OWNER/NAME require the token's repository
  --workflow REF          require the token's workflow
  --sha SHA               require the token's commit (full, or a prefix of 7 or more)

A report is written for a log that fails verification too: its banner says why (TAMPERED,
UNSEALED, ...). Use \`gateway-action verify\` where the exit status must gate a pipeline.

Exit status:
  0  the report was written (whatever the log's verdict; it is printed)
  2  usage error
  1  the report cannot be written
  3  the log cannot be read (missing, a directory, no permission)
`;

export async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv, { output: { type: 'string', short: 'o' }, ...IDENTITY_OPTIONS }, 'report');
  if (args.values.help) return void process.stdout.write(help), 0;
  const logs = operands(args);
  if (logs.length !== 1) throw new UsageError('report: give exactly one session log file (see gateway-action report --help)');
  const out = args.values.output;
  if (out === undefined) throw new UsageError('report: -o FILE is required (see gateway-action report --help)');
  const file = logs[0]!;
  const opts = identityOptions(args.values);
  let timeline: Timeline;
  let sha256: string;
  try {
    sha256 = await fileSha256(file);
    timeline = await readTimeline(file);
  } catch (e) {
    process.stderr.write(`gateway-action: report: cannot read ${terminalText(file)} (${terminalText((e as NodeJS.ErrnoException).code ?? (e as Error).message)})\n`);
    return 3;
  }
  const v = await verifyLog(file, opts);
  try {
    fs.writeFileSync(out, renderReport(v, timeline, RENDERERS, { logSha256: sha256 }), { mode: 0o644 });
  } catch (e) {
    process.stderr.write(`gateway-action: report: cannot write ${terminalText(out)} (${terminalText((e as NodeJS.ErrnoException).code ?? (e as Error).message)})\n`);
    return 1;
  }
  process.stdout.write(`report: ${terminalText(out)} (${v.status})\n`);
  return 0;
}
