// A `kind: postgres` target of the policy file: its schema (target.schema.json, merged into the
// one policy schema by the loader) and what the schema cannot check.
import fs from 'node:fs';
import path from 'node:path';
import type { TargetBase, TargetParsing } from '../core/adapter.ts';

export interface PostgresTarget extends TargetBase {
  kind: 'postgres';
  host: string;
  port: number;
  database: string;
  user: string;
  /** An environment variable's password, or an Entra ID token (Azure Database for PostgreSQL; the scope follows the cloud). */
  auth: { kind: 'password-env'; passwordEnv: string; allowCleartext: boolean } | { kind: 'azure' };
  tls: 'disable' | 'require' | 'verify-full';
  caFile?: string;
}

export function parsePostgresTarget(name: string, t: Record<string, unknown>, ctx: TargetParsing): PostgresTarget {
  const auth = t.auth === 'azure' ? { kind: 'azure' as const } : { kind: 'password-env' as const, passwordEnv: String((t.auth as Record<string, string>)['password-env']), allowCleartext: (t.auth as Record<string, unknown>)['allow-cleartext'] === true };
  const target: PostgresTarget = {
    name,
    kind: 'postgres',
    host: String(t.host),
    port: (t.port as number | undefined) ?? 5432,
    database: String(t.database),
    user: String(t.user),
    auth,
    tls: ((t.tls as PostgresTarget['tls'] | undefined) ?? 'verify-full'),
    caFile: t['ca-file'] ? path.resolve(ctx.baseDir, String(t['ca-file'])) : undefined,
    secretEnv: auth.kind === 'password-env' ? [auth.passwordEnv] : [],
    azure: auth.kind === 'azure',
  };
  // An Entra token is a bearer password: it must never cross the network in the clear.
  if (target.azure && target.tls === 'disable') {
    ctx.fail(['tls'], `targets.${name}: auth: azure needs TLS to the server (tls: require or verify-full), not tls: disable`);
  }
  if (target.caFile) {
    let pem: string;
    try {
      pem = fs.readFileSync(target.caFile, 'utf8');
    } catch (e) {
      return ctx.fail(['ca-file'], `targets.${name}.ca-file: cannot read ${target.caFile} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
    }
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) ctx.fail(['ca-file'], `targets.${name}.ca-file: ${target.caFile} holds no PEM certificate`);
  }
  return target;
}

/** The target as run-start describes it (never its password's variable's value). */
export function describePostgresTarget(t: PostgresTarget): Record<string, unknown> {
  return { name: t.name, kind: t.kind, host: t.host, port: t.port, database: t.database, user: t.user, tls: t.tls, auth: t.auth.kind };
}
