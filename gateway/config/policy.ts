// Loads the policy file: YAML, validated against the JSON Schema shipped beside this module, with
// every error naming the file, the line and what is wrong.
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { Ajv, type ErrorObject } from 'ajv';
import { LineCounter, isMap, isScalar, parseDocument, type Document, type Node as YamlNode } from 'yaml';
import schema from './policy.schema.json' with { type: 'json' };

export interface PostgresTarget {
  name: string;
  kind: 'postgres';
  host: string;
  port: number;
  database: string;
  user: string;
  auth: { passwordEnv: string };
  tls: 'disable' | 'require' | 'verify-full';
  caFile?: string;
}
export type Target = PostgresTarget;

export interface Policy {
  path: string;
  /** SHA-256 of the file's bytes, recorded in the session log. */
  sha256: string;
  targets: Target[];
  sessionLog: { sampleRows: number };
}

export class PolicyError extends Error {
  constructor(file: string, line: number | null, message: string) {
    super(`${file}${line ? `:${line}` : ''}: ${message}`);
    this.name = 'PolicyError';
  }
}

const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);

export function loadPolicy(file: string): Policy {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new PolicyError(file, null, `cannot read policy file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return parsePolicy(text, file);
}

export function parsePolicy(text: string, file: string): Policy {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const lineOf = (offset: number | undefined): number | null => (offset === undefined ? null : lines.linePos(offset).line);
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    throw new PolicyError(file, lineOf(e.pos[0]), `invalid YAML: ${e.message.split('\n')[0]}`);
  }
  const data: unknown = doc.toJS();
  if (data === null || data === undefined) throw new PolicyError(file, 1, 'the policy file is empty; it needs at least `version: 1` and `targets:`');
  for (const [name, t] of Object.entries((data as { targets?: Record<string, { auth?: unknown }> }).targets ?? {})) {
    if (t && typeof t === 'object' && t.auth === 'azure') {
      const node = doc.getIn(['targets', name, 'auth'], true) as YamlNode | undefined;
      throw new PolicyError(file, lineOf(node?.range?.[0]), `targets.${name}.auth: azure (Entra ID workload identity) is not supported by this version yet; use auth: { password-env: NAME }`);
    }
  }
  if (!validate(data)) {
    const err = pickError(validate.errors ?? []);
    throw new PolicyError(file, lineOf(locate(doc, err)), describe(err));
  }
  const raw = data as { targets: Record<string, Record<string, unknown>>; 'session-log'?: { 'sample-rows'?: number } };
  const baseDir = path.dirname(path.resolve(file));
  const targets: Target[] = Object.entries(raw.targets).map(([name, t]) => ({
    name,
    kind: 'postgres',
    host: String(t.host),
    port: (t.port as number | undefined) ?? 5432,
    database: String(t.database),
    user: String(t.user),
    auth: { passwordEnv: String((t.auth as Record<string, string>)['password-env']) },
    tls: ((t.tls as PostgresTarget['tls'] | undefined) ?? 'verify-full'),
    caFile: t['ca-file'] ? path.resolve(baseDir, String(t['ca-file'])) : undefined,
  }));
  const names = new Map<string, string>();
  for (const t of targets) {
    const env = envName(t.name);
    const clash = names.get(env);
    if (clash) throw new PolicyError(file, lineOf(keyOffset(doc, ['targets'], t.name)), `targets "${clash}" and "${t.name}" both map to ${env}`);
    names.set(env, t.name);
  }
  return {
    path: path.resolve(file),
    sha256: createHash('sha256').update(text).digest('hex'),
    targets,
    sessionLog: { sampleRows: raw['session-log']?.['sample-rows'] ?? 10 },
  };
}

/** GATEWAY_<NAME>_URL's NAME part: upper-cased, '-' to '_'. */
export function envName(target: string): string {
  return `GATEWAY_${target.toUpperCase().replace(/-/g, '_')}_URL`;
}

// The most specific error is the most useful one: the deepest, and at equal depth the one that
// names what the user wrote (an unknown key says more than the required key it replaced).
const PRIORITY: Record<string, number> = { additionalProperties: 0, propertyNames: 1, enum: 2, const: 2, type: 3, required: 5 };
function pickError(errors: ErrorObject[]): ErrorObject {
  const useful = errors.filter((e) => e.keyword !== 'if' && e.keyword !== '$ref' && !(e.keyword === 'pattern' && 'propertyName' in e));
  const pool = useful.length ? useful : errors;
  const depth = (e: ErrorObject): number => e.instancePath.split('/').length;
  const rank = (e: ErrorObject): number => PRIORITY[e.keyword] ?? 4;
  return [...pool].sort((a, b) => depth(b) - depth(a) || rank(a) - rank(b))[0]!;
}

function pathOf(err: ErrorObject): string[] {
  return err.instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function describe(err: ErrorObject): string {
  const where = pathOf(err).join('.') || 'top level';
  const p = err.params as Record<string, unknown>;
  switch (err.keyword) {
    case 'additionalProperties':
      return `unknown key "${String(p.additionalProperty)}" in ${where}`;
    case 'required':
      return `${where} is missing required key "${String(p.missingProperty)}"`;
    case 'enum':
      return `${where} must be one of: ${(p.allowedValues as unknown[]).join(', ')}`;
    case 'const':
      return `${where} must be ${JSON.stringify(p.allowedValue)}`;
    case 'propertyNames':
      return `target name "${String(p.propertyName)}" must start with a letter and contain only letters, digits, '-' and '_'`;
    case 'pattern':
      return `${where} ${err.message}`;
    default:
      return `${where} ${err.message ?? 'is invalid'}`;
  }
}

function keyOffset(doc: Document, parent: string[], key: string): number | undefined {
  const node = parent.length ? doc.getIn(parent, true) : doc.contents;
  if (!isMap(node)) return undefined;
  for (const pair of node.items) {
    if (isScalar(pair.key) && String(pair.key.value) === key) return pair.key.range?.[0];
  }
  return undefined;
}

function locate(doc: Document, err: ErrorObject): number | undefined {
  const p = pathOf(err);
  const params = err.params as Record<string, unknown>;
  if (err.keyword === 'additionalProperties') return keyOffset(doc, p, String(params.additionalProperty));
  if (err.keyword === 'propertyNames') return keyOffset(doc, p, String(params.propertyName));
  for (let n = p.length; n >= 0; n--) {
    const node = (n === 0 ? doc.contents : doc.getIn(p.slice(0, n), true)) as YamlNode | null;
    if (node && node.range) return node.range[0];
    if (n > 0) {
      const k = keyOffset(doc, p.slice(0, n - 1), p[n - 1]!);
      if (k !== undefined) return k;
    }
  }
  return undefined;
}
