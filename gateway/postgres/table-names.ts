// The catalog behind column masking: relations and their columns, user types, and what each
// view's columns are, read over a connection of the gateway's own (each read recorded in the
// log before it is sent) and bound to column identities (column-identity.ts). Read when the
// listener starts, again after every catalog change a session of this target completes (DDL,
// before the next result is planned where the timing allows, and masked safely where it does
// not), and again when a result names a relation or type the last read did not hold.
import type { Socket } from 'node:net';
import { serialize } from 'pg-protocol';
import { loginUpstream } from './upstream.ts';
import { MessageQueue } from './message-queue.ts';
import { B, decodeDataRow, decodeNotice } from './codec/backend.ts';
import { ColumnMasking, type CatalogSnapshot } from './column-identity.ts';
import { viewColumnOrigins } from './view-columns.ts';
import type { PostgresTarget } from './target.ts';
import type { Masker } from '../masking/engine.ts';

/** Six result sets, in this order: columns of relations, user types, view queries, view dependencies, inheritance,
 * names of functions and procedures, built in or not (computed-columns.ts). */
const CATALOG_QUERY = [
  `SELECT c.oid, n.nspname, c.relname, c.relkind, a.attnum, a.attname, a.atttypid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S', 'c') AND n.nspname NOT IN ('pg_catalog', 'information_schema')`,
  `SELECT t.oid, t.typrelid, t.typelem, t.typbasetype, coalesce(r.rngsubtype, m.rngtypid, 0) FROM pg_catalog.pg_type t LEFT JOIN pg_catalog.pg_range r ON r.rngtypid = t.oid LEFT JOIN pg_catalog.pg_range m ON m.rngmultitypid = t.oid WHERE t.oid >= 16384`,
  `SELECT r.ev_class, r.ev_action FROM pg_catalog.pg_rewrite r WHERE r.rulename = '_RETURN' AND r.ev_class >= 16384`,
  `SELECT DISTINCT r.ev_class, d.refobjid, d.refobjsubid FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid WHERE d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND r.rulename = '_RETURN'`,
  `SELECT i.inhrelid, i.inhparent FROM pg_catalog.pg_inherits i`,
  // Per function name: whether it is built in. Constructors of user range and multirange types
  // are built-in code (they read no table).
  `SELECT DISTINCT p.proname, n.nspname IN ('pg_catalog', 'information_schema') OR (l.lanname = 'internal' AND p.prosrc IN ('range_constructor2', 'range_constructor3', 'multirange_constructor0', 'multirange_constructor1', 'multirange_constructor2')) FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace JOIN pg_catalog.pg_language l ON l.oid = p.prolang`,
].join('; ');
/** Reads asked for by an unknown relation or type: at most one a second. */
const MIN_REFRESH_INTERVAL_MS = 1000;
const QUERY_TIMEOUT_MS = 15_000;
const MAX_CATALOG_VALUE = 256 * 1024 * 1024;

/**
 * Command tags of statements that cannot change a relation's, view's or type's definition.
 * Every other tag (CREATE, ALTER, DROP, DO, CALL, COMMIT PREPARED, and tags of later versions)
 * counts as a catalog change. `SELECT n` also ends CREATE TABLE AS and CREATE MATERIALIZED
 * VIEW: they make new relations, which stay masked whole until a read holds them.
 */
const CATALOG_KEEPING_TAGS = new Set(['SHOW', 'SET', 'RESET', 'BEGIN', 'START TRANSACTION', 'COMMIT', 'ROLLBACK', 'SAVEPOINT', 'RELEASE', 'LISTEN', 'UNLISTEN', 'NOTIFY', 'DECLARE CURSOR', 'CLOSE CURSOR', 'CLOSE CURSOR ALL', 'PREPARE', 'DEALLOCATE', 'DEALLOCATE ALL', 'DISCARD ALL', 'DISCARD PLANS', 'DISCARD SEQUENCES', 'DISCARD TEMP', 'EXPLAIN', 'VACUUM', 'ANALYZE', 'CHECKPOINT', 'LOCK TABLE', 'TRUNCATE TABLE', 'CLUSTER', 'REINDEX', 'REFRESH MATERIALIZED VIEW', 'SET CONSTRAINTS', 'PREPARE TRANSACTION']);
const COUNTED_TAG = /^(?:SELECT|INSERT|UPDATE|DELETE|MERGE|COPY|FETCH|MOVE)(?: \d+)+$/;

export function changesCatalog(tag: string): boolean {
  return !COUNTED_TAG.test(tag) && !CATALOG_KEEPING_TAGS.has(tag);
}

/** A table's `schema.table` name and its columns in order, with which are masked by identity. */
export interface TableColumns { name: string; columns: { name: string; typeOid: number; masked?: boolean }[] }

