// Who is behind a run when no CI identity is available: the local OS user.
import os from 'node:os';

export interface Identity { kind: string; [claim: string]: unknown }

export function localIdentity(): Identity {
  const u = os.userInfo();
  return { kind: 'local', user: u.username, uid: u.uid, host: os.hostname() };
}
