// The Kubernetes adapter: `kind: kubernetes` targets (AKS with Entra ID, any API server), the
// `kube`, `namespace` and `namespace-not` conditions plus the SSH command conditions over exec
// argv, one HTTPS entry per target serving kubectl, Helm and client libraries through a
// generated kubeconfig, and `kubectl exec`/`attach` read frame by frame.
import type { Adapter } from '../core/adapter.ts';
import { loadShellParser } from '../ssh/exec-facts.ts';
import { sshNodeFlags } from '../ssh/node-flags.ts';
import { KUBE_CONDITIONS } from './conditions.ts';
import { kubeListeners } from './listeners.ts';
import { kubeRenderer } from './renderer.ts';
import { describeKubeTarget, parseKubeTarget, type KubeTarget } from './target.ts';
import targetSchema from './target.schema.json' with { type: 'json' };

export const kubernetesAdapter: Adapter<KubeTarget> = {
  kind: 'kubernetes',
  targetSchema,
  conditions: KUBE_CONDITIONS,
  parseTarget: parseKubeTarget,
  describe: describeKubeTarget,
  renderer: kubeRenderer,
  // An exec's argv is read by the SSH adapter's shell parser (WebAssembly): its flags apply.
  nodeFlags: () => sshNodeFlags(),
  async listeners(targets, core) {
    await loadShellParser();
    return kubeListeners(targets, core);
  },
};
