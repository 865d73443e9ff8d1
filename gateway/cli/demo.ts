// The embedded demo: what the gateway is for, in about ten seconds and with no configuration.
// A throwaway PostgreSQL with customers (emails, card numbers) and orders; a policy with rules
// and masking; then real psql through the gateway: a masked query, a DELETE without WHERE
// refused, a DROP held until the demo approves it with the real `gateway-action approve` verb
// (a separate process, as a person in another terminal would), and the session log verified,
// replayed and written out as an HTML report next to it.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from './args.ts';
import { relaunch } from './run.ts';
import { verificationText } from './verify.ts';
import { parsePolicy, RENDERERS } from '../adapters.ts';
import { Gateway } from '../daemon/gateway.ts';
import { runIdentity } from '../identity/github-oidc.ts';
import { startCluster } from '../demo/pg-cluster.ts';
import { BASELINE_WASM_FLAG } from '../postgres/pg-parser.ts';
import { verifyLog } from '../evidence/verification.ts';
import { readTimeline } from '../evidence/timeline.ts';
import { renderReplay, wantsColor } from '../evidence/replay-text.ts';
import { renderReport } from '../evidence/report-html.ts';
import { fileSha256 } from '../evidence/log-lines.ts';
import { terminalText } from '../evidence/terminal-text.ts';

export const help = `Usage: gateway-action demo [--log-dir DIR]

Shows what the gateway does, in about ten seconds: starts a throwaway local PostgreSQL (needs
the PostgreSQL server binaries: apt-get install postgresql) with customers and orders, puts the
gateway in front of it with a policy of rules and masking, and runs real psql through it:

  1. a query whose emails and card numbers reach psql masked
  2. a DELETE without WHERE, refused by a rule (SQLSTATE 42501 naming the rule)
  3. a DROP TABLE held for approval, then approved with \`gateway-action approve\`
  4. the session log verified, replayed, and written as an HTML report next to it

No GitHub, no Azure, nothing to configure.

Options:
  --log-dir DIR   where the session log and the report are written (default ./gateway-logs)
`;

const SEED = `
CREATE ROLE deployer LOGIN PASSWORD :'pw';
CREATE DATABASE app OWNER deployer;
\\c app
SET ROLE deployer;
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text NOT NULL, card_number text);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers, amount numeric(10,2));
CREATE TABLE orders_2019 (LIKE orders);
INSERT INTO customers VALUES
  (1, 'Ada Lovelace', 'ada@example.com', '4111 1111 1111 1111'),
  (2, 'Grace Hopper', 'grace@example.com', '5555 5555 5555 4444'),
  (3, 'Edsger Dijkstra', 'edsger@example.com', '3782 822463 10005');
INSERT INTO orders SELECT i, 1 + (i % 3), (i * 7.5)::numeric FROM generate_series(1, 12) i;
`;

/** The policy the demo runs under (the port is filled in). */
export function demoPolicy(port: number): string {
  return `version: 1
targets:
  app-db:
    kind: postgres
    host: 127.0.0.1
    port: ${port}
    database: app
    user: deployer
    auth: { password-env: APP_DB_PASSWORD }
    tls: disable
rules:
  - name: no-unbounded-deletes
    when: { sql: [delete-without-where, update-without-where] }
    action: deny
    reason: "a DELETE or UPDATE without WHERE changes every row"
  - name: drops-need-approval
    when: { sql: [drop, truncate] }
    action: approve
    reason: "dropping or emptying a table needs a second pair of eyes"
default: allow
unclassified: deny
approvals: { timeout: 2m }
masking:
  columns: ["customers.email"]
  detectors: [credit-card]
`;
}

const MASKED_QUERY = 'SELECT name, email, card_number FROM customers ORDER BY id';
const UNBOUNDED_DELETE = 'DELETE FROM orders';
const HELD_DROP = 'DROP TABLE orders_2019';

