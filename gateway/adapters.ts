// The composition root: every protocol adapter the product ships. Only this file names adapter
// folders; the daemon, the policy loader, the evidence tools and the action reach adapters
// through gateway/core/adapter.ts and the policy this file's loader returns.
import type { Adapter } from './core/adapter.ts';
import { loadPolicy as loadWith, parsePolicy as parseWith, type Policy, type PolicyOptions } from './config/policy.ts';
import { postgresAdapter } from './postgres/adapter.ts';
import { sshAdapter } from './ssh/adapter.ts';
import { httpAdapter } from './http/adapter.ts';
import { kubernetesAdapter } from './kubernetes/adapter.ts';
import { policySchema } from './config/policy-schema.ts';
import { egressRenderer } from './egress/renderer.ts';

export const ADAPTERS: readonly Adapter<any>[] = [postgresAdapter, sshAdapter, httpAdapter, kubernetesAdapter];
/** How the evidence tools show each protocol's commands (replay, report, summary, approval comment). */
export const RENDERERS = [...ADAPTERS.flatMap((a) => (a.renderer ? [a.renderer] : [])), egressRenderer];

/** The policy file read with the shipped adapters. */
export function loadPolicy(file: string, options: PolicyOptions = {}): Policy {
  return loadWith(file, ADAPTERS, options);
}

export function parsePolicy(text: string | Uint8Array, file: string, options: PolicyOptions = {}): Policy {
  return parseWith(text, file, ADAPTERS, options);
}

/** Node flags the daemon must start with for this policy (its adapters' heavy dependencies). */
export function nodeFlags(policy: Policy): string[] {
  const needs = { rules: policy.hasRuleSettings, maskColumns: (policy.masking?.columns.length ?? 0) > 0 };
  const flags = new Set<string>();
  for (const a of policy.adapters) {
    const targets = policy.targets.filter((t) => t.kind === a.kind);
    if (targets.length > 0) for (const f of a.nodeFlags?.(targets, needs) ?? []) flags.add(f);
  }
  return [...flags];
}

/** gateway/config/policy.schema.json as the build writes it: the one schema of the shipped adapters. */
export function policySchemaText(): string {
  return JSON.stringify(policySchema(ADAPTERS), null, 2) + '\n';
}