/** What a session tells the catalog so it knows when to read again (see backend-tracker.ts). */
export interface CatalogChanges {
  /** The server completed a statement with this command tag. */
  commandCompleted(session: object, tag: string): void;
  /** The server is ready for the next query; `I`: no transaction is open. */
  readyForQuery(session: object, transaction: string): void;
  sessionEnded(session: object): void;
  /**
   * After this session's catalog change was committed: resolves once the catalog has been read
   * since (or a read failed: masking then stays over-masked), so the session can hold its
   * ReadyForQuery until then and its next result is planned with the change. Null: nothing to wait for.
   */
  catalogRead(session: object): Promise<void> | null;
  /** The target's listener stops. */
  close(): void;
}

export class TableNames implements CatalogChanges {
  private readonly target: PostgresTarget;
  private readonly password: () => Promise<string>;
  private readonly onError: (message: string) => void;
  private readonly record: (query: string) => void;
  readonly masking: ColumnMasking;
  private loading: Promise<void> | null = null;
  private loadAgain = false;
  private lastLoad = 0;
  private retry: NodeJS.Timeout | null = null;
  /** Sessions that completed a catalog change in a transaction still open (others cannot see it yet). */
  private readonly changing = new Set<object>();
  /** Catalog changes committed, and how many of them the last successful read began after. */
  private changes = 0;
  private changesRead = 0;
  /** Per session, the change it committed last and nobody has waited for yet. */
  private readonly committed = new Map<object, number>();
  private readonly readers: { change: number; resolve: () => void }[] = [];
  private conn: { socket: Socket; q: MessageQueue } | null = null;

  /** `record` logs the gateway's own query before it is sent (and throws if it cannot). */
  constructor(target: PostgresTarget, masker: Masker, password: () => Promise<string>, record: (query: string) => void, onError: (message: string) => void) {
    this.record = record;
    this.target = target;
    this.password = password;
    this.onError = onError;
    this.masking = new ColumnMasking(masker, () => this.refresh());
  }

  commandCompleted(session: object, tag: string): void {
    if (!changesCatalog(tag)) return;
    this.changing.add(session);
    this.updateStale();
  }

  readyForQuery(session: object, transaction: string): void {
    if (transaction === 'I') this.settled(session);
  }

  sessionEnded(session: object): void {
    this.settled(session);
    this.committed.delete(session);
  }

  catalogRead(session: object): Promise<void> | null {
    const change = this.committed.get(session);
    if (change === undefined) return null;
    this.committed.delete(session);
    if (this.changesRead >= change) return null;
    return new Promise((resolve) => this.readers.push({ change, resolve }));
  }

  /** A session's catalog changes are committed (or rolled back): read the catalog again. */
  private settled(session: object): void {
    if (!this.changing.delete(session)) return;
    this.changes++;
    this.committed.set(session, this.changes);
    this.updateStale();
    void this.load();
  }

  private updateStale(): void {
    this.masking.stale = this.changing.size > 0 || this.changesRead < this.changes;
  }

  /** A table by name (`schema` null: the one in public, else any), with its columns in order. */
  byName(schema: string | null, table: string): TableColumns | undefined {
    let found: number | undefined;
    for (const [oid, t] of this.masking.relations) {
      if (t.name !== table || (schema !== null && t.schema !== schema)) continue;
      if (found === undefined || t.schema === 'public') found = oid;
    }
    const rel = found === undefined ? undefined : this.masking.relation(found);
    if (!rel) {
      this.refresh();
      return undefined;
    }
    // A relation read by name while a catalog change is unread may have been redefined (a view)
    // or had its columns renamed, dropped or added (a table, in a transaction still open: `COPY
    // customers (tel)` after renaming phone to tel): all of it is masked.
    const redefinable = this.masking.stale;
    return { name: `${rel.schema}.${rel.name}`, columns: [...rel.columns].sort((a, b) => a[0] - b[0]).map(([attnum, c]) => ({ ...c, masked: redefinable || rel.masked.has(attnum) })) };
  }

  /** Reads the catalog now (the listener's first read). */
  refreshNow(): Promise<void> {
    return this.load();
  }

  /** Reads the catalog again, at most once a second (an unknown relation or type was named). */
  refresh(): void {
    if (this.retry) return;
    const wait = this.lastLoad + MIN_REFRESH_INTERVAL_MS - Date.now();
    if (wait <= 0 && !this.loading) {
      void this.load();
      return;
    }
    this.retry = setTimeout(() => {
      this.retry = null;
      void this.load();
    }, Math.max(wait, 0) + (this.loading ? MIN_REFRESH_INTERVAL_MS : 0));
    this.retry.unref();
  }

