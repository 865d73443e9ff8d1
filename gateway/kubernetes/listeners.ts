// Every listener the Kubernetes targets of a policy get: one HTTPS entry per target (the shared
// HTTP reverse proxy with the Kubernetes profile, its WebSocket upgrades served by exec-relay.ts),
// each with its own per-run token, and the kubeconfig naming them all (KUBECONFIG; the first
// target's context is current). Credentials are read now: a missing variable or a refused Entra
// ID token fails the start.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import path from 'node:path';
import type { ConnectionExport, CoreServices, Listener } from '../core/adapter.ts';
import { targetVariable } from '../core/target-variable.ts';
import { ClientSessions } from '../http/client-sessions.ts';
import type { HttpRequest } from '../http/exchange-types.ts';
import { OperationTracker } from '../http/lro.ts';
import { ReverseProxyListener } from '../http/reverse-listener.ts';
import { createRunCa } from '../http/run-ca.ts';
import { openUpstream } from '../http/upstream.ts';
import { serveUpgrade } from './exec-relay.ts';
import { kubeApi } from './kube-api.ts';
import { kubeconfigText, type KubeconfigEntry } from './kubeconfig.ts';
import type { KubeTarget } from './target.ts';

/** The file every Kubernetes target's context is in (KUBECONFIG). */
export const KUBECONFIG_FILE = 'kubeconfig';

export async function kubeListeners(targets: readonly KubeTarget[], core: CoreServices): Promise<Listener[]> {
  const upstreams = await Promise.all(targets.map((t) => openUpstream(t, core.credentials)));
  const ca = await createRunCa(targets.map((t) => t.name).join(','));
  const sessions = new ClientSessions(core, 'kubernetes');
  const entries: { target: KubeTarget; token: string; listener: ReverseProxyListener }[] = [];
  for (const [i, u] of upstreams.entries()) {
    const target = targets[i]!;
    const token = randomBytes(32).toString('base64url');
    const expected = Buffer.from(`Bearer ${token}`);
    const listener: ReverseProxyListener = new ReverseProxyListener(u, core, new OperationTracker(), sessions, ca, {
      api: kubeApi,
      admit: (req: HttpRequest) => {
        const got = Buffer.from(String(req.headers.authorization ?? ''));
        return got.length === expected.length && timingSafeEqual(got, expected) ? null
          : `gateway: this Kubernetes entry takes only the per-run token of the kubeconfig the gateway wrote (KUBECONFIG); the request ${req.headers.authorization ? 'carried another credential' : 'carried none'}`;
      },
      upgrade: (req, socket, head, session) => void serveUpgrade(req, socket, head, session, { core, upstream: u }).catch(() => socket.destroy()),
      connection: (_origins, stateDir) => connection(i === 0, target, stateDir),
    });
    entries.push({ target, token, listener });
  }
  const entryOf = (e: (typeof entries)[number]): KubeconfigEntry => ({ name: e.target.name, server: e.listener.origins.secure, caPem: ca.certPem, token: e.token, namespace: e.target.namespace });
  // The first listener writes the kubeconfig of all; each writes its own one-context file too.
  const connection = (first: boolean, target: KubeTarget, stateDir: string): ConnectionExport => {
    const own = entries.find((e) => e.target === target)!;
    const ownFile = `kubeconfig-${target.name}`;
    const files = [{ name: ownFile, content: kubeconfigText([entryOf(own)]), mode: 0o600 }];
    const env: Record<string, string> = { [targetVariable(target.name, 'KUBECONFIG')]: path.join(stateDir, ownFile), [targetVariable(target.name, 'URL')]: own.listener.origins.secure };
    if (first) {
      files.push({ name: KUBECONFIG_FILE, content: kubeconfigText(entries.map(entryOf)), mode: 0o600 });
      env.KUBECONFIG = path.join(stateDir, KUBECONFIG_FILE);
    }
    return { env, secrets: [own.token], files };
  };
  return entries.map((e) => e.listener);
}
