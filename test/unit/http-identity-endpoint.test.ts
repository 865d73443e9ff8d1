// The gateway's managed-identity endpoint and its placeholder tokens, spoken to over a real
// loopback HTTP server with Node's fetch. Real clients (@azure/identity, az, python, curl) are in
// test/e2e/http-identity-clients.test.ts.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { PlaceholderTokens, PLACEHOLDER_ISSUER } from '../../gateway/http/placeholder-token.ts';
import {
  canonicalResource, identityEndpoint, identityEnvironment, IDENTITY_PATH, IMDS_TOKEN_PATH,
} from '../../gateway/http/identity-endpoint.ts';

const ARM = 'https://management.azure.com/.default';
const CLAIMS = {
  tid: '72f988bf-86f1-41af-91ab-2d7cd011db47',
  oid: '0a1b2c3d-0000-4000-8000-00000000000a',
  appid: '9eba17f1-0000-4000-8000-00000000000b',
};
const SECRET = 'f3c1d2e4a5b6c7d8e9f0a1b2c3d4e5f6';

describe('PlaceholderTokens', () => {
  test('a minted placeholder checks, decodes as a JWT with the identity claims, and names its scope', () => {
    const tokens = new PlaceholderTokens();
    const token = tokens.mint(ARM, CLAIMS, 600);
    assert.deepEqual(tokens.check(token), { scope: ARM });
    assert.deepEqual(decodeProtectedHeader(token), { alg: 'HS256', typ: 'JWT' });
    const claims = decodeJwt(token);
    assert.equal(claims.iss, PLACEHOLDER_ISSUER);
    assert.equal(claims.aud, 'https://management.azure.com');
    assert.equal(claims.tid, CLAIMS.tid);
    assert.equal(claims.oid, CLAIMS.oid);
    assert.equal(claims.sub, CLAIMS.oid);
    assert.equal(claims.appid, CLAIMS.appid);
    assert.equal((claims.exp as number) - (claims.iat as number), 600);
  });

  test('claims that are not known are left out, not written empty', () => {
    const claims = decodeJwt(new PlaceholderTokens().mint(ARM, { tid: CLAIMS.tid }, 60));
    assert.equal(claims.tid, CLAIMS.tid);
    assert.ok(!('oid' in claims) && !('appid' in claims) && !('sub' in claims));
  });

  test('another run\'s key, a changed claim, a changed header, or garbage: null', () => {
    const tokens = new PlaceholderTokens();
    const token = tokens.mint(ARM, CLAIMS, 600);
    assert.equal(new PlaceholderTokens().check(token), null);
    const [h, p, s] = token.split('.') as [string, string, string];
    const widened = Buffer.from(JSON.stringify({ ...decodeJwt(token), aud: 'https://vault.azure.net' })).toString('base64url');
    assert.equal(tokens.check(`${h}.${widened}.${s}`), null);
    const none = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
    assert.equal(tokens.check(`${none}.${p}.`), null);
    assert.equal(tokens.check(`${none}.${p}.${s}`), null);
    for (const junk of ['', 'a.b', 'a.b.c.d', `${h}.${p}.${s}=`, `${h}.${p}`, 'x'.repeat(10000), `${h}.${p}.${s.slice(0, -2)}`]) {
      assert.equal(tokens.check(junk), null, junk.slice(0, 40));
    }
  });

  test('expiry and not-before follow the clock', () => {
    let now = 1_800_000_000;
    const tokens = new PlaceholderTokens({ now: () => now });
    const token = tokens.mint(ARM, CLAIMS, 300);
    now += 299;
    assert.deepEqual(tokens.check(token), { scope: ARM });
    now += 1;
    assert.equal(tokens.check(token), null);
    now -= 301;
    assert.equal(tokens.check(token), null, 'not valid before it was minted');
  });

  test('mint refuses what is not a .default scope and lifetimes out of range', () => {
    const tokens = new PlaceholderTokens();
    assert.throws(() => tokens.mint('https://management.azure.com', CLAIMS, 60), /\.default scope/);
    assert.throws(() => tokens.mint('/.default', CLAIMS, 60), /\.default scope/);
    assert.throws(() => tokens.mint(ARM, CLAIMS, 0), /lifetime/);
    assert.throws(() => tokens.mint(ARM, CLAIMS, 86401), /lifetime/);
    assert.throws(() => tokens.mint(ARM, CLAIMS, 1.5), /lifetime/);
  });
});

