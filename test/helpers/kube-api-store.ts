// The object store of the Kubernetes API stand-in: namespaces, pods, secrets and deployments kept
// in memory with a cluster-wide resourceVersion, the history of changes watches replay from, the
// live watchers, and the three patch flavours kubectl sends (JSON merge patch, strategic merge
// patch for client-side apply and `kubectl patch`, and server-side apply's apply-patch+yaml).
// The patch logic is the small subset the tests need, not the API server's: lists of objects
// with a `name` merge by name (the merge key of containers, env, ports, volumes), `$`-directives
// of a strategic merge patch are honoured for `$patch: delete` and dropped otherwise.
import { randomUUID } from 'node:crypto';
import type { KubeResource } from './kube-api-discovery.ts';

export type KubeObject = Record<string, any> & { metadata: Record<string, any> };

export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: KubeObject;
}

interface HistoryEntry extends WatchEvent { rv: number; key: string; namespace: string }

type Watcher = { key: string; namespace: string | undefined; send: (e: WatchEvent) => void };

const clone = <T>(v: T): T => structuredClone(v);
const isObject = (v: unknown): v is Record<string, any> => typeof v === 'object' && v !== null && !Array.isArray(v);

export class KubeStore {
  private rv = 1000;
  private readonly objects = new Map<string, Map<string, KubeObject>>();
  private readonly history: HistoryEntry[] = [];
  private readonly watchers = new Set<Watcher>();

  /** The current cluster-wide resourceVersion (what a list returns). */
  get resourceVersion(): string { return String(this.rv); }

  private bucket(r: KubeResource): Map<string, KubeObject> {
    const key = `${r.group}/${r.resource}`;
    let m = this.objects.get(key);
    if (!m) { m = new Map(); this.objects.set(key, m); }
    return m;
  }

  get(r: KubeResource, namespace: string | undefined, name: string): KubeObject | undefined {
    const o = this.bucket(r).get(`${r.namespaced ? namespace : ''}/${name}`);
    return o && clone(o);
  }

