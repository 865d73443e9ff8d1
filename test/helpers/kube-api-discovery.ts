// The discovery documents of the Kubernetes API stand-in (test/helpers/kube-api-stand-in.ts): the
// few resources it serves, described the way a real API server describes them, in both shapes a
// client may ask for:
//   - legacy discovery: /api (APIVersions), /apis (APIGroupList), /api/v1 and /apis/apps/v1
//     (APIResourceList);
//   - aggregated discovery (apidiscovery.k8s.io/v2): /api and /apis answered as an
//     APIGroupDiscoveryList when the Accept header asks for it, which is what kubectl 1.32 and
//     client-go do first (one request per root instead of one per group version).
// And a small OpenAPI v3 index and per-group-version documents: kubectl's `--validate=strict`
// (the default) reads /openapi/v3 to learn whether the server validates fields itself
// (`fieldValidation` query parameter on the operations), and client-side apply reads the schemas
// for strategic-merge-patch metadata.

export interface KubeResource {
  /** '' for the core group. */
  group: string;
  version: string;
  /** Plural resource name, as in URLs: 'pods'. */
  resource: string;
  singular: string;
  kind: string;
  namespaced: boolean;
  shortNames: string[];
  verbs: string[];
  subresources: { name: string; kind: string; verbs: string[] }[];
}

const RW = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

export const RESOURCES: KubeResource[] = [
  { group: '', version: 'v1', resource: 'namespaces', singular: 'namespace', kind: 'Namespace', namespaced: false, shortNames: ['ns'], verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'], subresources: [] },
  {
    group: '', version: 'v1', resource: 'pods', singular: 'pod', kind: 'Pod', namespaced: true, shortNames: ['po'], verbs: RW,
    subresources: [
      { name: 'exec', kind: 'PodExecOptions', verbs: ['create', 'get'] },
      { name: 'log', kind: 'Pod', verbs: ['get'] },
      { name: 'attach', kind: 'PodAttachOptions', verbs: ['create', 'get'] },
      { name: 'portforward', kind: 'PodPortForwardOptions', verbs: ['create', 'get'] },
    ],
  },
  { group: '', version: 'v1', resource: 'secrets', singular: 'secret', kind: 'Secret', namespaced: true, shortNames: [], verbs: RW, subresources: [] },
  { group: 'apps', version: 'v1', resource: 'deployments', singular: 'deployment', kind: 'Deployment', namespaced: true, shortNames: ['deploy'], verbs: RW, subresources: [] },
];

export const groupVersionOf = (r: { group: string; version: string }): string => (r.group ? `${r.group}/${r.version}` : r.version);

export function findResource(group: string, version: string, resource: string): KubeResource | undefined {
  return RESOURCES.find((r) => r.group === group && r.version === version && r.resource === resource);
}

/** GET /version, as a 1.32 API server answers. */
export function versionInfo(): Record<string, string> {
  return {
    major: '1', minor: '32', gitVersion: 'v1.32.4', gitCommit: '59526cd4867447956156ae3a602fcbac10a2c335',
    gitTreeState: 'clean', buildDate: '2025-04-22T16:02:27Z', goVersion: 'go1.23.6', compiler: 'gc', platform: 'linux/amd64',
  };
}

/** GET /api (legacy). */
export function apiVersions(serverAddress: string): Record<string, unknown> {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] };
}

/** GET /apis (legacy). */
export function apiGroupList(): Record<string, unknown> {
  const gv = { groupVersion: 'apps/v1', version: 'v1' };
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: [{ name: 'apps', versions: [gv], preferredVersion: gv }] };
}

/** GET /api/v1 or /apis/GROUP/VERSION (legacy); undefined for a group version not served. */
export function apiResourceList(group: string, version: string): Record<string, unknown> | undefined {
  const rs = RESOURCES.filter((r) => r.group === group && r.version === version);
  if (rs.length === 0) return undefined;
  const resources: Record<string, unknown>[] = [];
  for (const r of rs) {
    resources.push({
      name: r.resource, singularName: r.singular, namespaced: r.namespaced, kind: r.kind, verbs: r.verbs,
      ...(r.shortNames.length ? { shortNames: r.shortNames } : {}),
      storageVersionHash: Buffer.from(`${r.group}/${r.resource}`).toString('base64').slice(0, 11),
    });
    for (const s of r.subresources) {
      resources.push({ name: `${r.resource}/${s.name}`, singularName: '', namespaced: r.namespaced, kind: s.kind, verbs: s.verbs });
    }
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: groupVersionOf({ group, version }), resources };
}

export const AGGREGATED_DISCOVERY_V2 = 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList';

/** Whether an Accept header asks for aggregated discovery v2 (the only version served here). */
export function wantsAggregatedDiscovery(accept: string | undefined): boolean {
  if (!accept) return false;
  return accept.split(',').some((part) => {
    const params = part.split(';').map((p) => p.trim());
    return params[0] === 'application/json' && params.includes('g=apidiscovery.k8s.io') && params.includes('v=v2') && params.includes('as=APIGroupDiscoveryList');
  });
}

