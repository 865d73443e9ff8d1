// The REST handlers of the Kubernetes API stand-in for its resources: get, list (and watch),
// create, update, patch (merge, strategic merge, server-side apply), delete, and pods/log. The
// request has already been authenticated and parsed into request attributes by
// kube-api-stand-in.ts; this file only answers.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseYaml } from 'yaml';
import { groupVersionOf, type KubeResource } from './kube-api-discovery.ts';
import { alreadyExists, badRequest, notFound, status, type KubeStatus } from './kube-api-objects.ts';
import { KubeStore, mergePatch, strategicMergePatch, type KubeObject } from './kube-api-store.ts';

export interface ResourceRequest {
  verb: string;
  resource: KubeResource;
  namespace: string | undefined;
  name: string | undefined;
  subresource: string | undefined;
  query: URLSearchParams;
}

export interface PodLogs {
  lines(namespace: string, pod: string): string[];
  follow(namespace: string, pod: string, onLine: (line: string) => void): () => void;
}

export function sendJson(res: ServerResponse, code: number, body: unknown, contentType = 'application/json'): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-cache, private' });
  res.end(text);
}

export const sendStatus = (res: ServerResponse, s: KubeStatus): void => sendJson(res, s.code, s);

function readBody(req: IncomingMessage, limit = 4 << 20): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) { reject(new Error('request entity too large')); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** `a=b,c!=d,e` label selectors and `metadata.name=x` / `metadata.namespace=y` field selectors. */
function matches(o: KubeObject, q: URLSearchParams): boolean {
  const labels: Record<string, string> = o.metadata.labels ?? {};
  for (const term of (q.get('labelSelector') ?? '').split(',').map((t) => t.trim()).filter(Boolean)) {
    const m = /^([^!=]+?)\s*(==|=|!=)\s*(.*)$/.exec(term);
    if (!m) { if (!(term in labels)) return false; continue; }
    if ((m[2] === '!=') === (labels[m[1]] === m[3])) return false;
  }
  for (const term of (q.get('fieldSelector') ?? '').split(',').map((t) => t.trim()).filter(Boolean)) {
    const m = /^(metadata\.name|metadata\.namespace)\s*(==|=|!=)\s*(.*)$/.exec(term);
    if (!m) continue;
    const v = m[1] === 'metadata.name' ? o.metadata.name : o.metadata.namespace;
    if ((m[2] === '!=') === (v === m[3])) return false;
  }
  return true;
}

async function decodeObject(req: IncomingMessage): Promise<KubeObject> {
  const body = (await readBody(req)).toString('utf8');
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim();
  const parsed: unknown = type.endsWith('yaml') ? parseYaml(body) : JSON.parse(body);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('the body is not an object');
  const o = parsed as KubeObject;
  o.metadata ??= {};
  return o;
}

export async function handleResource(req: IncomingMessage, res: ServerResponse, r: ResourceRequest, store: KubeStore, logs: PodLogs): Promise<void> {
  const { resource, namespace, name, query } = r;
  const group = resource.group;
  const nsMissing = resource.namespaced && namespace !== undefined && !store.get(nsResource, undefined, namespace);

  if (r.subresource === 'log') { podLog(res, r, store, logs); return; }
  if (r.subresource) {
    sendStatus(res, badRequest(`Upgrade request required`));
    return;
  }

  switch (r.verb) {
    case 'get': {
      const o = store.get(resource, namespace, name!);
      if (!o) { sendStatus(res, notFound(resource.resource, name!, group)); return; }
      sendJson(res, 200, o);
      return;
    }
    case 'list': {
      const items = store.list(resource, namespace).filter((o) => matches(o, query));
      sendJson(res, 200, { kind: `${resource.kind}List`, apiVersion: groupVersionOf(resource), metadata: { resourceVersion: store.resourceVersion }, items });
      return;
    }
    case 'watch': {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked', 'Cache-Control': 'no-cache, private' });
      res.flushHeaders();
      const stop = store.watch(resource, namespace, query.get('resourceVersion') ?? undefined, (e) => {
        if (matches(e.object, query)) res.write(`${JSON.stringify(e)}\n`);
      });
      // A watch stays open until the client leaves (or timeoutSeconds, when given).
      const timeout = Number(query.get('timeoutSeconds'));
      const timer = Number.isFinite(timeout) && timeout > 0 ? setTimeout(() => res.end(), timeout * 1000) : undefined;
      res.on('close', () => { stop(); clearTimeout(timer); });
      return;
    }
    case 'create': {
      if (nsMissing) { sendStatus(res, notFound('namespaces', namespace!)); return; }
      const o = await decodeObject(req);
      if (!o.metadata.name) { sendStatus(res, status(422, 'Invalid', `${resource.kind} "" is invalid: metadata.name: Required value: name or generateName is required`)); return; }
      if (query.get('dryRun') === 'All') { sendJson(res, 201, o); return; }
      const created = store.create(resource, namespace, o);
      if (!created) { sendStatus(res, alreadyExists(resource.resource, o.metadata.name, group)); return; }
      sendJson(res, 201, created);
      return;
    }
    case 'update': {
      const o = await decodeObject(req);
      const updated = store.update(resource, namespace, name!, o);
      if (!updated) { sendStatus(res, notFound(resource.resource, name!, group)); return; }
      sendJson(res, 200, updated);
      return;
    }
    case 'patch': {
      const type = (req.headers['content-type'] ?? '').split(';')[0].trim();
      const current = store.get(resource, namespace, name!);
      if (type === 'application/apply-patch+yaml') {
        // Server-side apply: creates what is missing, merges what exists (managed fields are
        // not tracked: the stand-in merges the applied configuration like a strategic patch).
        if (nsMissing) { sendStatus(res, notFound('namespaces', namespace!)); return; }
        if (!query.get('fieldManager')) { sendStatus(res, badRequest('PATCH requests with apply content types must specify a fieldManager')); return; }
        const applied = await decodeObject(req);
        if (!current) { sendJson(res, 201, store.create(resource, namespace, { ...applied, metadata: { ...applied.metadata, name } })); return; }
        sendJson(res, 200, store.update(resource, namespace, name!, strategicMergePatch(current, applied) as KubeObject));
        return;
      }
      if (!current) { sendStatus(res, notFound(resource.resource, name!, group)); return; }
      const patch: unknown = JSON.parse((await readBody(req)).toString('utf8'));
      let next: unknown;
      if (type === 'application/merge-patch+json') next = mergePatch(current, patch);
      else if (type === 'application/strategic-merge-patch+json') next = strategicMergePatch(current, patch);
      else { sendStatus(res, status(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml`)); return; }
      sendJson(res, 200, store.update(resource, namespace, name!, next as KubeObject));
      return;
    }
    case 'delete': {
      const o = store.delete(resource, namespace, name!);
      if (!o) { sendStatus(res, notFound(resource.resource, name!, group)); return; }
      if (resource.kind === 'Pod') { sendJson(res, 200, o); return; }
      sendJson(res, 200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name, group, kind: resource.resource, uid: o.metadata.uid } });
      return;
    }
    default:
      sendStatus(res, status(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`));
  }
}

const nsResource: KubeResource = { group: '', version: 'v1', resource: 'namespaces', singular: 'namespace', kind: 'Namespace', namespaced: false, shortNames: [], verbs: [], subresources: [] };

function podLog(res: ServerResponse, r: ResourceRequest, store: KubeStore, logs: PodLogs): void {
  const pod = store.get(r.resource, r.namespace, r.name!);
  if (!pod) { sendStatus(res, notFound('pods', r.name!)); return; }
  const containers: string[] = (pod.spec?.containers ?? []).map((c: { name: string }) => c.name);
  const container = r.query.get('container');
  if (!container && containers.length > 1) {
    sendStatus(res, badRequest(`a container name must be specified for pod ${r.name}, choose one of: [${containers.join(' ')}]`));
    return;
  }
  if (container && !containers.includes(container)) {
    sendStatus(res, badRequest(`container ${container} is not valid for pod ${r.name}`));
    return;
  }
  let lines = logs.lines(r.namespace!, r.name!);
  const tail = Number(r.query.get('tailLines'));
  if (r.query.has('tailLines') && Number.isInteger(tail) && tail >= 0) lines = tail === 0 ? [] : lines.slice(-tail);
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Transfer-Encoding': 'chunked', 'Cache-Control': 'no-cache, private' });
  for (const l of lines) res.write(`${l}\n`);
  if (r.query.get('follow') !== 'true') { res.end(); return; }
  res.flushHeaders();
  const stop = logs.follow(r.namespace!, r.name!, (l) => res.write(`${l}\n`));
  res.on('close', stop);
}
