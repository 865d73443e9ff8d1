// The one JSON Schema of the policy file, merged from the core's (core.schema.json: version,
// rules, approvals, masking, session-log, claim conditions) and each adapter's target schema and
// `when:` conditions. gateway/config/policy.schema.json is this merge for the shipped adapters,
// written by the build for editors (yaml-language-server) and checked fresh by a test.
import core from './core.schema.json' with { type: 'json' };
import type { Adapter } from '../core/adapter.ts';

type Node = Record<string, any>;

export function policySchema(adapters: readonly Adapter<any>[]): Node {
  const schema = structuredClone(core) as Node;
  const defs = schema.definitions as Node;
  const kinds = adapters.map((a) => a.kind);
  const target = defs.target as Node;
  target.properties.kind.enum = kinds;
  target.properties.kind.description = `The kind of system the target is: ${kinds.join(', ')}.`;
  // One branch per kind, so a target's errors are those of its own kind's schema.
  // A target without kind matches no branch (`properties` alone would pass vacuously and apply them all).
  target.allOf = adapters.map((a) => ({ if: { required: ['kind'], properties: { kind: { const: a.kind } } }, then: { $ref: `#/definitions/${a.kind}` } }));
  const when = defs.rule.properties.when.properties as Node;
  for (const a of adapters) {
    if (defs[a.kind]) throw new Error(`adapter kind "${a.kind}" clashes with a definition of the policy schema`);
    defs[a.kind] = a.targetSchema;
    for (const c of a.conditions) {
      // Two adapters may offer the same key (a `path` for SSH and HTTP): the first one's schema
      // is the key's, and the others must accept the same values.
      when[c.key] ??= c.schema;
    }
  }
  return schema;
}
