// The resources the ARM stand-in (test/helpers/arm-stand-in.ts) keeps in memory, and the routes
// that read and change them: subscriptions, resource groups, storage accounts (with listKeys and
// regenerateKey), network security groups and their security rules, and role assignments at any
// scope. Shapes follow ARM's REST reference; resource ids and fixed path segments compare without
// case, as ARM's do. Everything here is a pure function of the store and the request, so the
// server module only deals with sockets, authentication and recording.
import { randomBytes, randomUUID } from 'node:crypto';
import { ArmError, Operations, type ArmReply, type LroOutcome } from './arm-stand-in-lro.ts';

export interface ArmRequest {
  method: string;
  /** Path segments, percent-decoded. */
  segments: string[];
  apiVersion: string;
  /** The parsed JSON body (undefined when there was none). */
  body: unknown;
  /** 'https://host[:port]' for the URLs of long-running operations. */
  baseUrl: string;
  /** The absolute URL of this request. */
  url: string;
}

export interface StoreSettings {
  inProgressPolls: number;
  /** Outcome of long-running operations by resource (group) name, compared without case. */
  lroOutcomes: Record<string, LroOutcome>;
}

type Resource = Record<string, unknown> & { id: string; name: string; properties: Record<string, unknown> };

const eq = (a: string | undefined, b: string): boolean => a !== undefined && a.toLowerCase() === b.toLowerCase();
const key = (id: string): string => id.toLowerCase();
const storageKey = (): string => randomBytes(64).toString('base64');
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const notFound = (type: string, name: string, rg: string): ArmError => new ArmError(404, 'ResourceNotFound',
  `The Resource '${type}/${name}' under resource group '${rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`);
const rgNotFound = (rg: string): ArmError => new ArmError(404, 'ResourceGroupNotFound', `Resource group '${rg}' could not be found.`);
const unsupported = (method: string): ArmError => new ArmError(405, 'MethodNotAllowed', `The requested resource does not support http method '${method}'.`);

function objectBody(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new ArmError(400, 'InvalidRequestContent', 'The request content was invalid and could not be deserialized: the body must be a JSON object.');
  }
  return body as Record<string, unknown>;
}

function requireLocation(body: Record<string, unknown>): string {
  if (typeof body.location !== 'string' || !body.location) {
    throw new ArmError(400, 'LocationRequired', 'The location property is required for this definition.');
  }
  return body.location.toLowerCase().replace(/\s+/g, '');
}

export class ArmStore {
  readonly subscriptions: string[];
  readonly tenantId: string;
  private readonly resources = new Map<string, Resource>();
  private readonly keys = new Map<string, [string, string]>();
  private readonly operations = new Operations();
  private readonly settings: StoreSettings;

  constructor(subscriptions: string[], tenantId: string, settings: StoreSettings) {
    this.subscriptions = subscriptions;
    this.tenantId = tenantId;
    this.settings = settings;
  }

  private outcome(name: string): LroOutcome {
    const hit = Object.entries(this.settings.lroOutcomes).find(([n]) => eq(n, name));
    return hit?.[1] ?? 'Succeeded';
  }

  private subscription(s: string): string {
    const found = this.subscriptions.find((x) => eq(x, s));
    if (!found) throw new ArmError(404, 'SubscriptionNotFound', `The subscription '${s}' could not be found.`);
    return found;
  }

  private group(s: string, rg: string): Resource {
    const g = this.resources.get(key(`/subscriptions/${s}/resourceGroups/${rg}`));
    if (!g) throw rgNotFound(rg);
    return g;
  }

  addResourceGroup(subscription: string, name: string, location = 'westeurope', tags: Record<string, string> = {}): Resource {
    const s = this.subscription(subscription);
    const id = `/subscriptions/${s}/resourceGroups/${name}`;
    const existing = this.resources.get(key(id));
    const g: Resource = { id, name: existing?.name ?? name, type: 'Microsoft.Resources/resourceGroups', location, tags, properties: { provisioningState: 'Succeeded' } };
    this.resources.set(key(id), g);
    return g;
  }

