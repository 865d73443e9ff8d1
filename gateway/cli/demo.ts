// The embedded demo: a throwaway PostgreSQL with a small shop schema, a scripted pipeline run
// through the gateway with real psql, then the verified session log. No configuration needed.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from './args.ts';
import { parsePolicy } from '../config/policy.ts';
import { Gateway } from '../daemon/gateway.ts';
import { runIdentity } from '../identity/github-oidc.ts';
import { startCluster } from '../demo/pg-cluster.ts';
import { verifyChainText } from '../evidence/log-verifier.ts';
import { readTimeline } from '../evidence/timeline.ts';
import { renderReplay, wantsColor } from '../evidence/replay-text.ts';

export const help = `Usage: gateway-action demo [--log-dir DIR]

Starts a throwaway local PostgreSQL (needs the PostgreSQL server binaries: apt-get install
postgresql), seeds a customers and an orders table, runs a short pipeline through the gateway
with real psql, verifies the session log and shows what it recorded. No GitHub, no Azure.

Options:
  --log-dir DIR   where the session log is written (default ./gateway-logs)
`;

const SEED = `
CREATE ROLE deployer LOGIN PASSWORD :'pw';
CREATE DATABASE app OWNER deployer;
\\c app
SET ROLE deployer;
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text NOT NULL);
CREATE TABLE orders (id serial PRIMARY KEY, customer_id int REFERENCES customers, amount numeric(10,2), placed_at timestamptz DEFAULT now());
INSERT INTO customers (name, email) VALUES
  ('Ada Lovelace', 'ada@example.com'), ('Grace Hopper', 'grace@example.com'),
  ('Edsger Dijkstra', 'edsger@example.com'), ('Barbara Liskov', 'barbara@example.com');
INSERT INTO orders (customer_id, amount) SELECT 1 + (i % 4), (i * 7.5)::numeric FROM generate_series(1, 12) i;
`;

const PIPELINE: { title: string; args: string[] }[] = [
  { title: 'Check connectivity', args: ['-c', 'SELECT current_user, current_database()'] },
  { title: 'Run a migration', args: ['-v', 'ON_ERROR_STOP=1', '-c', "ALTER TABLE orders ADD COLUMN status text DEFAULT 'new'", '-c', "UPDATE orders SET status = 'shipped' WHERE placed_at < now()"] },
  { title: 'Report revenue per customer', args: ['-c', 'SELECT c.name, sum(o.amount) AS revenue FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.name ORDER BY revenue DESC'] },
  { title: 'A mistake (expected to fail)', args: ['-c', 'SELECT * FROM invoices'] },
  { title: 'Export orders as CSV', args: ['-c', '\\copy (SELECT id, customer_id, amount FROM orders ORDER BY id LIMIT 3) TO STDOUT WITH CSV HEADER'] },
];

export async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv, { 'log-dir': 'string' }, 'demo');
  if (args.options.help) return void process.stdout.write(help), 0;
  const logDir = (args.options['log-dir'] as string) ?? 'gateway-logs';
  const say = (s: string): void => void process.stdout.write(s + '\n');

  say('Starting a throwaway PostgreSQL cluster...');
  const cluster = await startCluster();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-demo-'));
  try {
    const password = randomBytes(18).toString('base64url');
    const seed = spawnSync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-v', `pw=${password}`, '-h', cluster.socketDir, '-p', String(cluster.port), '-U', 'postgres', '-d', 'postgres'], { input: SEED, encoding: 'utf8' });
    if (seed.status !== 0) throw new Error(`seeding the demo database failed: ${seed.stderr}`);
    const policyText = `version: 1\ntargets:\n  app-db:\n    kind: postgres\n    host: 127.0.0.1\n    port: ${cluster.port}\n    database: app\n    user: deployer\n    auth: { password-env: APP_DB_PASSWORD }\n    tls: disable\n`;
    const policyFile = path.join(work, 'gateway.yml');
    fs.writeFileSync(policyFile, policyText);
    say(`PostgreSQL ${cluster.port} is up with tables customers and orders. Policy:\n\n${indent(policyText)}`);

    const gw = await Gateway.start({ policy: parsePolicy(policyText, policyFile), logDir, identity: runIdentity(), env: { APP_DB_PASSWORD: password } });
    const conn = gw.connectionEnv();
    say(`Gateway listening; the pipeline gets PGHOST=${conn.PGHOST} PGPORT=${conn.PGPORT} PGUSER=${conn.PGUSER} and a per-run PGPASSWORD.\n`);
    const env: NodeJS.ProcessEnv = { ...process.env, ...conn, PSQLRC: '/dev/null' };
    delete env.APP_DB_PASSWORD;
    for (const [i, step] of PIPELINE.entries()) {
      say(`── step ${i + 1}: ${step.title}\n$ psql ${step.args.map(shellQuote).join(' ')}`);
      const r = await runPsql(step.args, env);
      say(indent((r.stdout + r.stderr).trimEnd()) + (r.status === 0 ? '' : `\n  (psql exited ${r.status})`) + '\n');
    }
    const { log } = await gw.stop('demo finished');
    const result = verifyChainText(fs.readFileSync(log, 'utf8'));
    say('── What the session log recorded (gateway-action replay):');
    say(renderReplay(await readTimeline(log), { color: wantsColor(process.stdout) }).trimEnd());
    const s = result.totals;
    say(`\nSession log: ${path.resolve(log)}`);
    say(`Verification: ${result.status === 'valid' ? 'VALID (hash chain intact, checkpoints signed, sealed)' : result.status.toUpperCase() + ': ' + result.problem}; ${s.records} records, ${s.sessions} sessions, ${s.commands} commands, ${s.errors} failed.`);
    const cli = `node ${path.relative(process.cwd(), process.argv[1]!)}`;
    say(`Check it yourself: ${cli} verify ${path.relative(process.cwd(), log)}`);
    say(`An HTML report:    ${cli} report ${path.relative(process.cwd(), log)} -o report.html`);
    return result.status === 'valid' ? 0 : 1;
  } finally {
    cluster.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

function runPsql(args: string[], env: NodeJS.ProcessEnv): Promise<{ status: number; stdout: string; stderr: string }> {
  // Asynchronous: the gateway serving this psql runs in this same process.
  return new Promise((resolve) => {
    const child = spawn('psql', ['-X', ...args], { env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('close', (code) => resolve({ status: code ?? 1, stdout, stderr }));
  });
}

const indent = (s: string): string => s.split('\n').map((l) => '  ' + l).join('\n');
const shellQuote = (s: string): string => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
