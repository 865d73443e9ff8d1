// The one policy engine, protocol-independent: a command is described by its target, the
// classes and tables of each statement it holds, and its normalized text; the engine matches
// the policy's rules and returns allow, deny or approve with the rule that decided. The
// strictest decision among matching rules wins (deny > approve > allow); with no match the
// policy's default applies; a statement that cannot be classified gets `unclassified`.

export type Action = 'allow' | 'deny' | 'approve';

const STRICTNESS: Record<Action, number> = { allow: 0, approve: 1, deny: 2 };

/** Identity claims rules can match (GitHub OIDC claims in CI; local values otherwise). */
export interface Claims { ref?: string; environment?: string; actor?: string; event?: string }

export interface StatementFacts { classes: string[]; tables: string[]; normalized: string }

export interface CommandFacts {
  target: string;
  /** Null when the command could not be classified (parse error, unknown statement). */
  statements: StatementFacts[] | null;
  unclassifiedReason?: string;
}

export interface Matcher {
  sql?: string[];
  tables?: RegExp[];
  textMatches?: RegExp;
  ref?: RegExp[];
  refNot?: RegExp[];
  environment?: RegExp[];
  actor?: RegExp[];
  event?: RegExp[];
}

export interface Rule {
  name: string;
  /** Target name globs; null for every target. */
  targets: RegExp[] | null;
  when: Matcher;
  action: Action;
  reason?: string;
}

export interface PolicyRules {
  rules: Rule[];
  default: Action;
  unclassified: Action;
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
  if (command.statements === null) {
    return {
      action: policy.unclassified,
      rule: 'unclassified',
      reason: `the statement could not be classified (${command.unclassifiedReason ?? 'unknown reason'}); policy unclassified: ${policy.unclassified}`,
      matched: [],
    };
  }
  let result: Decision | null = null;
  for (const s of command.statements) {
    const d = decideStatement(policy, command.target, s, claims);
    result = result ? strictest(result, d) : d;
  }
  // An empty query runs nothing; it is allowed whatever the default.
  return result ?? { action: 'allow', rule: 'empty', reason: 'empty query', matched: [] };
}

function decideStatement(policy: PolicyRules, target: string, s: StatementFacts, claims: Claims): Decision {
  let best: Rule | null = null;
  const matched: string[] = [];
  for (const rule of policy.rules) {
    if (rule.targets && !rule.targets.some((t) => t.test(target))) continue;
    if (!claimsMatch(rule.when, claims) || !statementMatches(rule.when, s)) continue;
    matched.push(rule.name);
    if (!best || STRICTNESS[rule.action] > STRICTNESS[best.action]) best = rule;
  }
  if (best) return { action: best.action, rule: best.name, reason: best.reason ?? defaultReason(best), matched };
  return { action: policy.default, rule: 'default', reason: `no rule matched; policy default: ${policy.default}`, matched };
}

function defaultReason(r: Rule): string {
  return r.action === 'deny' ? `denied by rule ${r.name}` : r.action === 'approve' ? `rule ${r.name} requires approval` : `allowed by rule ${r.name}`;
}

function statementMatches(m: Matcher, s: StatementFacts): boolean {
  if (m.sql && !m.sql.some((c) => s.classes.includes(c))) return false;
  if (m.tables && !s.tables.some((t) => m.tables!.some((g) => tableMatches(g, t)))) return false;
  if (m.textMatches && !m.textMatches.test(s.normalized)) return false;
  return true;
}

/**
 * An unqualified relation may live in any schema, so `public.users` matches `users`, and a glob
 * without a schema matches the table in every schema. A statement
 * on a whole schema (`S.*`: ALTER SCHEMA S RENAME, GRANT ... ALL TABLES IN SCHEMA S) touches
 * every table in it, so it matches any glob for a table in S.
 */
function tableMatches(glob: RegExp, table: string): boolean {
  if (glob.test(table)) return true;
  const schema = globSchemaPart(glob);
  if (table.endsWith('.*')) return schema === null || schema.test(table.slice(0, -2));
  // A glob without a schema (`accounts`) names the table in any schema.
  if (schema === null && table.includes('.')) return glob.test(table.slice(table.lastIndexOf('.') + 1));
  return !table.includes('.') && (glob.test(`public.${table}`) || globTablePart(glob).test(table));
}

const schemaPartCache = new WeakMap<RegExp, RegExp | null>();
/** The pattern's part before its first unescaped dot (null when it has none: any schema). */
function globSchemaPart(glob: RegExp): RegExp | null {
  let r = schemaPartCache.get(glob);
  if (r === undefined) {
    const src = glob.source.replace(/^\^/, '').replace(/\$$/, '');
    const firstDot = src.indexOf('\\.');
    r = firstDot >= 0 ? new RegExp(`^${src.slice(0, firstDot)}$`) : null;
    schemaPartCache.set(glob, r);
  }
  return r;
}

const tablePartCache = new WeakMap<RegExp, RegExp>();
function globTablePart(glob: RegExp): RegExp {
  let r = tablePartCache.get(glob);
  if (!r) {
    // The pattern's part after the last unescaped dot, for unqualified relation names.
    const src = glob.source.replace(/^\^/, '').replace(/\$$/, '');
    const lastDot = src.lastIndexOf('\\.');
    r = new RegExp(`^${lastDot >= 0 ? src.slice(lastDot + 2) : src}$`);
    tablePartCache.set(glob, r);
  }
  return r;
}

function claimsMatch(m: Matcher, c: Claims): boolean {
  const any = (globs: RegExp[] | undefined, value: string | undefined): boolean => value !== undefined && globs!.some((g) => g.test(value));
  if (m.ref && !any(m.ref, c.ref)) return false;
  if (m.refNot && any(m.refNot, c.ref)) return false;
  if (m.environment && !any(m.environment, c.environment)) return false;
  if (m.actor && !any(m.actor, c.actor)) return false;
  if (m.event && !any(m.event, c.event)) return false;
  return true;
}

export function strictest(a: Decision, b: Decision): Decision {
  return STRICTNESS[b.action] > STRICTNESS[a.action] ? b : a;
}

/** `*` matches any run of characters; everything else is literal. Whole-string match. */
export function globToRegExp(glob: string): RegExp {
  const src = glob.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*');
  return new RegExp(`^${src}$`);
}
