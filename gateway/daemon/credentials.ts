// Upstream credentials for every adapter: secrets the starting step handed over (by variable
// name, over IPC, never the daemon's environment) and Entra ID tokens through the job's OIDC
// token, one credential for the run, tokens cached per scope and refreshed before expiry.
import { AzureTokens, azureSettingsFromEnv, type AzureSettings } from '../identity/azure.ts';
import type { Credentials } from '../core/adapter.ts';

export class CredentialError extends Error {}

export function credentials(secrets: NodeJS.ProcessEnv, runnerEnv: NodeJS.ProcessEnv): Credentials {
  let azure: { tokens: AzureTokens; settings: AzureSettings } | null = null;
  const entra = (who: string): { tokens: AzureTokens; settings: AzureSettings } => {
    if (azure) return azure;
    const settings = azureSettingsFromEnv(runnerEnv);
    if (!settings) throw new CredentialError(`${who}: auth: azure needs the Entra app's client and tenant ids (the action's azure-client-id and azure-tenant-id inputs, or AZURE_CLIENT_ID and AZURE_TENANT_ID)`);
    return (azure = { tokens: new AzureTokens(settings, runnerEnv), settings });
  };
  return {
    secret(name) {
      const v = secrets[name];
      return v === undefined || v === '' ? undefined : v;
    },
    authorityHost(who) {
      return entra(who).settings.authorityHost;
    },
    azureToken(who, scope) {
      return entra(who).tokens.token(scope);
    },
    azureIdentity(who) {
      const s = entra(who).settings;
      return { tenantId: s.tenantId, clientId: s.clientId };
    },
  };
}
