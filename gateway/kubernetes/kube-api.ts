// The Kubernetes profile of the shared HTTP exchange (gateway/http/exchange.ts): a request is read
// into the API server's request attributes (request-info.ts), the gateway's refusals are
// Kubernetes Status objects (kubectl prints `Error from server (Forbidden): ...`), responses are
// asked for as JSON (a protobuf body cannot be masked), and Secret values are masked in every
// response to a `secrets` request and in the log's sample of every body sent to one.
import type { OutgoingHttpHeaders } from 'node:http';
import type { ApiProfile } from '../http/api-profile.ts';
import type { HttpResponse } from '../http/exchange-types.ts';
import type { KubeUnit } from './conditions.ts';
import { readQuery, requestInfo, type KubeRequest } from './request-info.ts';
import { secretRequestSample, secretResponseFilter } from './secret-data.ts';

/** The Status reason kubectl prints for each status the gateway answers with. */
const REASONS: Record<number, string> = { 400: 'BadRequest', 401: 'Unauthorized', 403: 'Forbidden', 404: 'NotFound', 500: 'InternalError', 502: 'InternalError', 503: 'ServiceUnavailable' };

/** A Kubernetes Status object (metav1.Status) for the gateway's own answers. */
export function statusObject(code: number, message: string, refusal?: string): Record<string, unknown> {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason: REASONS[code] ?? 'Unknown', ...(refusal ? { details: { causes: [{ reason: refusal, message }] } } : {}), code };
}

export function sendStatus(res: HttpResponse, status: number, code: string, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(statusObject(status, message, code));
  try {
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-gateway-refusal': code });
    res.end(body);
  } catch {
    res.destroy();
  }
}

/** The attributes the log, the report and approvers show (empty ones left out). */
export function kubeDetails(r: KubeRequest): Record<string, string> {
  const out: Record<string, string> = { verb: r.verb };
  if (!r.resourceRequest) out.path = r.path;
  if (r.resourceRequest) out.group = r.apiGroup || 'core';
  if (r.apiVersion) out.version = r.apiVersion;
  if (r.namespace) out.namespace = r.namespace;
  if (r.resource) out.resource = r.resource;
  if (r.subresource) out.subresource = r.subresource;
  if (r.name) out.name = r.name;
  return out;
}

/** Pod subresources kubectl names as commands of their own: shown as those, not as the verb the server reads. */
const SUBRESOURCE_COMMANDS: Record<string, string> = { exec: 'exec', attach: 'attach', portforward: 'port-forward', log: 'logs' };

/**
 * `delete deployments.apps/web -n prod`, `list secrets (cluster-wide or all namespaces)`,
 * `exec pods/web-0 -n default`: the request as kubectl would say it (for people; rules and the
 * log read the attributes themselves).
 */
export function kubeSummary(k: Record<string, unknown>): string {
  const s = (v: unknown): string => (typeof v === 'string' ? v : '');
  const command = s(k.resource) === 'pods' ? SUBRESOURCE_COMMANDS[s(k.subresource)] : undefined;
  const sub = s(k.subresource) && !command ? ` ${s(k.subresource)}` : '';
  const what = s(k.resource) ? `${s(k.group) && s(k.group) !== 'core' ? `${s(k.resource)}.${s(k.group)}` : s(k.resource)}${s(k.name) ? `/${s(k.name)}` : ''}${sub}` : '';
  const where = s(k.resource) === 'namespaces' ? '' : s(k.namespace) ? ` -n ${s(k.namespace)}` : s(k.resource) ? ' (cluster-wide or all namespaces)' : '';
  // A non-resource URL (discovery, /version) is its path.
  return `${command ?? s(k.verb)}${what ? ` ${what}` : s(k.path) ? ` ${s(k.path)}` : ''}${where}`;
}

/**
 * Media types the gateway cannot read (protobuf, CBOR): dropped from Accept so the API server
 * answers JSON, which masking reads. A client that accepts nothing else gets JSON all the same.
 */
function jsonAccept(h: OutgoingHttpHeaders): void {
  const raw = h.accept;
  if (raw === undefined) return;
  const ranges = (Array.isArray(raw) ? raw.join(',') : String(raw)).split(',').map((r) => r.trim()).filter(Boolean);
  const kept = ranges.filter((r) => !/^application\/(vnd\.kubernetes\.protobuf|cbor|apply-patch\+cbor)/i.test(r));
  if (kept.length !== ranges.length) h.accept = kept.length ? kept.join(', ') : 'application/json';
}

const isSecrets = (unit: KubeUnit): boolean => unit.kube.resourceRequest && unit.kube.resource === 'secrets';

export const kubeApi: ApiProfile = {
  commandKind: 'kubernetes.request',
  read(method, _host, path, query) {
    const params = readQuery(query);
    if ('problem' in params) return { unit: { unclassified: params.problem }, details: {}, approvalLines: [] };
    const r = requestInfo(method, path, params);
    if ('unclassified' in r) return { unit: r, details: {}, approvalLines: [] };
    const kube = kubeDetails(r);
    const unit: KubeUnit = { kube: r };
    return { unit, details: { kube }, approvalLines: [`kubernetes: ${kubeSummary(kube)}`] };
  },
  sendError: sendStatus,
  upstreamHeaders: jsonAccept,
  responseFilter(unit) {
    const u = unit as KubeUnit;
    if (!isSecrets(u)) return null;
    // A watch streams events line by line; anything else is one document, read whole (a
    // stream the attributes did not foresee fills the limit and is refused, never passed).
    return secretResponseFilter({ watch: u.kube.verb === 'watch' });
  },
  requestSampler(unit) {
    return isSecrets(unit as KubeUnit) ? secretRequestSample : null;
  },
};
