// What every PostgreSQL benchmark starts from: a throwaway cluster with pgbench's tables (scale
// 10) owned by a password role, the gateway target that reaches it, and the policy blocks the
// runs add to it.
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { startCluster, type Cluster } from '../../gateway/demo/pg-cluster.ts';

export const TEN_RULES = `rules:
  - { name: no-unbounded-writes, when: { sql: [delete-without-where, update-without-where] }, action: deny }
  - { name: no-privileges, when: { sql: [grant, revoke, role] }, action: deny }
  - { name: ddl-on-main, when: { sql: [ddl], ref-not: refs/heads/main }, action: deny }
  - { name: no-programs, when: { sql: [copy-to-program, copy-from-program] }, action: deny }
  - { name: no-do, when: { sql: [do-block] }, action: deny }
  - { name: no-functions, when: { sql: [function-definition] }, action: deny }
  - { name: audit-read-only, when: { tables: ["audit.*"], sql: [insert, update, delete, truncate] }, action: deny }
  - { name: no-truncate, when: { sql: [truncate] }, action: deny }
  - { name: no-terminate, when: { text-matches: "pg_terminate_backend|pg_cancel_backend" }, action: deny }
  - { name: reads-ok, when: { sql: [select] }, action: allow }
default: allow
unclassified: deny
`;

// pgbench -S reads abalance: one masked column is in every result, so each row is rewritten.
export const MASKING = `masking:
  columns: [email, ssn, "customers.phone", "*.card_number", "pgbench_accounts.abalance"]
  detectors: [email, credit-card, iban, jwt, azure-storage-key, azure-sas-token, connection-string, private-key, github-token]
  apply-to: [client, log]
`;

export const CHECKPOINTS_OFF = 'session-log:\n  checkpoints: { every-records: 0, every: 0s }\n';

export interface BenchDatabase {
  cluster: Cluster;
  /** libpq environment for the server itself. */
  direct: Record<string, string>;
  /** A policy whose one target, app-db, is the database (password from APP_DB_PASSWORD). */
  target: string;
  /** The environment the gateway reads the target's password from. */
  secrets: Record<string, string>;
}

export async function benchDatabase(settings: Record<string, string> = {}): Promise<BenchDatabase> {
  const cluster = await startCluster({ settings: { max_connections: '200', ...settings } });
  const password = 'bench-password';
  cluster.sql(`CREATE ROLE deployer LOGIN PASSWORD '${password}'`);
  cluster.sql('CREATE DATABASE app OWNER deployer');
  const direct = { PGHOST: '127.0.0.1', PGPORT: String(cluster.port), PGUSER: 'deployer', PGPASSWORD: password, PGDATABASE: 'app', PGSSLMODE: 'disable' };
  const init = spawnSync(path.join(cluster.binDir, 'pgbench'), ['-i', '-q', '-s', '10'], { env: { ...process.env, ...direct }, encoding: 'utf8' });
  if (init.status !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`);
  const target = `version: 1\ntargets:\n  app-db:\n    kind: postgres\n    host: 127.0.0.1\n    port: ${cluster.port}\n    database: app\n    user: deployer\n    auth: { password-env: APP_DB_PASSWORD }\n    tls: disable\n`;
  return { cluster, direct, target, secrets: { APP_DB_PASSWORD: password } };
}
