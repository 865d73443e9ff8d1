// Loads the policy file: YAML, validated against the JSON Schema shipped beside this module, with
// every error naming the file, the line and what is wrong.
import { columnPatternProblem, type MaskingRules } from '../masking/engine.ts';
import type { DetectorName } from '../masking/detectors.ts';
import { jsonPathProblem } from '../masking/json-path.ts';
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { Ajv } from 'ajv';
import { LineCounter, isMap, isScalar, parseDocument, visit, type Alias, type Document, type Node as YamlNode } from 'yaml';
import { explain, schemaPointers } from './schema-errors.ts';
import { policySchema } from './policy-schema.ts';
import type { Action, ClaimConditions, Condition, PolicyRules, Rule } from '../policy/engine.ts';
import { anyGlob, hasWildcard, nameGlob, type Glob } from '../policy/glob.ts';
import type { Adapter, TargetBase } from '../core/adapter.ts';
import { targetVariable } from '../core/target-variable.ts';
import type { PolicySource } from './policy-source.ts';
import { parseEgress, type EgressEntry } from '../egress/allow-list.ts';

/** A target of any kind: the adapter of its kind knows the rest of its fields. */
export type Target = TargetBase & Record<string, any>;

export interface Policy {
  path: string;
  /** The adapters the file was read with: the daemon serves each target through its kind's. */
  adapters: readonly Adapter<any>[];
  rules: PolicyRules;
  /** Whether the file sets rules, default or unclassified at all (else nothing is classified). */
  hasRuleSettings: boolean;
  approvals: ApprovalSettings;
  /** SHA-256 of the file's bytes, recorded in the session log. */
  sha256: string;
  targets: Target[];
  sessionLog: { sampleRows: number; checkpoints: { everyRecords: number; everyMs: number } };
  /** Null when the file has no masking section. */
  masking: MaskingRules | null;
  /** Hosts reached through the forward proxy unread (empty: none). */
  egress: EgressEntry[];
  /** Where the bytes came from (absent: the workspace file at `path`). */
  source?: PolicySource;
}

export interface PolicyOptions {
  /** Where relative paths in the policy (ca-file, known-hosts...) resolve; default the file's directory. */
  baseDir?: string;
  /** Where the bytes came from; with a base commit, `path` is the file's path in the repository. */
  source?: PolicySource;
}

export interface ApprovalSettings {
  timeoutMs: number;
  /** GitHub users (lower-case logins) and teams (`org/slug`); empty: repository write access. */
  users: string[];
  teams: string[];
  minApprovals: number;
  allowSelfApproval: boolean;
  /** The pull request of the run, or a fixed issue. */
  where: { kind: 'pull-request' } | { kind: 'issue'; number: number };
}

export class PolicyError extends Error {
  /** For a schema error, the failed keyword's place in the schema (tests check every one has words). */
  readonly schemaPath: string | undefined;
  constructor(file: string, line: number | null, message: string, schemaPath?: string) {
    super(`${file}${line ? `:${line}` : ''}: ${message}`);
    this.name = 'PolicyError';
    this.schemaPath = schemaPath;
  }
}

// verbose: errors carry the failing value and schema node, which the sentences need. The schema's
// own words for a constraint (x-expected, x-hint) and x-secret (see schema-errors.ts) are declared.
const ajv = new Ajv({ allErrors: true, strict: false, verbose: true });
ajv.addKeyword({ keyword: 'x-expected', metaSchema: { type: 'string', minLength: 1 } });
ajv.addKeyword({ keyword: 'x-hint', metaSchema: { type: 'string', minLength: 1 } });
ajv.addKeyword({ keyword: 'x-secret', metaSchema: { type: 'boolean' } });

interface CompiledSchema { validate: ReturnType<typeof ajv.compile>; pointers: ReturnType<typeof schemaPointers> }
const compiled = new WeakMap<readonly Adapter<any>[], CompiledSchema>();
function compiledSchema(adapters: readonly Adapter<any>[]): CompiledSchema {
  let c = compiled.get(adapters);
  if (!c) {
    // Each set of adapters has its own schema under the same $id, which Ajv keeps one of.
    const { $id: _id, ...schema } = policySchema(adapters);
    c = { validate: ajv.compile(schema), pointers: schemaPointers(schema) };
    compiled.set(adapters, c);
  }
  return c;
}

