// The PostgreSQL adapter: `kind: postgres` targets, the `sql`, `tables` and `text-matches`
// conditions, one listener per target, and the connection variables libpq clients read.
import { randomBytes } from 'node:crypto';
import type { Adapter, ConnectionExport, CoreServices, Listener, PolicyNeeds } from '../core/adapter.ts';
import { targetVariable } from '../core/target-variable.ts';
import { postgresScope } from '../identity/azure.ts';
import { PostgresListener } from './listener.ts';
import { BASELINE_WASM_FLAG, loadSqlParser } from './pg-parser.ts';
import { POSTGRES_CONDITIONS } from './conditions.ts';
import { describePostgresTarget, parsePostgresTarget, type PostgresTarget } from './target.ts';
import targetSchema from './target.schema.json' with { type: 'json' };
import { postgresRenderer } from './renderer.ts';

/** The parser is needed to decide commands and to follow masked columns through COPY. */
const needsParser = (p: PolicyNeeds): boolean => p.rules || p.maskColumns;

export const postgresAdapter: Adapter<PostgresTarget> = {
  kind: 'postgres',
  targetSchema,
  conditions: POSTGRES_CONDITIONS,
  parseTarget: parsePostgresTarget,
  describe: describePostgresTarget,
  renderer: postgresRenderer,
  nodeFlags: (_targets, policy) => (needsParser(policy) ? [BASELINE_WASM_FLAG] : []),
  async listeners(targets, core) {
    const needs = { rules: core.policy !== null, maskColumns: core.masker?.masksColumns ?? false };
    if (needsParser(needs)) await loadSqlParser();
    const out: Listener[] = [];
    for (const [i, target] of targets.entries()) out.push(new PostgresTargetListener(target, await upstreamPassword(target, core), core, i === 0));
    return out;
  },
};

/**
 * How the upstream password is obtained: read once from the handed-over secrets, or an Entra ID
 * token asked for every new upstream connection. The first token is fetched now, so a missing
 * federated credential fails the start with Entra's reason instead of the first client's login.
 */
async function upstreamPassword(t: PostgresTarget, core: CoreServices): Promise<() => Promise<string>> {
  const who = `target "${t.name}"`;
  if (t.auth.kind === 'password-env') {
    const v = core.credentials.secret(t.auth.passwordEnv);
    if (v === undefined) throw new Error(`${who}: environment variable ${t.auth.passwordEnv} (auth.password-env) is not set`);
    return async () => v;
  }
  const scope = postgresScope(core.credentials.authorityHost(who));
  try {
    await core.credentials.azureToken(who, scope);
  } catch (e) {
    throw new Error(`${who}: ${(e as Error).message}`);
  }
  return () => core.credentials.azureToken(who, scope);
}

class PostgresTargetListener implements Listener {
  readonly targets: readonly string[];
  private readonly listener: PostgresListener;
  private readonly target: PostgresTarget;
  private readonly password = randomBytes(24).toString('base64url');
  private readonly first: boolean;
  private port = 0;

  constructor(target: PostgresTarget, upstreamPassword: () => Promise<string>, core: CoreServices, first: boolean) {
    this.target = target;
    this.targets = [target.name];
    this.first = first;
    this.listener = new PostgresListener({ target, clientPassword: this.password, upstreamPassword, recorder: core.recorder, policy: core.policy, approvals: core.approvals, masker: core.masker });
  }

  async listen(): Promise<string> {
    this.port = await this.listener.listen();
    return `127.0.0.1:${this.port}`;
  }

  stop(graceMs: number): Promise<void> {
    return this.listener.stop(graceMs);
  }

  /** The target's URL variable; the first target also gets libpq's PG* variables. */
  connection(): ConnectionExport {
    const t = this.target;
    const env: Record<string, string> = {
      [targetVariable(t.name)]: `postgresql://${encodeURIComponent(t.user)}:${this.password}@127.0.0.1:${this.port}/${encodeURIComponent(t.database)}?sslmode=disable`,
    };
    if (this.first) Object.assign(env, { PGHOST: '127.0.0.1', PGPORT: String(this.port), PGUSER: t.user, PGPASSWORD: this.password, PGDATABASE: t.database, PGSSLMODE: 'disable' });
    return { env, secrets: [this.password], files: [] };
  }
}
