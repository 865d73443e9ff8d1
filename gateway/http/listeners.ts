// Every listener the HTTP targets of a policy get: a reverse proxy per target, one forward proxy
// (the per-run CA terminates TLS for the targets' hosts) and, when a target signs in with Entra
// ID, one managed-identity endpoint handing out placeholder tokens. Credentials are read now:
// a missing variable or a refused Entra ID token fails the start. With no HTTP target (the policy
// declares egress only) the forward proxy is the one listener: it carries the egress.
import type { CoreServices, Listener } from '../core/adapter.ts';
import { ClientSessions } from './client-sessions.ts';
import { ForwardProxyListener } from './forward-listener.ts';
import { IdentityListener } from './identity-listener.ts';
import { OperationTracker } from './lro.ts';
import { ReverseProxyListener } from './reverse-listener.ts';
import { createRunCa } from './run-ca.ts';
import type { HttpTarget } from './target.ts';
import { openUpstream } from './upstream.ts';

export async function httpListeners(targets: readonly HttpTarget[], core: CoreServices): Promise<Listener[]> {
  const upstreams = await Promise.all(targets.map((t) => openUpstream(t, core.credentials)));
  const ca = await createRunCa(targets.map((t) => t.name).join(',') || 'egress');
  const sessions = new ClientSessions(core);
  const operations = new Map(upstreams.map((u) => [u.target.name, new OperationTracker()]));
  const listeners: Listener[] = upstreams.map((u) => new ReverseProxyListener(u, core, operations.get(u.target.name)!, sessions, ca));
  listeners.push(new ForwardProxyListener(upstreams, core, operations, sessions, ca));
  const azure = targets.filter((t) => t.auth.kind === 'azure');
  if (azure.length > 0) listeners.push(new IdentityListener(azure, core));
  return listeners;
}
