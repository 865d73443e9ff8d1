// Azure Resource Manager resource ids read from request paths, so rules, the log and the approval
// comment speak in resources. ARM routes a request by its last `/providers/{namespace}` block: the
// segments after the namespace pair up as type/name; an odd last segment is an action (`listKeys`)
// or a child collection. Everything before that block is the scope it hangs on (a subscription, a
// resource group, a management group, another resource for extension resources). The parser reads
// paths the same way; a path it cannot pair the way ARM would is a problem (the request is then
// unclassified), never a guess.
//
// Input is a path normalized by request-path.ts (no empty or dot segments, no encoded `/`).
// Fields keep the path's spelling, percent-decoded; ARM compares namespaces, types and names
// without case, so conditions fold case (armFold) rather than the parser.

export interface ArmResource {
  /** The resource id: the path without the action segment. */
  id: string;
  subscription?: string;
  resourceGroup?: string;
  /** The innermost provider namespace (`Microsoft.Storage`); Microsoft.Resources for subscriptions, resource groups, provider registrations. */
  provider: string;
  /** The type names under the namespace, outermost first: `['storageAccounts']`, `['servers', 'databases']`. */
  types: string[];
  /** The namespace and the types: `Microsoft.Storage/storageAccounts`, `Microsoft.Sql/servers/databases`. */
  type: string;
  /** The innermost name; absent for a collection (`.../storageAccounts`). */
  name?: string;
  /**
   * The odd last segment after a type/name pair: an action (`listKeys`) or a child collection
   * (`.../servers/s1/databases`). The path cannot tell them apart, so it is recorded here and a
   * `type` condition also sees it as a child type (see armTypeCandidates).
   */
  action?: string;
  /** For an extension resource (a provider block after another resource): the id of what it extends. */
  scope?: string;
}

export type ArmPathReading = { resource: ArmResource } | { problem: string } | { notArm: true };

const RESOURCES = 'Microsoft.Resources';

/**
 * How ARM compares namespaces, types, actions and names: without case (.NET's OrdinalIgnoreCase
 * upper-cases; `ſ` and `ı` upper-case to ASCII `S` and `I` in both).
 */
export function armFold(s: string): string {
  return s.toUpperCase();
}

const is = (segment: string | undefined, keyword: string): boolean => segment !== undefined && armFold(segment) === armFold(keyword);

/** The resource a path names; null for paths that are not ARM resource paths or cannot be read as one. */
export function parseArmPath(path: string): ArmResource | null {
  const r = readArmPath(path);
  return 'resource' in r ? r.resource : null;
}

/**
 * Reads a normalized path as ARM would route it: a resource, `notArm` for paths outside ARM's
 * resource tree (`/metadata/endpoints`, another API's paths), or a problem for paths ARM would
 * read but this parser cannot pair unambiguously (the request is then unclassified).
 */
export function readArmPath(path: string): ArmPathReading {
  if (!path.startsWith('/') || path === '/') return { notArm: true };
  const raw = path.slice(1).split('/');
  // request-path.ts refuses these already; a caller that skipped it gets no resource from them.
  if (raw.some((s) => s === '' || s === '.' || s === '..')) return { problem: 'the path has an empty or dot segment' };
  let segs: string[];
  try {
    segs = raw.map((s) => decodeURIComponent(s));
  } catch {
    return { problem: 'the path has percent-escapes that are not UTF-8' };
  }
  const root = segs[0]!;
  // One request whose body holds many (ARM's batch API): nothing in the path says what runs.
  if (is(root, 'batch')) return { problem: "ARM's /batch endpoint carries many requests in its body" };
  if (is(root, 'tenants')) {
    if (segs.length > 1) return { problem: 'a /tenants path with more segments than ARM serves' };
    return { resource: { id: path, provider: RESOURCES, types: ['tenants'], type: `${RESOURCES}/tenants` } };
  }
  if (!is(root, 'subscriptions') && !is(root, 'providers')) return { notArm: true };

  const b = new Builder(path, raw, segs);
  let i = 0;
  if (is(root, 'subscriptions')) {
    if (segs.length === 1) return b.done({ provider: RESOURCES, types: ['subscriptions'], end: 1 });
    b.subscription = segs[1];
    i = 2;
    if (segs.length === 2) return b.done({ provider: RESOURCES, types: ['subscriptions'], name: segs[1], end: 2 });
    if (!is(segs[2], 'providers')) {
      // Microsoft.Resources' own tree under the subscription: resourceGroups/{rg}, tagNames/{t}...
      // (a resource group is Microsoft.Resources/resourceGroups, not subscriptions/resourceGroups).
      const types: string[] = [];
      let name: string | undefined;
      while (i < segs.length && !is(segs[i], 'providers')) {
        if (i + 1 >= segs.length) {
          // An odd last segment: a collection right under the subscription (`resourcegroups`,
          // `locations`), an action or child collection after a pair (`.../rg/exportTemplate`).
          if (types.length === 0) return b.done({ provider: RESOURCES, types: [segs[i]!], end: i + 1 });
          return b.done({ provider: RESOURCES, types, name, action: segs[i], end: i });
        }
        if (is(segs[i + 1], 'providers')) return { problem: `"providers" stands where ARM expects the name of a ${segs[i]}` };
        if (types.length === 0 && is(segs[i], 'resourceGroups')) b.resourceGroup = segs[i + 1];
        types.push(segs[i]!);
        name = segs[i + 1];
        i += 2;
      }
      if (i === segs.length) return b.done({ provider: RESOURCES, types, name, end: i });
      if (!(types.length === 1 && is(types[0], 'resourceGroups'))) return { problem: `a providers block under ${types.join('/')}, which is no ARM scope` };
      b.resourceGroupProviders = true;
    }
  }
  // From here on: one or more `providers/{namespace}/{type}/{name}...` blocks, each hanging on
  // what precedes it; the last one names the resource.
  return b.providerBlocks(i);
}

