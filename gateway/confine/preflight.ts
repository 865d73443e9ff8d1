// What confinement needs before anything runs: Linux, root (or passwordless sudo, which the
// caller uses to become root), and the tools that make the namespaces. Without one of them a
// confined command is refused with what is missing: it never runs unconfined.
import { spawnSync } from 'node:child_process';

export interface ConfinementSupport {
  /** Why confinement cannot run here, or null. */
  problem: string | null;
  /** Not root, but `sudo -n` works: the caller runs itself again through sudo. */
  viaSudo: boolean;
}

const TOOLS: [string, string][] = [['unshare', 'util-linux'], ['ip', 'iproute2'], ['bash', 'bash']];

export function confinementSupport(platform: NodeJS.Platform = process.platform, uid: number = process.getuid?.() ?? -1): ConfinementSupport {
  if (platform !== 'linux') return { problem: `--confine needs Linux network and PID namespaces; this is ${platform}`, viaSudo: false };
  let viaSudo = false;
  if (uid !== 0) {
    const sudo = spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore', timeout: 10_000 });
    if (sudo.error || sudo.status !== 0) {
      return { problem: '--confine needs root or passwordless sudo (to make namespaces and run the command as another user); sudo -n is not available to this user', viaSudo: false };
    }
    viaSudo = true;
  }
  for (const [tool, pkg] of TOOLS) {
    const r = spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    if (r.status !== 0) return { problem: `--confine needs ${tool} (Debian/Ubuntu package ${pkg})`, viaSudo };
  }
  return { problem: null, viaSudo };
}
