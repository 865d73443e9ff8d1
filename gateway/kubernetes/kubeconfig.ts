// The kubeconfig later steps use (KUBECONFIG): one cluster, user and context per Kubernetes
// target, the cluster being the gateway's loopback listener (HTTPS with the per-run CA, so
// kubectl and client-go speak HTTP/2 and check the certificate as they would the cluster's), the
// user a per-run token the gateway alone accepts. The cluster's own credential is never in it.
import { stringify } from 'yaml';

export interface KubeconfigEntry {
  /** The target's name: the cluster's and the context's name. */
  name: string;
  /** `https://127.0.0.1:PORT` */
  server: string;
  caPem: string;
  token: string;
  namespace: string;
}

/** A kubeconfig whose current context is the first entry's. */
export function kubeconfigText(entries: readonly KubeconfigEntry[]): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: entries.map((e) => ({ name: e.name, cluster: { server: e.server, 'certificate-authority-data': Buffer.from(e.caPem).toString('base64') } })),
    users: entries.map((e) => ({ name: `gateway-${e.name}`, user: { token: e.token } })),
    contexts: entries.map((e) => ({ name: e.name, context: { cluster: e.name, user: `gateway-${e.name}`, namespace: e.namespace } })),
    'current-context': entries[0]?.name ?? '',
    preferences: {},
  }, { lineWidth: 0 });
}
