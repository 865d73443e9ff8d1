// `approve`, `deny` and `pending`: the local approver's side. They find the gateway holding a
// request through the control sockets running gateways announce in the user's runtime directory
// (or the one started with --state-dir), so a request id is all a person needs to type.
import fs from 'node:fs';
import { operands, parseArgs, UsageError } from './args.ts';
import { controlSocketPath, sendControlAt, type ControlReply, type ControlRequest } from '../daemon/control.ts';
import { announcedSockets, runtimeDir } from '../daemon/runtime-dir.ts';
import type { ApprovalRequest } from '../approval/broker.ts';
import { terminalJson, terminalOneLine, terminalText } from '../evidence/terminal-text.ts';

const where = `Options:
  --state-dir DIR   ask only the gateway started with \`gateway-action start --state-dir DIR\`
                    (default: every gateway of this OS user, found in $GATEWAY_ACTION_RUNTIME_DIR,
                    else $XDG_RUNTIME_DIR/gateway-action, else /tmp/gateway-action-<uid>)`;

export const approveHelp = `Usage: gateway-action approve ID [--state-dir DIR]

Approves the held command with request id ID: it runs at once. The session log records the
approval as yours (local:<user>) with the time.

${where}
`;

export const denyHelp = `Usage: gateway-action deny ID [--reason TEXT] [--state-dir DIR]

Denies the held command with request id ID: its client gets SQLSTATE 42501 naming the rule
and your reason. The session log records who denied it, when and why.

  --reason TEXT     why (shown to the client and recorded)
${where}
`;

export const pendingHelp = `Usage: gateway-action pending [--json] [--state-dir DIR]

Lists the commands waiting for approval: request id, target, rule, time left, and the command.

  --json            one JSON array of requests instead of the table
${where}
`;

const APPROVE_OPTIONS = { 'state-dir': { type: 'string' } } as const;
const DENY_OPTIONS = { ...APPROVE_OPTIONS, reason: { type: 'string' } } as const;

interface Gateway { socket: string; run: string; pending: ApprovalRequest[] }

/** The reachable gateways and what each holds; sockets of gateways that are gone are removed. */
async function gateways(stateDir: string | undefined): Promise<Gateway[]> {
  const sockets = stateDir ? [controlSocketPath(stateDir)] : announcedSockets();
  const found: Gateway[] = [];
  for (const socket of sockets) {
    let reply: ControlReply;
    try {
      reply = await sendControlAt(socket, { op: 'pending' }, 10_000, `no gateway is running for state directory ${stateDir ?? ''}`);
    } catch (e) {
      if (stateDir) throw e;
      if ((e as NodeJS.ErrnoException).code === 'ECONNREFUSED') fs.rmSync(socket, { force: true });
      continue;
    }
    if (reply.ok) found.push({ socket, run: String(reply.run), pending: reply.pending as ApprovalRequest[] });
  }
  if (found.length === 0 && !stateDir) throw new Error(`no gateway is running for this user (looked in ${runtimeDir()})`);
  return found;
}

async function answer(verb: 'approve' | 'deny', argv: string[]): Promise<number> {
  // approve takes no --reason: its spec lacks it, so parseArgs refuses one (values.reason stays unset).
  const args = parseArgs(argv, (verb === 'deny' ? DENY_OPTIONS : APPROVE_OPTIONS) as typeof DENY_OPTIONS, verb);
  if (args.values.help) return void process.stdout.write(verb === 'deny' ? denyHelp : approveHelp), 0;
  const ids = operands(args);
  if (ids.length !== 1) throw new UsageError(`${verb}: give exactly one request id (see gateway-action pending)`);
  const id = ids[0]!.trim().toLowerCase();
  const all = await gateways(args.values['state-dir']);
  const holder = all.find((g) => g.pending.some((r) => r.id === id));
  if (!holder) {
    const ids = all.flatMap((g) => g.pending.map((r) => r.id));
    throw new Error(`no command is waiting for approval with request id ${id}${ids.length ? ` (waiting: ${ids.join(', ')})` : ' (nothing is waiting)'}`);
  }
  const req: ControlRequest = verb === 'approve' ? { op: 'approve', id } : { op: 'deny', id, ...(args.values.reason ? { reason: args.values.reason } : {}) };
  const reply = await sendControlAt(holder.socket, req);
  if (!reply.ok) throw new Error(reply.error);
  const r = reply.request as ApprovalRequest;
  const t = terminalText;
  process.stdout.write(`${verb === 'approve' ? 'approved' : 'denied'} ${t(r.id)}: ${t(r.target)} ${t(r.session)} rule "${t(r.rule)}": ${terminalOneLine(r.text, 100)}\n`);
  return 0;
}

export const approve = (argv: string[]): Promise<number> => answer('approve', argv);
export const deny = (argv: string[]): Promise<number> => answer('deny', argv);

export async function pending(argv: string[]): Promise<number> {
  const args = parseArgs(argv, { json: { type: 'boolean' }, 'state-dir': { type: 'string' } }, 'pending');
  if (args.values.help) return void process.stdout.write(pendingHelp), 0;
  const extra = operands(args);
  if (extra.length > 0) throw new UsageError(`pending: unexpected argument "${extra[0]}"`);
  const requests = (await gateways(args.values['state-dir'])).flatMap((g) => g.pending);
  if (args.values.json) return void process.stdout.write(terminalJson(requests, 2) + '\n'), 0;
  if (requests.length === 0) return void process.stdout.write('nothing is waiting for approval\n'), 0;
  const t = terminalText;
  const rows = requests.map((r) => [t(r.id), t(r.target), t(r.rule), `${Math.max(0, Math.round((Date.parse(r.expiresAt) - Date.now()) / 1000))}s`, terminalOneLine(r.text, 80)]);
  const head = ['ID', 'TARGET', 'RULE', 'LEFT', 'COMMAND'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  for (const row of [head, ...rows]) process.stdout.write(row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join('  ') + '\n');
  return 0;
}
