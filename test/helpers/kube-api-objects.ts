// The objects a fresh Kubernetes API stand-in holds, and the metav1.Status bodies it answers
// errors with (the exact shapes the API server uses, so clients print their usual messages).
import type { KubeObject } from './kube-api-store.ts';

export interface PodSeed {
  namespace: string;
  name: string;
  /** Container names; the first is the default container. Default ['app']. */
  containers?: string[];
  labels?: Record<string, string>;
  /** Default 'Running'. */
  phase?: string;
  /** Lines `kubectl logs` returns (without trailing newlines). */
  log?: string[];
}

export interface SecretSeed {
  namespace: string;
  name: string;
  /** Plain values; stored base64-encoded in `data`, as the API server returns them. */
  data: Record<string, string>;
  type?: string;
}

export const DEFAULT_NAMESPACES = ['default', 'staging', 'prod'];

export const DEFAULT_PODS: PodSeed[] = [
  { namespace: 'default', name: 'web-0', containers: ['web'], labels: { app: 'web' }, log: ['starting web', 'listening on :8080', 'GET /healthz 200'] },
  { namespace: 'staging', name: 'worker-0', containers: ['worker', 'sidecar'], labels: { app: 'worker' }, log: ['worker ready'] },
  { namespace: 'prod', name: 'api-0', containers: ['api'], labels: { app: 'api' }, log: ['api up'] },
];

export const DEFAULT_SECRETS: SecretSeed[] = [
  { namespace: 'default', name: 'db-credentials', data: { username: 'app', password: 'correct-horse-battery-staple' } },
  { namespace: 'prod', name: 'api-key', data: { token: 'prod-api-token-5f1e9c' } },
];

export function namespaceObject(name: string): KubeObject {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { 'kubernetes.io/metadata.name': name } }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } };
}

export function podObject(p: PodSeed): KubeObject {
  const containers = p.containers ?? ['app'];
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name: p.name, namespace: p.namespace, labels: p.labels ?? {} },
    spec: {
      containers: containers.map((c) => ({ name: c, image: `registry.example/${c}:1.0`, imagePullPolicy: 'IfNotPresent' })),
      restartPolicy: 'Always', nodeName: 'stand-in-node',
    },
    status: {
      phase: p.phase ?? 'Running', podIP: '10.244.0.10', hostIP: '10.0.0.4',
      conditions: [{ type: 'Ready', status: 'True' }],
      containerStatuses: containers.map((c) => ({ name: c, ready: true, restartCount: 0, image: `registry.example/${c}:1.0`, started: true, state: { running: { startedAt: '2025-01-01T00:00:00Z' } } })),
    },
  };
}

export function secretObject(s: SecretSeed): KubeObject {
  const data: Record<string, string> = {};
  for (const [k, v] of Object.entries(s.data)) data[k] = Buffer.from(v).toString('base64');
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name: s.name, namespace: s.namespace }, type: s.type ?? 'Opaque', data };
}

export interface KubeStatus {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure' | 'Success';
  message?: string;
  reason?: string;
  details?: Record<string, unknown>;
  code: number;
}

export function status(code: number, reason: string, message: string, details?: Record<string, unknown>): KubeStatus {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code };
}

export const unauthorized = (): KubeStatus => status(401, 'Unauthorized', 'Unauthorized');

export const notFound = (resource: string, name: string, group = ''): KubeStatus =>
  status(404, 'NotFound', `${resource}${group ? `.${group}` : ''} "${name}" not found`, { name, ...(group ? { group } : {}), kind: resource });

export const alreadyExists = (resource: string, name: string, group = ''): KubeStatus =>
  status(409, 'AlreadyExists', `${resource}${group ? `.${group}` : ''} "${name}" already exists`, { name, ...(group ? { group } : {}), kind: resource });

export const pathNotFound = (): KubeStatus => status(404, 'NotFound', 'the server could not find the requested resource');

export const badRequest = (message: string): KubeStatus => status(400, 'BadRequest', message);
