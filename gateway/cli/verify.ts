import { parseArgs, UsageError } from './args.ts';
import { VERIFY_EXIT, verifyLogFile, verifyLogText, type VerifyResult } from '../evidence/log-verifier.ts';

export const help = `Usage: gateway-action verify LOG [--json]

Recomputes the session log's hash chain and prints a summary: identity, sessions, commands,
errors. Exit status: 0 valid and sealed; 1 tampered (the first bad record is named by sequence
number and line); 3 unreadable (missing, empty, or not a session log); 4 unsealed (every record
verifies but the gateway did not stop cleanly, or the last record is torn).

Options:
  --json    print the result as JSON
`;

export async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv, { json: 'boolean' }, 'verify');
  if (args.options.help) return void process.stdout.write(help), 0;
  if (args.positional.length !== 1) throw new UsageError('verify: give exactly one session log file (see gateway-action verify --help)');
  const file = args.positional[0]!;
  let result: VerifyResult;
  try {
    result = await verifyLogFile(file);
  } catch (e) {
    result = { ...verifyLogText(''), problem: `cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` };
  }
  return report(file, result, Boolean(args.options.json));
}

function report(file: string, r: VerifyResult, json: boolean): number {
  const code = VERIFY_EXIT[r.status];
  if (json) {
    process.stdout.write(JSON.stringify({ file, status: r.status, sealed: r.sealed, problem: r.problem, exit_code: code, ...r.summary }, null, 2) + '\n');
    return code;
  }
  const s = r.summary;
  const lines = [`session log: ${file}`];
  if (r.status === 'valid') lines.push('status:      VALID: hash chain intact, log sealed');
  else lines.push(`status:      ${r.status.toUpperCase()}: ${r.problem}`);
  if (s.runId) {
    lines.push(`run:         ${s.runId}, ${s.startedAt ?? '?'} to ${s.endedAt ?? '(not sealed)'}`);
    const id = s.identity ?? {};
    lines.push(`identity:    ${id.kind === 'local' ? `local user ${String(id.user)} on ${String(id.host)} (unattested)` : JSON.stringify(id)}`);
    lines.push(`targets:     ${s.targets.join(', ') || '(none)'}`);
    lines.push(`records:     ${s.records}`);
    lines.push(`sessions:    ${s.sessions}`);
    lines.push(`commands:    ${s.commands} (${s.errors} failed, ${s.skipped} skipped)`);
    lines.push(`protocol errors: ${s.protocolErrors}`);
  }
  (r.status === 'valid' ? process.stdout : process.stderr).write(lines.join('\n') + '\n');
  return code;
}