export function loadPolicy(file: string, adapters: readonly Adapter<any>[], options: PolicyOptions = {}): Policy {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new PolicyError(file, null, `cannot read policy file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return parsePolicy(bytes, file, adapters, options);
}

/** Bytes are digested as given (what `sha256sum` of the file prints), then read as UTF-8. */
export function parsePolicy(content: string | Uint8Array, file: string, adapters: readonly Adapter<any>[], options: PolicyOptions = {}): Policy {
  const text = typeof content === 'string' ? content : Buffer.from(content).toString('utf8');
  const { validate, pointers } = compiledSchema(adapters);
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const lineOf = (offset: number | undefined): number | null => (offset === undefined ? null : lines.linePos(offset).line);
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    throw new PolicyError(file, lineOf(e.pos[0]), `invalid YAML: ${e.message.split('\n')[0]}`);
  }
  let data: unknown;
  try {
    data = doc.toJS();
  } catch (e) {
    // An alias with no anchor: most often a value that starts with * (`host: *.npmjs.org`).
    const alias = unresolvedAlias(doc);
    throw new PolicyError(file, lineOf(alias?.range?.[0]), `invalid YAML: ${(e as Error).message}${alias ? `; a value that starts with * is read as an alias: put it in quotes ("*${alias.source}")` : ''}`);
  }
  if (data === null || data === undefined) throw new PolicyError(file, 1, 'the policy file is empty; it needs at least `version: 1` and `targets:`');
  if (!validate(data)) {
    const problem = explain(validate.errors ?? [], data, pointers);
    const offset = problem.key !== undefined ? keyOffset(doc, problem.path, problem.key) : locateValue(doc, problem.path);
    throw new PolicyError(file, lineOf(offset), problem.message, problem.schemaPath);
  }
  const raw = data as { targets: Record<string, Record<string, unknown>>; 'session-log'?: { 'sample-rows'?: number; checkpoints?: { 'every-records'?: number; every?: string } } };
  const baseDir = options.baseDir ? path.resolve(options.baseDir) : path.dirname(path.resolve(file));
  const byKind = new Map(adapters.map((ad) => [ad.kind, ad]));
  const targets: Target[] = Object.entries(raw.targets).map(([name, t]) => {
    const fail = (p: (string | number)[], message: string): never => {
      throw new PolicyError(file, lineOf(locateNode(doc, ['targets', name, ...p])), message);
    };
    // The schema admits only the kinds of the adapters given.
    return byKind.get(String(t.kind))!.parseTarget(name, t, { fail, baseDir }) as Target;
  });
  const names = new Map<string, string>();
  for (const t of targets) {
    const env = envName(t.name);
    const clash = names.get(env);
    if (clash) throw new PolicyError(file, lineOf(keyOffset(doc, ['targets'], t.name)), `targets "${clash}" and "${t.name}" both map to ${env}`);
    names.set(env, t.name);
  }
  const rules = parseRules(raw as RawPolicy, targets, adapters, (p) => lineOf(locateNode(doc, p)), file);
  return {
    path: options.source?.from === 'base' ? options.source.file : path.resolve(file),
    adapters,
    rules,
    hasRuleSettings: ['rules', 'default', 'unclassified'].some((k) => k in (raw as object)),
    approvals: approvalSettings((raw as RawPolicy).approvals, (p) => lineOf(locateNode(doc, p)), file),
    sha256: createHash('sha256').update(content).digest('hex'),
    targets,
    sessionLog: {
      sampleRows: raw['session-log']?.['sample-rows'] ?? 10,
      checkpoints: { everyRecords: raw['session-log']?.checkpoints?.['every-records'] ?? 1000, everyMs: checkpointInterval(raw['session-log']?.checkpoints?.every, (p) => lineOf(locateNode(doc, p)), file) },
    },
    masking: parseMasking((raw as RawPolicy).masking, (p) => lineOf(locateNode(doc, p)), file),
    egress: parseEgress((raw as RawPolicy).egress, (p, message) => {
      throw new PolicyError(file, lineOf(locateNode(doc, ['egress', ...p])), message);
    }),
    ...(options.source ? { source: options.source } : {}),
  };
}

/** GATEWAY_<NAME>_URL: the variable a target's connection string is exported in. */
export const envName = (target: string): string => targetVariable(target);

function keyOffset(doc: Document, parent: (string | number)[], key: string): number | undefined {
  const node = parent.length ? doc.getIn(parent, true) : doc.contents;
  if (!isMap(node)) return undefined;
  for (const pair of node.items) {
    if (isScalar(pair.key) && String(pair.key.value) === key) return pair.key.range?.[0];
  }
  return undefined;
}

interface RawRule {
  name: string;
  target?: string | string[];
  when: Record<string, unknown>;
  action: Action;
  reason?: string;
}
interface RawPolicy {
  rules?: RawRule[];
  default?: Action;
  unclassified?: Action;
  approvals?: { timeout?: string; approvers?: string[]; 'min-approvals'?: number; 'allow-self-approval'?: boolean; where?: string };
  masking?: { columns?: string[]; detectors?: DetectorName[]; 'json-fields'?: string[]; 'apply-to'?: ('client' | 'log')[] };
  egress?: { host: string; ports?: number[] }[];
}

function parseMasking(m: RawPolicy['masking'], lineAt: (p: (string | number)[]) => number | null, file: string): MaskingRules | null {
  if (!m) return null;
  const columns = m.columns ?? [];
  columns.forEach((c, i) => {
    const problem = columnPatternProblem(c);
    if (problem) throw new PolicyError(file, lineAt(['masking', 'columns', i]), `masking.columns[${i}]: "${c}" is not a column pattern: ${problem}`);
  });
  const jsonFields = m['json-fields'] ?? [];
  jsonFields.forEach((f, i) => {
    const problem = jsonPathProblem(f);
    if (problem) throw new PolicyError(file, lineAt(['masking', 'json-fields', i]), `masking.json-fields[${i}]: "${f}" is not a JSON path: ${problem}`);
  });
  const applyTo = m['apply-to'] ?? ['client', 'log'];
  return { columns, detectors: m.detectors ?? [], jsonFields, applyTo: { client: applyTo.includes('client'), log: applyTo.includes('log') } };
}

const CLAIM_KEYS: Record<string, keyof ClaimConditions> = { ref: 'ref', 'ref-not': 'refNot', environment: 'environment', actor: 'actor', event: 'event' };

function parseRules(raw: RawPolicy, targets: Target[], adapters: readonly Adapter<any>[], lineAt: (p: (string | number)[]) => number | null, file: string): PolicyRules {
  const targetNames = targets.map((t) => t.name);
  const rules: Rule[] = [];
  const names = new Set<string>();
  (raw.rules ?? []).forEach((r, i) => {
    const fail = (rest: (string | number)[], message: string): never => {
      throw new PolicyError(file, lineAt(['rules', i, ...rest]), `rule "${r.name}": ${message}`);
    };
    if (names.has(r.name)) fail(['name'], 'another rule has the same name');
    names.add(r.name);
    const ruleTargets = r.target === undefined ? null : (Array.isArray(r.target) ? r.target : [r.target]).map((g) => {
      // A plain name that names no target is a typo that would make the rule never apply.
      if (!hasWildcard(g) && !targetNames.includes(g)) fail(['target'], `target "${g}" is not defined in targets (defined: ${targetNames.join(', ')})`);
      return globOrFail(g, () => fail(['target'], `bad target glob "${g}": only * is a wildcard`));
    });
    const w = r.when;
    const claims: ClaimConditions = {};
    for (const [key, field] of Object.entries(CLAIM_KEYS)) {
      const v = w[key];
      if (v === undefined) continue;
      claims[field] = (Array.isArray(v) ? v : [v]).map((g) => globOrFail(g, () => fail(['when', key], `bad glob "${g}": only * is a wildcard`)));
    }
    const keys = Object.keys(w);
    const protocolKeys = keys.filter((k) => !(k in CLAIM_KEYS));
    // The adapters of the targets this rule can apply to; each compiles the keys it offers.
    const kinds = new Set(targets.filter((t) => ruleTargets === null || anyGlob(ruleTargets, t.name)).map((t) => t.kind));
    let conditions: Map<string, Condition[]> | null = null;
    if (protocolKeys.length > 0) {
      conditions = new Map();
      for (const key of protocolKeys) {
        if (!adapters.some((a) => kinds.has(a.kind) && a.conditions.some((c) => c.key === key))) {
          const offered = adapters.filter((a) => a.conditions.some((c) => c.key === key)).map((a) => a.kind);
          const scope = ruleTargets === null ? 'the targets' : 'the targets this rule applies to';
          fail(['when', key], `when.${key} does not apply to ${scope} (${[...kinds].join(', ') || 'none'}): ${offered.length ? `it is a condition of ${offered.join(', ')} targets` : 'no target kind has it'}`);
        }
      }
      for (const a of adapters) {
        if (!kinds.has(a.kind)) continue;
        const specs = protocolKeys.map((k) => a.conditions.find((c) => c.key === k));
        // A kind that lacks one of the keys never matches the rule.
        if (specs.some((c) => c === undefined)) continue;
        conditions.set(a.kind, specs.map((c) => c!.compile(w[c!.key], (message, at = []) => fail(['when', c!.key, ...at], message))));
      }
    }
    rules.push({ name: r.name, targets: ruleTargets, claims, conditions, keys, action: r.action, reason: r.reason });
  });
  return { rules, default: raw.default ?? 'allow', unclassified: raw.unclassified ?? 'deny' };
}

function globOrFail(glob: string, fail: () => never): Glob {
  if (/[[\]?{}]/.test(glob) || glob.includes('**')) fail();
  return nameGlob(glob);
}

const MAX_APPROVAL_TIMEOUT_MS = 24 * 3_600_000;

function approvalSettings(raw: RawPolicy['approvals'], lineAt: (p: (string | number)[]) => number | null, file: string): ApprovalSettings {
  const approvers = raw?.approvers ?? [];
  const where = raw?.where ?? 'pull-request';
  return {
    timeoutMs: approvalTimeout(raw?.timeout, lineAt, file),
    users: approvers.filter((a) => !a.includes('/')).map((a) => a.replace(/^@/, '').toLowerCase()),
    teams: approvers.filter((a) => a.includes('/')).map((a) => a.replace(/^@/, '').toLowerCase()),
    minApprovals: raw?.['min-approvals'] ?? 1,
    allowSelfApproval: raw?.['allow-self-approval'] ?? false,
    where: where === 'pull-request' ? { kind: 'pull-request' } : { kind: 'issue', number: Number(where.slice('issue:'.length)) },
  };
}

function approvalTimeout(text: string | undefined, lineAt: (p: (string | number)[]) => number | null, file: string): number {
  const ms = parseDuration(text ?? '15m');
  if (ms < 1000 || ms > MAX_APPROVAL_TIMEOUT_MS) throw new PolicyError(file, lineAt(['approvals', 'timeout']), `approvals.timeout: ${text} is outside 1s to 24h`);
  return ms;
}

const MAX_CHECKPOINT_INTERVAL_MS = 3_600_000;

function checkpointInterval(text: string | undefined, lineAt: (p: (string | number)[]) => number | null, file: string): number {
  const ms = parseDuration(text ?? '5s');
  if (ms !== 0 && (ms < 100 || ms > MAX_CHECKPOINT_INTERVAL_MS)) {
    throw new PolicyError(file, lineAt(['session-log', 'checkpoints', 'every']), `session-log.checkpoints.every: ${text} is outside 100ms to 1h (0s turns the time trigger off)`);
  }
  return ms;
}

export function parseDuration(text: string): number {
  const m = /^(\d+)(ms|s|m|h)$/.exec(text)!;
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
}

/** The first alias that names no anchor before it. */
function unresolvedAlias(doc: Document): Alias | undefined {
  let found: Alias | undefined;
  visit(doc, {
    Alias(_key, node) {
      if (node.resolve(doc) !== undefined) return undefined;
      found = node;
      return visit.BREAK;
    },
  });
  return found;
}

/** The value at `p`, else its key, else the nearest enclosing node that has a place. */
function locateValue(doc: Document, p: (string | number)[]): number | undefined {
  for (let n = p.length; n >= 0; n--) {
    const node = (n === 0 ? doc.contents : doc.getIn(p.slice(0, n), true)) as YamlNode | null;
    if (node && node.range) return node.range[0];
    if (n > 0) {
      const k = keyOffset(doc, p.slice(0, n - 1), String(p[n - 1]));
      if (k !== undefined) return k;
    }
  }
  return undefined;
}

function locateNode(doc: Document, p: (string | number)[]): number | undefined {
  for (let n = p.length; n > 0; n--) {
    const node = doc.getIn(p.slice(0, n), true) as YamlNode | null;
    if (node && node.range) return node.range[0];
  }
  return undefined;
}
