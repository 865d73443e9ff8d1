// Computed result columns (RowDescription's table OID 0: an expression, an aggregate, a function's
// result, a field of a row value) have no table column behind them, so the catalog cannot say
// whether they carry a masked column's value: `upper(phone)`, `row_to_json(c)`, `phone || ''`,
// `(SELECT phone ... LIMIT 1) AS x`. Rather than follow every function, a statement that COULD
// compute from a masked column has every computed column of its results masked whole. Whether it
// could is read with the real parser (libpg-query), once per text, into facts that do not depend
// on the catalog; the facts are then weighed against the catalog when a result is planned (the
// catalog grows during a run). A statement could compute from a masked column when:
// - it does not parse, or the parser is not loaded (nothing is known of it);
// - an identifier in it (a column reference, a field, an alias, anything but a constant) is a
//   masked column's name: any pattern's, any a masked column had this run, or a masked column's
//   of a relation it names (a view's `p` for `phone`); compared ignoring case;
// - a string constant in it holds such a name as a word (`query_to_xml('select phone ...')`);
// - it reads a relation with a masked column (or one the catalog does not hold) other than by
//   column names: a whole-row reference (`c`, `row_to_json(c)`), `*` anywhere but a plain
//   select list, or columns renamed by an alias list (`customers AS c(i, x)`);
// - it calls a function or procedure not known to be built in (its body may read any
//   table), or one of the built-in functions that run SQL text or read tables by name
//   (query_to_xml, table_to_xml, ..., logical decoding);
// - it runs what is not in its text and the gateway cannot resolve: an EXECUTE of a prepared
//   statement it does not know, a FETCH from a cursor not DECLAREd in this session since the last
//   statement that could open one unseen (CursorSources below); one it resolves is weighed by
//   that statement's or that DECLARE's text.
// Over-masking is the safe mistake: a computed column of such a statement is masked even when it
// does not come from the masked column.
import { literalShape } from './classification-cache.ts';
import { loadedParser } from './pg-parser.ts';

/** What a statement text reads, as far as column masking cares; independent of the catalog. */
export interface StatementFacts {
  /** Not parsed: anything may be read. */
  opaque: boolean;
  /** Identifiers outside constants, as the parser read them (unquoted ones folded to lower case). */
  identifiers: string[];
  /** Words of string constants, lower case. */
  words: string[];
  /** Relations named in FROM, JOIN, DML targets (not CTE names). */
  relations: { schema: string | null; name: string }[];
  /** A whole-row reference, `*` outside a plain select list, or an alias list renaming columns. */
  rowUse: boolean;
  /** Functions and procedures called: [schema or null, name]. */
  routines: [string | null, string][];
  /** Names of prepared statements run by EXECUTE. */
  executes: string[];
  /** Cursors FETCHed from (MOVE returns no rows): their query is not in this text. */
  fetches: string[];
  /** Cursors DECLAREd: a later FETCH from one is weighed by this text's facts. */
  declares: string[];
  /** Every statement is cursor or transaction control (DECLARE, FETCH, MOVE, CLOSE, BEGIN, COMMIT...):
   * nothing in it can open a cursor the gateway does not see. */
  cursorsOnly: boolean;
}

/** What the catalog says, for weighing facts (see ColumnMasking in column-identity.ts). */
export interface ComputedCatalog {
  /** A masked column's name: by a pattern, or a name a masked column of a table had this run. */
  nameMasked(name: string): boolean;
  /** Relations with this name (schema null: any schema): none when the catalog does not hold it. */
  relationsNamed(schema: string | null, name: string): { masked: boolean; maskedNames: string[] }[];
  /** A function or procedure not known to be built in: defined outside pg_catalog and
   * information_schema, or not in the catalog at all (created since the last read). */
  userRoutine(name: string): boolean;
  /** A catalog change is not read yet: relations and routines may be new or redefined. */
  readonly stale: boolean;
  /** Changes with every catalog read and change: verdicts made before are weighed again. */
  readonly generation: number;
}

/** What a run's results are computed from: its statement text's facts, and those of the
 * prepared statements its EXECUTEs run (null: one the gateway cannot resolve). */
export interface ComputedSource { facts: StatementFacts; runs: Run[] }
/** A prepared statement an EXECUTE runs, or the DECLARE of a cursor a FETCH reads; null: not known. */
export type Run = { facts: StatementFacts; cursor: boolean } | null;

const verdicts = new WeakMap<StatementFacts, { catalog: ComputedCatalog; generation: number; masked: boolean }>();

