// The upstream host's key, pinned by the policy: a `host-key:` line or the entries of a
// `known-hosts:` file for the host. Pure: parsing, matching and fingerprints; the upstream
// connection compares what the host presents with these before anything is sent.
import { createHash, createHmac } from 'node:crypto';

/** One acceptable host key: its type and the raw key blob (what the host presents). */
export interface PinnedKey { type: string; blob: Buffer }

const KEY_TYPE = /^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com)$/;

/** OpenSSH's fingerprint: SHA256:<base64 of the blob's SHA-256, unpadded>. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The key type written inside a blob (its first SSH string). */
export function blobType(blob: Buffer): string | null {
  if (blob.length < 4) return null;
  const n = blob.readUInt32BE(0);
  return n > 0 && n < 64 && blob.length >= 4 + n ? blob.toString('latin1', 4, 4 + n) : null;
}

/** `ssh-ed25519 AAAA... [comment]` as a pinned key; a string saying what is wrong otherwise. */
export function parseKeyLine(line: string): PinnedKey | string {
  const [type, b64] = line.trim().split(/\s+/);
  if (!type || !b64) return 'expected "<key type> <base64 key>", as in a .pub or known_hosts line';
  if (!KEY_TYPE.test(type)) return `unknown key type "${type}"`;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return 'the key is not base64';
  const blob = Buffer.from(b64, 'base64');
  const inner = blobType(blob);
  if (inner !== type) return `the key's data says ${inner ?? 'nothing readable'}, not ${type}`;
  return { type, blob };
}

/** How known_hosts names a host on a port: `host` for 22, `[host]:port` otherwise. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** A known_hosts host pattern list (`a,b,*.c,!d`, or a hashed `|1|salt|hash`) against a name. */
function hostMatches(field: string, name: string): boolean {
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|');
    if (!salt || !hash) return false;
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
  }
  let hit = false;
  for (const raw of field.split(',')) {
    const negated = raw.startsWith('!');
    const pattern = negated ? raw.slice(1) : raw;
    const re = new RegExp(`^${pattern.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
    if (re.test(name)) {
      if (negated) return false;
      hit = true;
    }
  }
  return hit;
}

/**
 * The keys a known_hosts text pins for host:port. `@revoked` entries are returned apart (a host
 * presenting one is refused even if another line pins it); `@cert-authority` lines are not
 * supported (ssh2 cannot check host certificates) and are reported.
 */
export function knownHostsKeys(text: string, host: string, port: number): { keys: PinnedKey[]; revoked: PinnedKey[]; problems: string[] } {
  const name = knownHostsName(host, port);
  const keys: PinnedKey[] = [];
  const revoked: PinnedKey[] = [];
  const problems: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    let fields = line.split(/\s+/);
    let marker = '';
    if (fields[0]!.startsWith('@')) {
      marker = fields[0]!;
      fields = fields.slice(1);
    }
    if (fields.length < 3 || !hostMatches(fields[0]!, name)) return;
    if (marker === '@cert-authority') return void problems.push(`line ${i + 1}: @cert-authority entries are not supported (pin the host key itself)`);
    const key = parseKeyLine(`${fields[1]} ${fields[2]}`);
    if (typeof key === 'string') return void problems.push(`line ${i + 1}: ${key}`);
    (marker === '@revoked' ? revoked : keys).push(key);
  });
  return { keys, revoked, problems };
}

/** Whether the presented blob is pinned (and not revoked). */
export function isPinned(blob: Buffer, pinned: readonly PinnedKey[], revoked: readonly PinnedKey[] = []): boolean {
  if (revoked.some((k) => k.blob.equals(blob))) return false;
  return pinned.some((k) => k.blob.equals(blob));
}
