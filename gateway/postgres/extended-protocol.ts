// The extended query protocol's client messages (Parse, Bind, Describe, Execute, Close, Sync):
// each Execute is recorded before it is forwarded, with the text of the statement its portal
// runs as the server confirmed it (statement-registry.ts), its parameters and the decision made
// at Parse; a statement the gateway cannot know is recorded and decided as unclassified. With
// masking, a portal not described right before its Execute is described by the gateway itself.
import { serialize } from 'pg-protocol';
import type { decodeBind, decodeParse, decodeTarget } from './codec/frontend.ts';
import { binaryValue, wireText, type CommandRecorder, type SessionRecorder, type Value } from '../core/recorder.ts';
import { newRun, type Portal, type RunState, type Statement } from './response-queue.ts';
import type { BackendTracker } from './backend-tracker.ts';
import { decisionFields, judge, judgeOpaque, judgePrepared, refusalExtended, refusalSql, refusalState, type Judgement, type PolicyContext } from './enforce.ts';
import { fetchedPortals, mayChangeNames, namespaceEffects } from './statement-names.ts';
import type { PreparedStatement } from './sql-classifier.ts';
import { describeName, type Change, type Effect, type StatementRegistry } from './statement-registry.ts';
import { decisionRecord, type Decision } from '../policy/engine.ts';
import type { HoldPlan } from '../core/hold.ts';
import { copyOuts } from './copy-masking.ts';
import { maskPasswords, MASKED_PASSWORD } from './role-passwords.ts';
import { CursorSources, statementFacts, type ComputedSource, type Run, type StatementFacts } from './computed-columns.ts';

type ParseMessage = ReturnType<typeof decodeParse>;
type BindMessage = ReturnType<typeof decodeBind>;
type TargetMessage = ReturnType<typeof decodeTarget>;

/** What the extended protocol needs of its session. */
export interface ExtendedContext {
  rec: SessionRecorder;
  policy: PolicyContext | null;
  backend: BackendTracker;
  names: StatementRegistry;
  /** COPY ... TO STDOUT needs its table named for column masking. */
  copyMasking: boolean;
  /** Masking plans rows by their columns: an Execute of a portal not described right before it gets the gateway's own Describe. */
  learnsColumns: boolean;
  /** Column masking: each run says what its computed columns may come from (computed-columns.ts). */
  masksComputed: boolean;
  /** SQL and parameter values as the log keeps them. */
  logText(text: string): string;
  logValue(text: string): string;
}

export class ExtendedProtocol {
  private readonly ctx: ExtendedContext;
  private readonly names: StatementRegistry;
  /** SQL cursors DECLAREd in the session, for what a FETCH reads (computed-columns.ts). */
  private readonly cursors = new CursorSources();

  constructor(ctx: ExtendedContext) {
    this.ctx = ctx;
    this.names = ctx.names;
  }

  parse(p: ParseMessage): ExtendedAction {
    const j = this.ctx.policy ? judge(this.ctx.policy, p.query, this.names.preparedClasses(p.query)) : null;
    const statement: Statement = { text: p.query, paramTypes: p.paramTypes, columns: null };
    if (this.ctx.copyMasking) statement.copyOuts = copyOuts(p.query);
    // Read once here: every Execute of the statement reuses it.
    if (this.ctx.masksComputed) statement.facts = statementFacts(p.query);
    statement.effects = this.effectsOf(p.query, j);
    statement.mayAddNames = mayAddNames(p.query, j);
    if (j) {
      statement.decision = { action: j.decision.action, rule: j.decision.rule };
      const prepared = preparedOf(j);
      if (prepared) statement.prepared = prepared;
    }
    if (j && j.decision.action !== 'allow') {
      // Recorded as a command of its own: the text is refused or held at Parse.
      const cmd = this.ctx.rec.beginCommand({ kind: 'pg.query', text: this.ctx.logText(p.query), details: { phase: 'parse', protocol: 'extended', ...(p.statement ? { statement: p.statement } : {}) }, ...decisionFields(j) });
      const refuse = (d: Decision, code?: string): Buffer[] => {
        statement.denied = d;
        statement.decision = { action: 'deny', rule: d.rule };
        return this.refuseExtended(cmd, d, code, { statement: [p.statement, statement] });
      };
      if (j.decision.action === 'deny') return refuse(j.decision);
      const approved = (): void => {
        cmd.finish({ status: 'approved' });
        this.expectParse(p.statement, statement);
      };
      return { hold: { decision: j.decision, cmd, text: this.ctx.logText(p.query), approved, denied: (d, why) => refuse(d, refusalState(why)) } };
    }
    this.expectParse(p.statement, statement);
    return 'forward';
  }