describe('canonicalResource', () => {
  test('resource and scope spellings of one resource meet', () => {
    for (const s of ['https://management.azure.com', 'https://management.azure.com/', 'https://Management.Azure.com//',
      'https://management.azure.com/.default', 'https://management.azure.com//.default',
      'https://management.core.windows.net/', 'https://management.core.windows.net//.default']) {
      assert.equal(canonicalResource(s), 'https://management.azure.com', s);
    }
    assert.equal(canonicalResource('https://ossrdbms-aad.database.windows.net/.default'), 'https://ossrdbms-aad.database.windows.net');
    assert.equal(canonicalResource('6DAE42F8-4368-4678-94FF-3960E28E3630/.default'), '6dae42f8-4368-4678-94ff-3960e28e3630');
  });

  test('what is neither an https resource nor an app id: null', () => {
    for (const s of ['', 'management.azure.com', 'http://management.azure.com', 'https://u:p@management.azure.com',
      'https://management.azure.com/?x=1', 'https://management.azure.com/#f', 'api://whatever', 'not a url']) {
      assert.equal(canonicalResource(s), null, s);
    }
  });
});

test('identityEnvironment: the variables a step gets, MSI_SECRET deliberately not among them', () => {
  assert.deepEqual(identityEnvironment('http://127.0.0.1:4100/', SECRET), {
    IDENTITY_ENDPOINT: 'http://127.0.0.1:4100/msi/token',
    IDENTITY_HEADER: SECRET,
    MSI_ENDPOINT: 'http://127.0.0.1:4100/msi/token',
    ARM_MSI_ENDPOINT: 'http://127.0.0.1:4100/metadata/identity/oauth2/token',
  });
});

test('identityEndpoint refuses a short header secret and scopes it cannot parse', () => {
  const tokens = new PlaceholderTokens();
  assert.throws(() => identityEndpoint({ tokens, header: 'short', scopes: [ARM], claims: () => CLAIMS }), /at least 16/);
  assert.throws(() => identityEndpoint({ tokens, header: SECRET, scopes: ['management'], claims: () => CLAIMS }), /not a resource/);
});

