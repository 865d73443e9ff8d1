// The `when:` keys a Kubernetes request can be matched on, registered with the policy loader
// through the adapter: `kube` (the request attributes request-info.ts reads, as the API server
// does), the shorthands `namespace` and `namespace-not`, and, over the argv of `kubectl exec`,
// the SSH adapter's `command`, `program` and `option` (the argv is read like an SSH exec line).
// Each reads one KubeUnit: a request, or one simple command of an exec's argv with its request.
//
// Attributes are compared as the API server compares them: exactly, with case. A glob a request
// can never meet (a kind `Secret` for the resource `secrets`, `pods/exec` for a subresource,
// `port-forward` for `portforward`) fails at load: a deny rule that silently never matches is the
// failure this module exists to prevent.
import type { ConditionSpec } from '../core/adapter.ts';
import type { Facts } from '../policy/engine.ts';
import { anyGlob, nameGlob, type Glob } from '../policy/glob.ts';
import { readExecLine } from '../ssh/exec-facts.ts';
import { commandCondition, optionCondition, programCondition } from '../ssh/conditions.ts';
import type { KubeRequest } from './request-info.ts';

/** One unit of facts: the request, and on an exec, one simple command its argv runs (SSH facts). */
export interface KubeUnit {
  kube: KubeRequest;
  command?: string;
  program?: string;
  options?: string[];
}

const unit = (f: Facts): KubeUnit => f as KubeUnit;
type Fail = (message: string, at?: (string | number)[]) => never;

/** The verbs of resource requests, and those of non-resource requests (lower-cased methods) rules may name. */
export const KUBE_VERBS: readonly string[] = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection', 'proxy', 'post', 'put', 'head', 'options'];
/** Subresources that are streams into a pod, as kubectl names the commands. */
const SUBRESOURCE_SPELLINGS: Record<string, string> = { 'port-forward': 'portforward', port_forward: 'portforward', portForward: 'portforward', logs: 'log' };
/** API groups whose names have no dot (every other group, CRDs' included, has one). */
const DOTLESS_GROUPS = new Set(['core', 'apps', 'batch', 'autoscaling', 'policy', 'extensions']);
/** Kinds and kubectl short names written where the URL's plural belongs. */
const PLURALS: Record<string, string> = {
  pod: 'pods', po: 'pods', secret: 'secrets', deployment: 'deployments', deploy: 'deployments', service: 'services', svc: 'services',
  configmap: 'configmaps', cm: 'configmaps', namespace: 'namespaces', ns: 'namespaces', node: 'nodes', no: 'nodes', job: 'jobs',
  cronjob: 'cronjobs', cj: 'cronjobs', statefulset: 'statefulsets', sts: 'statefulsets', daemonset: 'daemonsets', ds: 'daemonsets',
  replicaset: 'replicasets', rs: 'replicasets', ingress: 'ingresses', ing: 'ingresses', serviceaccount: 'serviceaccounts', sa: 'serviceaccounts',
  persistentvolumeclaim: 'persistentvolumeclaims', pvc: 'persistentvolumeclaims', persistentvolume: 'persistentvolumes', pv: 'persistentvolumes',
  role: 'roles', rolebinding: 'rolebindings', clusterrole: 'clusterroles', clusterrolebinding: 'clusterrolebindings', event: 'events', ev: 'events',
  hpa: 'horizontalpodautoscalers', netpol: 'networkpolicies', networkpolicy: 'networkpolicies', endpoint: 'endpoints', ep: 'endpoints',
};
/** A namespace name (a DNS label) or a glob of one. */
const NAMESPACE_GLOB = /^[a-z0-9*-]+$/;

const KUBE_FIELDS = ['verb', 'resource', 'subresource', 'group', 'version', 'name', 'namespace'] as const;
type KubeField = (typeof KUBE_FIELDS)[number];

const globList = (description: string): object => ({
  description,
  oneOf: [{ type: 'string', minLength: 1 }, { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } }],
  'x-expected': 'a name glob or a list of them',
});

/** A request's value for a field; null when it has none (a field given then never matches). */
const FIELD_VALUES: Record<Exclude<KubeField, 'resource'>, (r: KubeRequest) => string | null> = {
  verb: (r) => r.verb,
  subresource: (r) => r.subresource || null,
  // The core group is "" to the API server; rules name it `core`, as kubectl's docs do.
  group: (r) => (r.resourceRequest ? r.apiGroup || 'core' : null),
  version: (r) => r.apiVersion || null,
  name: (r) => r.name || null,
  namespace: (r) => r.namespace || null,
};

