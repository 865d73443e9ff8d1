// Every listener the HTTP targets of a policy get: a reverse proxy per target, and (added as the
// forward proxy and identity endpoint land) one forward proxy and one managed-identity endpoint
// shared by all of them.
import type { CoreServices, Listener } from '../core/adapter.ts';
import { ClientSessions } from './client-sessions.ts';
import { OperationTracker } from './lro.ts';
import { ReverseProxyListener } from './reverse-listener.ts';
import type { HttpTarget } from './target.ts';
import { openUpstream } from './upstream.ts';

export async function httpListeners(targets: readonly HttpTarget[], core: CoreServices): Promise<Listener[]> {
  // Every credential is read (and every Entra ID token fetched once) now: a missing variable fails the start.
  const upstreams = await Promise.all(targets.map((t) => openUpstream(t, core.credentials)));
  const sessions = new ClientSessions(core);
  return upstreams.map((u) => new ReverseProxyListener(u, core, new OperationTracker(), sessions));
}