  bind(b: BindMessage): ExtendedAction {
    const resolved = this.names.statement(b.statement);
    const statement = 'known' in resolved ? resolved.known : null;
    if (statement?.denied && !this.ctx.backend.skipping) {
      // A statement refused earlier does not exist upstream: refuse again, with the reason.
      const cmd = this.ctx.rec.beginCommand({ kind: 'pg.query', text: this.ctx.logText(statement.text), details: { phase: 'bind', protocol: 'extended', ...(b.statement ? { statement: b.statement } : {}) }, decision: decisionRecord(statement.denied) });
      // The client's Execute that follows is discarded by the server: its record names the refusal.
      const portal = this.names.expect('portal', b.portal, { statement, params: [], resultFormats: b.resultFormats, columns: null });
      return this.refuseExtended(cmd, statement.denied, undefined, { portal });
    }
    // A parameter in a password's place (PASSWORD $1) is a password: masked like the literal.
    const passwords = statement ? maskPasswords(statement.text).params : [];
    const params: Value[] = b.params.map((v, i) => {
      if (v === null) return null;
      if (passwords.includes(i + 1)) return MASKED_PASSWORD;
      const format = b.paramFormats.length === 1 ? b.paramFormats[0] : b.paramFormats[i] ?? 0;
      return format === 1 ? binaryValue(v) : this.ctx.logValue(wireText(v));
    });
    const portal: Portal = { statement, params, resultFormats: b.resultFormats, columns: null, ...('unknown' in resolved ? { unknown: resolved.unknown } : {}) };
    this.ctx.backend.expect({ kind: 'bind', changes: [this.names.expect('portal', b.portal, portal)] });
    return 'forward';
  }

  describe(d: TargetMessage): ExtendedAction {
    const r = d.kind === 'S' ? this.names.statement(d.name) : this.names.portal(d.name);
    this.ctx.backend.expect({ kind: 'describe', target: 'known' in r ? r.known : null });
    this.describedPortal = d.kind === 'P' && 'known' in r ? { portal: r.known as Portal, at: this.ctx.backend.expectedCount } : null;
    return 'forward';
  }

  /** The portal the client's last message described, if that was its last message expecting a reply. */
  private describedPortal: { portal: Portal; at: number } | null = null;

  /**
   * Whether an Execute's columns are known from the server for what it runs now: only a Describe
   * of the portal right before it says so. A description from earlier (the statement's, or the
   * portal's before other commands ran) may be stale: a function's dynamic SQL can DEALLOCATE
   * and PREPARE a statement, or CLOSE and OPEN a cursor, under the same name without the gateway
   * seeing it, and rows planned by the old columns would pass a masked one.
   */
  private describedJustNow(portal: Portal): boolean {
    const d = this.describedPortal;
    return d !== null && d.portal === portal && d.at === this.ctx.backend.expectedCount;
  }

  close(c: TargetMessage): ExtendedAction {
    this.ctx.backend.expect({ kind: 'close', changes: [this.names.expect(c.kind === 'S' ? 'statement' : 'portal', c.name, null)] });
    return 'forward';
  }

