// node-postgres, typed for what the tests use (the package ships no type declarations).
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';

export interface PgError extends Error { code?: string; severity?: string }
export interface QueryResult { rows: Record<string, unknown>[]; rowCount: number | null; command: string }
export interface QueryConfig { name?: string; text: string; values?: unknown[]; binary?: boolean }
export interface PgClient {
  connect(): Promise<void>;
  query(text: string, values?: unknown[]): Promise<QueryResult>;
  query(config: QueryConfig): Promise<QueryResult>;
  end(): Promise<void>;
  on(event: 'error', fn: (e: PgError) => void): unknown;
  on(event: 'end', fn: () => void): unknown;
  connection: { stream: Socket };
}

const pg = createRequire(import.meta.url)('pg') as { Client: new (config: Record<string, unknown>) => PgClient };

/** A client for a connection URL or PG* style settings (not yet connected). */
export function newPgClient(config: { connectionString: string; application_name?: string } | Record<string, string>): PgClient {
  if ('connectionString' in config) return new pg.Client(config);
  const env = config as Record<string, string>;
  return new pg.Client({ host: env.PGHOST, port: Number(env.PGPORT), user: env.PGUSER, password: env.PGPASSWORD, database: env.PGDATABASE, ssl: false });
}
