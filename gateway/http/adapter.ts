// The HTTP adapter: `kind: http` targets (Azure Resource Manager, any HTTPS API), the `method`,
// `path` and `resource` conditions, a reverse proxy per target, one forward proxy with the
// per-run CA for tools that cannot take a base URL, and a managed-identity endpoint whose tokens
// are placeholders valid only at the gateway. The forward proxy also carries the policy's declared
// egress, so the adapter serves (the forward proxy alone) when egress is declared and no target
// is of its kind.
import type { Adapter } from '../core/adapter.ts';
import { HTTP_CONDITIONS } from './conditions.ts';
import { httpListeners } from './listeners.ts';
import { httpRenderer } from './renderer.ts';
import { describeHttpTarget, parseHttpTarget, type HttpTarget } from './target.ts';
import targetSchema from './target.schema.json' with { type: 'json' };

export const httpAdapter: Adapter<HttpTarget> = {
  kind: 'http',
  targetSchema,
  conditions: HTTP_CONDITIONS,
  parseTarget: parseHttpTarget,
  describe: describeHttpTarget,
  renderer: httpRenderer,
  listeners: httpListeners,
  carriesEgress: true,
};
