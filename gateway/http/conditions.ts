// The `when:` keys an HTTP request can be matched on, registered with the policy loader through
// the adapter: `method` (a list of methods), `path` (segment-aware globs over the normalized path)
// and `resource` (the Azure Resource Manager resource the path names). Each reads one HttpUnit
// (request-facts.ts). ARM compares namespaces, types and names without case, and so do these.
//
// `path` is also an SSH condition: the policy schema takes the first adapter's schema for a key
// (gateway/config/policy-schema.ts), and a rule without `target:` compiles its `path` for both
// kinds. Both schemas are the same list of strings, and this compile accepts every glob the SSH
// one accepts (absolute, or starting with `**`), so such a rule loads whatever kinds the policy has.
import type { ConditionSpec } from '../core/adapter.ts';
import type { Facts } from '../policy/engine.ts';
import { anyGlob, nameGlob, pathGlob, type Glob } from '../policy/glob.ts';
import { armFold, armTypeCandidates, type ArmResource } from './arm-resource.ts';
import type { HttpUnit } from './request-facts.ts';
import { canonicalEscapes } from './request-path.ts';

const unit = (f: Facts): HttpUnit => f as HttpUnit;
type Fail = (message: string, at?: (string | number)[]) => never;

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export const methodCondition: ConditionSpec = {
  key: 'method',
  schema: { description: 'HTTP methods (`DELETE`, `PUT`), compared without case; any of them.', type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
  compile(raw, fail) {
    const methods = new Set(
      (raw as string[]).map((m, k) => {
        if (m === '*') fail('bad method "*": list the methods (there is no wildcard)', [k]);
        if (!TOKEN.test(m)) fail(`bad method "${m}": a method is one word such as GET or DELETE`, [k]);
        return m.toUpperCase();
      }),
    );
    return (f) => methods.has(unit(f).method.toUpperCase());
  },
};

// What a path glob may hold unescaped: path characters and the glob's `*` and `?`.
const GLOB_CHAR = /[A-Za-z0-9\-._~!$&'()*+,;=:@/%?\\]/;

export const httpPathCondition: ConditionSpec = {
  key: 'path',
  schema: { description: 'Absolute path globs: `*` and `?` within a segment, `**` across segments; any of them.', type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
  compile(raw, fail) {
    const globs = (raw as string[]).map((g, k) => {
      if (!g.startsWith('/') && !g.startsWith('**')) fail(`bad path glob "${g}": paths are absolute (start with / or **)`, [k]);
      return pathGlob(armFold(pathGlobSpelling(g)));
    });
    // The query is not part of the path: `?` in a glob is a one-character wildcard, as for SSH.
    return (f) => {
      const p = armFold(unit(f).path);
      return anyGlob(globs, p);
    };
  },
};

/** A glob in the spelling normalized paths use: unreserved escapes decoded, other characters escaped. */
function pathGlobSpelling(g: string): string {
  let out = '';
  for (const ch of canonicalEscapes(g)) out += GLOB_CHAR.test(ch) ? ch : encodeURIComponent(ch).toUpperCase();
  return out;
}

const RESOURCE_FIELDS = ['provider', 'type', 'action', 'name', 'resource-group', 'subscription'] as const;
type ResourceField = (typeof RESOURCE_FIELDS)[number];

const globList = (description: string): object => ({
  description,
  oneOf: [{ type: 'string', minLength: 1 }, { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } }],
  'x-expected': 'a name glob or a list of them',
});

// What each field reads from the resource, and what a glob for it may not hold.
const FIELD_VALUES: Record<ResourceField, (r: ArmResource) => string[]> = {
  provider: (r) => [r.provider],
  type: armTypeCandidates,
  action: (r) => (r.action !== undefined ? [r.action] : []),
  name: (r) => (r.name !== undefined ? [r.name] : []),
  'resource-group': (r) => (r.resourceGroup !== undefined ? [r.resourceGroup] : []),
  subscription: (r) => (r.subscription !== undefined ? [r.subscription] : []),
};

export const resourceCondition: ConditionSpec = {
  key: 'resource',
  schema: {
    description:
      'The Azure Resource Manager resource the request names; every field given must hold, each a name glob or a list of them (`*` any characters), compared without case. A request that names no ARM resource never matches.',
    type: 'object',
    additionalProperties: false,
    minProperties: 1,
    properties: {
      provider: globList('Provider namespaces (`Microsoft.Storage`); Microsoft.Resources for subscriptions, resource groups and provider registrations.'),
      type: globList('Resource types: the innermost type (`databases`), the nested types (`servers/databases`) or the full type (`Microsoft.Sql/servers/databases`).'),
      action: globList('The action segment after a resource (`listKeys`, `regenerateKey`).'),
      name: globList("The innermost resource's name."),
      'resource-group': globList('Resource group names.'),
      subscription: globList('Subscription ids.'),
    },
  },
  compile(raw, fail) {
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail(`resource is an object with any of: ${RESOURCE_FIELDS.join(', ')}`);
    const fields = Object.entries(raw as Record<string, unknown>);
    if (fields.length === 0) fail(`resource names no field (fields: ${RESOURCE_FIELDS.join(', ')})`);
    const checks = fields.map(([field, value]) => {
      if (!(RESOURCE_FIELDS as readonly string[]).includes(field)) fail(`unknown resource field "${field}" (fields: ${RESOURCE_FIELDS.join(', ')})`, [field]);
      const globs = fieldGlobs(field as ResourceField, value, fail);
      const read = FIELD_VALUES[field as ResourceField];
      return (r: ArmResource): boolean => read(r).some((v) => {
        const folded = armFold(v);
        return anyGlob(globs, folded);
      });
    });
    return (f) => {
      const r = unit(f).resource;
      return r !== undefined && checks.every((c) => c(r));
    };
  },
};

function fieldGlobs(field: ResourceField, value: unknown, fail: Fail): Glob[] {
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || list.length === 0) fail(`resource.${field} is a name glob or a non-empty list of them`, [field]);
  return list.map((g: unknown, k) => {
    const at = typeof value === 'string' ? [field] : [field, k];
    if (typeof g !== 'string' || g === '') fail(`resource.${field} holds names (non-empty strings)`, at);
    if (field !== 'type' && g.includes('/')) fail(`bad resource.${field} "${g}": it is one name, with no /${field === 'provider' ? ' (a namespace such as Microsoft.Storage)' : ''}`, at);
    if (field === 'type' && (g.startsWith('/') || g.endsWith('/') || g.includes('//'))) fail(`bad resource.type "${g}": types are joined by single / (servers/databases, Microsoft.Sql/servers)`, at);
    return nameGlob(armFold(g));
  });
}

export const HTTP_CONDITIONS: readonly ConditionSpec[] = [methodCondition, httpPathCondition, resourceCondition];
