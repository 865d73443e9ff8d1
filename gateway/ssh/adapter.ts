// The SSH adapter: `kind: ssh` targets, the `command`, `program`, `option`, `path` and `ssh`
// conditions, one listener serving every SSH target, and the OpenSSH client config later steps use.
import type { Adapter } from '../core/adapter.ts';
import { SSH_CONDITIONS } from './conditions.ts';
import { loadShellParser } from './exec-facts.ts';
import { SshListener } from './listener.ts';
import { sshNodeFlags } from './node-flags.ts';
import { sshRenderer } from './renderer.ts';
import { describeSshTarget, parseSshTarget, type SshTarget } from './target.ts';
import targetSchema from './target.schema.json' with { type: 'json' };
import { upstreamLogin, type UpstreamLogin } from './upstream.ts';

export const sshAdapter: Adapter<SshTarget> = {
  kind: 'ssh',
  targetSchema,
  conditions: SSH_CONDITIONS,
  parseTarget: parseSshTarget,
  describe: describeSshTarget,
  renderer: sshRenderer,
  nodeFlags: () => sshNodeFlags(),
  async listeners(targets, core) {
    // Every login is read (and every key parsed) now: a missing variable fails the start.
    const logins = new Map<string, UpstreamLogin>(targets.map((t) => [t.name, upstreamLogin(t, core.credentials)]));
    // Exec lines are read even without rules: the log's facts and legacy scp need them.
    await loadShellParser();
    return [new SshListener(targets, core, logins)];
  },
};