  addStorageAccount(subscription: string, rg: string, name: string, location?: string): Resource {
    const s = this.subscription(subscription);
    const group = this.group(s, rg);
    if (!/^[a-z0-9]{3,24}$/.test(name)) {
      throw new ArmError(400, 'AccountNameInvalid', `${name} is not a valid storage account name. Storage account name must be between 3 and 24 characters in length and use numbers and lower-case letters only.`);
    }
    const id = `${group.id}/providers/Microsoft.Storage/storageAccounts/${name}`;
    if (!this.keys.has(key(id))) this.keys.set(key(id), [storageKey(), storageKey()]);
    const loc = location ?? (group.location as string);
    const endpoint = (svc: string): string => `https://${name}.${svc}.core.windows.net/`;
    const account: Resource = {
      id, name, type: 'Microsoft.Storage/storageAccounts', location: loc, kind: 'StorageV2',
      sku: { name: 'Standard_LRS', tier: 'Standard' }, tags: {},
      properties: {
        provisioningState: 'Succeeded',
        creationTime: new Date().toISOString(),
        primaryLocation: loc,
        statusOfPrimary: 'available',
        primaryEndpoints: { blob: endpoint('blob'), queue: endpoint('queue'), table: endpoint('table'), file: endpoint('file'), dfs: endpoint('dfs'), web: endpoint('z6.web') },
      },
    };
    this.resources.set(key(id), account);
    return account;
  }

  /** The two access keys of a storage account (what masking must hide). */
  storageKeys(subscription: string, rg: string, name: string): [string, string] {
    const k = this.keys.get(key(`/subscriptions/${subscription}/resourceGroups/${rg}/providers/Microsoft.Storage/storageAccounts/${name}`));
    if (!k) throw notFound('Microsoft.Storage/storageAccounts', name, rg);
    return k;
  }

  /** A storage account as GET shows it: with a connection string that carries key1. */
  private showStorageAccount(a: Resource): Resource {
    const [key1] = this.keys.get(key(a.id))!;
    return { ...a, properties: { ...a.properties, connectionString: `DefaultEndpointsProtocol=https;AccountName=${a.name};AccountKey=${key1};EndpointSuffix=core.windows.net` } };
  }

  private listKeys(a: Resource): unknown {
    const created = a.properties.creationTime;
    return { keys: this.keys.get(key(a.id))!.map((value, i) => ({ creationTime: created, keyName: `key${i + 1}`, value, permissions: 'FULL' })) };
  }

  handle(r: ArmRequest): ArmReply {
    const op = this.operations.poll(r.segments, r.url);
    if (op) {
      if (r.method !== 'GET') throw unsupported(r.method);
      return op;
    }
    const seg = r.segments;
    const ra = seg.length - 4;
    if (ra >= 0 && eq(seg[ra], 'providers') && eq(seg[ra + 1], 'Microsoft.Authorization') && eq(seg[ra + 2], 'roleAssignments')) {
      return this.roleAssignment(r, `/${seg.slice(0, ra).join('/')}`, seg[ra + 3]!);
    }
    if (!eq(seg[0], 'subscriptions')) throw new ArmError(404, 'NotFound', `No route for ${r.method} /${seg.join('/')}`);
    if (seg.length === 1) {
      if (r.method !== 'GET') throw unsupported(r.method);
      return { status: 200, body: { value: this.subscriptions.map((s) => this.showSubscription(s)), count: { type: 'Total', value: this.subscriptions.length } } };
    }
    const s = this.subscription(seg[1]!);
    if (seg.length === 2) {
      if (r.method !== 'GET') throw unsupported(r.method);
      return { status: 200, body: this.showSubscription(s) };
    }
    if (!eq(seg[2], 'resourceGroups')) throw new ArmError(404, 'NotFound', `No route for ${r.method} /${seg.join('/')}`);
    if (seg.length === 3) {
      if (r.method !== 'GET') throw unsupported(r.method);
      const prefix = key(`/subscriptions/${s}/resourceGroups/`);
      const groups = [...this.resources.entries()].filter(([k]) => k.startsWith(prefix) && !k.slice(prefix.length).includes('/')).map(([, g]) => g);
      return { status: 200, body: { value: groups } };
    }
    if (seg.length === 4) return this.resourceGroup(r, s, seg[3]!);
    const rg = this.group(s, seg[3]!).name;
    const [providers, namespace, type, name, child, childName] = seg.slice(4);
    if (!eq(providers, 'providers') || !namespace || !type) throw new ArmError(404, 'NotFound', `No route for ${r.method} /${seg.join('/')}`);
    if (eq(namespace, 'Microsoft.Storage') && eq(type, 'storageAccounts')) return this.storage(r, s, rg, name, child, seg.length);
    if (eq(namespace, 'Microsoft.Network') && eq(type, 'networkSecurityGroups') && name) return this.nsg(r, s, rg, name, child, childName, seg.length);
    throw new ArmError(404, 'InvalidResourceType', `The resource type '${type}' could not be found in the namespace '${namespace}' for api version '${r.apiVersion}'.`);
  }

