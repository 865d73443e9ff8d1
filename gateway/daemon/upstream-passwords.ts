// Where each target's upstream password comes from: an environment variable's value, read
// once, or an Entra ID token asked for every new upstream connection.
import type { Policy } from '../config/policy.ts';
import { AzureTokens, azureSettingsFromEnv, postgresScope } from '../identity/azure.ts';

export class UpstreamAuthError extends Error {}

/**
 * How each target's upstream password is obtained: read once from the environment, or an Entra
 * ID token asked of the credential for every new upstream connection (it refreshes before
 * expiry). One token per Azure scope is fetched now, so a missing federated credential fails the
 * start with Entra's reason instead of the first client's login.
 */
export async function upstreamPasswords(opts: { policy: Policy; env?: NodeJS.ProcessEnv; runnerEnv?: NodeJS.ProcessEnv }): Promise<Map<string, () => Promise<string>>> {
  const env = opts.env ?? process.env;
  const runnerEnv = opts.runnerEnv ?? process.env;
  const out = new Map<string, () => Promise<string>>();
  let azure: { tokens: AzureTokens; scope: string } | null = null;
  for (const t of opts.policy.targets) {
    const auth = t.auth;
    if (auth.kind === 'password-env') {
      const v = env[auth.passwordEnv];
      if (v === undefined || v === '') throw new UpstreamAuthError(`target "${t.name}": environment variable ${auth.passwordEnv} (auth.password-env) is not set`);
      out.set(t.name, async () => v);
      continue;
    }
    if (!azure) {
      const settings = azureSettingsFromEnv(runnerEnv);
      if (!settings) throw new UpstreamAuthError(`target "${t.name}": auth: azure needs the Entra app's client and tenant ids (the action's azure-client-id and azure-tenant-id inputs, or AZURE_CLIENT_ID and AZURE_TENANT_ID)`);
      azure = { tokens: new AzureTokens(settings, runnerEnv), scope: postgresScope(settings.authorityHost) };
    }
    const { tokens, scope } = azure;
    try {
      await tokens.token(scope);
    } catch (e) {
      throw new UpstreamAuthError(`target "${t.name}": ${(e as Error).message}`);
    }
    out.set(t.name, () => tokens.token(scope));
  }
  return out;
}

