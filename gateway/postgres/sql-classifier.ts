// Classifies SQL with the real PostgreSQL parser (libpg-query, WebAssembly), never with regular
// expressions over text. Every statement of a multi-statement string is classified, and so is
// every statement hidden inside another one (data-modifying CTEs, EXPLAIN ANALYZE, PREPARE,
// DECLARE CURSOR, CREATE TABLE AS, rules and triggers). Code the parser cannot see into (DO
// blocks, procedure calls, dynamic EXECUTE) is opaque and classed `do-block`, never harmless.
import { normalizeSql } from './sql-normalize.ts';

/**
 * The Node flag processes that classify must start with: V8's optimizing compiler needs about
 * 550 MB, briefly, to tier up the parser's WebAssembly, and a running process cannot opt out.
 * The baseline compiler parses about 20% slower and keeps the footprint under 100 MB.
 */
export const BASELINE_WASM_FLAG = '--liftoff-only';

// Loaded on first use: the WebAssembly parser costs memory that a policy without rules never needs.
type LibPgQuery = typeof import('libpg-query');
let pgQuery: LibPgQuery | null = null;

export interface ClassifiedStatement {
  /** The statement's own text, cut from the message. */
  text: string;
  /** What `text-matches` sees (see sql-normalize.ts); empty unless asked for. */
  normalized: string;
  classes: string[];
  /** Relations named, as `schema.table` or bare `table` when unqualified. */
  tables: string[];
}

export type Classification =
  /** `prepared`: statements this text prepares by name (PREPARE), with their classes. */
  | { ok: true; statements: ClassifiedStatement[]; prepared: [string, PreparedStatement][] }
  | { ok: false; error: string };


let ready: Promise<void> | null = null;
/** Loads the parser (about 20 ms); classify() may be called once this resolves. */
export function loadClassifier(): Promise<void> {
  return (ready ??= import('libpg-query').then(async (m) => {
    await m.loadModule();
    pgQuery = m;
  }));
}

function parser(): LibPgQuery {
  if (!pgQuery) throw new Error('the SQL classifier is not loaded (call loadClassifier first)');
  return pgQuery;
}

type Node = Record<string, unknown>;

const CREATE = ['CreateStmt', 'CreateSchemaStmt', 'CreateTableSpaceStmt', 'CreateExtensionStmt', 'CreateFdwStmt',
  'CreateForeignServerStmt', 'CreateForeignTableStmt', 'CreateUserMappingStmt', 'ImportForeignSchemaStmt', 'CreatePolicyStmt',
  'CreateAmStmt', 'CreatePLangStmt', 'CreateSeqStmt', 'DefineStmt', 'CreateDomainStmt', 'CreateOpClassStmt',
  'CreateOpFamilyStmt', 'IndexStmt', 'CreateStatsStmt', 'CompositeTypeStmt', 'CreateEnumStmt', 'CreateRangeStmt', 'ViewStmt',
  'CreatedbStmt', 'CreateConversionStmt', 'CreateCastStmt', 'CreateTransformStmt', 'CreatePublicationStmt',
  'CreateSubscriptionStmt', 'CreateTableAsStmt'];
const CODE = ['CreateFunctionStmt', 'CreateTrigStmt', 'CreateEventTrigStmt', 'RuleStmt'];
const ALTER = ['AlterTableStmt', 'ReplicaIdentityStmt', 'AlterCollationStmt', 'AlterDomainStmt', 'AlterTableSpaceOptionsStmt',
  'AlterTableMoveAllStmt', 'AlterExtensionStmt', 'AlterExtensionContentsStmt', 'AlterFdwStmt', 'AlterForeignServerStmt',
  'AlterUserMappingStmt', 'AlterPolicyStmt', 'AlterEventTrigStmt', 'AlterSeqStmt', 'AlterOpFamilyStmt', 'AlterStatsStmt',
  'AlterFunctionStmt', 'RenameStmt', 'AlterObjectDependsStmt', 'AlterObjectSchemaStmt', 'AlterOwnerStmt', 'AlterOperatorStmt',
  'AlterTypeStmt', 'AlterEnumStmt', 'AlterDatabaseStmt', 'AlterDatabaseRefreshCollStmt', 'AlterDatabaseSetStmt',
  'AlterSystemStmt', 'AlterTSDictionaryStmt', 'AlterTSConfigurationStmt', 'AlterPublicationStmt', 'AlterSubscriptionStmt',
  'CommentStmt', 'SecLabelStmt'];
const DROP = ['DropStmt', 'DropTableSpaceStmt', 'DropUserMappingStmt', 'DropdbStmt', 'DropSubscriptionStmt', 'DropOwnedStmt'];
const ROLE = ['CreateRoleStmt', 'AlterRoleStmt', 'AlterRoleSetStmt', 'DropRoleStmt', 'ReassignOwnedStmt'];
const MAINTENANCE = ['ClusterStmt', 'ReindexStmt', 'RefreshMatViewStmt', 'CheckPointStmt'];
const UTILITY = ['VariableShowStmt', 'DiscardStmt', 'ConstraintsSetStmt', 'LoadStmt', 'DeallocateStmt', 'ClosePortalStmt',
  'FetchStmt', 'UnlistenStmt', 'ReturnStmt', 'PLAssignStmt'];

