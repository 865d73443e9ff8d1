// The Entra stand-in, proven against the REAL client: @azure/identity's ClientAssertionCredential
// (msal-node underneath), fed GitHub OIDC tokens from the OIDC issuer stand-in through the
// runner's token-request contract, talking HTTPS to the stand-in. NODE_EXTRA_CA_CERTS is read
// only at process start, so the client runs in a child process.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import https from 'node:https';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startOidcIssuer, type OidcIssuer } from '../helpers/oidc-issuer.ts';
import { startEntraStandIn, JWT_BEARER, TOKEN_EXCHANGE_AUDIENCE, type EntraStandIn } from '../helpers/entra-stand-in.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const NODE = path.join(ROOT, 'node_modules/.bin/node');
const IDENTITY = import.meta.resolve('@azure/identity');
const PG_SCOPE = 'https://ossrdbms-aad.database.windows.net/.default';
const ARM_SCOPE = 'https://management.azure.com/.default';
const MAIN_SUBJECT = 'repo:octo-org/payments:ref:refs/heads/main';
const PR_SUBJECT = 'repo:octo-org/payments:pull_request';

// The client, as a GitHub Action would run it: a fresh GitHub OIDC token per assertion callback.
const CLIENT = `
const { ClientAssertionCredential } = await import(process.env.IDENTITY_URL);
const cfg = JSON.parse(process.env.CLIENT_CONFIG);
let assertionCalls = 0;
const getAssertion = async () => {
  assertionCalls++;
  const url = process.env.ACTIONS_ID_TOKEN_REQUEST_URL + '&audience=' + encodeURIComponent('api://AzureADTokenExchange');
  const res = await fetch(url, { headers: { authorization: 'Bearer ' + process.env.ACTIONS_ID_TOKEN_REQUEST_TOKEN, accept: 'application/json' } });
  if (!res.ok) throw new Error('OIDC token request failed: ' + res.status);
  return (await res.json()).value;
};
const cred = new ClientAssertionCredential(cfg.tenantId, cfg.clientId, getAssertion, { authorityHost: cfg.authorityHost, disableInstanceDiscovery: true });
const results = [];
for (const scope of cfg.scopes) {
  const before = assertionCalls;
  try {
    const t = await cred.getToken(scope);
    results.push({ scope, ok: true, token: t.token, expiresOnTimestamp: t.expiresOnTimestamp, tokenType: t.tokenType, assertionCalls: assertionCalls - before });
  } catch (e) {
    const c = e.cause ?? {};
    results.push({ scope, ok: false, name: e.name, message: e.message, assertionCalls: assertionCalls - before,
      cause: { name: c.name, errorCode: c.errorCode, errorNo: c.errorNo, subError: c.subError, status: c.status, correlationId: c.correlationId } });
  }
}
process.stdout.write(JSON.stringify(results));
`;

interface ClientResult {
  scope: string; ok: boolean; token?: string; expiresOnTimestamp?: number; tokenType?: string;
  name?: string; message?: string; assertionCalls: number;
  cause?: { name?: string; errorCode?: string; errorNo?: string; subError?: string; status?: number; correlationId?: string };
}

function runClient(entra: EntraStandIn, issuer: OidcIssuer, scopes: string[], clientId = entra.clientId): Promise<ClientResult[]> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    NODE_EXTRA_CA_CERTS: entra.caFile,
    IDENTITY_URL: IDENTITY,
    CLIENT_CONFIG: JSON.stringify({ tenantId: entra.tenantId, clientId, authorityHost: entra.authorityHost, scopes }),
    ...issuer.requestEnv,
  };
  return new Promise((resolve, reject) => {
    execFile(NODE, ['--input-type=module', '-e', CLIENT], { env, cwd: ROOT, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`client failed: ${err.message}\n${stderr}`));
      try { resolve(JSON.parse(stdout) as ClientResult[]); } catch { reject(new Error(`client output: ${stdout}\n${stderr}`)); }
    });
  });
}