/**
 * Whether the computed columns of a run's results are masked whole. A run whose source is not
 * known (null) is. The verdict for a statement is kept until the catalog changes, so an Execute of
 * a prepared statement neither parses nor weighs it again.
 */
export function computedColumnsMasked(source: ComputedSource | null, catalog: ComputedCatalog): boolean {
  if (!source) return true;
  if (source.runs.length > 0) return computesFromMasked(source.facts, catalog, source.runs);
  const hit = verdicts.get(source.facts);
  if (hit && hit.catalog === catalog && hit.generation === catalog.generation) return hit.masked;
  const masked = computesFromMasked(source.facts, catalog);
  verdicts.set(source.facts, { catalog, generation: catalog.generation, masked });
  return masked;
}

/** Built-in functions that run SQL given as text, read tables or cursors by name, or return decoded changes. */
const TABLE_READING = /^(?:(?:query|table|cursor|schema|database)_to_xml(?:schema|_and_xmlschema)?|(?:query|table|cursor|schema|database)_to_xmlschema|ts_stat|pg_logical_slot_(?:get|peek)_(?:binary_)?changes|pg_logical_emit_message|dblink.*)$/i;

const CURSOR_CONTROL = new Set(['DeclareCursorStmt', 'FetchStmt', 'ClosePortalStmt', 'TransactionStmt']);

const MAX_CACHED = 4096;
/** Longer texts are read again each time (a prepared statement's facts stay on it regardless). */
const MAX_CACHED_TEXT = 8192;
const cache = new Map<string, StatementFacts>();

const OPAQUE: StatementFacts = { opaque: true, identifiers: [], words: [], relations: [], rowUse: true, routines: [], executes: [], fetches: [], declares: [], cursorsOnly: false };

type Node = Record<string, unknown>;

/**
 * The facts of a Query or Parse text, parsed once per shape (cached). No fact depends on the
 * value of a number (only identifiers, the words of strings and the statement's structure count),
 * so texts that differ only in their numbers, as an application's repeated queries do, share one
 * entry: the key is the text with its numbers replaced, from the same plain-text lexer as the
 * classification cache (a text it cannot vouch for is keyed by itself).
 */
export function statementFacts(text: string): StatementFacts {
  const key = text.length <= MAX_CACHED_TEXT ? (literalShape(text, true) ?? text) : null;
  const hit = key === null ? undefined : cache.get(key);
  if (hit) return hit;
  const facts = readFacts(text);
  if (key !== null) {
    if (cache.size >= MAX_CACHED) cache.clear();
    cache.set(key, facts);
  }
  return facts;
}