const SIMPLE: Record<string, string[]> = {
  SelectStmt: ['select'],
  InsertStmt: ['insert'],
  MergeStmt: ['merge', 'insert', 'update', 'delete'],
  TruncateStmt: ['truncate'],
  DoStmt: ['do-block'],
  // A procedure runs code the parser cannot see.
  CallStmt: ['do-block'],
  TransactionStmt: ['transaction'],
  VariableSetStmt: ['set'],
  LockStmt: ['lock'],
  ListenStmt: ['listen'],
  NotifyStmt: ['notify'],
  VacuumStmt: ['vacuum', 'maintenance'],
  AlterDefaultPrivilegesStmt: ['grant'],
  PrepareStmt: ['prepare'],
  DeclareCursorStmt: ['cursor'],
};
for (const t of CREATE) SIMPLE[t] = ['create', 'ddl'];
for (const t of CODE) SIMPLE[t] = ['create', 'ddl', 'function-definition'];
for (const t of ALTER) SIMPLE[t] = ['alter', 'ddl'];
for (const t of DROP) SIMPLE[t] = ['drop', 'ddl'];
for (const t of ROLE) SIMPLE[t] = ['role'];
for (const t of MAINTENANCE) SIMPLE[t] = ['maintenance'];
for (const t of UTILITY) SIMPLE[t] = ['utility'];

const RELATION_OBJECTS = new Set(['OBJECT_TABLE', 'OBJECT_VIEW', 'OBJECT_MATVIEW', 'OBJECT_INDEX', 'OBJECT_SEQUENCE', 'OBJECT_FOREIGN_TABLE']);

/** What statements prepared by name earlier in the session (PREPARE ... AS) do. */
export interface PreparedStatement { classes: string[]; tables: string[] }
export type PreparedClasses = Map<string, PreparedStatement>;

/**
 * Classifies every statement in a Query or Parse text. `prepared` resolves EXECUTE name; an
 * EXECUTE of a statement the gateway has not seen prepared cannot be classified.
 */
export function classify(text: string, prepared?: PreparedClasses, options: { normalize?: boolean } = {}): Classification {
  if (/^[\s;]*$/.test(text)) return EMPTY;
  let tree: { stmts?: { stmt?: Node; stmt_location?: number; stmt_len?: number }[] };
  try {
    tree = parser().parseSync(text) as typeof tree;
  } catch (e) {
    // Only comments: the server answers EmptyQueryResponse, and so may we.
    if (isEmptyQuery(text)) return EMPTY;
    return { ok: false, error: `the SQL parser rejected the statement: ${(e as Error).message}` };
  }
  const statements: ClassifiedStatement[] = [];
  const known: PreparedClasses = new Map(prepared ?? []);
  const preparedHere: [string, PreparedStatement][] = [];
  const bytes = Buffer.from(text, 'utf8');
  for (const raw of tree.stmts ?? []) {
    // Locations are byte offsets into the UTF-8 text.
    const start = raw.stmt_location ?? 0;
    const own = (raw.stmt_len ? bytes.subarray(start, start + raw.stmt_len) : bytes.subarray(start)).toString('utf8').trim();
    const found = new Walk(known);
    if (raw.stmt) found.visit(raw.stmt);
    if (found.unknown) return { ok: false, error: found.unknown };
    // Only a bare VALUES list leaves nothing behind: it is a read.
    if (found.classes.size === 0) found.classes.add('select');
    const classes = [...found.classes].sort();
    const tables = found.relations();
    // Normalizing costs a second pass of the scanner: only for policies with text-matches.
    statements.push({ text: own, normalized: options.normalize === false ? '' : normalizeSql(own), classes, tables });
    // A later EXECUTE in the same text runs what this PREPARE defined.
    const prep = (raw.stmt as { PrepareStmt?: { name?: string } } | undefined)?.PrepareStmt;
    if (prep?.name) {
      const inner = { classes: classes.filter((c) => c !== 'prepare'), tables };
      known.set(prep.name, inner);
      preparedHere.push([prep.name, inner]);
    }
  }
  return { ok: true, statements, prepared: preparedHere };
}

const EMPTY: Classification = { ok: true, statements: [], prepared: [] };

/** Only whitespace, comments and semicolons: the server answers EmptyQueryResponse. */
function isEmptyQuery(text: string): boolean {
  if (/^[\s;]*$/.test(text)) return true;
  try {
    return parser().scanSync(text).tokens.every((t) => t.tokenName === 'SQL_COMMENT' || t.tokenName === 'C_COMMENT' || t.text === ';');
  } catch {
    return false;
  }
}

class Walk {
  readonly classes = new Set<string>();
  private readonly tables = new Set<string>();
  private readonly ctes = new Set<string>();
  private readonly prepared: PreparedClasses | undefined;
  unknown: string | null = null;