  /**
   * An Execute is recorded with the text of the statement its portal runs, as far as the server
   * confirmed it (see statement-registry.ts); a portal or statement the gateway cannot know is
   * recorded and decided as unclassified, never as another statement's text.
   */
  execute(e: { portal: string; maxRows: number }): ExtendedAction {
    const r = this.names.portal(e.portal);
    const portal: Portal = 'known' in r ? r.known : { statement: null, unknown: r.unknown, params: [], resultFormats: [], columns: null };
    const statement = portal.statement;
    // A known statement that FETCHes a portal a Bind made runs what no record names: unclassified.
    const hazard = statement && !statement.denied ? this.fetchHazard(statement.text) : null;
    const unknown = statement ? hazard : portal.unknown ?? `${describeName('portal', e.portal)} runs a statement the gateway cannot know`;
    const j = unknown !== null && this.ctx.policy ? judgeOpaque(this.ctx.policy, unknown) : null;
    const text = statement ? this.ctx.logText(statement.text) : `-- unknown statement (${describeName('portal', e.portal)})`;
    const cmd = this.ctx.rec.beginCommand({
      kind: 'pg.query',
      text,
      details: executeDetails(portal.params, e.portal, e.maxRows),
      ...(statement?.decision ? { decision: statement.decision } : {}),
      ...(unknown !== null ? { unclassified: unknown } : {}),
      ...(j ? decisionFields(j) : {}),
    });
    const run = newRun();
    if (statement?.denied) run.denied = statement.denied;
    if (statement?.copyOuts) run.copyOuts = [...statement.copyOuts];
    // A statement the gateway cannot know leaves `computed` null: its computed columns are masked.
    if (this.ctx.masksComputed && statement) run.computed = this.computedSource(statement.facts ?? statementFacts(statement.text));
    // Masking plans rows by their columns: a portal not described right before its Execute is
    // described by the gateway (see describedJustNow).
    const describe = this.ctx.learnsColumns && !this.ctx.backend.skipping && !this.describedJustNow(portal);
    const go = (): void => {
      this.followNames(run, statement?.effects ?? [], statement ? statement.mayAddNames === true : true);
      if (describe) this.ctx.backend.expect({ kind: 'describe', target: portal, swallow: true });
      this.ctx.backend.expect({ kind: 'execute', cmd, run, portal });
    };
    const before = describe ? [serialize.describe({ type: 'P', name: e.portal })] : [];
    if (j && j.decision.action !== 'allow' && !this.ctx.backend.skipping) {
      if (j.decision.action === 'deny') return this.refuseExtended(cmd, j.decision);
      return { hold: { decision: j.decision, cmd, text, approved: go, denied: (d, why) => this.refuseExtended(cmd, d, refusalState(why)) }, before };
    }
    go();
    return describe ? { before } : 'recorded';
  }

  /** The facts of a run's text, with those of the prepared statements its EXECUTEs run and of the
   * cursors its FETCHes read, as resolved now (null for one the gateway cannot know). Called once
   * per run, in the order runs are sent. */
  computedSource(facts: StatementFacts): ComputedSource {
    const runs: Run[] = facts.executes.map((name) => {
      const r = this.names.statement(name);
      return 'known' in r ? { facts: r.known.facts ?? statementFacts(r.known.text), cursor: false } : null;
    });
    runs.push(...this.cursors.sent(facts));
    return { facts, runs };
  }

  /**
   * Why a text's FETCH or MOVE cannot be recorded as itself: it may read a portal a protocol
   * Bind made, and so run that portal's statement (StatementRegistry.fetchHazard); null if not.
   */
  fetchHazard(text: string): string | null {
    const portals = fetchedPortals(text);
    if (portals === null) return this.names.anyBound() ? 'the text may FETCH or MOVE a portal made by a protocol Bind, and the gateway could not read which' : null;
    for (const p of portals) {
      const h = this.names.fetchHazard(p);
      if (h) return h;
    }
    return null;
  }

  private expectParse(name: string, statement: Statement): void {
    this.ctx.backend.expect({ kind: 'parse', changes: [this.names.expect('statement', name, statement)] });
  }

