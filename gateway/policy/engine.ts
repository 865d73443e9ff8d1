// The one policy engine, protocol-independent: a command is described by its target, the
// adapter kind that read it, and the facts of each unit it runs (a statement, an exec, a
// request); the engine matches the policy's rules (identity claims, and the conditions the
// adapter registered) and returns allow, deny or approve with the rule that decided. The
// strictest decision among matching rules wins (deny > approve > allow); with no match the
// policy's default applies; a statement that cannot be classified gets `unclassified`.

import { anyGlob, type Glob } from './glob.ts';
import { CanonicalText, canonicalJson, jsonString } from '../evidence/canonical-json.ts';

export type Action = 'allow' | 'deny' | 'approve';

const STRICTNESS: Record<Action, number> = { allow: 0, approve: 1, deny: 2 };

/** Identity claims rules can match (GitHub OIDC claims in CI; local values otherwise). */
export interface Claims { ref?: string; environment?: string; actor?: string; event?: string }

/** What an adapter read from one unit of a command (a statement, an exec, a request). */
export type Facts = object;

/** A compiled `when:` condition of an adapter: true when one unit of facts satisfies it. */
export type Condition = (facts: Facts) => boolean;

export interface CommandFacts {
  /** The adapter kind whose conditions read the units (`postgres`). */
  kind: string;
  target: string;
  /**
   * One entry per unit the command runs; null when the adapter could not classify it. A unit
   * that is an empty object says nothing and makes the command unclassified too.
   */
  units: Facts[] | null;
  /** The adapter knows the command runs nothing (an empty query): allowed with no units. */
  runsNothing?: boolean;
  unclassifiedReason?: string;
}

/** Claim conditions: protocol-neutral, the same for every target. */
export interface ClaimConditions {
  ref?: Glob[];
  refNot?: Glob[];
  environment?: Glob[];
  actor?: Glob[];
  event?: Glob[];
}

export interface Rule {
  name: string;
  /** Target name globs; null for every target. */
  targets: Glob[] | null;
  claims: ClaimConditions;
  /**
   * The adapter conditions compiled for each adapter kind that offers every key the rule uses;
   * null when the rule uses claims only (it applies to commands of every kind). A command of a
   * kind not in the map does not match the rule.
   */
  conditions: Map<string, Condition[]> | null;
  /** The `when:` keys the rule uses, for whoever needs to know what facts to gather. */
  keys: string[];
  action: Action;
  reason?: string;
}

export interface PolicyRules {
  rules: Rule[];
  default: Action;
  unclassified: Action;
}

/** Whether any rule matches on `key` (an adapter gathers costly facts only when one does). */
export function usesCondition(policy: PolicyRules, key: string): boolean {
  return policy.rules.some((r) => r.keys.includes(key));
}

export interface Decision {
  action: Action;
  /** The rule that decided; `default` or `unclassified` when no rule did. */
  rule: string;
  reason: string;
  /** Every rule that matched, for the log. */
  matched: string[];
}

/** Decides each statement on its own; the strictest decision applies to the whole command. */
export function decide(policy: PolicyRules, command: CommandFacts, claims: Claims): Decision {
  const units = command.units;
  // Fail closed by construction: no facts, or a unit that says nothing, is never decided by
  // rules or the default, whatever the adapter forgot.
  const silent = units === null || (units.length === 0 && !command.runsNothing) || units.some(saysNothing);
  if (silent) {
    const why = command.unclassifiedReason ?? (units === null ? 'unknown reason' : 'the adapter produced no facts');
    return {
      action: policy.unclassified,
      rule: 'unclassified',
      reason: `the statement could not be classified (${why}); policy unclassified: ${policy.unclassified}`,
      matched: [],
    };
  }
  let result: Decision | null = null;
  for (const u of units) {
    const d = decideUnit(policy, command, u, claims);
    result = result ? strictest(result, d) : d;
  }
  // An empty query runs nothing; it is allowed whatever the default.
  return result ?? { action: 'allow', rule: 'empty', reason: 'empty query', matched: [] };
}

function decideUnit(policy: PolicyRules, command: CommandFacts, facts: Facts, claims: Claims): Decision {
  let best: Rule | null = null;
  const matched: string[] = [];
  for (const rule of policy.rules) {
    if (rule.targets && !anyGlob(rule.targets, command.target)) continue;
    if (!claimsMatch(rule.claims, claims) || !conditionsMatch(rule, command.kind, facts)) continue;
    matched.push(rule.name);
    if (!best || STRICTNESS[rule.action] > STRICTNESS[best.action]) best = rule;
  }
  if (best) return { action: best.action, rule: best.name, reason: best.reason ?? defaultReason(best), matched };
  return { action: policy.default, rule: 'default', reason: `no rule matched; policy default: ${policy.default}`, matched };
}

function defaultReason(r: Rule): string {
  return r.action === 'deny' ? `denied by rule ${r.name}` : r.action === 'approve' ? `rule ${r.name} requires approval` : `allowed by rule ${r.name}`;
}

/** A unit with no facts at all (checked per command: no key array is built). */
function saysNothing(u: Facts): boolean {
  if (u === null || typeof u !== 'object') return true;
  for (const _ in u) return false;
  return true;
}

// Plain loops, no closures: these run for every rule on every statement of every command.
function conditionsMatch(rule: Rule, kind: string, facts: Facts): boolean {
  if (rule.conditions === null) return true;
  const conditions = rule.conditions.get(kind);
  if (conditions === undefined) return false;
  for (let i = 0; i < conditions.length; i++) if (!conditions[i]!(facts)) return false;
  return true;
}

function claimsMatch(m: ClaimConditions, c: Claims): boolean {
  if (m.ref && !claimMatches(m.ref, c.ref)) return false;
  if (m.refNot && claimMatches(m.refNot, c.ref)) return false;
  if (m.environment && !claimMatches(m.environment, c.environment)) return false;
  if (m.actor && !claimMatches(m.actor, c.actor)) return false;
  if (m.event && !claimMatches(m.event, c.event)) return false;
  return true;
}

/** A claim the runner did not give matches no glob. */
function claimMatches(globs: Glob[], value: string | undefined): boolean {
  return value !== undefined && anyGlob(globs, value);
}

export function strictest(a: Decision, b: Decision): Decision {
  return STRICTNESS[b.action] > STRICTNESS[a.action] ? b : a;
}

/**
 * The one way a decision is written into the session log, for every protocol: lean for the
 * common case (the reason of an allow is implied by its rule, and `matched` only says more when
 * other rules matched too). Written as canonical JSON straight away (members in canonical order:
 * action, matched, reason, rule): the log writes one per decided command.
 */
export function decisionRecord(d: Decision): CanonicalText {
  let out = '{"action":' + jsonString(d.action);
  if (d.matched.length > 1 || (d.matched.length === 1 && d.matched[0] !== d.rule)) out += ',"matched":' + canonicalJson(d.matched);
  if (d.action !== 'allow') out += ',"reason":' + jsonString(d.reason);
  return new CanonicalText(out + ',"rule":' + jsonString(d.rule) + '}');
}