  private showSubscription(s: string): unknown {
    return { id: `/subscriptions/${s}`, subscriptionId: s, tenantId: this.tenantId, displayName: `Stand-in subscription ${s.slice(0, 8)}`, state: 'Enabled', subscriptionPolicies: { locationPlacementId: 'Public_2014-09-01', quotaId: 'PayAsYouGo_2014-09-01', spendingLimit: 'Off' }, authorizationSource: 'RoleBased' };
  }

  private resourceGroup(r: ArmRequest, s: string, rg: string): ArmReply {
    const id = key(`/subscriptions/${s}/resourceGroups/${rg}`);
    const existing = this.resources.get(id);
    switch (r.method) {
      case 'GET':
        if (!existing) throw rgNotFound(rg);
        return { status: 200, body: existing };
      case 'HEAD':
        return { status: existing ? 204 : 404 };
      case 'PUT': {
        const body = objectBody(r.body);
        const location = requireLocation(body);
        if (existing?.properties.provisioningState === 'Deleting') {
          throw new ArmError(409, 'ResourceGroupBeingDeleted', `The resource group '${existing.name}' is in deprovisioning state and cannot perform this operation.`);
        }
        if (existing && existing.location !== location) {
          throw new ArmError(409, 'InvalidResourceGroupLocation', `Invalid resource group location '${location}'. The Resource group already exists in location '${existing.location as string}'.`);
        }
        const g = this.addResourceGroup(s, rg, location, (body.tags as Record<string, string>) ?? {});
        return { status: existing ? 200 : 201, body: g };
      }
      case 'DELETE': {
        if (!existing) throw rgNotFound(rg);
        existing.properties.provisioningState = 'Deleting';
        return { status: 202, headers: this.deleteGroup(r, s, existing).headers };
      }
      default:
        throw unsupported(r.method);
    }
  }

  private deleteGroup(r: ArmRequest, s: string, g: Resource): { headers: Record<string, string> } {
    return this.operations.start({
      subscription: s, what: `delete resource group '${g.name}'`, inProgressPolls: this.settings.inProgressPolls, outcome: this.outcome(g.name),
      baseUrl: r.baseUrl, apiVersion: r.apiVersion,
      settle: (outcome) => {
        if (outcome !== 'Succeeded') { g.properties.provisioningState = 'Succeeded'; return; }
        // Deleting a group deletes everything in it.
        const prefix = key(g.id);
        for (const k of [...this.resources.keys()]) if (k === prefix || k.startsWith(`${prefix}/`)) { this.resources.delete(k); this.keys.delete(k); }
      },
    });
  }

