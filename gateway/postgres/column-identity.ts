// Column masking bound to what a column IS, not what it is called today. Masking patterns name
// columns (`phone`, `customers.phone`); each catalog read binds those names to column identities
// (table OID + column number, the numbers RowDescription carries) and the identities stay
// masked for the whole run: `ALTER TABLE customers RENAME COLUMN phone TO tel` or `RENAME TO
// clients` changes names, never the identity. From the masked base columns it follows:
// - views and materialized views: a view column that is a masked column (through views of
//   views) is masked; one that is an expression, or that the view's query does not resolve, is
//   masked whole when the view depends on any masked column (over-masking is the safe mistake);
// - row types: a whole-row value of a relation with a masked column (`SELECT c FROM customers
//   c`), arrays and domains of such types, and columns of those types are masked whole.
// Pure: a catalog snapshot and the masker in, the masked sets grown (never shrunk) out.
import type { Masker } from '../masking/engine.ts';
import type { ColumnOrigin } from './view-columns.ts';
import type { ComputedCatalog } from './computed-columns.ts';

export interface CatalogRelation {
  schema: string;
  name: string;
  /** pg_class.relkind: r table, p partitioned, v view, m materialized view, f foreign table. */
  kind: string;
  columns: Map<number, { name: string; typeOid: number }>;
}

/** A user-defined type (OID >= 16384): the relation of a row type, an array's element, a
 * domain's base, a range's subtype (a multirange's range). */
export interface CatalogType { relation: number; element: number; base: number; range: number }

export interface CatalogSnapshot {
  relations: Map<number, CatalogRelation>;
  types: Map<number, CatalogType>;
  /** Per view or materialized view: its columns' origins; null when its query could not be read. */
  viewOrigins: Map<number, Map<number, ColumnOrigin> | null>;
  /** Per view or materialized view: the relations and columns its query reads (column 0: the whole row). */
  viewDependencies: Map<number, ColumnOrigin[]>;
  /** Per partition or inheriting table: its parents (pg_inherits). */
  parents: Map<number, number[]>;
  /** Names (lower case) of functions and procedures outside pg_catalog and information_schema. */
  routines?: Set<string>;
  /** Names (lower case) of the built-in ones (a name in both is a user's too). */
  builtInRoutines?: Set<string>;
}

/** OIDs from here on are not built in: a type above it the catalog has not listed is new. */
export const FIRST_USER_OID = 16384;
/** `anyarray`: statistics views (pg_stats, pg_statistic) hold sample values of every column in it. */
const ANYARRAY = 2277;
/** Columns of the built-in statistics views that hold sample values of other columns. */
const STATISTICS_VALUES = new Set(['most_common_vals', 'most_common_elems', 'histogram_bounds']);
/** Built-in relations holding those sample values. */
const STATISTICS_RELATIONS = /^pg_stat(?:s|s_ext|s_ext_exprs|istic|istic_ext_data)$/i;
const BUILT_IN_SCHEMAS = new Set(['pg_catalog', 'information_schema']);

/** Everything masked so far in this run. Sets only grow: once masked, masked for the run. */
export class MaskedIdentities {
  /** `oid:attnum` of masked columns. */
  readonly columns = new Set<string>();
  /** Relations with a masked column: their whole-row values are masked. */
  readonly relations = new Set<number>();
  /** Types whose values may carry a masked column (row types, their arrays, domains and ranges). */
  readonly types = new Set<number>();
  /** Every name a masked column of a table or composite type has had in this run: a function's
   * result columns (`SELECT * FROM f()` of `SETOF customers`) are computed, known only by name. */
  readonly names = new Set<string>();

  column(table: number, attnum: number): boolean {
    return attnum === 0 ? this.relations.has(table) : this.columns.has(`${table}:${attnum}`);
  }

