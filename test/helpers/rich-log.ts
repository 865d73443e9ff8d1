// A realistic session log for the evidence tools: a real gateway daemon in front of a real
// cluster, psql sessions with allowed, failed, denied, approved, approval-denied and masked
// commands. Tests of replay and report read it as an auditor would.
import path from 'node:path';
import { appCluster, cli, policyFor, psql, psqlAsync, startGateway, tempDir, waitFor, type Cluster } from './gateway.ts';

export const RICH_RULES = `rules:
  - name: approve-destructive-ddl
    when: { sql: [drop, truncate] }
    action: approve
    reason: "DROP and TRUNCATE need a second pair of eyes"
  - name: no-unbounded-writes
    when: { sql: [delete-without-where, update-without-where] }
    action: deny
    reason: "add a WHERE clause"
default: allow
unclassified: deny
approvals: { timeout: 10m }
masking:
  columns: ["*.email"]
  detectors: [credit-card]
`;

export interface RichLog { log: string; cluster: Cluster; approvalId: string; deniedId: string }

/** Writes the log and returns its path; the cluster is left running for the caller to stop. */
export async function writeRichLog(extraEnv: Record<string, string> = {}): Promise<RichLog> {
  process.env.GATEWAY_ACTION_RUNTIME_DIR ??= path.join(tempDir('gw-rich-'), 'run');
  const cluster = await appCluster();
  cluster.sql(`CREATE TABLE customers (id int PRIMARY KEY, name text, email text, card text);
    ALTER TABLE customers OWNER TO deployer;
    INSERT INTO customers VALUES (1, 'Ada', 'ada@example.com', '4111 1111 1111 1111'), (2, 'Bob', 'bob@example.com', 'none');
    CREATE TABLE scratch (id int); ALTER TABLE scratch OWNER TO deployer;
    CREATE TABLE old_audit (id int); ALTER TABLE old_audit OWNER TO deployer;`, 'app');
  const gw = startGateway(policyFor(cluster) + RICH_RULES, 'deployer-pw', extraEnv);
  try {
    const first = psql(gw.env, ['-c', 'SELECT id, name, email, card FROM customers ORDER BY id', '-c', "UPDATE customers SET name = 'Ada L.' WHERE id = 1", '-c', 'SELECT * FROM no_such_table']);
    if (!/Ada/.test(first.stdout)) throw new Error(`unexpected psql output: ${first.stdout}${first.stderr}`);
    psql(gw.env, ['-c', 'DELETE FROM scratch', '-c', 'SELECT count(*) FROM scratch']);
    const approved = psqlAsync(gw.env, ['-c', 'DROP TABLE old_audit']);
    const approvalId = (await waitFor(() => /request ([a-z0-9]{8})/.exec(approved.output.stderr()), 'the approval NOTICE'))![1]!;
    cli(['approve', approvalId]);
    await approved.done;
    const denied = psqlAsync(gw.env, ['-c', 'TRUNCATE customers']);
    const deniedId = (await waitFor(() => /request ([a-z0-9]{8})/.exec(denied.output.stderr()), 'the approval NOTICE'))![1]!;
    cli(['deny', deniedId, '--reason', 'customers stay']);
    await denied.done;
    return { log: gw.stop(), cluster, approvalId, deniedId };
  } catch (e) {
    try {
      gw.stop();
    } finally {
      cluster.stop();
    }
    throw e;
  }
}
