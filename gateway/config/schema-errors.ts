// Turns the policy schema's validation errors into sentences a user understands: where (the path
// as `a.b[3]`), the value written, and what is expected. What a value is expected to be cannot be
// guessed from a regular expression or a list, so every pattern, enum, const, oneOf/anyOf, not
// and format carries its own words in the schema, next to the constraint:
//   "x-expected": noun phrase of what is wanted ("a GitHub login or @org/team"),
//   "x-hint": optional advice appended after a semicolon ("bots never approve"),
//   "x-secret": true on a node whose values may be secrets (auth): they are never repeated,
//   since the message goes to CI logs (a password written where its variable's name belongs).
// Everything else (types, ranges, lengths, required and unknown keys) has a generic sentence here.
// A keyword this module does not know still gives a sentence naming the place and the value;
// test/unit/policy-messages.test.ts fails when the schema uses a keyword without its words.
import type { ErrorObject } from 'ajv';

/** Keywords whose failure is told in the schema's own words (`x-expected` on the same node). */
export const WORDED_KEYWORDS = ['pattern', 'enum', 'const', 'oneOf', 'anyOf', 'not', 'format'] as const;
/** Keywords with a generic sentence below. */
export const GENERIC_KEYWORDS = [
  'type', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'minLength', 'maxLength',
  'minItems', 'maxItems', 'minProperties', 'maxProperties', 'uniqueItems', 'required', 'additionalProperties', 'propertyNames',
] as const;
/** Keywords that only hold other schemas or describe; they fail through what they hold. */
export const STRUCTURAL_KEYWORDS = [
  '$schema', '$id', '$ref', 'title', 'description', 'default', 'examples', 'definitions', 'properties', 'items',
  'allOf', 'if', 'then', 'else', 'x-expected', 'x-hint', 'x-secret',
] as const;

type Schema = Record<string, unknown>;

export interface SchemaProblem {
  /** Where in the document: the path to the value (or, for an unknown key or bad name, to the key). */
  path: (string | number)[];
  /** The key the problem is about, when it is a key (unknown key, bad property name). */
  key?: string;
  message: string;
  /**
   * Where the failed keyword is in the schema file, as a JSON pointer from its root (Ajv's own
   * schemaPath restarts inside every $ref), e.g. `#/definitions/postgres/properties/tls/enum`.
   */
  schemaPath: string;
}

// The most specific error is the most useful one: the deepest, and at equal depth the one that
// names what the user wrote (an unknown key says more than the required key it replaced; a bot
// says more than a pattern).
const RANK: Record<string, number> = { additionalProperties: 0, propertyNames: 1, not: 1, enum: 2, const: 2, type: 3, required: 5 };

/** Every schema node of `root` by identity, with its JSON pointer. */
export function schemaPointers(root: unknown): Map<object, string> {
  const out = new Map<object, string>();
  const walk = (node: unknown, ptr: string): void => {
    if (node === null || typeof node !== 'object' || out.has(node)) return;
    out.set(node, ptr);
    for (const [k, v] of Object.entries(node)) walk(v, `${ptr}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`);
  };
  walk(root, '#');
  return out;
}

/**
 * The error to show, with its sentence. `errors` come from Ajv with `verbose: true` (each carries
 * its value and schema node); `pointers` is `schemaPointers` of the compiled schema.
 */
export function explain(errors: ErrorObject[], data: unknown, pointers: Map<object, string>): SchemaProblem {
  const pool = relevant(errors);
  const depth = (e: ErrorObject): number => e.instancePath.split('/').length + (typeof e.propertyName === 'string' ? 1 : 0);
  const rank = (e: ErrorObject): number => RANK[e.keyword] ?? 4;
  const err = [...pool].sort((a, b) => depth(b) - depth(a) || rank(a) - rank(b))[0]!;
  const base = err.parentSchema ? pointers.get(err.parentSchema) : undefined;
  const schemaPath = base ? `${base}/${err.keyword}` : err.schemaPath;
  // A value under a node marked x-secret (or whose place is unknown) is never repeated.
  const secret = !base || [...pointers].some(([node, ptr]) => (node as Schema)['x-secret'] === true && (schemaPath === ptr || schemaPath.startsWith(`${ptr}/`)));
  return { ...sentence(err, data, secret), schemaPath };
}

