// Who is behind a run when no CI identity is available: the local OS user.
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import type { Claims } from '../policy/engine.ts';

export interface Identity { kind: string; [claim: string]: unknown }

export function localIdentity(): Identity {
  const u = os.userInfo();
  return { kind: 'local', user: u.username, uid: u.uid, host: os.hostname() };
}

/**
 * Claims rules match on, from the local environment: GITHUB_REF, GITHUB_ACTOR and
 * GITHUB_EVENT_NAME when set (a GitHub runner sets them), else the git branch checked out in
 * the working directory, the OS user and "local". GATEWAY_ENVIRONMENT names the environment.
 */
export function localClaims(env: NodeJS.ProcessEnv = process.env): Claims {
  let ref = env.GITHUB_REF;
  if (!ref) {
    const r = spawnSync('git', ['symbolic-ref', '-q', 'HEAD'], { encoding: 'utf8' });
    if (r.status === 0 && r.stdout.trim()) ref = r.stdout.trim();
  }
  return {
    ...(ref ? { ref } : {}),
    actor: env.GITHUB_ACTOR || os.userInfo().username,
    event: env.GITHUB_EVENT_NAME || 'local',
    ...(env.GATEWAY_ENVIRONMENT ? { environment: env.GATEWAY_ENVIRONMENT } : {}),
  };
}