  /** One read at a time; a read asked for during another starts when it ends. */
  private load(): Promise<void> {
    if (this.loading) {
      this.loadAgain = true;
      return this.loading;
    }
    const changes = this.changes;
    this.lastLoad = Date.now();
    this.loading = this.read()
      .then(
        (snapshot) => {
          this.masking.update(snapshot);
          this.changesRead = Math.max(this.changesRead, changes);
        },
        (e: Error) => this.onError(`cannot read the catalog of ${this.target.name}: ${e.message}; columns of relations and types it does not hold are masked whole`),
      )
      .finally(() => {
        this.loading = null;
        this.updateStale();
        // Sessions waiting for this read go on (after a failed read too: views stay masked whole).
        for (let i = this.readers.length - 1; i >= 0; i--) {
          const r = this.readers[i]!;
          if (r.change > changes) continue;
          this.readers.splice(i, 1);
          r.resolve();
        }
        if (this.loadAgain) {
          this.loadAgain = false;
          void this.load();
        }
      });
    return this.loading;
  }

  /**
   * One read over the gateway's own connection, kept open between reads (a login per DDL costs
   * more than the read). A kept connection the server has closed meanwhile (idle timeout,
   * restart) fails the read; it is tried once more on a new one.
   */
  private async read(): Promise<CatalogSnapshot> {
    const reused = this.conn !== null;
    try {
      return await this.readOnce();
    } catch (e) {
      this.close();
      if (!reused) throw e;
      return await this.readOnce();
    }
  }

  private async readOnce(): Promise<CatalogSnapshot> {
    this.record(CATALOG_QUERY);
    const { socket, q } = this.conn ?? (this.conn = await this.connect());
    socket.ref();
    try {
      socket.write(serialize.query(CATALOG_QUERY));
      const snapshot: CatalogSnapshot = { relations: new Map(), types: new Map(), viewOrigins: new Map(), viewDependencies: new Map(), parents: new Map(), routines: new Set(), builtInRoutines: new Set() };
      let set = 0;
      for (;;) {
        const m = await q.next(QUERY_TIMEOUT_MS, 'catalog rows');
        if (m.type === B.DataRow) addRow(snapshot, set, decodeDataRow(m.body).map((f) => f?.toString('utf8') ?? ''));
        else if (m.type === B.CommandComplete) set++;
        else if (m.type === B.ErrorResponse) throw new Error(decodeNotice(m.body).message);
        else if (m.type === B.ReadyForQuery) break;
      }
      if (set !== 6) throw new Error(`the catalog query returned ${set} results, not 6`);
      return snapshot;
    } finally {
      // Idle between reads, the connection does not keep the daemon running.
      socket.unref();
    }
  }

  private async connect(): Promise<{ socket: Socket; q: MessageQueue }> {
    const conn = await loginUpstream(this.target, await this.password(), new Map([['application_name', 'gateway-action catalog']]));
    // A view's stored query is one value: allow large ones (a value past this fails the read, and
    // masking stays over-masked).
    const q = new MessageQueue(conn.socket, `upstream ${this.target.name}`, { maxBody: MAX_CATALOG_VALUE });
    conn.socket.resume();
    return { socket: conn.socket, q };
  }

  /** Ends the kept connection (the listener stops; or a read failed on it). */
  close(): void {
    const conn = this.conn;
    this.conn = null;
    if (!conn) return;
    conn.socket.end(serialize.end());
    conn.socket.destroy();
  }
}

function addRow(s: CatalogSnapshot, set: number, f: string[]): void {
  switch (set) {
    case 0: {
      const [oid, schema, name, kind, attnum, column, type] = f as [string, string, string, string, string, string, string];
      let rel = s.relations.get(Number(oid));
      if (!rel) s.relations.set(Number(oid), (rel = { schema, name, kind, columns: new Map() }));
      rel.columns.set(Number(attnum), { name: column, typeOid: Number(type) });
      return;
    }
    case 1:
      s.types.set(Number(f[0]), { relation: Number(f[1]), element: Number(f[2]), base: Number(f[3]), range: Number(f[4]) });
      return;
    case 2:
      s.viewOrigins.set(Number(f[0]), viewColumnOrigins(f[1]!));
      return;
    case 3: {
      const view = Number(f[0]);
      const deps = s.viewDependencies.get(view) ?? [];
      deps.push({ table: Number(f[1]), column: Number(f[2]) });
      s.viewDependencies.set(view, deps);
      return;
    }
    case 4: {
      const child = Number(f[0]);
      s.parents.set(child, [...(s.parents.get(child) ?? []), Number(f[1])]);
      return;
    }
    case 5:
      (f[1] === 't' ? s.builtInRoutines : s.routines)?.add(f[0]!.toLowerCase());
      return;
  }
}

