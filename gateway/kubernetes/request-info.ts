// The Kubernetes request attributes of one HTTP request, computed as the API server's own
// RequestInfoFactory computes them (k8s.io/apiserver/pkg/endpoints/request/requestinfo.go, with
// the API server's prefixes: `api` without a group, `apis` with one): whether it is a resource
// request, its verb (list, watch and deletecollection told from get and delete by the absent
// name, `?watch=`, the deprecated /watch/ and /proxy/ path prefixes, a name named by
// `fieldSelector=metadata.name=X`), group, version, namespace (the namespace itself for
// /namespaces/{ns}), resource, subresource and name. Rules, the log and the report read these.
//
// The path must be the one gateway/http/request-path.ts normalized (no encoded slash, no dot or
// empty segment): that is the path the gateway forwards, so the attributes decided are those of
// the request the API server runs. What the server would read otherwise, or not at all (a
// special verb with nothing after it, a method with no verb, a query Go parses differently), is
// unclassified, never guessed.
import { normalizeRequestPath } from '../http/request-path.ts';

export interface KubeRequest {
  /** A request for an API resource or subresource (under /api/{version} or /apis/{group}/{version}). */
  resourceRequest: boolean;
  /**
   * The Kubernetes verb (get, list, watch, create, update, patch, delete, deletecollection, and
   * proxy for the deprecated /proxy/ prefix); for a non-resource request, the lower-cased method.
   * A WebSocket exec, attach or portforward is a GET: verb `get` (POST over SPDY: `create`).
   */
  verb: string;
  /** `api` or `apis`; empty for a non-resource request. */
  apiPrefix: string;
  /** The API group; empty for the core group (/api) and non-resource requests. */
  apiGroup: string;
  apiVersion: string;
  /** Empty for cluster-scoped resources, requests across all namespaces, and non-resource requests. */
  namespace: string;
  resource: string;
  subresource: string;
  name: string;
  /** The path parts from the resource on: resource, name, subresource, then the rest (a proxy's path). */
  parts: string[];
  /** The normalized path: what the gateway forwards (escapes kept, as normalizeRequestPath spells them). */
  path: string;
}

/** The prefixes of the API server: `api` is the core group's, without a group segment. */
const API_PREFIXES = new Set(['api', 'apis']);
const GROUPLESS_PREFIXES = new Set(['api']);
/** Path segments after the version that name the verb (deprecated), and those that allow no subresource. */
const SPECIAL_VERBS = new Set(['proxy', 'watch']);
const SPECIAL_VERBS_NO_SUBRESOURCES = new Set(['proxy']);
/** Subresources of a namespace: /namespaces/{ns}/status is the namespace's, not a resource `status` in it. */
const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);
const METHOD_VERBS: Record<string, string> = { POST: 'create', GET: 'get', HEAD: 'get', PUT: 'update', PATCH: 'patch', DELETE: 'delete' };
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * The attributes of a request. `path` is a normalized request path without the query (what
 * normalizeRequestPath returned), `query` its parameters (readQuery reads them as the API server
 * does). Anything else is unclassified, with the reason.
 */