/**
 * Drops what only restates another error: `if`/`$ref` wrappers, the generic `propertyNames`
 * error beside its pattern, and inside oneOf/anyOf the branches whose type did not fit the value
 * (when one did fit, its own error says more; when none did, the oneOf's sentence says it all).
 */
function relevant(errors: ErrorObject[]): ErrorObject[] {
  let out = errors.filter((e) => e.keyword !== 'if' && e.keyword !== '$ref' && e.keyword !== 'propertyNames');
  for (const c of out.filter((e) => e.keyword === 'oneOf' || e.keyword === 'anyOf')) {
    const inside = out.filter((e) => e !== c && e.schemaPath.startsWith(`${c.schemaPath}/`) && e.instancePath.startsWith(c.instancePath));
    const fitting = inside.filter((e) => !(e.keyword === 'type' && e.instancePath === c.instancePath));
    out = fitting.length > 0 ? out.filter((e) => e !== c && !(inside.includes(e) && !fitting.includes(e))) : out.filter((e) => !inside.includes(e));
  }
  return out.length ? out : errors;
}

function segments(err: ErrorObject): string[] {
  return err.instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** The path with array positions as numbers (the document tells which segments index a list). */
function typedPath(err: ErrorObject, data: unknown): (string | number)[] {
  const out: (string | number)[] = [];
  let node = data;
  for (const s of segments(err)) {
    const isIndex = Array.isArray(node) && /^\d+$/.test(s);
    out.push(isIndex ? Number(s) : s);
    node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[s] : undefined;
  }
  return out;
}

/** `approvals.approvers[3]`, `targets.app-db.tls`, `targets["odd key"]`. */
export function formatPath(path: (string | number)[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(p)) out += out ? `.${p}` : p;
    else out += `[${JSON.stringify(p)}]`;
  }
  return out;
}

/** A value as written, short enough for one line: strings quoted, long ones cut. */
export function showValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  if (v === null || v === undefined) return 'empty';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return String(v);
}

/** What a value is, for "must be X, not Y". */
function kindOf(v: unknown): string {
  if (typeof v === 'string') return `the text ${showValue(v)}`;
  if (typeof v === 'number') return `the number ${v}`;
  if (typeof v === 'boolean') return String(v);
  if (v === null || v === undefined) return 'empty';
  if (Array.isArray(v)) return 'a list';
  return 'a mapping';
}

const TYPE_WORDS: Record<string, string> = {
  string: 'text', integer: 'a whole number', number: 'a number', boolean: 'true or false',
  array: 'a list', object: 'a mapping of keys to values', null: 'empty',
};

const count = (n: number, one: string, many: string): string => `${n} ${n === 1 ? one : many}`;

const HIDDEN = '(not repeated here: it may be a secret)';