export const kubeCondition: ConditionSpec = {
  key: 'kube',
  schema: {
    description:
      'The Kubernetes request attributes, as the API server reads them; every field given must hold, each a name glob or a list of them (`*` any characters), compared exactly. A field the request does not have (no name on a list, no namespace on a cluster-scoped request) never matches.',
    type: 'object',
    additionalProperties: false,
    minProperties: 1,
    properties: {
      verb: globList('Verbs: get, list, watch, create, update, patch, delete, deletecollection (proxy for the deprecated /proxy/ paths); a non-resource URL\'s verb is its lower-cased method (get, post).'),
      resource: globList('Resources as in the URL, plural and lower-case: `secrets` in any API group, or `group/resource` (`apps/deployments`, `core/secrets` for the core group).'),
      subresource: globList('Subresources: exec, attach, portforward, log, status, scale, proxy, eviction, ...'),
      group: globList('API groups (`apps`, `networking.k8s.io`); `core` is the core group (paths under /api).'),
      version: globList('API versions (`v1`, `v1beta1`).'),
      name: globList("The object's name as the request names it (in the path, or a list's `fieldSelector=metadata.name=...`)."),
      namespace: globList('Namespaces (the namespace itself for /namespaces/{name}); cluster-scoped and all-namespace requests have none.'),
    },
  },
  compile(raw, fail) {
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail(`kube is an object with any of: ${KUBE_FIELDS.join(', ')}`);
    const fields = Object.entries(raw as Record<string, unknown>);
    if (fields.length === 0) fail(`kube names no field (fields: ${KUBE_FIELDS.join(', ')})`);
    const checks = fields.map(([field, value]): ((r: KubeRequest) => boolean) => {
      if (!(KUBE_FIELDS as readonly string[]).includes(field)) fail(`unknown kube field "${field}" (fields: ${KUBE_FIELDS.join(', ')})`, [field]);
      const list = fieldList(field, value, fail);
      if (field === 'resource') {
        const globs = list.map(([g, at]) => resourceGlob(g, at, fail));
        return (r) => r.resource !== '' && globs.some((m) => m(r));
      }
      const globs = list.map(([g, at]) => nameGlob(checkedGlob(field as KubeField, g, at, fail)));
      const read = FIELD_VALUES[field as Exclude<KubeField, 'resource'>];
      return (r) => {
        const v = read(r);
        return v !== null && anyGlob(globs, v);
      };
    });
    return (f) => {
      const r = unit(f).kube;
      return r !== undefined && checks.every((c) => c(r));
    };
  },
};

/** The field's globs, each with where it is written. */
function fieldList(field: string, value: unknown, fail: Fail): [string, (string | number)[]][] {
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || list.length === 0) fail(`kube.${field} is a name glob or a non-empty list of them`, [field]);
  return list.map((g: unknown, k) => {
    const at = typeof value === 'string' ? [field] : [field, k];
    if (typeof g !== 'string' || g === '') fail(`kube.${field} holds names (non-empty strings)`, at);
    return [g, at];
  });
}

function checkedGlob(field: KubeField, g: string, at: (string | number)[], fail: Fail): string {
  if (g.includes('/')) fail(`bad kube.${field} "${g}": it is one name, with no /`, at);
  if (field === 'verb') {
    if (g !== g.toLowerCase()) fail(`bad kube.verb "${g}": verbs are lower-case (get, delete)`, at);
    if (!g.includes('*') && !KUBE_VERBS.includes(g)) {
      const sub = SUBRESOURCE_SPELLINGS[g] ?? (['exec', 'attach', 'portforward', 'log'].includes(g) ? g : null);
      fail(`unknown kube.verb "${g}" (verbs: ${KUBE_VERBS.join(', ')})${sub ? `; ${sub} is a subresource: kube: { subresource: [${sub}] }` : ''}`, at);
    }
  }
  if (field === 'subresource') {
    const meant = SUBRESOURCE_SPELLINGS[g];
    if (meant) fail(`bad kube.subresource "${g}": the API server's subresource is ${meant}`, at);
    if (g !== g.toLowerCase()) fail(`bad kube.subresource "${g}": subresources are lower-case (exec, portforward)`, at);
  }
  if (field === 'namespace') checkNamespace(g, `kube.namespace`, at, fail);
  return g;
}

function checkNamespace(g: string, where: string, at: (string | number)[], fail: Fail): void {
  if (!NAMESPACE_GLOB.test(g)) fail(`bad ${where} "${g}": namespace names are lower-case letters, digits and - (and * in a glob)`, at);
}

/** A `resource` glob: `secrets` (any group) or `group/secrets`; checked for the mistakes that never match. */
function resourceGlob(g: string, at: (string | number)[], fail: Fail): (r: KubeRequest) => boolean {
  const parts = g.split('/');
  if (parts.length > 2 || parts.some((p) => p === '')) fail(`bad kube.resource "${g}": write a resource (secrets) or group/resource (apps/deployments)`, at);
  const resource = parts[parts.length - 1]!;
  const group = parts.length === 2 ? parts[0]! : null;
  if (group !== null && !group.includes('*') && !group.includes('.') && !DOTLESS_GROUPS.has(group)) {
    fail(`bad kube.resource "${g}": "${group}" is not an API group (core, apps, batch, a dotted name such as networking.k8s.io); a subresource is matched with kube: { resource: ${group}, subresource: ${resource} }`, at);
  }
  if (resource !== resource.toLowerCase()) fail(`bad kube.resource "${g}": resources are written as in the URL, lower-case and plural (secrets, not Secret)`, at);
  const plural = PLURALS[resource];
  if (plural) fail(`bad kube.resource "${g}": resources are written as in the URL, plural: ${group ? `${group}/` : ''}${plural}`, at);
  const resourceMatch = nameGlob(resource);
  const groupMatch: Glob | null = group === null ? null : nameGlob(group);
  return (r) => resourceMatch(r.resource) && (groupMatch === null || groupMatch(r.apiGroup || 'core'));
}

