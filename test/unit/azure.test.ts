// The Azure pieces that need no network: the database scope per cloud, and Entra's errors
// translated into what to configure (the end-to-end path is test/e2e/action.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { explainAzureError, postgresScope } from '../../gateway/identity/azure.ts';

test('the PostgreSQL scope follows the cloud of the authority', () => {
  assert.equal(postgresScope('https://login.microsoftonline.com'), 'https://ossrdbms-aad.database.windows.net/.default');
  assert.equal(postgresScope('https://login.microsoftonline.us'), 'https://ossrdbms-aad.database.usgovcloudapi.net/.default');
  assert.equal(postgresScope('https://login.chinacloudapi.cn/'), 'https://ossrdbms-aad.database.chinacloudapi.cn/.default');
});

test("Entra's errors name the presented subject and what to configure, without trace ids", () => {
  const s = { tenantId: '11111111-1111-1111-1111-111111111111', clientId: '22222222-2222-2222-2222-222222222222', authorityHost: 'https://login.microsoftonline.com' };
  const e700213 = new Error("invalid_client: Error(s): 700213 - Timestamp: 2026-11-22 16:36:37Z - Description: AADSTS700213: No matching federated identity record found for presented assertion subject 'repo:octo-org/payments:pull_request'. Check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation Trace ID: 790c6698 Correlation ID: 2c6d5c21 Timestamp: 2026-11-22 16:36:37Z - Correlation ID: 2c6d5c21 - Trace ID: 790c6698");
  const m = explainAzureError(e700213, s, 'https://ossrdbms-aad.database.windows.net/.default', { sub: 'repo:octo-org/payments:pull_request', iss: 'https://token.actions.githubusercontent.com' });
  assert.match(m, /no federated credential matches the subject "repo:octo-org\/payments:pull_request" the job presented/);
  assert.match(m, /az ad app federated-credential create --id 22222222-2222-2222-2222-222222222222/);
  assert.match(m, /"subject":"repo:octo-org\/payments:pull_request"/);
  assert.doesNotMatch(m, /Trace ID|Correlation ID/);
  const e700016 = new Error("unauthorized_client: Error(s): 700016 - Description: AADSTS700016: Application with identifier 'x' was not found in the directory 'y'.");
  assert.match(explainAzureError(e700016, s, 'scope', null), /no application with client id 22222222-2222-2222-2222-222222222222 in tenant 11111111-1111-1111-1111-111111111111: check the azure-client-id and azure-tenant-id inputs/);
  assert.match(explainAzureError(new Error('ACTIONS_ID_TOKEN_REQUEST_URL is not set'), s, 'scope', null), /needs permissions: id-token: write/);
});