  private storage(r: ArmRequest, s: string, rg: string, name: string | undefined, action: string | undefined, length: number): ArmReply {
    const type = 'Microsoft.Storage/storageAccounts';
    if (!name) {
      if (r.method !== 'GET') throw unsupported(r.method);
      const prefix = key(`/subscriptions/${s}/resourceGroups/${rg}/providers/${type}/`);
      return { status: 200, body: { value: [...this.resources.entries()].filter(([k]) => k.startsWith(prefix)).map(([, a]) => this.showStorageAccount(a)) } };
    }
    if (length > 9) throw new ArmError(404, 'NotFound', `No route for ${r.method} /${r.segments.join('/')}`);
    const id = key(`/subscriptions/${s}/resourceGroups/${rg}/providers/${type}/${name}`);
    const account = this.resources.get(id);
    if (action) {
      if (r.method !== 'POST') throw unsupported(r.method);
      if (!account) throw notFound(type, name, rg);
      if (eq(action, 'listKeys')) return { status: 200, body: this.listKeys(account) };
      if (eq(action, 'regenerateKey')) {
        const keyName = (objectBody(r.body) as { keyName?: unknown }).keyName;
        const index = ['key1', 'key2'].findIndex((k) => typeof keyName === 'string' && eq(keyName, k));
        if (index < 0) throw new ArmError(400, 'InvalidValuesForRequestParameters', `Values for request parameters are invalid: keyName.`);
        this.keys.get(id)![index] = storageKey();
        return { status: 200, body: this.listKeys(account) };
      }
      throw new ArmError(404, 'InvalidResourceType', `The resource type 'storageAccounts/${action}' could not be found in the namespace 'Microsoft.Storage' for api version '${r.apiVersion}'.`);
    }
    switch (r.method) {
      case 'GET':
        if (!account) throw notFound(type, name, rg);
        return { status: 200, body: this.showStorageAccount(account) };
      case 'PUT': {
        const body = objectBody(r.body);
        const created = this.addStorageAccount(s, rg, name, requireLocation(body));
        return { status: account ? 200 : 201, body: this.showStorageAccount(created) };
      }
      case 'DELETE':
        if (!account) return { status: 204 };
        this.resources.delete(id);
        this.keys.delete(id);
        return { status: 200 };
      default:
        throw unsupported(r.method);
    }
  }

  private nsg(r: ArmRequest, s: string, rg: string, name: string, child: string | undefined, ruleName: string | undefined, length: number): ArmReply {
    const type = 'Microsoft.Network/networkSecurityGroups';
    const id = `/subscriptions/${s}/resourceGroups/${rg}/providers/${type}/${name}`;
    const nsg = this.resources.get(key(id));
    if (child !== undefined) {
      if (!eq(child, 'securityRules') || !ruleName || length !== 10) throw new ArmError(404, 'NotFound', `No route for ${r.method} /${r.segments.join('/')}`);
      if (!nsg) throw notFound(type, name, rg);
      return this.securityRule(r, nsg, ruleName);
    }
    switch (r.method) {
      case 'GET':
        if (!nsg) throw notFound(type, name, rg);
        return { status: 200, body: nsg };
      case 'PUT': {
        const body = objectBody(r.body);
        const location = requireLocation(body);
        const props = (body.properties ?? {}) as Record<string, unknown>;
        const rules = Array.isArray(props.securityRules) ? props.securityRules as Record<string, unknown>[] : [];
        const resource: Resource = {
          id, name: nsg?.name ?? name, type, location, etag: `W/"${randomUUID()}"`, tags: (body.tags as Record<string, string>) ?? {},
          properties: { provisioningState: 'Updating', resourceGuid: (nsg?.properties.resourceGuid as string) ?? randomUUID(), securityRules: rules.map((rule) => this.showRule(id, rule)) },
        };
        this.resources.set(key(id), resource);
        const lro = this.operations.start({
          subscription: s, what: `put network security group '${name}'`, inProgressPolls: this.settings.inProgressPolls, outcome: this.outcome(name),
          baseUrl: r.baseUrl, apiVersion: r.apiVersion, provider: { namespace: 'Microsoft.Network', location },
          result: () => this.resources.get(key(id)),
          settle: (outcome) => { resource.properties.provisioningState = outcome === 'Succeeded' ? 'Succeeded' : 'Failed'; },
        });
        // The Network provider answers a PUT with the resource and Azure-AsyncOperation only.
        return { status: nsg ? 200 : 201, body: resource, headers: { 'azure-asyncoperation': lro.headers['azure-asyncoperation']!, 'retry-after': '0' } };
      }
      case 'DELETE': {
        if (!nsg) return { status: 204 };
        const lro = this.operations.start({
          subscription: s, what: `delete network security group '${name}'`, inProgressPolls: this.settings.inProgressPolls, outcome: this.outcome(name),
          baseUrl: r.baseUrl, apiVersion: r.apiVersion, provider: { namespace: 'Microsoft.Network', location: nsg.location as string },
          settle: (outcome) => { if (outcome === 'Succeeded') this.resources.delete(key(id)); },
        });
        return { status: 202, headers: lro.headers };
      }
      default:
        throw unsupported(r.method);
    }
  }

