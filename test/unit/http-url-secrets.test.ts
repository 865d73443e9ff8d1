// Secrets in URLs masked before they are recorded (gateway/http/url-secrets.ts), with real
// shapes: Azure Storage SAS URLs, Azure Functions keys, OAuth parameters, userinfo.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isSecretParam, maskQuery, maskUrl } from '../../gateway/http/url-secrets.ts';

// A service SAS as the Azure portal and `az storage blob generate-sas` write it (the signature is made up).
const SAS = 'sp=r&st=2026-11-20T08:00:00Z&se=2026-11-20T16:00:00Z&spr=https&sv=2022-11-02&sr=b&sig=Yq7b%2FkQd0Zr3m9Vx1sPz%2BqF0aLk4tGq3mYw8cN1eHc4%3D';
// A user delegation SAS: skoid/sktid are object and tenant ids, not secrets; sig is.
const USER_DELEGATION = 'sv=2022-11-02&ss=b&srt=sco&sp=rl&se=2026-12-01T00:00:00Z&skoid=0b4c1e2a-3d5f-4a6b-8c7d-9e0f1a2b3c4d&sktid=72f988bf-86f1-41af-91ab-2d7cd011db47&skt=2026-11-30T00:00:00Z&ske=2026-12-01T00:00:00Z&sks=b&skv=2022-11-02&sig=AbCdEf0123456789%2B%2F%3D';

test('SAS signatures are masked; the other SAS fields stay readable', () => {
  assert.equal(maskQuery(SAS), 'sp=r&st=2026-11-20T08:00:00Z&se=2026-11-20T16:00:00Z&spr=https&sv=2022-11-02&sr=b&sig=****');
  const masked = maskQuery(USER_DELEGATION);
  assert.ok(masked.endsWith('&sig=****'));
  assert.ok(masked.includes('skoid=0b4c1e2a-3d5f-4a6b-8c7d-9e0f1a2b3c4d'), 'object ids are not secrets');
  assert.equal(maskUrl(`https://acct.blob.core.windows.net/backups/db.bak?${SAS}`), 'https://acct.blob.core.windows.net/backups/db.bak?sp=r&st=2026-11-20T08:00:00Z&se=2026-11-20T16:00:00Z&spr=https&sv=2022-11-02&sr=b&sig=****');
});

test('function keys, OAuth tokens, client secrets, passwords and api keys are masked by name', () => {
  assert.equal(maskQuery('code=aB3xYz0_Q-Ww==&clientId=default'), 'code=****&clientId=default');
  assert.equal(
    maskQuery('grant_type=refresh_token&refresh_token=0.AXoA&client_id=abc&client_secret=s3cr~et&scope=https%3A%2F%2Fmanagement.azure.com%2F.default'),
    'grant_type=refresh_token&refresh_token=****&client_id=abc&client_secret=****&scope=https%3A%2F%2Fmanagement.azure.com%2F.default',
  );
  for (const name of ['token', 'access_token', 'id_token', 'password', 'secret', 'key', 'apikey', 'api-key', 'api_key', 'API-KEY', 'Sig', 'x-ms-token', 'sharedAccessSignature', 'db_password', 'ClientSecret', 'subscription-key']) {
    assert.equal(maskQuery(`a=1&${name}=v4lue&b=2`), `a=1&${name}=****&b=2`, name);
    assert.ok(isSecretParam(name), name);
  }
  for (const name of ['api-version', '$filter', 'sv', 'se', 'sp', 'skoid', 'clientId', 'keyName']) assert.ok(!isSecretParam(name), name);
});

test('names a server decodes are read decoded; layout is kept byte for byte', () => {
  assert.equal(maskQuery('%73ig=abc'), '%73ig=****');
  assert.equal(maskQuery('access%5Ftoken=abc'), 'access%5Ftoken=****');
  assert.equal(maskQuery('a=1;sig=abc'), 'a=1;sig=****', '; separates parameters for some servers');
  assert.equal(maskQuery('sig=&sig&x=&&y=1'), 'sig=&sig&x=&&y=1', 'nothing to mask');
  assert.equal(maskQuery('token=a=b=c'), 'token=****');
  assert.equal(maskQuery(''), '');
  assert.equal(maskQuery('%zz=1&sig=2'), '%zz=1&sig=****', 'an undecodable name is read as written');
});

test('userinfo passwords, bare userinfo tokens and fragments are masked', () => {
  assert.equal(maskUrl('https://deploy:hunter2@api.internal.example/v1?x=1'), 'https://deploy:****@api.internal.example/v1?x=1');
  assert.equal(maskUrl('https://ghp_abcdef123456@github.com/o/r.git'), 'https://****@github.com/o/r.git');
  assert.equal(maskUrl('https://app.example/cb#access_token=eyJ0&token_type=Bearer'), 'https://app.example/cb#****');
  assert.equal(maskUrl('https://management.azure.com/subscriptions?api-version=2022-12-01'), 'https://management.azure.com/subscriptions?api-version=2022-12-01');
  assert.equal(maskUrl('/relative/path?sig=x'), '/relative/path?sig=****');
  assert.equal(maskUrl('https://h/a@b?c=1'), 'https://h/a@b?c=1', 'an @ in the path is no userinfo');
});