/** A direct token request (for cases the real client cannot be made to send). */
function postToken(entra: EntraStandIn, fields: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }> {
  const data = new URLSearchParams(fields).toString();
  const u = new URL(`${entra.authorityHost}/${entra.tenantId}/oauth2/v2.0/token`);
  return new Promise((resolve, reject) => {
    const req = https.request(u, { method: 'POST', ca: entra.caPem, headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(data) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

let issuer: OidcIssuer;
let entra: EntraStandIn;
let prOnly: EntraStandIn;

before(async () => {
  issuer = await startOidcIssuer();
  [entra, prOnly] = await Promise.all([
    startEntraStandIn({ federatedCredentials: [{ issuer: issuer.url, subject: MAIN_SUBJECT }], tokens: { [ARM_SCOPE]: 'arm-token-fixed' } }),
    startEntraStandIn({ federatedCredentials: [{ issuer: issuer.url, subject: PR_SUBJECT }] }),
  ]);
});

after(async () => {
  await Promise.all([entra?.close(), prOnly?.close(), issuer?.close()]);
});

test('ClientAssertionCredential gets the per-scope token over HTTPS, with a fresh GitHub OIDC assertion per token request', async (t) => {
  const oidcBefore = issuer.requests.length;
  const reqBefore = entra.requests.length;
  const callsBefore = entra.calls.length;
  const results = await runClient(entra, issuer, [PG_SCOPE, ARM_SCOPE, PG_SCOPE]);
  assert.equal(results.length, 3);
  const [pg, arm, pgAgain] = results as [ClientResult, ClientResult, ClientResult];
  assert.ok(pg.ok, pg.message);
  assert.equal(pg.token, entra.tokenFor(PG_SCOPE));
  assert.equal(pg.tokenType, 'Bearer');
  assert.ok(pg.expiresOnTimestamp! > Date.now() + 3000_000, 'expires_in 3599 honoured');
  // msal-node invokes the assertion callback twice per getToken (once for the request, once while
  // building its client configuration; only the first is posted), even when the token then
  // comes from its cache. So each callback must mint a fresh OIDC token, never cache one.
  assert.ok(pg.assertionCalls >= 1);
  // Another scope: the assertion callback runs again, fresh OIDC tokens are requested.
  assert.ok(arm.ok, arm.message);
  assert.equal(arm.token, 'arm-token-fixed');
  assert.equal(arm.token, entra.tokenFor(ARM_SCOPE));
  assert.ok(arm.assertionCalls >= 1);
  // The same scope again within the process: served from msal's in-memory cache (no token request).
  assert.ok(pgAgain.ok);
  assert.equal(pgAgain.token, pg.token);
  t.diagnostic(`assertion callback invocations per getToken: ${results.map((r) => r.assertionCalls).join(', ')}`);

  const fetched = issuer.requests.slice(oidcBefore);
  assert.equal(fetched.length, pg.assertionCalls + arm.assertionCalls + pgAgain.assertionCalls, 'one OIDC token request per callback');
  assert.ok(fetched.length >= 2);
  assert.ok(fetched.every((a) => a === TOKEN_EXCHANGE_AUDIENCE));
  const reqs = entra.requests.slice(reqBefore);
  assert.equal(reqs.length, 2);
  for (const r of reqs) {
    assert.equal(r.ok, true);
    assert.equal(r.subject, MAIN_SUBJECT);
    assert.equal(r.issuer, issuer.url);
    assert.equal(r.audience, TOKEN_EXCHANGE_AUDIENCE);
    assert.equal(r.clientId, entra.clientId);
  }
  assert.deepEqual(reqs.map((r) => r.scope), [PG_SCOPE, ARM_SCOPE]);
  assert.ok(reqs[0]!.jti && reqs[1]!.jti && reqs[0]!.jti !== reqs[1]!.jti, 'a fresh assertion per token request');

  // Exactly what msal called: discovery once, then one POST per uncached token.
  const calls = entra.calls.slice(callsBefore);
  t.diagnostic(`HTTP calls made by msal-node: ${JSON.stringify(calls)}`);
  assert.deepEqual(calls.map((c) => `${c.method} ${c.url.split('?')[0]} ${c.status}`), [
    `GET /${entra.tenantId}/v2.0/.well-known/openid-configuration 200`,
    `POST /${entra.tenantId}/oauth2/v2.0/token 200`,
    `POST /${entra.tenantId}/oauth2/v2.0/token 200`,
  ]);
  const post = calls[1]!;
  assert.match(post.contentType ?? '', /^application\/x-www-form-urlencoded/);
  for (const f of ['client_id', 'scope', 'grant_type', 'client_assertion', 'client_assertion_type']) assert.ok(post.formFields?.includes(f), f);
});

test('subject mismatch: getToken rejects with AADSTS700213 naming the presented subject', async (t) => {
  const reqBefore = prOnly.requests.length;
  const [r] = await runClient(prOnly, issuer, [PG_SCOPE]);
  assert.ok(r && !r.ok, 'must fail');
  t.diagnostic(`@azure/identity error (${r.name}): ${r.message}`);
  t.diagnostic(`error.cause: ${JSON.stringify(r.cause)}`);
  assert.match(r.message!, /AADSTS700213/);
  assert.ok(r.message!.includes(`presented assertion subject '${MAIN_SUBJECT}'`), r.message);
  assert.ok(r.assertionCalls >= 1);
  const rec = prOnly.requests.slice(reqBefore);
  assert.equal(rec.length, 1);
  assert.equal(rec[0]!.ok, false);
  assert.equal(rec[0]!.errorCode, 700213);
  assert.equal(rec[0]!.subject, MAIN_SUBJECT);
});

test('unknown client id: getToken rejects with AADSTS700016', async (t) => {
  const wrong = '00000000-0000-0000-0000-000000000bad';
  const [r] = await runClient(entra, issuer, [PG_SCOPE], wrong);
  assert.ok(r && !r.ok, 'must fail');
  t.diagnostic(`@azure/identity error (${r.name}): ${r.message}`);
  t.diagnostic(`error.cause: ${JSON.stringify(r.cause)}`);
  assert.match(r.message!, /AADSTS700016/);
  assert.ok(r.message!.includes(`Application with identifier '${wrong}' was not found in the directory '${entra.tenantId}'`), r.message);
});

test('a pull_request token matches a pull_request credential; subject matching is case-sensitive', async () => {
  const ok = await postToken(prOnly, {
    grant_type: 'client_credentials', client_id: prOnly.clientId, scope: PG_SCOPE, client_assertion_type: JWT_BEARER,
    client_assertion: await issuer.mint(TOKEN_EXCHANGE_AUDIENCE, { sub: PR_SUBJECT }),
  });
  assert.equal(ok.status, 200);
  assert.deepEqual(ok.body, { token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599, access_token: prOnly.tokenFor(PG_SCOPE) });

  const upper = await postToken(prOnly, {
    grant_type: 'client_credentials', client_id: prOnly.clientId, scope: PG_SCOPE, client_assertion_type: JWT_BEARER,
    client_assertion: await issuer.mint(TOKEN_EXCHANGE_AUDIENCE, { sub: 'repo:Octo-Org/payments:pull_request' }),
  });
  assert.equal(upper.status, 401);
  assert.deepEqual(upper.body.error_codes, [700213]);
});

test('Entra error shape and codes: audience 700212, issuer 700211, expired 700024, bad signature 50027', async () => {
  const form = async (assertion: string): Promise<Record<string, string>> => ({
    grant_type: 'client_credentials', client_id: entra.clientId, scope: PG_SCOPE, client_assertion_type: JWT_BEARER, client_assertion: assertion,
  });

  const aud = await postToken(entra, await form(await issuer.mint('api://SomethingElse')));
  assert.equal(aud.status, 401);
  assert.equal(aud.body.error, 'invalid_client');
  assert.deepEqual(aud.body.error_codes, [700212]);
  assert.match(String(aud.body.error_description), /^AADSTS700212: No matching federated identity record found for presented assertion audience 'api:\/\/SomethingElse'\. .* Trace ID: [0-9a-f-]{36} Correlation ID: [0-9a-f-]{36} Timestamp: \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/);
  assert.match(String(aud.body.timestamp), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/);
  assert.match(String(aud.body.trace_id), /^[0-9a-f-]{36}$/);
  assert.match(String(aud.body.correlation_id), /^[0-9a-f-]{36}$/);
  assert.equal(aud.body.error_uri, `${entra.authorityHost}/error?code=700212`);

  const other = await startOidcIssuer();
  try {
    const iss = await postToken(entra, await form(await other.mint(TOKEN_EXCHANGE_AUDIENCE)));
    assert.equal(iss.status, 401);
    assert.deepEqual(iss.body.error_codes, [700211]);
    assert.ok(String(iss.body.error_description).includes(`presented assertion issuer '${other.url}'`));
  } finally {
    await other.close();
  }

  const now = Math.floor(Date.now() / 1000);
  const expired = await postToken(entra, await form(await issuer.mint(TOKEN_EXCHANGE_AUDIENCE, {}, now - issuer.lifetimeS - 60)));
  assert.equal(expired.status, 401);
  assert.deepEqual(expired.body.error_codes, [700024]);
  assert.match(String(expired.body.error_description), /^AADSTS700024: Client assertion is not within its valid time range\. Current time: \S+Z, assertion valid from \S+Z, expiry time of assertion \S+Z\./);

  // A genuine token whose payload was edited (subject swapped): the signature no longer verifies.
  const genuine = await issuer.mint(TOKEN_EXCHANGE_AUDIENCE, { sub: PR_SUBJECT });
  const [h, p, s] = genuine.split('.') as [string, string, string];
  const payload = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>;
  payload.sub = MAIN_SUBJECT;
  const forged = `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
  const sig = await postToken(entra, await form(forged));
  assert.equal(sig.status, 400);
  assert.deepEqual(sig.body.error_codes, [50027]);

  const garbage = await postToken(entra, await form('not-a-jwt'));
  assert.deepEqual(garbage.body.error_codes, [50027]);

  const wrongTenant = await postToken({ ...entra, tenantId: '11111111-1111-1111-1111-111111111111' }, await form(await issuer.mint(TOKEN_EXCHANGE_AUDIENCE)));
  assert.deepEqual(wrongTenant.body.error_codes, [90002]);

  const recent = entra.requests.slice(-6);
  assert.deepEqual(recent.map((r) => r.errorCode), [700212, 700211, 700024, 50027, 50027, 90002]);
  assert.ok(recent.every((r) => !r.ok));
});