/** GET /api or /apis with the aggregated-discovery Accept: every resource of the root in one document. */
export function aggregatedDiscovery(root: 'api' | 'apis'): Record<string, unknown> {
  const groups = root === 'api' ? [''] : [...new Set(RESOURCES.filter((r) => r.group !== '').map((r) => r.group))];
  const items = groups.map((group) => {
    const rs = RESOURCES.filter((r) => r.group === group);
    const versions = [...new Set(rs.map((r) => r.version))].map((version) => ({
      version,
      freshness: 'Current',
      resources: rs.filter((r) => r.version === version).map((r) => ({
        resource: r.resource,
        responseKind: { group: r.group, version: r.version, kind: r.kind },
        scope: r.namespaced ? 'Namespaced' : 'Cluster',
        singularResource: r.singular,
        verbs: r.verbs,
        ...(r.shortNames.length ? { shortNames: r.shortNames } : {}),
        ...(r.subresources.length ? {
          subresources: r.subresources.map((s) => ({
            subresource: s.name, responseKind: { group: '', version: 'v1', kind: s.kind }, verbs: s.verbs,
          })),
        } : {}),
      })),
    }));
    return { metadata: { name: group, creationTimestamp: null }, versions };
  });
  return { kind: 'APIGroupDiscoveryList', apiVersion: 'apidiscovery.k8s.io/v2', metadata: {}, items };
}

// --- OpenAPI v3 -------------------------------------------------------------------------------

const OPENAPI_HASH = 'A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718293A4B5C6D7E8F90';

/** GET /openapi/v3: the index of per-group-version documents. */
export function openApiV3Index(): Record<string, unknown> {
  const paths: Record<string, { serverRelativeURL: string }> = {};
  for (const gv of new Set(RESOURCES.map((r) => (r.group ? `apis/${r.group}/${r.version}` : `api/${r.version}`)))) {
    paths[gv] = { serverRelativeURL: `/openapi/v3/${gv}?hash=${OPENAPI_HASH}` };
  }
  return { paths };
}

const fieldValidationParam = {
  name: 'fieldValidation', in: 'query', schema: { type: 'string', uniqueItems: true },
  description: 'fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields.',
};

/** Schemas rich enough for kubectl's strategic merge patch: containers merge by name. */
function schemasFor(group: string, version: string): Record<string, unknown> {
  const gvk = (kind: string): unknown => [{ group, version, kind }];
  const objectMeta = { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
  const container = {
    type: 'object', required: ['name'],
    properties: { name: { type: 'string' }, image: { type: 'string' }, command: { type: 'array', items: { type: 'string' } }, args: { type: 'array', items: { type: 'string' } } },
    'x-kubernetes-preserve-unknown-fields': true,
  };
  const podSpec = {
    type: 'object',
    properties: {
      containers: { type: 'array', items: { $ref: '#/components/schemas/io.k8s.api.core.v1.Container' }, 'x-kubernetes-list-map-keys': ['name'], 'x-kubernetes-list-type': 'map', 'x-kubernetes-patch-merge-key': 'name', 'x-kubernetes-patch-strategy': 'merge' },
    },
    'x-kubernetes-preserve-unknown-fields': true,
  };
  const kindSchema = (kind: string, props: Record<string, unknown>): unknown => ({
    type: 'object',
    properties: { apiVersion: { type: 'string' }, kind: { type: 'string' }, metadata: { $ref: '#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta' }, ...props },
    'x-kubernetes-group-version-kind': gvk(kind),
  });
  const schemas: Record<string, unknown> = {
    'io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta': objectMeta,
    'io.k8s.api.core.v1.Container': container,
    'io.k8s.api.core.v1.PodSpec': podSpec,
  };
  if (group === 'apps') {
    schemas['io.k8s.api.apps.v1.Deployment'] = kindSchema('Deployment', {
      spec: {
        type: 'object',
        properties: { replicas: { type: 'integer' }, template: { type: 'object', properties: { metadata: { $ref: '#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta' }, spec: { $ref: '#/components/schemas/io.k8s.api.core.v1.PodSpec' } } } },
        'x-kubernetes-preserve-unknown-fields': true,
      },
      status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
    });
  } else {
    schemas['io.k8s.api.core.v1.Pod'] = kindSchema('Pod', { spec: { $ref: '#/components/schemas/io.k8s.api.core.v1.PodSpec' }, status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } });
    schemas['io.k8s.api.core.v1.Secret'] = kindSchema('Secret', { data: { type: 'object', additionalProperties: { type: 'string', format: 'byte' } }, stringData: { type: 'object', additionalProperties: { type: 'string' } }, type: { type: 'string' } });
    schemas['io.k8s.api.core.v1.Namespace'] = kindSchema('Namespace', { spec: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true }, status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } });
  }
  return schemas;
}

/** GET /openapi/v3/api/v1 or /openapi/v3/apis/apps/v1; undefined for a group version not served. */
export function openApiV3Document(group: string, version: string): Record<string, unknown> | undefined {
  const rs = RESOURCES.filter((r) => r.group === group && r.version === version);
  if (rs.length === 0) return undefined;
  const prefix = group ? `/apis/${group}/${version}` : `/api/${version}`;
  const paths: Record<string, unknown> = {};
  for (const r of rs) {
    const ns = r.namespaced ? '/namespaces/{namespace}' : '';
    const op = (verb: string): unknown => ({
      operationId: `${verb}${r.kind}`, parameters: [fieldValidationParam],
      'x-kubernetes-action': verb, 'x-kubernetes-group-version-kind': { group: r.group, version: r.version, kind: r.kind },
      responses: { 200: { description: 'OK' } },
    });
    paths[`${prefix}${ns}/${r.resource}`] = { post: op('post'), get: op('list') };
    paths[`${prefix}${ns}/${r.resource}/{name}`] = { get: op('get'), put: op('put'), patch: op('patch'), delete: op('delete') };
  }
  return { openapi: '3.0.0', info: { title: 'Kubernetes', version: 'v1.32.4' }, paths, components: { schemas: schemasFor(group, version) } };
}