  private showRule(nsgId: string, rule: Record<string, unknown>): Record<string, unknown> {
    const name = typeof rule.name === 'string' ? rule.name : '';
    if (!name) throw new ArmError(400, 'InvalidRequestFormat', 'Cannot parse the request: a security rule has no name.');
    const props = (rule.properties ?? {}) as Record<string, unknown>;
    return { id: `${nsgId}/securityRules/${name}`, name, etag: `W/"${randomUUID()}"`, type: 'Microsoft.Network/networkSecurityGroups/securityRules', properties: { ...props, provisioningState: 'Succeeded' } };
  }

  private securityRule(r: ArmRequest, nsg: Resource, ruleName: string): ArmReply {
    const rules = nsg.properties.securityRules as Record<string, unknown>[];
    const index = rules.findIndex((x) => eq(x.name as string, ruleName));
    switch (r.method) {
      case 'GET':
        if (index < 0) throw notFound('Microsoft.Network/networkSecurityGroups/securityRules', `${nsg.name}/${ruleName}`, nsg.id.split('/')[4]!);
        return { status: 200, body: rules[index] };
      case 'PUT': {
        const rule = this.showRule(nsg.id, { ...objectBody(r.body), name: ruleName });
        if (index < 0) rules.push(rule); else rules[index] = rule;
        return { status: index < 0 ? 201 : 200, body: rule };
      }
      case 'DELETE':
        if (index < 0) return { status: 204 };
        rules.splice(index, 1);
        return { status: 200 };
      default:
        throw unsupported(r.method);
    }
  }

  private roleAssignment(r: ArmRequest, scope: string, name: string): ArmReply {
    if (!GUID.test(name)) throw new ArmError(400, 'InvalidRoleAssignmentId', `The role assignment ID '${name}' is not valid. The role assignment ID must be a GUID.`);
    const scopeSegs = scope.split('/').filter(Boolean);
    if (eq(scopeSegs[0], 'subscriptions')) {
      const s = this.subscription(scopeSegs[1] ?? '');
      if (eq(scopeSegs[2], 'resourceGroups') && scopeSegs[3]) this.group(s, scopeSegs[3]);
    } else if (!(eq(scopeSegs[0], 'providers') && eq(scopeSegs[1], 'Microsoft.Management') && eq(scopeSegs[2], 'managementGroups') && scopeSegs[3])) {
      throw new ArmError(400, 'InvalidScope', `The scope '${scope}' is not valid for a role assignment.`);
    }
    const id = `${scope}/providers/Microsoft.Authorization/roleAssignments/${name}`;
    const existing = this.resources.get(key(id));
    switch (r.method) {
      case 'GET':
        if (!existing) throw new ArmError(404, 'RoleAssignmentNotFound', `The role assignment '${name}' is not found.`);
        return { status: 200, body: existing };
      case 'PUT': {
        const props = (objectBody(r.body).properties ?? {}) as Record<string, unknown>;
        if (typeof props.roleDefinitionId !== 'string' || typeof props.principalId !== 'string') {
          throw new ArmError(400, 'InvalidRoleAssignmentRequest', 'The role assignment request must name properties.roleDefinitionId and properties.principalId.');
        }
        if (existing) throw new ArmError(409, 'RoleAssignmentExists', 'The role assignment already exists.');
        const now = new Date().toISOString();
        const assignment: Resource = {
          id, type: 'Microsoft.Authorization/roleAssignments', name,
          properties: { roleDefinitionId: props.roleDefinitionId, principalId: props.principalId, principalType: props.principalType ?? 'ServicePrincipal', scope, condition: null, conditionVersion: null, createdOn: now, updatedOn: now, createdBy: null, updatedBy: randomUUID(), delegatedManagedIdentityResourceId: null, description: props.description ?? null },
        };
        this.resources.set(key(id), assignment);
        return { status: 201, body: assignment };
      }
      case 'DELETE':
        if (!existing) return { status: 204 };
        this.resources.delete(key(id));
        return { status: 200, body: existing };
      default:
        throw unsupported(r.method);
    }
  }
}
