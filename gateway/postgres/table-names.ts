// Table OIDs to `schema.table` names and column numbers to column names, for masking patterns
// that name a table and for columns renamed by an alias (RowDescription carries only numbers). Read from the catalog over a connection of the gateway's own, on first
// need and again when an unknown OID shows up (a table created since); until a name is known,
// masking treats the column as possibly that table's (over-masking is the safe mistake).
import { serialize } from 'pg-protocol';
import { loginUpstream } from './upstream.ts';
import { MessageQueue } from './message-queue.ts';
import { B, decodeDataRow, decodeNotice } from './codec/backend.ts';
import type { PostgresTarget } from '../config/policy.ts';

const CATALOG_QUERY = `SELECT c.oid, n.nspname, c.relname, a.attnum, a.attname, a.atttypid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname NOT IN ('pg_catalog', 'information_schema')`;
const MIN_REFRESH_INTERVAL_MS = 1000;

interface Table { name: string; schema: string; table: string; columns: Map<number, { name: string; typeOid: number }> }
/** A table's `schema.table` name and its columns in order. */
export interface TableColumns { name: string; columns: { name: string; typeOid: number }[] }
const QUERY_TIMEOUT_MS = 15_000;

export class TableNames {
  private readonly target: PostgresTarget;
  private readonly password: () => Promise<string>;
  private readonly onError: (message: string) => void;
  private readonly record: (query: string) => void;
  private names = new Map<number, Table>();
  private loading: Promise<void> | null = null;
  private lastLoad = 0;

  /** `record` logs the gateway's own query before it is sent (and throws if it cannot). */
  constructor(target: PostgresTarget, password: () => Promise<string>, record: (query: string) => void, onError: (message: string) => void) {
    this.record = record;
    this.target = target;
    this.password = password;
    this.onError = onError;
  }

  /** Names, or undefined while unknown (a refresh is then started). */
  readonly lookup = {
    table: (oid: number): string | undefined => {
      const t = this.names.get(oid);
      if (t === undefined) void this.refresh();
      return t?.name;
    },
    column: (oid: number, attnum: number): string | undefined => {
      const c = this.names.get(oid)?.columns.get(attnum);
      if (c === undefined) void this.refresh();
      return c?.name;
    },
  };

  /** A table by name (`schema` null: the one in public, else any), with its columns in order. */
  byName(schema: string | null, table: string): TableColumns | undefined {
    let found: Table | undefined;
    for (const t of this.names.values()) {
      if (t.table !== table || (schema !== null && t.schema !== schema)) continue;
      if (!found || t.schema === 'public') found = t;
    }
    if (!found) {
      void this.refresh();
      return undefined;
    }
    return { name: found.name, columns: [...found.columns].sort((a, b) => a[0] - b[0]).map(([, c]) => c) };
  }

  /** Reloads the catalog's table names (at most one load at a time, and one per second). */
  refresh(): Promise<void> {
    if (this.loading) return this.loading;
    if (Date.now() - this.lastLoad < MIN_REFRESH_INTERVAL_MS) return Promise.resolve();
    this.lastLoad = Date.now();
    this.loading = this.load()
      .catch((e: Error) => this.onError(`cannot read table names from ${this.target.name}: ${e.message}; columns named by masking patterns with a table are masked in every table`))
      .finally(() => {
        this.loading = null;
      });
    return this.loading;
  }

  private async load(): Promise<void> {
    this.record(CATALOG_QUERY);
    const conn = await loginUpstream(this.target, await this.password(), new Map([['application_name', 'gateway-action catalog']]));
    const q = new MessageQueue(conn.socket, `upstream ${this.target.name}`);
    conn.socket.resume();
    try {
      conn.socket.write(serialize.query(CATALOG_QUERY));
      const names = new Map<number, Table>();
      for (;;) {
        const m = await q.next(QUERY_TIMEOUT_MS, 'catalog rows');
        if (m.type === B.DataRow) {
          const [oid, schema, table, attnum, column, type] = decodeDataRow(m.body).map((f) => f?.toString('utf8') ?? '');
          let t = names.get(Number(oid));
          if (!t) names.set(Number(oid), (t = { name: `${schema}.${table}`, schema: schema!, table: table!, columns: new Map() }));
          t.columns.set(Number(attnum), { name: column!, typeOid: Number(type) });
        } else if (m.type === B.ErrorResponse) throw new Error(decodeNotice(m.body).message);
        else if (m.type === B.ReadyForQuery) break;
      }
      this.names = names;
    } finally {
      conn.socket.end(serialize.end());
      conn.socket.destroy();
    }
  }
}