function sentence(err: ErrorObject, data: unknown, secret: boolean): SchemaProblem {
  const path = typedPath(err, data);
  const where = formatPath(path);
  const p = err.params as Record<string, unknown>;
  const node = (err.parentSchema ?? {}) as Schema;
  const value = err.data;
  const show = (v: unknown): string => (secret ? `the value written ${HIDDEN}` : showValue(v));
  const kind = (v: unknown): string => (secret && typeof v === 'string' ? `text ${HIDDEN}` : secret && typeof v === 'number' ? `a number ${HIDDEN}` : kindOf(v));
  const expected = typeof node['x-expected'] === 'string' ? node['x-expected'] : null;
  const hint = typeof node['x-hint'] === 'string' ? `; ${node['x-hint']}` : '';
  const at = (text: string): string => (where ? `${where}: ${text}` : text);
  const problem = (message: string, key?: string): SchemaProblem => ({ path, message, schemaPath: err.schemaPath, ...(key !== undefined ? { key } : {}) });

  switch (err.keyword) {
    case 'additionalProperties': {
      const key = String(p.additionalProperty);
      const known = Object.keys((node.properties ?? {}) as Schema);
      const near = closest(key, known);
      const advice = near ? ` (did you mean "${near}"?)` : known.length ? ` (known keys: ${known.join(', ')})` : '';
      if (secret) return problem(`${where}: an unknown key ${HIDDEN}${advice}`, key);
      return problem(where ? `${where}: unknown key "${key}"${advice}` : `unknown top-level key "${key}"${advice}`, key);
    }
    case 'required': {
      const key = String(p.missingProperty);
      const d = ((node.properties ?? {}) as Record<string, Schema>)[key]?.description;
      const what = typeof d === 'string' ? `: ${d.charAt(0).toLowerCase()}${d.slice(1).replace(/\.$/, '')}` : '';
      return problem(`${where || 'the policy file'} is missing required key "${key}"${what}`);
    }
    case 'pattern':
    case 'not':
    case 'format':
      if (typeof err.propertyName === 'string') {
        // A key that breaks propertyNames: Ajv reports it with the object's path.
        const key = err.propertyName;
        return problem(`${where ? `${where}: ` : ''}${showValue(key)} is not ${expected ?? 'an allowed name here'}${hint}`, key);
      }
      return problem(at(`${show(value)} is not ${expected ?? 'valid here'}${hint}`));
    case 'enum': {
      const allowed = (p.allowedValues as unknown[]).map(String);
      const near = typeof value === 'string' && !secret ? closest(value, allowed) : null;
      return problem(at(`${show(value)} is not ${expected ?? 'an allowed value'}; use one of: ${allowed.join(', ')}${near ? ` (did you mean "${near}"?)` : ''}${hint}`));
    }
    case 'const':
      return problem(at(`${show(value)} is not ${expected ?? `allowed here; use ${JSON.stringify(p.allowedValue)}`}${hint}`));
    case 'oneOf':
    case 'anyOf':
      return problem(`${where || 'the policy file'} must be ${expected ?? 'one of the allowed forms'}, not ${kind(value)}${hint}`);
    case 'type': {
      if (!where) return problem(`the policy file must be a mapping of keys (version:, targets:, ...), not ${kind(value)}`);
      const wanted = expected ?? String(p.type).split(',').map((t) => TYPE_WORDS[t] ?? t).join(' or ');
      return problem(`${where} must be ${wanted}, not ${kind(value)}${hint}`);
    }
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum': {
      const lo = typeof node.minimum === 'number' ? node.minimum : null;
      const hi = typeof node.maximum === 'number' ? node.maximum : null;
      const range = lo !== null && hi !== null ? `use ${lo} to ${hi}` : lo !== null ? `use ${lo} or more` : hi !== null ? `use at most ${hi}` : String(err.message);
      return problem(at(`${show(value)} is out of range; ${range}`));
    }
    case 'minLength':
      return problem(Number(p.limit) === 1 ? `${where} must not be empty` : `${where} must be at least ${count(Number(p.limit), 'character', 'characters')} long`);
    case 'maxLength':
      return problem(`${where} must be at most ${count(Number(p.limit), 'character', 'characters')} long`);
    case 'minItems':
      return problem(Number(p.limit) === 1 ? `${where} must not be an empty list` : `${where} must list at least ${count(Number(p.limit), 'entry', 'entries')}`);
    case 'maxItems':
      return problem(`${where} must list at most ${count(Number(p.limit), 'entry', 'entries')}`);
    case 'minProperties':
      return problem(Number(p.limit) === 1 ? `${where} must not be empty: name at least one entry` : `${where} needs at least ${count(Number(p.limit), 'entry', 'entries')}`);
    case 'maxProperties':
      return problem(`${where} must have at most ${count(Number(p.limit), 'entry', 'entries')}`);
    case 'uniqueItems': {
      const list = Array.isArray(value) ? value : [];
      return problem(`${where} lists ${show(list[Number(p.j)])} twice`);
    }
    default:
      // A keyword without a sentence yet still names the place and the value (and fails a test).
      return problem(at(`${show(value)} is not valid here (${err.message ?? err.keyword})`));
  }
}

/** The known word closest to a misspelt one: a small edit away, or sharing a long start. */
export function closest(word: string, known: string[]): string | null {
  const w = word.toLowerCase();
  let best: { k: string; d: number } | null = null;
  for (const k of known) {
    const d = distance(w, k.toLowerCase());
    if (d <= Math.max(1, Math.floor(Math.max(w.length, k.length) / 3)) && (!best || d < best.d)) best = { k, d };
  }
  if (best) return best.k;
  let prefix: { k: string; n: number } | null = null;
  for (const k of known) {
    let n = 0;
    while (n < w.length && n < k.length && w[n] === k[n]!.toLowerCase()) n++;
    if (n >= 4 && (!prefix || n > prefix.n)) prefix = { k, n };
  }
  return prefix?.k ?? null;
}

/** Edits (insert, delete, replace, swap two neighbours) from a to b: `tsl` is one from `tls`. */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = d[i]!;
      row[j] = Math.min(d[i - 1]![j]! + 1, row[j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}
