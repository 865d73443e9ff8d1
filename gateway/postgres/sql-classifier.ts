// Classifies SQL with the real PostgreSQL parser (libpg-query, WebAssembly), never with regular
// expressions over text. Every statement of a multi-statement string is classified, and so is
// every statement hidden inside another one (data-modifying CTEs, EXPLAIN ANALYZE, PREPARE,
// DECLARE CURSOR, CREATE TABLE AS, rules and triggers). Code the parser cannot see into (DO
// blocks, procedure calls, dynamic EXECUTE) is opaque and classed `do-block`, never harmless.
import { normalizeSql } from './sql-normalize.ts';
import { readingHazard } from './sql-reading-hazards.ts';
import { parser } from './pg-parser.ts';

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
  TruncateStmt: ['truncate'],
  DoStmt: ['do-block'],
  // A procedure runs code the parser cannot see.
  CallStmt: ['do-block'],
  TransactionStmt: ['transaction'],
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
/** Objects named `[schema.]relation.name`. */
const RELATION_PARTS = new Set(['OBJECT_COLUMN', 'OBJECT_TRIGGER', 'OBJECT_RULE', 'OBJECT_POLICY', 'OBJECT_TABCONSTRAINT']);
/** Settings that change the role whose privileges the session uses. */
const SESSION_IDENTITY = new Set(['role', 'session_authorization']);

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
  const hazard = readingHazard(text, (t) => parser().scanSync(t).tokens);
  if (hazard) return { ok: false, error: hazard };
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
  /** CTE names visible where the walk is, innermost last (see withScope). */
  private readonly scopes: Set<string>[] = [];
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
      else this.visit(inner);
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
        return this.dataModifying(node);
      case 'DeleteStmt':
        this.add('delete');
        if (!node.whereClause) this.add('delete-without-where');
        return this.dataModifying(node);
      case 'InsertStmt': {
        this.add('insert');
        // ON CONFLICT DO UPDATE changes rows that are already there.
        const conflict = node.onConflictClause as { action?: string } | undefined;
        if (conflict?.action === 'ONCONFLICT_UPDATE') this.add('update');
        return this.dataModifying(node);
      }
      case 'MergeStmt':
        this.add('merge', 'insert', 'update', 'delete');
        return this.dataModifying(node);
      case 'SelectStmt':
        // A bare VALUES list (INSERT ... VALUES) reads nothing.
        if (!node.valuesLists) this.add('select');
        // SELECT ... INTO creates a table.
        if (node.intoClause) this.add('create', 'ddl');
        return this.withScope(node, () => this.visitFields(node, 'withClause'));
      case 'CopyStmt':
        this.add('copy', node.is_from ? 'insert' : 'select');
        if (node.is_program) this.add(node.is_from ? 'copy-from-program' : 'copy-to-program');
        return this.visit(node);
      case 'DropStmt':
        this.add('drop', 'ddl');
        // Dropped objects are name lists, not RangeVars.
        for (const o of (node.objects as Node[] | undefined) ?? []) this.objectName(String(node.removeType), o);
        return this.visit(node);
      case 'DropOwnedStmt':
        // DROP OWNED also revokes every privilege granted to the roles.
        this.add('drop', 'ddl', 'revoke');
        return this.visit(node);
      case 'CommentStmt':
      case 'SecLabelStmt':
        this.add('alter', 'ddl');
        this.objectName(String(node.objtype), node.object);
        return this.visit(node);
      case 'RenameStmt':
        this.add('alter', 'ddl');
        // Renaming a schema renames every relation in it.
        if (node.renameType === 'OBJECT_SCHEMA') for (const n of [node.subname, node.newname]) if (typeof n === 'string') this.tables.add(`${n}.*`);
        return this.visit(node);
      case 'AlterOwnerStmt':
        this.add('alter', 'ddl');
        if (node.objectType === 'OBJECT_SCHEMA') this.objectName('OBJECT_SCHEMA', node.object);
        return this.visit(node);
      case 'GrantStmt':
        this.add(node.is_grant ? 'grant' : 'revoke');
        if (node.targtype === 'ACL_TARGET_ALL_IN_SCHEMA') for (const o of (node.objects as Node[] | undefined) ?? []) this.objectName('OBJECT_SCHEMA', o);
        return this.visit(node);
      case 'GrantRoleStmt':
        this.add(node.is_grant ? 'grant' : 'revoke', 'role');
        return this.visit(node);
      case 'VariableSetStmt':
        this.add('set');
        // SET ROLE and SET SESSION AUTHORIZATION change whose privileges the session has.
        if (SESSION_IDENTITY.has(String(node.name).toLowerCase())) this.add('role');
        return this.visit(node);
      case 'AlterDatabaseSetStmt': {
        this.add('alter', 'ddl');
        // ... and so does a database default for them, in every later session.
        const set = node.setstmt as { name?: string } | undefined;
        if (set?.name && SESSION_IDENTITY.has(set.name.toLowerCase())) this.add('role');
        return this.visit(node);
      }
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

  private visitFields(node: Node, ...skip: string[]): void {
    for (const [key, value] of Object.entries(node)) if (!skip.includes(key)) this.visit(value);
  }

  /**
   * INSERT, UPDATE, DELETE, MERGE: the target is always a real table, even when a CTE of the
   * same name is in scope (`WITH accounts AS (...) DELETE FROM accounts` deletes from the table).
   */
  private dataModifying(node: Node): void {
    const target = node.relation as Node | undefined;
    if (target && typeof target.relname === 'string') this.tables.add(relationName(target));
    this.withScope(node, () => this.visitFields(node, 'withClause', 'relation'));
  }

  /**
   * A WITH clause's names hide relations of the same (unqualified) name: in the statement that
   * has the clause, and in the bodies of the CTEs listed after each one (all of them with
   * RECURSIVE). A CTE's body does not see its own name otherwise: it is a table there.
   */
  private withScope(node: Node, rest: () => void): void {
    const w = node.withClause as { ctes?: Node[]; recursive?: boolean } | undefined;
    if (!w?.ctes?.length) return rest();
    const names = w.ctes.map((c) => String((c.CommonTableExpr as Node | undefined)?.ctename ?? ''));
    w.ctes.forEach((cte, i) => {
      this.scopes.push(new Set(w.recursive ? names : names.slice(0, i)));
      this.visit(cte);
      this.scopes.pop();
    });
    this.scopes.push(new Set(names));
    rest();
    this.scopes.pop();
  }

  /** The relation behind an object named by a name list (DROP, COMMENT ON, ...), if any. */
  private objectName(objectType: string, object: unknown): void {
    const o = object as { List?: { items?: { String?: { sval?: string } }[] }; String?: { sval?: string } } | undefined;
    const parts = o?.String?.sval !== undefined ? [o.String.sval] : (o?.List?.items ?? []).map((i) => i.String?.sval).filter((x): x is string => typeof x === 'string');
    if (parts.length === 0) return;
    // A schema stands for every relation in it.
    if (objectType === 'OBJECT_SCHEMA') this.tables.add(`${parts[parts.length - 1]}.*`);
    else if (RELATION_OBJECTS.has(objectType)) this.tables.add(parts.slice(-2).join('.'));
    // Columns, triggers, rules, policies and constraints are named after their relation.
    else if (RELATION_PARTS.has(objectType) && parts.length > 1) this.tables.add(parts.slice(-3, -1).join('.'));
  }

  /** Tables named by a statement that does not run (plain EXPLAIN), without its classes. */
  private collectTables(node: unknown): void {
    const inner = new Walk(this.prepared);
    inner.visit(node);
    for (const t of inner.relations()) this.tables.add(t);
  }

  private relation(node: Node): void {
    const rel = String(node.relname);
    // An unqualified name that a CTE in scope defines is that CTE, not a relation.
    if (typeof node.schemaname !== 'string' && this.scopes.some((s) => s.has(rel))) return;
    this.tables.add(relationName(node));
  }

  /** Relations named, as `schema.table`, bare `table`, or `schema.*` for a whole schema. */
  relations(): string[] {
    return [...this.tables].sort();
  }
}

function relationName(rangeVar: Node): string {
  const rel = String(rangeVar.relname);
  return typeof rangeVar.schemaname === 'string' ? `${rangeVar.schemaname}.${rel}` : rel;
}

function isFalse(arg: unknown): boolean {
  const a = arg as { Boolean?: { boolval?: boolean }; String?: { sval?: string } } | undefined;
  if (!a) return false;
  if (a.Boolean) return a.Boolean.boolval !== true;
  const s = a.String?.sval?.toLowerCase();
  return s === 'false' || s === 'off' || s === '0';
}