  /**
   * What the statements of `text` do to names when they run, in order: a PREPARE's statement is
   * decided here (as an EXECUTE of it would be), so a later protocol Bind of it is recorded with
   * its text and decision.
   */
  effectsOf(text: string, j: Judgement | null): Effect[] {
    if (!mayChangeNames(text)) return [];
    const raw = namespaceEffects(text);
    // Not parsed: the server's CommandComplete tags say what changed, and names are forgotten.
    if (!raw) return [];
    return raw.map((r, i): Effect => {
      if (r.kind !== 'prepare') return r;
      const classified = j?.statements?.[i];
      const statement: Statement = { text: r.text, paramTypes: [], columns: null };
      if (this.ctx.policy && j) {
        const own = classified ? judgePrepared(this.ctx.policy, classified) : j;
        statement.decision = { action: own.decision.action, rule: own.decision.rule };
        if (own.decision.action === 'deny') statement.denied = own.decision;
        const prepared = preparedOf(own);
        if (prepared) statement.prepared = prepared;
      }
      return { kind: 'prepare', name: r.name, statement };
    });
  }

  /** A command that may create names holds every name of their kinds unknown until it completes. */
  followNames(run: RunState, effects: Effect[], mayAdd: boolean): void {
    run.effects = effects;
    if (mayAdd) run.pendingNames = this.names.expect('statement', null, undefined);
  }

  /** Sends the refusal upstream; the server errors and then discards until the client's Sync. */
  private refuseExtended(cmd: CommandRecorder, denied: Decision, sqlState?: string, client: { statement?: [string, Statement]; portal?: Change } = {}): Buffer[] {
    const run = newRun();
    run.denied = denied;
    const sql = refusalSql(denied, sqlState);
    // The refusal replaces the unnamed statement: a later Bind of it is refused again. A statement
    // refused at Parse stays refused by its name.
    const [name, statement] = client.statement ?? ['', null];
    const refusal: Statement = { text: sql, paramTypes: [], columns: null, denied, decision: { action: 'deny', rule: denied.rule } };
    const changes = [this.names.expect('statement', '', name === '' && statement ? statement : refusal)];
    if (name !== '' && statement) changes.push(this.names.expect('statement', name, statement));
    this.ctx.backend.expect({ kind: 'parse', swallow: true, changes });
    this.ctx.backend.expect({ kind: 'bind', swallow: true, ...(client.portal ? { changes: [client.portal] } : {}) });
    this.ctx.backend.expect({ kind: 'execute', cmd, run, portal: null });
    this.ctx.backend.skipUntilSync();
    return refusalExtended(sql);
  }

  sync(): ExtendedAction {
    this.ctx.backend.sync();
    this.names.nextBlock();
    return 'forward';
  }
}

/**
 * What the session does with a client message: forward it ('recorded': once the new command
 * record is written), send these messages instead (a refusal), send the gateway's own messages
 * right before it, or hold it for approval.
 */
export type ExtendedAction = 'forward' | 'recorded' | Buffer[] | { before: Buffer[] } | { hold: HoldPlan; before?: Buffer[] };

/** The classes and tables of a statement, for an `EXECUTE name` of it. */
function preparedOf(j: Judgement): PreparedStatement | null {
  if (!j.statements) return null;
  return {
    classes: [...new Set(j.statements.flatMap((s) => s.classes))].sort(),
    tables: [...new Set(j.statements.flatMap((s) => s.tables))].sort(),
  };
}

/** Statement classes that can create a prepared statement or a portal by name when they run. */
const ADDS_NAMES = new Set(['prepare', 'cursor', 'execute', 'do-block']);

/**
 * Whether running the text can create a prepared statement or a portal by name (PREPARE,
 * DECLARE, EXECUTE of either, code the parser cannot see): by its classes when it was
 * classified, else by its words.
 */
export function mayAddNames(text: string, j: Judgement | null): boolean {
  if (j?.statements) return j.statements.some((s) => s.classes.some((c) => ADDS_NAMES.has(c)));
  return /prepare|declare|execute|do|call/i.test(text);
}

/**
 * An Execute's `details`, members made in canonical order (max_rows, params, portal, protocol) so
 * writing it sorts nothing: every Execute of a prepared statement writes one.
 */
function executeDetails(params: Value[], portal: string, maxRows: number): Record<string, unknown> {
  const d: Record<string, unknown> = {};
  if (maxRows) d.max_rows = maxRows;
  d.params = params;
  if (portal) d.portal = portal;
  d.protocol = 'extended';
  return d;
}