export function requestInfo(method: string, path: string, query: URLSearchParams): KubeRequest | { unclassified: string } {
  if (!TOKEN.test(method)) return { unclassified: `the method ${JSON.stringify(method.slice(0, 40))} is not an HTTP token` };
  const normal = normalizeRequestPath(path);
  if ('problem' in normal) return { unclassified: normal.problem };
  if (normal.path !== path || normal.query !== '' || path.includes('?')) return { unclassified: 'the path is not in its normalized form' };
  const upper = method.toUpperCase();
  const info: KubeRequest = { resourceRequest: false, verb: method.toLowerCase(), apiPrefix: '', apiGroup: '', apiVersion: '', namespace: '', resource: '', subresource: '', name: '', parts: [], path };
  // The server reads the decoded path; with no encoded slash, segment by segment is the same.
  let parts = path === '/' ? [] : path.slice(1).split('/').map(decodeURIComponent);
  if (parts.length < 3 || !API_PREFIXES.has(parts[0]!)) return info;
  const apiPrefix = parts[0]!;
  parts = parts.slice(1);
  let apiGroup = '';
  if (!GROUPLESS_PREFIXES.has(apiPrefix)) {
    // /apis/{group}/{version} is discovery, not a resource.
    if (parts.length < 3) return info;
    apiGroup = parts[0]!;
    parts = parts.slice(1);
  }
  const apiVersion = parts[0]!;
  parts = parts.slice(1);
  let verb: string;
  const viaPrefix = SPECIAL_VERBS.has(parts[0]!);
  if (viaPrefix) {
    // The server fails such a request (it cannot tell the kind and namespace).
    if (parts.length < 2) return { unclassified: `/${parts[0]}/ names no resource after it` };
    verb = parts[0]!;
    parts = parts.slice(1);
  } else {
    const v = METHOD_VERBS[upper];
    if (v === undefined) return { unclassified: `the method ${upper} has no Kubernetes verb on a resource path` };
    verb = v;
  }
  let namespace = '';
  if (parts[0] === 'namespaces' && parts.length > 1) {
    namespace = parts[1]!;
    // /namespaces/{ns}/{resource}/...: the resource is in the namespace; /namespaces/{ns}/status
    // is the namespace's own subresource, and /namespaces/{ns} the namespace itself.
    if (parts.length > 2 && !NAMESPACE_SUBRESOURCES.has(parts[2]!)) parts = parts.slice(2);
  }
  const subresource = parts.length >= 3 && !SPECIAL_VERBS_NO_SUBRESOURCES.has(verb) ? parts[2]! : '';
  let name = parts.length >= 2 ? parts[1]! : '';
  const resource = parts[0] ?? '';
  if (name === '' && verb === 'get') {
    const list = listReading(query);
    if ('unclassified' in list) return list;
    verb = list.watch ? 'watch' : 'list';
    name = list.name;
  }
  if (name === '' && verb === 'delete') verb = 'deletecollection';
  return { resourceRequest: true, verb, apiPrefix, apiGroup, apiVersion, namespace, resource, subresource, name, parts, path };
}

/**
 * What a GET on a collection reads from its list options: a watch (`watch` not `0` or `false`,
 * without case) and the name an exact `metadata.name` field selector names. The server drops the
 * name when the list options do not decode (it then answers 400 to the request itself).
 */
function listReading(query: URLSearchParams): { watch: boolean; name: string } | { unclassified: string } {
  const watchValue = query.get('watch');
  // Go lower-cases (or folds) Unicode; a non-ASCII value could read either way.
  if (watchValue !== null && /[^\x20-\x7e]/.test(watchValue)) return { unclassified: 'the watch parameter has a character that is not printable ASCII' };
  const watch = watchValue !== null && !['false', '0'].includes(watchValue.toLowerCase());
  const selector = query.get('fieldSelector');
  const terms = selector === null ? null : parseFieldSelector(selector);
  if (terms === null || !numbersDecode(query)) return { watch, name: '' };
  // The first exact term on the field, in the order the server sorts the terms.
  const name = terms.find((t) => t.field === 'metadata.name' && t.op !== '!=')?.value ?? '';
  return { watch, name: isValidPathSegmentName(name) ? name : '' };
}

const INT64 = /^[+-]?[0-9]+$/;

/**
 * Whether the list options' numbers decode (Go's ParseInt, base 10, 64 bits; an empty
 * timeoutSeconds is none): the server drops the name when any option fails. The label
 * selector's grammar is not checked: the server answers 400 to a request whose label selector
 * does not parse, so a name read here beside one only ever decides a request that fails.
 */