function readFacts(text: string): StatementFacts {
  const pg = loadedParser();
  if (!pg) return OPAQUE;
  let tree: { stmts?: { stmt?: Node }[] };
  try {
    tree = pg.parseSync(text) as typeof tree;
  } catch {
    return OPAQUE;
  }
  const identifiers = new Set<string>();
  const words = new Set<string>();
  const relations: StatementFacts['relations'] = [];
  const ctes = new Set<string>();
  const rangeNames = new Set<string>();
  const singleRefs = new Set<string>();
  const routines: [string | null, string][] = [];
  const executes: string[] = [];
  const fetches: string[] = [];
  const declares: string[] = [];
  let rowUse = false;
  /** ColumnRef nodes of `*` in a plain select list: their columns are described by the catalog. */
  const directStars = new WeakSet<object>();
  const markDirect = (stmt: unknown): void => {
    let s = stmt as { SelectStmt?: Node; InsertStmt?: Node; UpdateStmt?: Node; DeleteStmt?: Node; MergeStmt?: Node; PrepareStmt?: Node; DeclareCursorStmt?: Node } | undefined;
    // A prepared statement's or a cursor's query is described like a query of its own.
    const inner = s?.PrepareStmt?.query ?? s?.DeclareCursorStmt?.query;
    if (inner) s = inner as typeof s;
    const sel = s?.SelectStmt;
    const dml = s?.InsertStmt ?? s?.UpdateStmt ?? s?.DeleteStmt ?? s?.MergeStmt;
    const list = sel ? (sel.op === 'SETOP_NONE' ? sel.targetList : undefined) : ((dml?.returningClause as Node | undefined)?.exprs ?? dml?.returningList);
    for (const t of (list as { ResTarget?: { val?: { ColumnRef?: { fields?: Node[] } } } }[] | undefined) ?? []) {
      const ref = t.ResTarget?.val?.ColumnRef;
      if (ref?.fields?.some((f) => 'A_Star' in f)) directStars.add(ref);
    }
  };
  const nameOf = (parts: unknown): [string | null, string] => {
    const names = ((parts as { String?: { sval?: string } }[] | undefined) ?? []).map((p) => p.String?.sval ?? '');
    const name = names[names.length - 1] ?? '';
    return [names.length > 1 ? names[names.length - 2]! : null, name];
  };
  const addWords = (text: string): void => {
    for (const w of text.toLowerCase().split(/[^a-z0-9_$\u0080-\uffff]+/)) if (w) words.add(w);
  };
  const range = (v: Node): void => {
    relations.push({ schema: typeof v.schemaname === 'string' ? v.schemaname : null, name: String(v.relname ?? '') });
    rangeNames.add(String(v.relname ?? ''));
  };
  const visit = (n: unknown): void => {
    if (Array.isArray(n)) return n.forEach(visit);
    if (!n || typeof n !== 'object') return;
    const node = n as Node;
    for (const [key, value] of Object.entries(node)) {
      const v = value as Node;
      // A field typed as a RangeVar or a FuncCall is not wrapped in its node name (an UPDATE's
      // or INSERT's `relation`, a CALL's `funccall`).
      if (key !== 'RangeVar' && v && typeof v === 'object' && !Array.isArray(v) && typeof v.relname === 'string') range(v);
      if (key === 'funccall') routines.push(nameOf(v.funcname));
      switch (key) {
        case 'A_Const':
          // A constant's text: only its words count, never as identifiers.
          if (v.sval) addWords(String((v.sval as { sval?: string }).sval ?? ''));
          continue;
        case 'String': {
          const sval = String(v.sval ?? '');
          identifiers.add(sval);
          // Not a plain name: a DO block's body, a quoted name with spaces. Its words count too.
          if (/[^A-Za-z0-9_$]/.test(sval)) addWords(sval);
          continue;
        }
        case 'ColumnRef': {
          const fields = (v.fields as Node[] | undefined) ?? [];
          if (fields.some((f) => 'A_Star' in f) && !directStars.has(v)) rowUse = true;
          if (fields.length === 1 && fields[0]!.String) singleRefs.add(String((fields[0]!.String as { sval?: string }).sval ?? ''));
          break;
        }
        case 'A_Indirection':
          if (((v.indirection as Node[] | undefined) ?? []).some((f) => 'A_Star' in f)) rowUse = true;
          break;
        case 'RangeVar':
          range(v);
          break;
        case 'alias': {
          // RangeVar, RangeSubselect, RangeFunction and JoinExpr aliases: names of ranges.
          const a = v as { aliasname?: string; colnames?: unknown[] };
          if (typeof a.aliasname === 'string') rangeNames.add(a.aliasname);
          if (a.colnames && a.colnames.length > 0) rowUse = true;
          break;
        }
        case 'RangeSubselect':
          markDirect(v.subquery);
          break;
        case 'CommonTableExpr':
          ctes.add(String(v.ctename ?? ''));
          rangeNames.add(String(v.ctename ?? ''));
          if (((v.aliascolnames as unknown[] | undefined) ?? []).length > 0) rowUse = true;
          markDirect(v.ctequery);
          break;
        case 'FuncCall':
          routines.push(nameOf(v.funcname));
          break;
        case 'ExecuteStmt':
          executes.push(String(v.name ?? ''));
          break;
        case 'FetchStmt':
          if (!v.ismove) fetches.push(String(v.portalname ?? ''));
          break;
        case 'DeclareCursorStmt':
          declares.push(String(v.portalname ?? ''));
          break;
        case 'ExplainStmt':
          // A plan is not the query's data: EXPLAIN's own output holds no value read from a table.
          // Its query still runs (ANALYZE) but its rows are discarded.
          continue;
        default:
      }
      visit(value);
    }
  };
  for (const raw of tree.stmts ?? []) {
    markDirect(raw.stmt);
    visit(raw.stmt);
  }
  for (const r of singleRefs) if (rangeNames.has(r)) rowUse = true;
  return {
    opaque: false,
    identifiers: [...identifiers],
    words: [...words],
    relations: relations.filter((r) => r.schema !== null || !ctes.has(r.name)),
    rowUse,
    routines,
    executes,
    fetches,
    declares,
    cursorsOnly: (tree.stmts ?? []).every((raw) => Object.keys(raw.stmt ?? {}).every((k) => CURSOR_CONTROL.has(k))),
  };
}

