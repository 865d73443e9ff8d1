// The gateway's own SSH connection to the host: the policy's user and key (or password), the
// host key checked against the pin before authentication is sent, keepalives. One upstream
// connection per client connection, so a host sees one login per pipeline connection.
import ssh2, { type Client, type ConnectConfig } from 'ssh2';
import type { Credentials } from '../core/adapter.ts';
import { UPSTREAM_CIPHERS } from './algorithms.ts';
import { fingerprint, isPinned } from './host-keys.ts';
import { connectSshSocket } from './socket-writes.ts';
import { holdKeysAsKeyObjects } from './cipher-keys.ts';
import type { SshTarget } from './target.ts';

/** Why the gateway could not reach the host, as the client's stderr and the log say it. */
export class UpstreamError extends Error {}

/** The upstream login material, read once at start: a missing variable fails the gateway's start. */
export interface UpstreamLogin { privateKey?: string; passphrase?: string; password?: string }

export function upstreamLogin(t: SshTarget, credentials: Credentials): UpstreamLogin {
  const who = `target "${t.name}"`;
  const read = (name: string | undefined, what: string): string | undefined => {
    if (!name) return undefined;
    const v = credentials.secret(name);
    if (v === undefined) throw new Error(`${who}: environment variable ${name} (auth.${what}) is not set`);
    return v;
  };
  const login = { privateKey: read(t.auth.keyEnv, 'key-env'), passphrase: read(t.auth.passphraseEnv, 'passphrase-env'), password: read(t.auth.passwordEnv, 'password-env') };
  if (login.privateKey !== undefined) {
    // Checked now so a key that does not parse (or a wrong passphrase) fails the start, not the first client.
    const parsed = parseKey(login.privateKey, login.passphrase);
    if (parsed) throw new Error(`${who}: the private key in ${t.auth.keyEnv} cannot be used: ${parsed}`);
  }
  return login;
}

function parseKey(key: string, passphrase?: string): string | null {
  const parsed = ssh2.utils.parseKey(key, passphrase);
  if (parsed instanceof Error) return parsed.message;
  const one = Array.isArray(parsed) ? parsed[0] : parsed;
  return one && one.isPrivateKey() ? null : 'it is not a private key';
}

/** Connects and authenticates; rejects with an UpstreamError naming what failed. */
export function connectUpstream(t: SshTarget, login: UpstreamLogin): Promise<Client> {
  return new Promise((resolve, reject) => {
    const conn = new ssh2.Client();
    holdKeysAsKeyObjects(conn);
    let presented: Buffer | null = null;
    let settled = false;
    const fail = (message: string): void => {
      if (settled) return;
      settled = true;
      conn.end();
      reject(new UpstreamError(message));
    };
    const config: ConnectConfig = {
      host: t.host,
      port: t.port,
      username: t.user,
      privateKey: login.privateKey,
      passphrase: login.passphrase,
      password: login.password,
      // Our own socket, set up for SSH (socket-writes.ts); ssh2 connects none itself then.
      sock: connectSshSocket(t.host, t.port),
      readyTimeout: 20_000,
      keepaliveInterval: t.keepaliveSeconds * 1000,
      keepaliveCountMax: 4,
      // Only the pinned key's type is offered, so a host with several keys presents that one.
      algorithms: { serverHostKey: [...new Set(t.hostKeys.map((k) => k.type))] as never, cipher: UPSTREAM_CIPHERS as never },
      hostVerifier: (key: Buffer) => {
        presented = key;
        return isPinned(key, t.hostKeys, t.revokedKeys);
      },
    };
    conn.once('ready', () => {
      settled = true;
      resolve(conn);
    });
    conn.on('error', (e: Error & { level?: string }) => {
      if (presented && !isPinned(presented, t.hostKeys, t.revokedKeys)) {
        const expected = t.hostKeys.map((k) => fingerprint(k.blob)).join(' or ');
        return fail(`host key mismatch for ${t.host}:${t.port}: expected ${expected} (${t.pinnedBy}), the host presented ${fingerprint(presented)}; nothing was sent to it`);
      }
      if (e.level === 'client-authentication') return fail(`the host refused the login of ${t.user} (${t.auth.keyEnv ? 'key' : 'password'} from the policy's auth)`);
      if (e.level === 'client-timeout') return fail(`no answer from ${t.host}:${t.port} within 20 s`);
      fail(`cannot reach ${t.host}:${t.port}: ${e.message}`);
    });
    conn.once('close', () => fail(`the connection to ${t.host}:${t.port} closed during login`));
    conn.connect(config);
  });
}
