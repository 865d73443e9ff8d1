// Policy decisions for PostgreSQL commands: classify with the real parser, decide with the one
// policy engine, and build the refusal the server itself raises for a denied command. Letting
// the server raise the error (instead of inventing responses) keeps every reply in order and
// gives transactions PostgreSQL's own semantics: a refusal inside BEGIN ... aborts the block.
import { randomBytes } from 'node:crypto';
import { serialize } from 'pg-protocol';
import { type ClassifiedStatement, type PreparedClasses, type PreparedStatement } from './sql-classifier.ts';
import { classifyCached } from './classification-cache.ts';
import { decide, decisionRecord, usesCondition, type Claims, type Decision, type PolicyRules } from '../policy/engine.ts';
import type { ApprovalBroker } from '../approval/broker.ts';
import type { Refusal } from '../core/hold.ts';
import { CanonicalText, canonicalJson } from '../evidence/canonical-json.ts';

export interface PolicyContext {
  rules: PolicyRules;
  claims: Claims;
  target: string;
  /** Some rule uses text-matches, so statements need their normalized text. */
  needsText: boolean;
  approvals: ApprovalBroker | null;
}

export function policyContext(rules: PolicyRules, claims: Claims, target: string, approvals: ApprovalBroker | null = null): PolicyContext {
  return { rules, claims, target, needsText: usesCondition(rules, 'text-matches'), approvals };
}

export interface Judgement {
  decision: Decision;
  statements: ClassifiedStatement[] | null;
  /** Statements this text prepares by name (PREPARE), to remember once it is allowed. */
  prepares: [string, PreparedStatement][];
}

export function judge(ctx: PolicyContext, text: string, prepared: PreparedClasses): Judgement {
  const c = classifyCached(text, prepared, { normalize: ctx.needsText });
  if (!c.ok) {
    return { decision: decide(ctx.rules, { kind: 'postgres', target: ctx.target, units: null, unclassifiedReason: c.error }, ctx.claims), statements: null, prepares: [] };
  }
  return { decision: decide(ctx.rules, { kind: 'postgres', target: ctx.target, units: c.statements, runsNothing: c.statements.length === 0 }, ctx.claims), statements: c.statements, prepares: c.prepared };
}

/** A command no statement describes: it gets the policy's unclassified decision. */
export function judgeOpaque(ctx: PolicyContext, why: string): Judgement {
  return { decision: decide(ctx.rules, { kind: 'postgres', target: ctx.target, units: null, unclassifiedReason: why }, ctx.claims), statements: null, prepares: [] };
}

/**
 * A classified command that also does what no statement of it describes (a FETCH of a portal a
 * protocol Bind made): the stricter of its own decision and the unclassified one, so neither its
 * statements' rules nor the unclassified decision is bypassed.
 */
export function judgeWithHazard(ctx: PolicyContext, j: Judgement, hazard: string): Judgement {
  const o = judgeOpaque(ctx, hazard);
  const rank = { allow: 0, approve: 1, deny: 2 } as const;
  return rank[o.decision.action] > rank[j.decision.action] ? { ...j, decision: o.decision } : j;
}

/**
 * A statement prepared with SQL PREPARE and run by a protocol Bind/Execute: decided as `EXECUTE
 * name` would be, on the statement it prepared (its classes, `execute` instead of `prepare`).
 */
export function judgePrepared(ctx: PolicyContext, statement: ClassifiedStatement): Judgement {
  const s: ClassifiedStatement = { ...statement, classes: [...new Set(['execute', ...statement.classes.filter((c) => c !== 'prepare')])].sort() };
  return { decision: decide(ctx.rules, { kind: 'postgres', target: ctx.target, units: [s] }, ctx.claims), statements: [s], prepares: [] };
}

/** What the command record says about the decision. */
export function decisionFields(j: Judgement): { decision: CanonicalText; facts?: CanonicalText } {
  const decision = decisionRecord(j.decision);
  const statements = j.statements;
  if (!statements) return { decision };
  if (statements.length === 1) return { decision, facts: factsOf(statements[0]!).alone };
  let facts = '[';
  for (let i = 0; i < statements.length; i++) facts += (i > 0 ? ',' : '') + factsOf(statements[i]!).json;
  return { decision, facts: new CanonicalText(facts + ']') };
}

/**
 * One statement's facts as the record writes them, made once per classification: statements
 * answered from the classification cache share their cached statement's arrays (which nothing
 * changes), so the text made for those arrays is theirs. `alone`: the facts of a command that is
 * this one statement.
 */
interface FactsText { classes: string[]; json: string; alone: CanonicalText }
const factsText = new WeakMap<string[], FactsText>();
function factsOf(s: ClassifiedStatement): FactsText {
  const hit = factsText.get(s.tables);
  if (hit !== undefined && hit.classes === s.classes) return hit;
  const json = canonicalJson({ classes: s.classes, tables: s.tables });
  const made = { classes: s.classes, json, alone: new CanonicalText(`[${json}]`) };
  factsText.set(s.tables, made);
  return made;
}

export function refusalMessage(d: Decision): string {
  // A rule without a reason of its own has nothing to add to its name.
  const reason = d.reason === `denied by rule ${d.rule}` ? '' : `: ${d.reason}`;
  return `gateway: denied by rule "${d.rule}"${reason}`;
}

/** A DO block that raises the refusal as SQLSTATE 42501 (insufficient_privilege). */
export function refusalSql(d: Decision, sqlState = '42501'): string {
  const tag = `gw${randomBytes(6).toString('hex')}`;
  const quote = (s: string): string => `$${tag}$${s.replaceAll(`$${tag}$`, '')}$${tag}$`;
  return `DO $${tag}body$ BEGIN RAISE EXCEPTION USING ERRCODE = '${sqlState}', MESSAGE = ${quote(refusalMessage(d))}, HINT = ${quote('the session log records this decision; see the policy file')}; END $${tag}body$`;
}

/** The SQLSTATE a held command's refusal raises: query_canceled when its client cancelled it. */
export function refusalState(why: Refusal): string {
  return why === 'cancelled' ? '57014' : '42501';
}

/** Simple protocol: the Query the server runs instead of the denied one. */
export function refusalQuery(d: Decision, sqlState?: string): Buffer {
  return serialize.query(refusalSql(d, sqlState));
}

/**
 * Extended protocol: Parse, Bind and Execute of the refusal on the unnamed statement and portal.
 * The server answers ParseComplete and BindComplete (swallowed), then the refusal's
 * ErrorResponse, and discards the client's messages up to Sync, as for any error.
 */
export function refusalExtended(sql: string): Buffer[] {
  return [serialize.parse({ text: sql }), serialize.bind({}), serialize.execute({})];
}