interface Ending { provider: string; types: string[]; name?: string; action?: string; end: number }

class Builder {
  subscription?: string;
  resourceGroup?: string;
  /** The providers block hangs on a resource group (no namespace-only block there). */
  resourceGroupProviders = false;
  scope?: string;
  private readonly path: string;
  private readonly raw: string[];
  private readonly segs: string[];

  constructor(path: string, raw: string[], segs: string[]) {
    this.path = path;
    this.raw = raw;
    this.segs = segs;
  }

  /** The path up to (not including) segment `end`. */
  idTo(end: number): string {
    return '/' + this.raw.slice(0, end).join('/');
  }

  done(e: Ending): { resource: ArmResource } | { problem: string } {
    // Namespaces, types and actions are ASCII in ARM; other letters fold differently in .NET
    // and JavaScript, so a path that spells them with any is not read.
    if ([e.provider, ...e.types, e.action ?? ''].some((s) => /[^\x21-\x7e]/.test(s))) return { problem: 'a namespace, type or action with characters other than printable ASCII' };
    const r: ArmResource = {
      id: e.end === this.raw.length ? this.path : this.idTo(e.end),
      ...(this.subscription !== undefined ? { subscription: this.subscription } : {}),
      ...(this.resourceGroup !== undefined ? { resourceGroup: this.resourceGroup } : {}),
      provider: e.provider,
      types: e.types,
      type: [e.provider, ...e.types].join('/'),
      ...(e.name !== undefined ? { name: e.name } : {}),
      ...(e.action !== undefined ? { action: e.action } : {}),
      ...(this.scope !== undefined ? { scope: this.scope } : {}),
    };
    return { resource: r };
  }

  providerBlocks(start: number): ArmPathReading {
    const segs = this.segs;
    let i = start;
    let first = true;
    for (;;) {
      // segs[i] is `providers`.
      const ns = segs[i + 1];
      const atTenantOrSubscription = first && !this.resourceGroupProviders;
      if (ns === undefined) {
        // `/providers`, `/subscriptions/{s}/providers`: the list of resource providers.
        if (atTenantOrSubscription) return this.done({ provider: RESOURCES, types: ['providers'], end: i + 1 });
        return { problem: 'a "providers" segment with no namespace after it' };
      }
      if (is(ns, 'providers')) return { problem: '"providers" stands where ARM expects a namespace' };
      if (i + 2 >= segs.length) {
        // `/subscriptions/{s}/providers/{ns}`: the provider's registration, an ARM resource of
        // Microsoft.Resources named by the namespace (as ARM models it; a rule on the namespace's
        // resources is not about registering it).
        if (atTenantOrSubscription) return this.done({ provider: RESOURCES, types: ['providers'], name: ns, end: i + 2 });
        return { problem: `a namespace (${ns}) with no resource type after it` };
      }
      if (atTenantOrSubscription && i + 3 === segs.length && isRegistrationAction(segs[i + 2]!)) {
        return this.done({ provider: RESOURCES, types: ['providers'], name: ns, action: segs[i + 2], end: i + 2 });
      }
      const types: string[] = [];
      let name: string | undefined;
      let j = i + 2;
      for (;;) {
        const type = segs[j];
        if (type === undefined) return this.done({ provider: ns, types, name, end: j });
        if (is(type, 'providers')) {
          // An extension resource: what came so far is the resource it extends.
          if (name === undefined) return { problem: '"providers" follows a collection' };
          this.scope = this.idTo(j);
          i = j;
          first = false;
          break;
        }
        if (j + 1 >= segs.length) {
          if (types.length === 0) return this.done({ provider: ns, types: [type], end: j + 1 });
          return this.done({ provider: ns, types, name, action: type, end: j });
        }
        const n = segs[j + 1]!;
        // A resource named `providers` would make ARM route on a block that is not there.
        if (is(n, 'providers')) return { problem: `"providers" stands where ARM expects the name of a ${type}` };
        types.push(type);
        name = n;
        j += 2;
      }
    }
  }
}

/** POSTs on a provider registration (`/subscriptions/{s}/providers/{ns}/register`). */
function isRegistrationAction(s: string): boolean {
  return ['register', 'unregister', 'providerPermissions'].some((a) => is(s, a));
}

/**
 * The spellings a `type` condition is matched against: the innermost type name, the nested
 * types joined by `/`, and the full `Namespace/types`; with an action, the same again with the
 * action as a child type (a GET of `.../servers/s1/databases` lists databases, and the path
 * cannot say whether a trailing segment is an action or a child collection).
 */
export function armTypeCandidates(r: ArmResource): string[] {
  const spell = (types: string[]): string[] => (types.length ? [types[types.length - 1]!, types.join('/'), `${r.provider}/${types.join('/')}`] : []);
  return [...spell(r.types), ...(r.action !== undefined ? spell([...r.types, r.action]) : [])];
}