describe('identityEndpoint over loopback HTTP', () => {
  const tokens = new PlaceholderTokens();
  let claims: () => typeof CLAIMS = () => CLAIMS;
  let server: http.Server;
  let base: string;
  before(async () => {
    const handle = identityEndpoint({ tokens, header: SECRET, scopes: [ARM], claims: () => claims(), lifetimeS: 900 });
    server = http.createServer((req, res) => {
      if (!handle(req, res)) {
        res.writeHead(404, { 'Content-Type': 'text/plain' });
        res.end('not the identity endpoint');
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const get = async (path: string, headers: Record<string, string> = {}) => {
    const r = await fetch(base + path, { headers });
    return { status: r.status, type: r.headers.get('content-type'), cache: r.headers.get('cache-control'), body: await r.json() as Record<string, unknown> };
  };
  const appService = (resource: string, extra = '') => `${IDENTITY_PATH}?api-version=2019-08-01&resource=${encodeURIComponent(resource)}${extra}`;
  const imds = (resource: string, extra = '') => `${IMDS_TOKEN_PATH}?api-version=2018-02-01&resource=${encodeURIComponent(resource)}${extra}`;

  test('App Service 2019-08-01: exactly the documented fields, a placeholder valid at the gateway', async () => {
    const before = Math.floor(Date.now() / 1000);
    const r = await get(appService('https://management.azure.com'), { 'X-IDENTITY-HEADER': SECRET });
    assert.equal(r.status, 200);
    assert.equal(r.type, 'application/json; charset=utf-8');
    assert.equal(r.cache, 'no-store');
    assert.deepEqual(Object.keys(r.body).sort(), ['access_token', 'client_id', 'expires_on', 'resource', 'token_type']);
    assert.equal(r.body.resource, 'https://management.azure.com');
    assert.equal(r.body.token_type, 'Bearer');
    assert.equal(r.body.client_id, CLAIMS.appid);
    assert.match(r.body.expires_on as string, /^\d+$/);
    assert.ok(Number(r.body.expires_on) >= before + 900);
    assert.deepEqual(tokens.check(r.body.access_token as string), { scope: ARM });
  });

  test('the resource is echoed as asked; az\'s management.core.windows.net gets an ARM placeholder', async () => {
    const r = await get(appService('https://management.core.windows.net/'), { 'x-identity-header': SECRET });
    assert.equal(r.status, 200);
    assert.equal(r.body.resource, 'https://management.core.windows.net/');
    assert.deepEqual(tokens.check(r.body.access_token as string), { scope: ARM });
  });

  test('App Service: a missing or wrong X-IDENTITY-HEADER is 401 in its error shape', async () => {
    for (const headers of [{}, { 'X-IDENTITY-HEADER': SECRET.replace(/.$/, '0') }, { 'X-IDENTITY-HEADER': SECRET + 'x' }, { secret: SECRET }] as Record<string, string>[]) {
      const r = await get(appService('https://management.azure.com'), headers);
      assert.equal(r.status, 401);
      assert.equal(r.body.statusCode, 401);
      assert.match(r.body.message as string, /X-IDENTITY-HEADER/);
      assert.ok(!('access_token' in r.body));
    }
  });

  test('a resource the gateway does not serve: 400 naming what it serves; no resource or two: 400', async () => {
    const vault = await get(appService('https://vault.azure.net'), { 'X-IDENTITY-HEADER': SECRET });
    assert.equal(vault.status, 400);
    assert.match(vault.body.message as string, /only for https:\/\/management\.azure\.com\/\.default; not for "https:\/\/vault\.azure\.net"/);
    const none = await get(`${IDENTITY_PATH}?api-version=2019-08-01`, { 'X-IDENTITY-HEADER': SECRET });
    assert.equal(none.status, 400);
    assert.match(none.body.message as string, /resource/);
    const two = await get(appService('https://management.azure.com', '&resource=https%3A%2F%2Fvault.azure.net'), { 'X-IDENTITY-HEADER': SECRET });
    assert.equal(two.status, 400);
    const graph = await get(imds('https://graph.microsoft.com'), { Metadata: 'true' });
    assert.equal(graph.status, 400);
    assert.equal(graph.body.error, 'invalid_resource');
  });

  test('App Service: an unknown api-version is 400', async () => {
    const r = await get(`${IDENTITY_PATH}?api-version=2099-01-01&resource=https://management.azure.com`, { 'X-IDENTITY-HEADER': SECRET });
    assert.equal(r.status, 400);
    assert.match(r.body.message as string, /api-version/);
  });

  test('App Service 2017-09-01 takes the secret header (msrestazure appends a slash to the endpoint)', async () => {
    const ok = await get(`${IDENTITY_PATH}/?resource=https://management.core.windows.net/&api-version=2017-09-01`, { secret: SECRET });
    assert.equal(ok.status, 200);
    assert.match(ok.body.expires_on as string, /^\d+$/);
    assert.deepEqual(tokens.check(ok.body.access_token as string), { scope: ARM });
    const wrong = await get(`${IDENTITY_PATH}/?resource=https://management.core.windows.net/&api-version=2017-09-01`, { 'X-IDENTITY-HEADER': SECRET });
    assert.equal(wrong.status, 401);
    assert.match(wrong.body.message as string, /secret/);
  });

  test('IMDS: Metadata: true required, X-Forwarded-For refused, the VM answer shape with string numbers', async () => {
    const ok = await get(imds('https://management.azure.com/'), { Metadata: 'true' });
    assert.equal(ok.status, 200);
    assert.deepEqual(Object.keys(ok.body).sort(),
      ['access_token', 'client_id', 'expires_in', 'expires_on', 'ext_expires_in', 'not_before', 'resource', 'token_type']);
    assert.equal(ok.body.expires_in, '900');
    assert.equal(ok.body.resource, 'https://management.azure.com/');
    assert.deepEqual(tokens.check(ok.body.access_token as string), { scope: ARM });
    const bare = await get(imds('https://management.azure.com/'));
    assert.deepEqual([bare.status, bare.body], [400, { error: 'invalid_request', error_description: 'Required metadata header not specified' }]);
    const forwarded = await get(imds('https://management.azure.com/'), { Metadata: 'true', 'X-Forwarded-For': '10.0.0.1' });
    assert.equal(forwarded.status, 400);
    const noVersion = await get(`${IMDS_TOKEN_PATH}?resource=https://management.azure.com/`, { Metadata: 'true' });
    assert.equal(noVersion.status, 400);
    assert.match(noVersion.body.error_description as string, /api-version/);
  });

  test('IMDS: go-azure-sdk\'s x-ms-identity is accepted when right and refused when wrong', async () => {
    assert.equal((await get(imds('https://management.azure.com/'), { Metadata: 'true', 'x-ms-identity': SECRET })).status, 200);
    const wrong = await get(imds('https://management.azure.com/'), { Metadata: 'true', 'x-ms-identity': 'nope' });
    assert.equal(wrong.status, 401);
    assert.ok(!('access_token' in wrong.body));
  });

  test('Cloud Shell style POST: form body with Metadata: true; other bodies refused', async () => {
    const post = (body: string, headers: Record<string, string>) => fetch(base + IDENTITY_PATH, { method: 'POST', body, headers });
    const ok = await post('resource=https%3A%2F%2Fmanagement.core.windows.net%2F', { Metadata: 'true', 'Content-Type': 'application/x-www-form-urlencoded' });
    assert.equal(ok.status, 200);
    const body = await ok.json() as Record<string, string>;
    assert.deepEqual(tokens.check(body.access_token as string), { scope: ARM });
    const noMeta = await post('resource=https%3A%2F%2Fmanagement.azure.com', { 'Content-Type': 'application/x-www-form-urlencoded' });
    assert.equal(noMeta.status, 400);
    const json = await post('{"resource":"https://management.azure.com"}', { Metadata: 'true', 'Content-Type': 'application/json' });
    assert.equal(json.status, 415);
    const huge = await post('resource=' + 'a'.repeat(20000), { Metadata: 'true', 'Content-Type': 'application/x-www-form-urlencoded' });
    assert.equal(huge.status, 413);
  });

  test('user-assigned identities: the gateway\'s own ids pass, any other id or a resource id is refused', async () => {
    const h = { 'X-IDENTITY-HEADER': SECRET };
    assert.equal((await get(appService('https://management.azure.com', `&client_id=${CLAIMS.appid}`), h)).status, 200);
    assert.equal((await get(appService('https://management.azure.com', `&principal_id=${CLAIMS.oid.toUpperCase()}`), h)).status, 200);
    assert.equal((await get(imds('https://management.azure.com', `&object_id=${CLAIMS.oid}`), { Metadata: 'true' })).status, 200);
    for (const extra of ['&client_id=00000000-0000-4000-8000-000000000000', `&object_id=${CLAIMS.appid}`,
      '&mi_res_id=/subscriptions/x/resourceGroups/y/providers/Microsoft.ManagedIdentity/userAssignedIdentities/z',
      `&client_id=${CLAIMS.appid}&client_id=00000000-0000-4000-8000-000000000000`]) {
      const r = await get(appService('https://management.azure.com', extra), h);
      assert.equal(r.status, 400, extra);
      assert.match(r.body.message as string, /Identity not found/);
    }
    const r = await get(`${IDENTITY_PATH}/?resource=https://management.azure.com/&api-version=2017-09-01&clientid=someone-else`, { secret: SECRET });
    assert.equal(r.status, 400);
  });

  test('other paths are not answered; other methods are 405 with Allow', async () => {
    const other = await fetch(base + '/subscriptions?api-version=2022-12-01');
    assert.equal(other.status, 404);
    assert.equal(await other.text(), 'not the identity endpoint');
    const put = await fetch(base + IMDS_TOKEN_PATH, { method: 'PUT', body: 'x', headers: { Metadata: 'true' } });
    assert.equal(put.status, 405);
    assert.equal(put.headers.get('allow'), 'GET');
    const del = await fetch(base + IDENTITY_PATH, { method: 'DELETE' });
    assert.equal(del.headers.get('allow'), 'GET, POST');
  });

  test('a failure inside (claims unavailable) is a 500 answer, and the server keeps serving', async () => {
    claims = () => { throw new Error('not yet known'); };
    try {
      const r = await get(appService('https://management.azure.com'), { 'X-IDENTITY-HEADER': SECRET });
      assert.equal(r.status, 500);
      assert.ok(!JSON.stringify(r.body).includes('not yet known'));
    } finally {
      claims = () => CLAIMS;
    }
    assert.equal((await get(appService('https://management.azure.com'), { 'X-IDENTITY-HEADER': SECRET })).status, 200);
  });
});