/**
 * Whether a statement with these facts could compute a value from a masked column, weighed
 * against the catalog now. `runs`: what its EXECUTEs and FETCHes run, null for one the gateway
 * cannot resolve. A cursor's results come from its DECLAREd query alone (`cursor`); a prepared
 * statement may itself EXECUTE or FETCH, which is not resolved again: it counts as unknown.
 */
export function computesFromMasked(facts: StatementFacts, catalog: ComputedCatalog, runs: Run[] = [], cursor = false): boolean {
  if (facts.opaque) return true;
  if (!cursor && facts.executes.length + facts.fetches.length > runs.length) return true;
  if (runs.some((e) => e === null || (e.facts !== facts && computesFromMasked(e.facts, catalog, [], e.cursor)))) return true;
  const lower = new Set(facts.identifiers.map((i) => i.toLowerCase()));
  if (facts.identifiers.some((i) => catalog.nameMasked(i))) return true;
  let readsMasked = false;
  for (const r of facts.relations) {
    const found = catalog.relationsNamed(r.schema, r.name);
    // Not in the catalog: created since the last read, or a temporary table; nothing says what it holds.
    if (found.length === 0) return true;
    for (const rel of found) {
      if (!rel.masked) continue;
      readsMasked = true;
      if (rel.maskedNames.some((n) => lower.has(n.toLowerCase()))) return true;
    }
  }
  if (readsMasked && facts.rowUse) return true;
  // (Not relation names: psql's \d names its table in a constant. The built-in functions that run
  // SQL text are weighed by name below, and so is any function that is not built in.)
  if (facts.words.some((w) => catalog.nameMasked(w))) return true;
  for (const [schema, name] of facts.routines) {
    if (schema === 'pg_catalog' ? TABLE_READING.test(name) : TABLE_READING.test(name) || catalog.userRoutine(name)) return true;
    // A routine created since the last read is not known yet.
    if (catalog.stale && schema !== 'pg_catalog') return true;
  }
  return false;
}

/**
 * Errors and notices a statement raises can quote a value it computed (`phone::int` fails with
 * `invalid input syntax for type integer: "+1 555 0100"`; a function's `RAISE NOTICE '%', phone`):
 * for a statement that could compute from a masked column, their texts that can quote one
 * (message, detail, hint, context) are masked whole, unless the SQLSTATE's class is one whose
 * texts name objects and states only (syntax and access, connections, transactions, resources,
 * configuration).
 */
export const MASKED_ECHO = '[masked: it may quote a value computed from a masked column]';
const STRUCTURAL_CLASSES = new Set(['08', '0A', '0B', '0F', '0L', '0P', '25', '26', '28', '2B', '2D', '34', '3B', '3D', '3F', '40', '42', '53', '54', '55', '57', '58', '72', 'F0']);
const ALL_TEXTS = new Set(['M', 'D', 'H', 'W']);
/** Integrity and check-option violations name the constraint in their message; the row or key is in the detail. */
const DETAIL_TEXTS = new Set(['D', 'H', 'W']);

/** Which fields of a notice or error (its fields, by code) may quote a value, by its SQLSTATE's class. */
export function quotingFields(fields: [string, string][]): ReadonlySet<string> {
  const cls = (fields.find(([c]) => c === 'C')?.[1] ?? '').slice(0, 2);
  if (STRUCTURAL_CLASSES.has(cls)) return NONE;
  return cls === '23' || cls === '44' ? DETAIL_TEXTS : ALL_TEXTS;
}
const NONE: ReadonlySet<string> = new Set();

/**
 * The cursors a session DECLAREd, by name, with the facts of the text that declared them. Any
 * statement other than cursor and transaction control may open or reopen a cursor by any name
 * unseen (a function's OPEN, a DO block): it forgets them all, so a FETCH from a name the gateway
 * cannot vouch for is unknown.
 */
export class CursorSources {
  private readonly cursors = new Map<string, StatementFacts>();

  /** Called for each statement text as it is sent, in order: what its FETCHes read. */
  sent(facts: StatementFacts): Run[] {
    if (!facts.cursorsOnly) this.cursors.clear();
    for (const name of facts.declares) this.cursors.set(name, facts);
    return facts.fetches.map((name) => {
      const declared = this.cursors.get(name);
      return declared ? { facts: declared, cursor: true } : null;
    });
  }
}