  /** Binds the masking patterns to the identities of this snapshot, adding to what is masked. */
  bind(snapshot: CatalogSnapshot, masker: Masker): void {
    const add = (table: number, attnum: number): boolean => {
      const key = `${table}:${attnum}`;
      if (this.columns.has(key)) return false;
      this.columns.add(key);
      return true;
    };
    for (const [oid, rel] of snapshot.relations) {
      for (const [attnum, col] of rel.columns) if (masker.columnMasked(col.name, `${rel.schema}.${rel.name}`)) add(oid, attnum);
    }
    const dependsOnMasked = (view: number): boolean => (snapshot.viewDependencies.get(view) ?? []).some((d) => d.table !== view && this.column(d.table, d.column));
    // Views of views and types of types: repeat until nothing new is masked.
    for (let changed = true; changed; ) {
      changed = false;
      for (const [oid, rel] of snapshot.relations) {
        for (const [attnum, col] of rel.columns) if (this.types.has(col.typeOid) && add(oid, attnum)) changed = true;
        if (!snapshot.viewOrigins.has(oid)) continue;
        const origins = snapshot.viewOrigins.get(oid) ?? null;
        for (const attnum of rel.columns.keys()) {
          const origin = origins?.get(attnum);
          const masked = origin && origin.table !== 0 ? this.column(origin.table, origin.column) : dependsOnMasked(oid);
          if (masked && add(oid, attnum)) changed = true;
        }
      }
      // A partition or inheriting table shows its columns through its parent, and the parent's
      // columns are its children's (matched by name, as PostgreSQL matches them): both ways.
      for (const [child, parents] of snapshot.parents) {
        const c = snapshot.relations.get(child);
        for (const parent of parents) {
          const p = snapshot.relations.get(parent);
          if (!c || !p) continue;
          for (const [ca, ccol] of c.columns) {
            for (const [pa, pcol] of p.columns) {
              if (ccol.name !== pcol.name) continue;
              if (this.column(parent, pa) && add(child, ca)) changed = true;
              if (this.column(child, ca) && add(parent, pa)) changed = true;
            }
          }
        }
      }
      for (const key of this.columns) {
        const table = Number(key.slice(0, key.indexOf(':')));
        if (!this.relations.has(table)) {
          this.relations.add(table);
          changed = true;
        }
      }
      for (const [oid, t] of snapshot.types) {
        if (this.types.has(oid)) continue;
        if ((t.relation !== 0 && this.relations.has(t.relation)) || this.types.has(t.element) || this.types.has(t.base) || this.types.has(t.range)) {
          this.types.add(oid);
          changed = true;
        }
      }
    }
    // Views are left out: their unresolved columns (`id` of a UNION) would mask every `id`.
    for (const [oid, rel] of snapshot.relations) {
      if (rel.kind === 'v' || rel.kind === 'm') continue;
      for (const [attnum, col] of rel.columns) if (this.columns.has(`${oid}:${attnum}`)) this.names.add(col.name);
    }
  }
}

/** A result column as RowDescription describes it. */
export interface ResultColumn { name: string; tableOid: number; attnum: number; typeOid: number }

/**
 * Decides, per result column, whether it is masked: by its result name (an alias named like a
 * masked column), by the identity behind it, or by its type. `settled` false: the catalog could
 * not settle it (a relation, column or type it has not read yet, or a catalog change not read
 * yet), so the column was masked whole if it could be masked at all, and the plan is not reused.
 */
export class ColumnMasking implements ComputedCatalog {
  private readonly masker: Masker;
  private readonly identities = new MaskedIdentities();
  private snapshot: CatalogSnapshot | null = null;
  #stale = false;
  /** Counts reads and changes of `stale`: plans made at an older generation are made again. */
  generation = 0;
  /** Called when a column names something the catalog does not hold yet. */
  private readonly onUnknown: () => void;

  constructor(masker: Masker, onUnknown: () => void = () => undefined) {
    this.masker = masker;
    this.onUnknown = onUnknown;
  }

  /** A new catalog read: its identities are bound; what was masked before stays masked. */
  update(snapshot: CatalogSnapshot): void {
    this.identities.bind(snapshot, this.masker);
    this.snapshot = snapshot;
    this.generation++;
  }