  list(r: KubeResource, namespace: string | undefined): KubeObject[] {
    return [...this.bucket(r).values()]
      .filter((o) => !r.namespaced || namespace === undefined || o.metadata.namespace === namespace)
      .sort((a, b) => `${a.metadata.namespace ?? ''}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace ?? ''}/${b.metadata.name}`))
      .map(clone);
  }

  /** Stores a new object (fills uid, resourceVersion, creationTimestamp, namespace); false when the name is taken. */
  create(r: KubeResource, namespace: string | undefined, input: KubeObject): KubeObject | undefined {
    const name = String(input.metadata?.name ?? '');
    const k = `${r.namespaced ? namespace : ''}/${name}`;
    const b = this.bucket(r);
    if (b.has(k)) return undefined;
    const o = clone(input);
    o.apiVersion = r.group ? `${r.group}/${r.version}` : r.version;
    o.kind = r.kind;
    o.metadata = { ...o.metadata, name, uid: randomUUID(), creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z') };
    if (r.namespaced) o.metadata.namespace = namespace; else delete o.metadata.namespace;
    if (r.kind === 'Deployment') o.metadata.generation = 1;
    this.commit(r, k, 'ADDED', o);
    return clone(o);
  }

  /** Replaces an object's content (keeping its identity fields). */
  update(r: KubeResource, namespace: string | undefined, name: string, next: KubeObject): KubeObject | undefined {
    const k = `${r.namespaced ? namespace : ''}/${name}`;
    const b = this.bucket(r);
    const prev = b.get(k);
    if (!prev) return undefined;
    const o = clone(next);
    o.apiVersion = prev.apiVersion;
    o.kind = prev.kind;
    o.metadata = { ...o.metadata, name, uid: prev.metadata.uid, creationTimestamp: prev.metadata.creationTimestamp };
    if (r.namespaced) o.metadata.namespace = namespace;
    if (prev.metadata.generation !== undefined) {
      o.metadata.generation = prev.metadata.generation + (JSON.stringify(prev.spec) === JSON.stringify(o.spec) ? 0 : 1);
    }
    this.commit(r, k, 'MODIFIED', o);
    return clone(o);
  }

  delete(r: KubeResource, namespace: string | undefined, name: string): KubeObject | undefined {
    const k = `${r.namespaced ? namespace : ''}/${name}`;
    const b = this.bucket(r);
    const prev = b.get(k);
    if (!prev) return undefined;
    b.delete(k);
    const o = clone(prev);
    this.commit(r, k, 'DELETED', o, false);
    return clone(o);
  }

  private commit(r: KubeResource, k: string, type: WatchEvent['type'], o: KubeObject, keep = true): void {
    this.rv += 1;
    o.metadata.resourceVersion = String(this.rv);
    if (keep) this.bucket(r).set(k, o);
    const key = `${r.group}/${r.resource}`;
    const entry: HistoryEntry = { type, object: clone(o), rv: this.rv, key, namespace: o.metadata.namespace ?? '' };
    this.history.push(entry);
    for (const w of this.watchers) {
      if (w.key === key && (w.namespace === undefined || w.namespace === entry.namespace)) w.send({ type, object: clone(o) });
    }
  }

  /**
   * Starts a watch: with no resourceVersion (or "0") every current object comes first as ADDED, as
   * the API server does; with one, the changes after it are replayed. Returns the stop function.
   */
  watch(r: KubeResource, namespace: string | undefined, resourceVersion: string | undefined, send: (e: WatchEvent) => void): () => void {
    const key = `${r.group}/${r.resource}`;
    const since = Number(resourceVersion);
    if (!resourceVersion || resourceVersion === '0' || !Number.isFinite(since)) {
      for (const o of this.list(r, namespace)) send({ type: 'ADDED', object: o });
    } else {
      for (const h of this.history) {
        if (h.rv > since && h.key === key && (namespace === undefined || h.namespace === namespace)) send({ type: h.type, object: clone(h.object) });
      }
    }
    const w: Watcher = { key, namespace: r.namespaced ? namespace : undefined, send };
    this.watchers.add(w);
    return () => { this.watchers.delete(w); };
  }
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return clone(patch);
  const out: Record<string, any> = isObject(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

const namedList = (v: unknown): v is Record<string, any>[] =>
  Array.isArray(v) && v.length > 0 && v.every((e) => isObject(e) && typeof e.name === 'string');

/**
 * Strategic merge patch, the subset kubectl's client-side apply and `kubectl patch` produce for
 * the stand-in's objects: maps merge, null deletes, lists of named objects merge by name
 * (`$patch: delete` removes an element), other lists are replaced; other `$` directives
 * ($setElementOrder, $retainKeys, $deleteFromPrimitiveList) are dropped.
 */
export function strategicMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return clone(patch);
  if (patch.$patch === 'replace') { const { $patch: _, ...rest } = patch; return clone(rest); }
  const out: Record<string, any> = isObject(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith('$')) continue;
    if (v === null) { delete out[k]; continue; }
    if (Array.isArray(v) && (namedList(v) || namedList(out[k]))) {
      const current: Record<string, any>[] = Array.isArray(out[k]) ? out[k] : [];
      const merged = current.map(clone);
      for (const el of v) {
        if (!isObject(el)) continue;
        const i = merged.findIndex((c) => c.name === el.name);
        if (el.$patch === 'delete') { if (i >= 0) merged.splice(i, 1); continue; }
        if (i >= 0) merged[i] = strategicMergePatch(merged[i], el) as Record<string, any>;
        else merged.push(strategicMergePatch({}, el) as Record<string, any>);
      }
      out[k] = merged;
      continue;
    }
    out[k] = strategicMergePatch(out[k], v);
  }
  return out;
}
