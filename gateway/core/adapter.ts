// The seam between the protocol-neutral core and a protocol. A protocol is one folder
// (gateway/postgres/, later ssh/, http/, kubernetes/) whose adapter.ts exports one Adapter; the
// composition root (gateway/adapters.ts) lists them. The daemon, the policy loader, the evidence
// tools and the action know adapters only through this interface, never by importing a folder.
import type { Recorder } from './recorder.ts';
import type { ApprovalBroker } from '../approval/broker.ts';
import type { Masker } from '../masking/engine.ts';
import type { Renderer } from '../evidence/renderers.ts';
import type { Claims, Facts, PolicyRules } from '../policy/engine.ts';
import type { Egress } from '../egress/egress.ts';

/** What every parsed target carries, whatever its kind. */
export interface TargetBase {
  name: string;
  kind: string;
  /** Environment variables of the starting step that hold this target's upstream secrets. */
  secretEnv: string[];
  /** Whether the gateway reaches this target with an Entra ID token (the job needs OIDC). */
  azure: boolean;
}

/** How a rule's `when:` key is read and matched. One key may be offered by several adapters. */
export interface ConditionSpec {
  key: string;
  /** JSON Schema of the key's value, merged into the one policy schema. */
  schema: object;
  /**
   * Compiles the value once at load; `fail` throws a PolicyError naming the key's line.
   * The matcher sees one unit of facts the adapter produced (a statement, an exec, a request).
   */
  compile(raw: unknown, fail: (message: string, at?: (string | number)[]) => never): (facts: Facts) => boolean;
}

/**
 * Facts: what an adapter read from one unit of a command (a statement, an exec line, a
 * request), for the conditions it registered. Keys are condition-defined; the core never reads
 * them, except that an empty object says nothing (the command is then unclassified).
 */
export type { Facts };

/** What later steps receive to reach the targets through the gateway. */
export interface ConnectionExport {
  /** Variables exported to later steps. */
  env: Record<string, string>;
  /** Values that must be masked wherever they could be printed (passwords, keys, tokens). */
  secrets: string[];
  /** Files written into the run's state directory (a kubeconfig, an SSH config, a CA bundle). */
  files: { name: string; content: string; mode: number }[];
}

export interface Listener {
  /** The targets this listener serves (a forward proxy may serve several). */
  readonly targets: readonly string[];
  /** Starts listening; resolves with the address (`127.0.0.1:port`, a socket path). */
  listen(): Promise<string>;
  /** Every address it serves once listening, when more than the one listen() returned (HTTP and HTTPS ports). */
  addresses?(): string[];
  /** Finishes in-flight commands (up to graceMs), then closes every session. */
  stop(graceMs: number): Promise<void>;
  /** What later steps need; called once listening. `stateDir` holds the exported files. */
  connection(stateDir: string): ConnectionExport;
}

/** The core services a listener's sessions use: one of each for every protocol. */
export interface CoreServices {
  recorder: Recorder;
  /** Null when the policy decides nothing (no rules, default or unclassified set). */
  policy: { rules: PolicyRules; claims: Claims } | null;
  approvals: ApprovalBroker | null;
  masker: Masker | null;
  credentials: Credentials;
  /** The policy's declared egress, served by the adapter that carriesEgress (the forward proxy). */
  egress?: Egress;
}

/** Where adapters get upstream credentials; `who` names the target in errors. */
export interface Credentials {
  /** An upstream secret the starting step handed over, by its variable's name (undefined if unset or empty). */
  secret(name: string): string | undefined;
  /** The Entra ID authority host of the run (the cloud decides a resource's scope). */
  authorityHost(who: string): string;
  /** An Entra ID token for the scope, through the job's OIDC token; refreshed before expiry. */
  azureToken(who: string, scope: string): Promise<string>;
  /** The Entra app the run signs in as (not secrets: tools read them from tokens). */
  azureIdentity(who: string): { tenantId: string; clientId: string };
}

/** What of the policy decides which of an adapter's dependencies load. */
export interface PolicyNeeds {
  /** The policy decides commands (it sets rules, default or unclassified). */
  rules: boolean;
  /** The policy masks columns by name. */
  maskColumns: boolean;
}

export interface TargetParsing {
  /** Throws a PolicyError at the line of `targets.<name>.<...path>`. */
  fail(path: (string | number)[], message: string): never;
  /** The policy file's directory, for relative paths in the target. */
  baseDir: string;
}

export interface Adapter<T extends TargetBase = TargetBase> {
  /** The target `kind:` this adapter serves (`postgres`). */
  readonly kind: string;
  /** JSON Schema of a target of this kind: an object schema, `kind` included. */
  readonly targetSchema: object;
  /** The `when:` keys this adapter's commands can be matched on. */
  readonly conditions: readonly ConditionSpec[];
  /** Builds a target from its validated YAML; checks what the schema cannot. */
  parseTarget(name: string, raw: Record<string, unknown>, ctx: TargetParsing): T;
  /**
   * Node flags a process that serves these targets must start with (its heavy dependencies'
   * needs); asked only when a target of this kind is in the policy.
   */
  nodeFlags?(targets: readonly T[], policy: PolicyNeeds): string[];
  /**
   * The listeners that serve these targets (all of this kind). Rejects when a target cannot be
   * served (a missing secret, an Entra ID token refused): the gateway does not start then.
   */
  listeners(targets: readonly T[], core: CoreServices): Promise<Listener[]>;
  /** The target as run-start describes it (no secrets). */
  describe(target: T): Record<string, unknown>;
  /** How replay, the report, the job summary and approval comments show this protocol's commands. */
  readonly renderer?: Renderer;
  /**
   * Its listeners carry the policy's declared egress (core.egress: the HTTP adapter's forward
   * proxy), so it is asked for listeners when the policy declares egress, even with no target of
   * its kind.
   */
  readonly carriesEgress?: boolean;
}
