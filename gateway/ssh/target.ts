// A `kind: ssh` target of the policy file: its schema (target.schema.json, merged into the one
// policy schema by the loader) and what the schema cannot check: exactly one way to pin the
// host's key, a key that parses, a known_hosts file that names the host.
import fs from 'node:fs';
import path from 'node:path';
import type { TargetBase, TargetParsing } from '../core/adapter.ts';
import { fingerprint, knownHostsKeys, knownHostsName, parseKeyLine, type PinnedKey } from './host-keys.ts';

export interface SshTarget extends TargetBase {
  kind: 'ssh';
  host: string;
  port: number;
  user: string;
  auth: { keyEnv?: string; passphraseEnv?: string; passwordEnv?: string };
  /** The host keys the upstream may present (one for host-key:, the file's entries for known-hosts:). */
  hostKeys: PinnedKey[];
  revokedKeys: PinnedKey[];
  /** Where the pin came from, for errors: `host-key` or the known_hosts path. */
  pinnedBy: string;
  keepaliveSeconds: number;
}

export function parseSshTarget(name: string, t: Record<string, unknown>, ctx: TargetParsing): SshTarget {
  const rawAuth = t.auth as Record<string, string>;
  const auth = { keyEnv: rawAuth['key-env'], passphraseEnv: rawAuth['passphrase-env'], passwordEnv: rawAuth['password-env'] };
  if (!auth.keyEnv && !auth.passwordEnv) ctx.fail(['auth'], `targets.${name}.auth: give key-env (a private key's variable) or password-env`);
  if (auth.passphraseEnv && !auth.keyEnv) ctx.fail(['auth', 'passphrase-env'], `targets.${name}.auth.passphrase-env: a passphrase needs key-env`);
  const host = String(t.host);
  const port = (t.port as number | undefined) ?? 22;
  let hostKeys: PinnedKey[] = [];
  let revokedKeys: PinnedKey[] = [];
  let pinnedBy: string;
  if (t['host-key'] !== undefined && t['known-hosts'] !== undefined) ctx.fail(['known-hosts'], `targets.${name}: give host-key or known-hosts, not both`);
  if (t['host-key'] !== undefined) {
    const key = parseKeyLine(String(t['host-key']));
    if (typeof key === 'string') ctx.fail(['host-key'], `targets.${name}.host-key: ${key}`);
    hostKeys = [key as PinnedKey];
    pinnedBy = 'host-key';
  } else if (t['known-hosts'] !== undefined) {
    const file = path.resolve(ctx.baseDir, String(t['known-hosts']));
    let text = '';
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      ctx.fail(['known-hosts'], `targets.${name}.known-hosts: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    const found = knownHostsKeys(text, host, port);
    if (found.keys.length === 0) {
      const why = found.problems.length ? ` (${found.problems.join('; ')})` : '';
      ctx.fail(['known-hosts'], `targets.${name}.known-hosts: ${file} has no key for ${knownHostsName(host, port)}${why}`);
    }
    hostKeys = found.keys;
    revokedKeys = found.revoked;
    pinnedBy = file;
  } else {
    return ctx.fail([], `targets.${name}: pin the host's key with host-key: "ssh-ed25519 AAAA..." or known-hosts: path/to/known_hosts`);
  }
  const secretEnv = [auth.keyEnv, auth.passphraseEnv, auth.passwordEnv].filter((v): v is string => !!v);
  return {
    name,
    kind: 'ssh',
    host,
    port,
    user: String(t.user),
    auth,
    hostKeys,
    revokedKeys,
    pinnedBy: pinnedBy!,
    keepaliveSeconds: (t.keepalive as number | undefined) ?? 15,
    secretEnv,
    azure: false,
  };
}

/** The target as run-start describes it (never a secret's value). */
export function describeSshTarget(t: SshTarget): Record<string, unknown> {
  return {
    name: t.name,
    kind: t.kind,
    host: t.host,
    port: t.port,
    user: t.user,
    auth: t.auth.keyEnv ? 'key' : 'password',
    host_keys: t.hostKeys.map((k) => fingerprint(k.blob)),
  };
}