  /** A catalog change (DDL) is known and not read yet: views may have been redefined. */
  get stale(): boolean {
    return this.#stale;
  }
  set stale(value: boolean) {
    if (value !== this.#stale) this.generation++;
    this.#stale = value;
  }

  /** The relation by OID and its columns in order (for COPY), with which are masked. */
  relation(oid: number): (CatalogRelation & { masked: Set<number> }) | undefined {
    const rel = this.snapshot?.relations.get(oid);
    if (!rel) return undefined;
    const masked = new Set<number>();
    for (const attnum of rel.columns.keys()) if (this.identities.column(oid, attnum)) masked.add(attnum);
    return { ...rel, masked };
  }

  get relations(): Map<number, CatalogRelation> {
    return this.snapshot?.relations ?? new Map();
  }

  columnMasked(c: ResultColumn): { masked: boolean; settled: boolean } {
    if (!this.masker.masksColumns) return { masked: false, settled: true };
    const type = this.typeMasked(c.typeOid);
    const rel = c.tableOid === 0 ? undefined : this.snapshot?.relations.get(c.tableOid);
    const settled = type.known && !this.#stale;
    // A computed column (an expression, a function's result, a field of a row value): no table
    // says which column it is, so a name any pattern gives a column is masked.
    if (c.tableOid === 0) return { masked: this.masker.columnMasked(c.name, null) || this.masker.columnNeedsTable(c.name) || this.identities.names.has(c.name) || type.masked, settled };
    // A built-in catalog's column: by name; sample values in statistics views are masked whole.
    if (!rel && c.tableOid < FIRST_USER_OID) return { masked: this.masker.columnMasked(c.name, null) || STATISTICS_VALUES.has(c.name) || type.masked, settled };
    if (!rel || (c.attnum !== 0 && !rel.columns.has(c.attnum))) {
      // Created since the last read (or the catalog could not be read): it could be a view of a
      // masked column, or a column renamed before it was ever seen.
      this.onUnknown();
      return { masked: true, settled: false };
    }
    let masked = this.identities.column(c.tableOid, c.attnum) || this.masker.columnMasked(c.name, `${rel.schema}.${rel.name}`) || type.masked;
    // A view redefined by a change not read yet may now show a masked column here.
    if (this.#stale && (rel.kind === 'v' || rel.kind === 'm')) masked = true;
    return { masked, settled };
  }

  // ---- what computed columns need (computed-columns.ts) ------------------------------------

  /** Weighs statements for computed columns (computed-columns.ts). */
  get computed(): ComputedCatalog {
    return this;
  }

  private byName: { generation: number; relations: Map<string, { schema: string; masked: boolean; maskedNames: string[] }[]>; maskedNames: Set<string> } | null = null;

  /** Relations by lower-case name and masked column names, per catalog generation. */
  private names(): NonNullable<ColumnMasking['byName']> {
    if (this.byName?.generation === this.generation) return this.byName;
    const relations = new Map<string, { schema: string; masked: boolean; maskedNames: string[] }[]>();
    for (const [oid, rel] of this.relations) {
      const maskedNames: string[] = [];
      for (const [attnum, col] of rel.columns) if (this.identities.column(oid, attnum)) maskedNames.push(col.name);
      // A view read while a catalog change is unread may have been redefined over a masked column.
      const isMasked = maskedNames.length > 0 || (this.#stale && (rel.kind === 'v' || rel.kind === 'm'));
      const key = rel.name.toLowerCase();
      relations.set(key, [...(relations.get(key) ?? []), { schema: rel.schema, masked: isMasked, maskedNames }]);
    }
    const maskedNames = new Set([...this.identities.names].map((n) => n.toLowerCase()));
    this.byName = { generation: this.generation, relations, maskedNames };
    return this.byName;
  }

  nameMasked(name: string): boolean {
    return this.masker.columnMasked(name, null) || this.masker.columnNeedsTable(name) || this.names().maskedNames.has(name.toLowerCase());
  }

  relationsNamed(schema: string | null, name: string): { masked: boolean; maskedNames: string[] }[] {
    const found = (this.names().relations.get(name.toLowerCase()) ?? []).filter((r) => schema === null || r.schema.toLowerCase() === schema.toLowerCase());
    if (found.length > 0) return found;
    if (this.#stale) {
      this.onUnknown();
      return found;
    }
    // Built-in relations are not read into the catalog: known, and holding no masked value except
    // the planner's statistics (sample values of every column).
    const builtIn = schema === null ? name.toLowerCase().startsWith('pg_') : BUILT_IN_SCHEMAS.has(schema.toLowerCase());
    if (!builtIn) {
      this.onUnknown();
      return [];
    }
    return [{ masked: STATISTICS_RELATIONS.test(name), maskedNames: [...STATISTICS_VALUES] }];
  }

  userRoutine(name: string): boolean {
    const key = name.toLowerCase();
    if (this.snapshot?.routines?.has(key)) return true;
    if (this.snapshot?.builtInRoutines?.has(key)) return false;
    // Created since the last read (or never read): nothing says what it reads.
    this.onUnknown();
    return true;
  }

  private typeMasked(oid: number): { masked: boolean; known: boolean } {
    if (oid < FIRST_USER_OID) return { masked: oid === ANYARRAY, known: true };
    if (this.identities.types.has(oid)) return { masked: true, known: true };
    if (this.snapshot?.types.has(oid)) return { masked: false, known: true };
    // A type created since the last read may be the row type of a relation with a masked column.
    this.onUnknown();
    return { masked: true, known: false };
  }
}