const namespaceList = (description: string): object => ({ description, type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } });

function namespaceGlobs(key: string, raw: unknown, fail: Fail): Glob[] {
  return (raw as string[]).map((g, k) => {
    checkNamespace(g, key, [k], fail);
    return nameGlob(g);
  });
}

export const namespaceCondition: ConditionSpec = {
  key: 'namespace',
  schema: namespaceList('Namespace globs; any of them. A request with no namespace (cluster-scoped, or across all namespaces) never matches.'),
  compile(raw, fail) {
    const globs = namespaceGlobs('namespace', raw, fail);
    return (f) => {
      const ns = unit(f).kube?.namespace;
      return !!ns && anyGlob(globs, ns);
    };
  },
};

export const namespaceNotCondition: ConditionSpec = {
  key: 'namespace-not',
  schema: namespaceList('Namespace globs the request is not in; a request with no namespace (cluster-scoped, or across all namespaces, which reaches every namespace) matches.'),
  compile(raw, fail) {
    const globs = namespaceGlobs('namespace-not', raw, fail);
    // Fail closed: `-A` and cluster-scoped requests are in no listed namespace, so a rule that
    // guards "everything but staging" guards them too.
    return (f) => {
      const r = unit(f).kube;
      if (r === undefined) return false;
      return r.namespace === '' || !anyGlob(globs, r.namespace);
    };
  },
};

export const KUBE_CONDITIONS: readonly ConditionSpec[] = [kubeCondition, namespaceCondition, namespaceNotCondition, commandCondition, programCondition, optionCondition];

/** A request that is no exec: one unit. */
export function requestUnits(request: KubeRequest): KubeUnit[] {
  return [{ kube: request }];
}

/**
 * The units of an exec (the `command=` parameters, in order): one per simple command the argv
 * runs, read like an SSH exec line (wrappers such as `sh -c` read through), each with the request.
 * `unclassified` says what could not be read, as readExecLine does; the gate decides both.
 * The argv runs without a shell, so each word is quoted whole: nothing in it expands.
 */
export async function execUnits(request: KubeRequest, argv: readonly string[]): Promise<{ units: KubeUnit[]; unclassified: string | null }> {
  if (argv.length === 0) return { units: [{ kube: request }], unclassified: 'the exec names no command' };
  if (argv.some((w) => w.includes('\0'))) return { units: [{ kube: request }], unclassified: 'an exec argument holds a NUL byte' };
  const line = argv.map(shellQuote).join(' ');
  // The container's working directory is not known; it only places paths, and no Kubernetes
  // condition reads paths (a `path` key would need it unknown, which makes `ls data` unclassified).
  const reading = await readExecLine(line, { home: '/' });
  const units = reading.units.map((u): KubeUnit => ({
    kube: request,
    ...(u.command !== undefined ? { command: u.command } : {}),
    ...(u.program !== undefined ? { program: u.program } : {}),
    ...(u.options !== undefined ? { options: u.options } : {}),
  }));
  return { units: units.length ? units : [{ kube: request }], unclassified: reading.unclassified };
}

/** Shells `kubectl exec -it POD -- SHELL` starts for a person to type into. */
const SHELLS = new Set(['sh', 'bash', 'zsh', 'ash', 'dash', 'ksh', 'mksh', 'fish']);
const SHELL_FLAGS = new Set(['-i', '-l', '--login', '-il', '-li', '--norc', '--noprofile']);

/**
 * The unit of an interactive shell: a lone shell (flags for a login or interactive shell at
 * most) with stdin and a terminal, as `ssh host` opens one. It is decided on the request and the
 * program, like an SSH shell, and recorded as a terminal session; what is typed into it is
 * recorded, not decided (no one can read a person's next line in advance). Null for any other argv.
 */
export function interactiveShellUnits(request: KubeRequest, argv: readonly string[], stream: { stdin: boolean; tty: boolean }): KubeUnit[] | null {
  if (!stream.stdin || !stream.tty || argv.length === 0) return null;
  const program = argv[0]!.slice(argv[0]!.lastIndexOf('/') + 1);
  if (!SHELLS.has(program) || !argv.slice(1).every((a) => SHELL_FLAGS.has(a))) return null;
  const options = argv.slice(1);
  return [{ kube: request, command: argv.map(shellQuote).join(' '), program, ...(options.length ? { options } : {}) }];
}

/** One argv word as a single-quoted shell word: the shell reads back exactly the word. */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}