  constructor(prepared?: PreparedClasses) {
    this.prepared = prepared;
  }

  visit(value: unknown): void {
    if (Array.isArray(value)) {
      for (const v of value) this.visit(v);
      return;
    }
    if (value === null || typeof value !== 'object') return;
    // A RangeVar appears both wrapped ({RangeVar: {...}}) and bare (DeleteStmt.relation).
    if (typeof (value as Node).relname === 'string') return this.relation(value as Node);
    for (const [key, inner] of Object.entries(value as Node)) {
      // Node types are capitalized (DeleteStmt); fields are not (InsertStmt.selectStmt).
      if (/^[A-Z]\w*Stmt$/.test(key) && inner && typeof inner === 'object' && !Array.isArray(inner)) this.statement(key, inner as Node);
      else if (key === 'CommonTableExpr') {
        const name = (inner as Node).ctename;
        if (typeof name === 'string') this.ctes.add(name);
        this.visit(inner);
      } else this.visit(inner);
    }
  }

  private add(...classes: string[]): void {
    for (const c of classes) this.classes.add(c);
  }

  private statement(type: string, node: Node): void {
    switch (type) {
      case 'RawStmt':
      case 'SetOperationStmt':
        return this.visit(node);
      case 'UpdateStmt':
        this.add('update');
        if (!node.whereClause) this.add('update-without-where');
        return this.visit(node);
      case 'DeleteStmt':
        this.add('delete');
        if (!node.whereClause) this.add('delete-without-where');
        return this.visit(node);
      case 'SelectStmt':
        // A bare VALUES list (INSERT ... VALUES) reads nothing.
        if (!node.valuesLists) this.add('select');
        // SELECT ... INTO creates a table.
        if (node.intoClause) this.add('create', 'ddl');
        return this.visit(node);
      case 'CopyStmt':
        this.add('copy', node.is_from ? 'insert' : 'select');
        if (node.is_program) this.add(node.is_from ? 'copy-from-program' : 'copy-to-program');
        return this.visit(node);
      case 'DropStmt':
        this.add('drop', 'ddl');
        // Dropped relations are name lists, not RangeVars.
        if (RELATION_OBJECTS.has(String(node.removeType))) {
          for (const o of (node.objects as { List?: { items?: { String?: { sval?: string } }[] } }[] | undefined) ?? []) {
            const parts = (o.List?.items ?? []).map((i) => i.String?.sval).filter((x): x is string => typeof x === 'string');
            if (parts.length > 0) this.tables.add(parts.slice(-2).join('.'));
          }
        }
        return this.visit(node);
      case 'GrantStmt':
        this.add(node.is_grant ? 'grant' : 'revoke');
        return this.visit(node);
      case 'GrantRoleStmt':
        this.add(node.is_grant ? 'grant' : 'revoke', 'role');
        return this.visit(node);
      case 'ExplainStmt': {
        this.add('explain');
        // Only EXPLAIN ANALYZE executes the statement it explains.
        const analyze = ((node.options as Node[] | undefined) ?? []).some((o) => {
          const d = (o as { DefElem?: Node }).DefElem;
          return d?.defname === 'analyze' && !isFalse(d.arg);
        });
        if (analyze) this.visit(node.query);
        else this.collectTables(node.query);
        return;
      }
      case 'PrepareStmt':
        this.add('prepare');
        return this.visit(node.query);
      case 'ExecuteStmt': {
        this.add('execute');
        const name = String(node.name ?? '');
        const known = this.prepared?.get(name);
        if (!known) {
          this.unknown = `EXECUTE of prepared statement "${name}", which was not prepared through the gateway in this session`;
          return;
        }
        this.add(...known.classes);
        for (const t of known.tables) this.tables.add(t);
        return this.visit(node);
      }
      default: {
        const classes = SIMPLE[type];
        if (!classes) {
          this.unknown = `statement type ${type} is not known to the classifier`;
          return;
        }
        this.add(...classes);
        return this.visit(node);
      }
    }
  }

  /** Tables named by a statement that does not run (plain EXPLAIN), without its classes. */
  private collectTables(node: unknown): void {
    const inner = new Walk(this.prepared);
    inner.visit(node);
    for (const t of inner.relations()) this.tables.add(t);
  }

  private relation(node: Node): void {
    const rel = String(node.relname);
    this.tables.add(typeof node.schemaname === 'string' ? `${node.schemaname}.${rel}` : rel);
  }

  /** Relations named, without references to the statement's own CTEs. */
  relations(): string[] {
    return [...this.tables].filter((t) => !this.ctes.has(t)).sort();
  }
}

function isFalse(arg: unknown): boolean {
  const a = arg as { Boolean?: { boolval?: boolean }; String?: { sval?: string } } | undefined;
  if (!a) return false;
  if (a.Boolean) return a.Boolean.boolval !== true;
  const s = a.String?.sval?.toLowerCase();
  return s === 'false' || s === 'off' || s === '0';
}