export async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv, { 'log-dir': { type: 'string' } }, 'demo');
  if (args.values.help) return void process.stdout.write(help), 0;
  // The policy has rules: the SQL parser loads, and with it the flag that bounds its memory.
  if (!process.execArgv.includes(BASELINE_WASM_FLAG)) return relaunch([BASELINE_WASM_FLAG, ...process.execArgv, process.argv[1]!, 'demo', ...argv]);
  const logDir = args.values['log-dir'] ?? 'gateway-logs';
  const color = wantsColor(process.stdout);
  const say = (s = ''): void => void process.stdout.write(s + '\n');
  const heading = (n: number, title: string, explain: string): void => {
    say(`\n${color ? '\x1b[1m' : ''}── ${n}. ${title} ${'─'.repeat(Math.max(3, 72 - title.length))}${color ? '\x1b[0m' : ''}`);
    say(explain);
  };
  // `approve` runs as its own process, as the person answering would run it.
  const cli = [process.argv[1]!];
  const shown = 'gateway-action';

  say('gateway-action demo: an access gateway between a pipeline and its database. Every command');
  say('is decided by a policy, recorded in a signed session log before it runs, and masked on the');
  say('way back. Each step below is real psql talking to a real PostgreSQL through the gateway.');

  heading(1, 'A throwaway PostgreSQL', 'Tables customers (names, emails, card numbers), orders and orders_2019.');
  const cluster = await startCluster();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-demo-'));
  // Approvals are answered through a private runtime directory: this demo's gateway only.
  const runtime = path.join(work, 'run');
  process.env.GATEWAY_ACTION_RUNTIME_DIR = runtime;
  let gw: Gateway | null = null;
  try {
    const password = randomBytes(18).toString('base64url');
    const seed = spawnSync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-v', `pw=${password}`, '-h', cluster.socketDir, '-p', String(cluster.port), '-U', 'postgres', '-d', 'postgres'], { input: SEED, encoding: 'utf8' });
    if (seed.status !== 0) throw new Error(`seeding the demo database failed: ${seed.stderr}`);
    say(`PostgreSQL is up on 127.0.0.1:${cluster.port}; only the gateway knows the password of its user deployer.`);

    heading(2, 'The policy', 'Rules decide each statement (the first that matches wins); masking hides data in results\nand in the log. This is the whole configuration (gateway.yml):');
    const policyText = demoPolicy(cluster.port);
    const policyFile = path.join(work, 'gateway.yml');
    fs.writeFileSync(policyFile, policyText);
    say(indent(policyText.trimEnd()));

    gw = await Gateway.start({ policy: parsePolicy(policyText, policyFile), logDir, identity: runIdentity({}), claims: {}, env: { APP_DB_PASSWORD: password }, runnerEnv: {} });
    const conn = gw.exportConnection(work).env;
    const env: NodeJS.ProcessEnv = { ...process.env, ...conn, PSQLRC: '/dev/null', PGAPPNAME: 'psql' };
    say(`\nThe gateway listens on 127.0.0.1:${conn.PGPORT}. The pipeline gets PGHOST, PGPORT, PGUSER and a password that`);
    say('is valid for this run only; the database password never leaves the gateway.');

    heading(3, 'A query with personal data: masked', 'The column customers.email is masked by name, card numbers by the credit-card detector\n(wherever they appear). psql receives, and the log records, only the masked values:');
    await showPsql(say, ['-c', MASKED_QUERY], env);

    heading(4, 'A DELETE without WHERE: denied', 'The rule no-unbounded-deletes refuses it before it reaches the database: psql gets\nSQLSTATE 42501 naming the rule, and the orders are untouched.');
    await showPsql(say, ['-c', UNBOUNDED_DELETE], env);

    heading(5, 'A DROP TABLE: held until someone approves', 'The rule drops-need-approval holds the statement; psql waits with a NOTICE naming the\nrequest. In a workflow the request is a comment on the pull request; here, as in another\nterminal, `gateway-action approve ID` answers it.');
    say(`$ psql -c ${shellQuote(HELD_DROP)}`);
    const held = startPsql(['-v', 'ON_ERROR_STOP=1', '-c', HELD_DROP], env);
    const id = await held.requestId;
    if (!id) {
      const r = await held.done;
      throw new Error(`the DROP was not held for approval: ${r.stdout}${r.stderr}`);
    }
    say(indent(held.stderrSoFar().trimEnd()));
    say(`\n$ ${shown} approve ${id}`);
    const approval = await runProcess(process.execPath, [...cli, 'approve', id], { ...process.env, GATEWAY_ACTION_RUNTIME_DIR: runtime });
    say(indent((approval.stdout + approval.stderr).trimEnd()));
    if (approval.status !== 0) throw new Error(`gateway-action approve ${id} failed`);
    const dropped = await held.done;
    say(`\npsql goes on once approved:`);
    say(indent(dropped.stdout.trimEnd() || '(no output)') + (dropped.status === 0 ? '' : `\n  (psql exited ${dropped.status})`));

    const { log, sealError } = await gw.stop('demo finished');
    gw = null;
    if (sealError) throw new Error(`the session log was not sealed: ${sealError}`);
    const logShown = path.relative(process.cwd(), log) || log;

    heading(6, 'The session log, verified', 'Every command above was recorded before it ran, in a hash chain with signed checkpoints,\nsealed when the gateway stopped. Anyone can check it:');
    const v = await verifyLog(log);
    say(`$ ${shown} verify ${logShown}`);
    say(indent(verificationText(v).trimEnd()));

    heading(7, 'The session log, replayed', 'What ran, what was refused, who approved what, and what was masked:');
    say(`$ ${shown} replay ${logShown}`);
    say(indent(renderReplay(await readTimeline(log), RENDERERS, { color }).trimEnd()));

    heading(8, 'A report for auditors', 'A self-contained HTML page (no network needed) with the verdict, totals and every command:');
    const report = path.join(path.dirname(log), `${path.basename(log, '.jsonl')}.html`);
    say(`$ ${shown} report ${logShown} -o ${path.relative(process.cwd(), report) || report}`);
    fs.writeFileSync(report, renderReport(v, await readTimeline(log), RENDERERS, { logSha256: await fileSha256(log) }), { mode: 0o644 });

    say('');
    say(`Session log: ${terminalText(path.resolve(log))}`);
    say(`HTML report: ${terminalText(path.resolve(report))}`);
    say(`Verification: ${v.status === 'valid' ? 'VALID' : v.status.toUpperCase()}`);
    say(`\nNext: README.md puts a policy like this one in a workflow; \`${shown} run --policy FILE -- COMMAND\``);
    say('runs any command of yours through the gateway on this machine.');
    return v.status === 'valid' ? 0 : 1;
  } finally {
    if (gw) await gw.stop('demo failed');
    cluster.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

interface Finished { status: number; stdout: string; stderr: string }

/** Runs psql and prints the command and what psql printed, indented. */
async function showPsql(say: (s: string) => void, args: string[], env: NodeJS.ProcessEnv): Promise<Finished> {
  say(`$ psql ${args.map(shellQuote).join(' ')}`);
  const r = await startPsql(args, env).done;
  say(indent((r.stdout + r.stderr).trimEnd()) + (r.status === 0 ? '' : `\n  (psql exited ${r.status})`));
  return r;
}

/** psql, asynchronous: the gateway serving it runs in this same process. */
function startPsql(args: string[], env: NodeJS.ProcessEnv): { done: Promise<Finished>; requestId: Promise<string | null>; stderrSoFar: () => string } {
  const child = spawn('psql', ['-X', ...args], { env });
  let stdout = '';
  let stderr = '';
  let found: (id: string | null) => void = () => undefined;
  const requestId = new Promise<string | null>((resolve) => (found = resolve));
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => {
    stderr += d;
    // Once the HINT naming the verbs is in, the whole NOTICE is.
    const m = /holds this command as request ([a-z0-9]+)[\s\S]*HINT:.*\n/.exec(stderr);
    if (m) found(m[1]!);
  });
  const done = new Promise<Finished>((resolve) => child.on('close', (code) => {
    found(null);
    resolve({ status: code ?? 1, stdout, stderr });
  }));
  return { done, requestId, stderrSoFar: () => stderr };
}

function runProcess(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<Finished> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('close', (code) => resolve({ status: code ?? 1, stdout, stderr }));
  });
}

const indent = (s: string): string => s.split('\n').map((l) => '  ' + l).join('\n');
const shellQuote = (a: string): string => (/^[\w./=:-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
