// Entra ID tokens through workload identity federation: the job's GitHub OIDC token is the client
// assertion, fetched fresh for every token request (GitHub's tokens live minutes, jobs hours).
// No secret is stored anywhere. Entra's errors are translated into one message that says which
// subject was presented and what to configure.
import { ClientAssertionCredential } from '@azure/identity';
import { decodeJwt } from 'jose';
import { requestIdToken } from './github-oidc.ts';

export const AZURE_ASSERTION_AUDIENCE = 'api://AzureADTokenExchange';
export const AZURE_PUBLIC_AUTHORITY = 'https://login.microsoftonline.com';

/**
 * The Entra ID scope of Azure Database for PostgreSQL in the cloud the authority belongs to
 * (public, US Government, China).
 */
export function postgresScope(authorityHost: string): string {
  const host = new URL(authorityHost).hostname;
  if (host.endsWith('.us')) return 'https://ossrdbms-aad.database.usgovcloudapi.net/.default';
  if (host.endsWith('.cn')) return 'https://ossrdbms-aad.database.chinacloudapi.cn/.default';
  return 'https://ossrdbms-aad.database.windows.net/.default';
}

export interface AzureSettings { tenantId: string; clientId: string; authorityHost: string }

export class AzureAuthError extends Error {}

/** An assertion is reused this long at most: GitHub's tokens live minutes, Entra wants them fresh. */
const ASSERTION_REUSE_MS = 10_000;

/** AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_AUTHORITY_HOST, as @azure/identity names them. */
export function azureSettingsFromEnv(env: NodeJS.ProcessEnv): AzureSettings | null {
  if (!env.AZURE_TENANT_ID || !env.AZURE_CLIENT_ID) return null;
  return { tenantId: env.AZURE_TENANT_ID, clientId: env.AZURE_CLIENT_ID, authorityHost: env.AZURE_AUTHORITY_HOST || AZURE_PUBLIC_AUTHORITY };
}

/** A token is asked for again at least this long before it expires. */
const TOKEN_EXPIRY_MARGIN_MS = 5 * 60_000;

export class AzureTokens {
  private readonly credential: ClientAssertionCredential;
  private presented: { sub: string; iss: string } | null = null;
  private recent: { token: string; at: number } | null = null;
  private readonly settings: AzureSettings;

  constructor(settings: AzureSettings, runnerEnv: NodeJS.ProcessEnv) {
    this.settings = settings;
    this.credential = new ClientAssertionCredential(settings.tenantId, settings.clientId, async () => {
      // msal asks twice per token request and sends the first; one GitHub token serves both.
      if (this.recent && Date.now() - this.recent.at < ASSERTION_REUSE_MS) return this.recent.token;
      const token = await requestIdToken(runnerEnv, AZURE_ASSERTION_AUDIENCE);
      const c = decodeJwt(token);
      this.presented = { sub: String(c.sub ?? ''), iss: String(c.iss ?? '') };
      this.recent = { token, at: Date.now() };
      return token;
    }, {
      authorityHost: settings.authorityHost,
      // Instance discovery asks login.microsoftonline.com about the authority: sovereign and
      // private authorities are taken as configured instead.
      disableInstanceDiscovery: true,
    });
  }

  /** An access token for `scope`; the credential refreshes it before it expires. */
  async token(scope: string): Promise<string> {
    // Held here until it is due for refresh: the credential's own cache lookup costs about 140 µs
    // of CPU per call (measured here), and an HTTP target asks once per request it forwards.
    const held = this.held.get(scope);
    if (held && Date.now() < held.until) return held.token;
    const pending = this.pending.get(scope);
    if (pending) return pending;
    const p = this.fetch(scope);
    this.pending.set(scope, p);
    try {
      return await p;
    } finally {
      this.pending.delete(scope);
    }
  }

  private readonly held = new Map<string, { token: string; until: number }>();
  private readonly pending = new Map<string, Promise<string>>();

  private async fetch(scope: string): Promise<string> {
    try {
      const t = await this.credential.getToken(scope);
      if (!t?.token) throw new Error('no token in the answer');
      // Asked again once the credential would refresh it, and never within 5 minutes of expiry.
      const until = Math.min(t.refreshAfterTimestamp ?? Infinity, t.expiresOnTimestamp - TOKEN_EXPIRY_MARGIN_MS);
      this.held.set(scope, { token: t.token, until });
      return t.token;
    } catch (e) {
      throw new AzureAuthError(explainAzureError(e as Error, this.settings, scope, this.presented));
    }
  }
}

/** Entra's answer as one actionable message (no trace ids, no token). */
export function explainAzureError(e: Error, s: AzureSettings, scope: string, presented: { sub: string; iss: string } | null): string {
  const text = `${e.message}`;
  const code = /AADSTS(\d+)/.exec(text)?.[1];
  const entra = /AADSTS\d+:[^\r\n]*?(?=(?: Trace ID:|$))/.exec(text)?.[0]?.trim();
  const subject = presented?.sub ?? '(unknown)';
  const issuer = presented?.iss ?? 'https://token.actions.githubusercontent.com';
  const app = `app (client) id ${s.clientId} in tenant ${s.tenantId}`;
  const federated = `add a federated credential to ${app} with issuer ${issuer}, subject "${subject}" and audience ${AZURE_ASSERTION_AUDIENCE} (Entra ID > App registrations > Certificates & secrets > Federated credentials, or: az ad app federated-credential create --id ${s.clientId} --parameters '{"name":"github-${subject.replace(/[^A-Za-z0-9-]+/g, '-').slice(0, 80)}","issuer":"${issuer}","subject":"${subject}","audiences":["${AZURE_ASSERTION_AUDIENCE}"]}')`;
  const why: Record<string, string> = {
    '700213': `no federated credential matches the subject "${subject}" the job presented; ${federated}. Subjects are compared exactly: pull_request, ref:refs/heads/BRANCH and environment:NAME are different subjects`,
    '70021': `no federated credential matches the subject "${subject}" the job presented; ${federated}`,
    '700212': `the federated credential's audience is not ${AZURE_ASSERTION_AUDIENCE}; set its audience to ${AZURE_ASSERTION_AUDIENCE}`,
    '700211': `no federated credential trusts the issuer ${issuer}; ${federated}`,
    '700024': 'the GitHub OIDC token had expired when Entra checked it (is the runner\'s clock right?)',
    '700016': `Entra has no application with client id ${s.clientId} in tenant ${s.tenantId}: check the azure-client-id and azure-tenant-id inputs`,
    '90002': `tenant ${s.tenantId} does not exist: check the azure-tenant-id input`,
    '50027': 'Entra could not verify the GitHub OIDC token\'s signature',
  };
  const head = `Azure refused the job's identity for ${scope}`;
  if (code && why[code]) return `${head}: ${why[code]}. (Entra: ${entra ?? `AADSTS${code}`})`;
  if (/ACTIONS_ID_TOKEN_REQUEST|OIDC token request/.test(text)) return `${head}: cannot get the job's GitHub OIDC token (${text}); the job needs permissions: id-token: write`;
  return `${head}: ${entra ?? text.split('\n')[0]}`;
}