function numbersDecode(query: URLSearchParams): boolean {
  const int64 = (v: string): boolean => INT64.test(v) && BigInt(v) <= 0x7fffffffffffffffn && BigInt(v) >= -0x8000000000000000n;
  const limit = query.get('limit');
  if (limit !== null && !int64(limit)) return false;
  const timeout = query.get('timeoutSeconds');
  return timeout === null || timeout === '' || int64(timeout);
}

export interface FieldTerm { field: string; op: '=' | '==' | '!='; value: string }

/**
 * A field selector as k8s.io/apimachinery/pkg/fields parses it: terms split at unescaped commas
 * and sorted, each split at its first operator (`!=`, `==` or `=`), the value unescaped (`\\`,
 * `\,`, `\=`; an unescaped `,` or `=` in a value is an error). Null when it does not parse.
 */
export function parseFieldSelector(selector: string): FieldTerm[] | null {
  const raw: string[] = [];
  let start = 0;
  let escaped = false;
  for (let i = 0; i < selector.length; i++) {
    const c = selector[i];
    if (escaped) escaped = false;
    else if (c === '\\') escaped = true;
    else if (c === ',') {
      raw.push(selector.slice(start, i));
      start = i + 1;
    }
  }
  if (selector !== '') raw.push(selector.slice(start));
  // Go sorts the terms by bytes (UTF-8); UTF-16 order differs only beyond the BMP, where no field name lives.
  raw.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const terms: FieldTerm[] = [];
  for (const term of raw) {
    if (term === '') continue;
    const m = /^(.*?)(!=|==|=)(.*)$/s.exec(term);
    if (!m) return null;
    const value = unescapeFieldValue(m[3]!);
    if (value === null) return null;
    terms.push({ field: m[1]!, op: m[2] as FieldTerm['op'], value });
  }
  return terms;
}

function unescapeFieldValue(s: string): string | null {
  let out = '';
  let escaped = false;
  for (const c of s) {
    if (escaped) {
      if (c !== '\\' && c !== ',' && c !== '=') return null;
      out += c;
      escaped = false;
    } else if (c === '\\') escaped = true;
    else if (c === ',' || c === '=') return null;
    else out += c;
  }
  return escaped ? null : out;
}

/** The API server's check of a name that becomes a path segment (apimachinery api/validation/path). */
export function isValidPathSegmentName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('%');
}

/**
 * A request-target as a client sent it (origin-form, or absolute-form whose authority the caller
 * checked), read whole: normalized (request-path.ts), its query read as Go reads it, then its
 * attributes. `request.path` and `query` are what the gateway forwards.
 */
export function readRequest(method: string, target: string): { request: KubeRequest; query: URLSearchParams } | { unclassified: string } {
  const normal = normalizeRequestPath(target);
  if ('problem' in normal) return { unclassified: normal.problem };
  const query = readQuery(normal.query);
  if ('problem' in query) return { unclassified: query.problem };
  const request = requestInfo(method, normal.path, query);
  return 'unclassified' in request ? request : { request, query };
}

/**
 * The query as the API server's Go reads it (net/url ParseQuery), or why it could read it
 * otherwise than URLSearchParams does: Go drops a pair with a `;` or a bad percent-escape
 * (`?watch=false;x` is no watch parameter to it, `watch=false;x` to URLSearchParams), and keeps
 * the bytes of escapes that are not UTF-8.
 */
export function readQuery(raw: string): URLSearchParams | { problem: string } {
  if (raw.includes(';')) return { problem: 'the query has a ; (the API server drops such a parameter)' };
  for (const m of raw.matchAll(/%(.{0,2})/gs)) {
    if (!/^[0-9A-Fa-f]{2}$/.test(m[1]!)) return { problem: `the query has an invalid percent-escape "%${m[1]}"` };
  }
  for (const pair of raw.split('&')) {
    try {
      decodeURIComponent(pair.replace(/\+/g, ' '));
    } catch {
      return { problem: 'the query has percent-escapes that are not UTF-8' };
    }
  }
  return new URLSearchParams(raw);
}
