import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { DETECTOR_NAMES, DETECTORS, type DetectorName } from '../../gateway/masking/detectors.ts';
import { Masker } from '../../gateway/masking/engine.ts';

const b64url = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
const JWT_SIGNED = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub: 'deployer', iat: 1700000000 })}`;
const JWT = `${JWT_SIGNED}.${createHmac('sha256', 'k').update(JWT_SIGNED).digest('base64url')}`;
// 64 random bytes: an Azure storage account key has exactly this shape (88 chars, `==`).
const STORAGE_KEY = randomBytes(64).toString('base64');
const PEM_BODY = (randomBytes(300).toString('base64').match(/.{1,64}/g) ?? []).join('\n');
const GHP = `ghp_${'aB3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gI3kM5'}`;
const GH_PAT = `github_pat_11ABCDEFG0123456789abc_${'x'.repeat(59)}`;
const SAS = 'sv=2022-11-02&ss=b&srt=co&sp=rl&se=2030-01-01T00:00:00Z&st=2024-01-01T00:00:00Z&spr=https&sig=q5sd%2BzJ0aB3cD4eF5gH6iJ7kL8mN9oP0qR1sT2uV3w%3D';

/** [detector, input, expected masked output] */
const POSITIVES: [DetectorName, string, string][] = [
  ['email', 'alice.smith@example.com', 'a***@***.com'],
  ['email', 'contact: Bob+ci@mail.example.co.uk, thanks', 'contact: B***@***.uk, thanks'],
  ['email', 'mailto:ops@corp.io', 'mailto:o***@***.io'],
  ['credit-card', '4111 1111 1111 1111', '****1111'],
  ['credit-card', 'card 5500-0000-0000-0004 expires 12/29', 'card ****0004 expires 12/29'],
  ['credit-card', '4111111111111111', '****1111'],
  ['credit-card', 'amex 3782 822463 10005.', 'amex ****0005.'],
  ['iban', 'GB82 WEST 1234 5698 7654 32', 'GB****5432'],
  ['iban', 'pay DE89370400440532013000 now', 'pay DE****3000 now'],
  ['iban', 'DE89 3704 0044 0532 0130 00 EUR', 'DE****3000 EUR'],
  ['jwt', JWT, '[masked:jwt]'],
  ['jwt', `Authorization: Bearer ${JWT}`, 'Authorization: Bearer [masked:jwt]'],
  ['azure-storage-key', STORAGE_KEY, '[masked:azure-storage-key]'],
  ['azure-storage-key', `AZURE_STORAGE_KEY=${STORAGE_KEY}`, 'AZURE_STORAGE_KEY=[masked:azure-storage-key]'],
  ['azure-storage-key', 'DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=c2VjcmV0;EndpointSuffix=core.windows.net',
    'DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=[masked:azure-storage-key];EndpointSuffix=core.windows.net'],
  ['azure-storage-key', 'accountkey = abc123', 'accountkey = [masked:azure-storage-key]'],
  ['azure-sas-token', `https://acct.blob.core.windows.net/c/b.txt?${SAS}`,
    `https://acct.blob.core.windows.net/c/b.txt?${SAS.replace(/sig=.*$/, 'sig=[masked:azure-sas-token]')}`],
  ['azure-sas-token', `${SAS}&foo=1`, `${SAS.replace(/sig=.*$/, 'sig=[masked:azure-sas-token]')}&foo=1`],
  ['azure-sas-token', `BlobEndpoint=https://a.blob.core.windows.net/;SharedAccessSignature=${SAS}`,
    `BlobEndpoint=https://a.blob.core.windows.net/;SharedAccessSignature=${SAS.replace(/sig=.*$/, 'sig=[masked:azure-sas-token]')}`],
  ['connection-string', 'postgresql://user:s3cr3t@db.internal:5432/app', 'postgresql://user:[masked]@db.internal:5432/app'],
  ['connection-string', 'mongodb+srv://admin:p@ss:w0rd@cluster0.mongodb.net/test', 'mongodb+srv://admin:[masked]@cluster0.mongodb.net/test'],
  ['connection-string', 'redis://:hunter2@cache:6379/0', 'redis://:[masked]@cache:6379/0'],
  ['connection-string', 'git clone https://x-access-token:abc123@github.com/o/r.git', 'git clone https://x-access-token:[masked]@github.com/o/r.git'],
  ['connection-string', 'Server=tcp:db,1433;User ID=sa;Password=Pa55w0rd!;Encrypt=true', 'Server=tcp:db,1433;User ID=sa;Password=[masked];Encrypt=true'],
  ['connection-string', 'PGPASSWORD=x PASSWORD=Hunter2', 'PGPASSWORD=x PASSWORD=[masked]'],
  ['connection-string', "host=db user=app pwd = 'two words' sslmode=require", "host=db user=app pwd = '[masked]' sslmode=require"],
  ['connection-string', 'Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey=abc+def=',
    'Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey=[masked]'],
  ['private-key', `-----BEGIN RSA PRIVATE KEY-----\n${PEM_BODY}\n-----END RSA PRIVATE KEY-----\n`, '[masked:private-key]\n'],
  ['private-key', `key: -----BEGIN OPENSSH PRIVATE KEY-----\n${PEM_BODY}\n-----END OPENSSH PRIVATE KEY----- done`, 'key: [masked:private-key] done'],
  ['private-key', `-----BEGIN PRIVATE KEY-----\n${PEM_BODY.slice(0, 100)}`, '[masked:private-key]'],
  ['github-token', `token ${GHP}`, 'token [masked:github-token]'],
  ['github-token', `gho_${'Z'.repeat(36)}`, '[masked:github-token]'],
  ['github-token', GH_PAT, '[masked:github-token]'],
];

const NEGATIVES: [DetectorName, string][] = [
  ['email', 'postgresql://app@db.internal/app'],
  ['email', 'user@localhost'],
  ['email', 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq3 deploy@ci'],
  ['credit-card', '4111 1111 1111 1112'],
  ['credit-card', 'order 1234567812345678'],
  ['credit-card', '41111111111111110000'],
  ['credit-card', 'x = 0.4111111111111111'],
  ['credit-card', '2024-01-15 10:30:00'],
  ['credit-card', 'deadbeef4111111111111111cafe'],
  ['iban', 'GB82 WEST 1234 5698 7654 33'],
  ['iban', 'DE89370400440532013001'],
  ['jwt', 'eyJustAWordThatIsLong.notatoken.really'],
  ['jwt', 'eyJ'],
  ['azure-storage-key', 'c2hvcnQgYmFzZTY0IHN0cmluZw=='],
  ['azure-storage-key', `sha512-${STORAGE_KEY}`],
  ['azure-storage-key', `ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ${randomBytes(256).toString('base64').replace(/=+$/, '')} ci@runner`],
  ['azure-sas-token', 'https://example.com/?sig=abc&x=1'],
  ['connection-string', 'https://github.com/org/repo'],
  ['connection-string', 'postgresql://app@db.internal:5432/app'],
  ['connection-string', 'redis://cache:6379/0'],
  ['connection-string', 'the password field is required'],
  ['private-key', '-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkq\n-----END PUBLIC KEY-----'],
  ['private-key', '-----BEGIN CERTIFICATE-----\nMIIBIjANBgkq\n-----END CERTIFICATE-----'],
  ['github-token', 'ghp_tooShort123'],
  ['github-token', `xghp_${'a'.repeat(36)}`],
];

const FORBIDDEN = /["\\,{}\s]/;
const all = new Masker({ columns: [], detectors: [...DETECTOR_NAMES], applyTo: { client: true, log: true } });

test('every detector masks its positives exactly', () => {
  for (const name of DETECTOR_NAMES) assert.ok(POSITIVES.some(([n]) => n === name), `no positive for ${name}`);
  for (const [name, input, expected] of POSITIVES) {
    assert.equal(DETECTORS[name].mask(input), expected, `${name}: ${input}`);
    const one = new Masker({ columns: [], detectors: [name], applyTo: { client: true, log: true } });
    assert.deepEqual(one.maskText(input), { text: expected, detectors: [name] }, `${name} via Masker: ${input}`);
  }
});

test('every detector leaves its negatives alone', () => {
  for (const [name, input] of NEGATIVES) {
    assert.equal(DETECTORS[name].mask(input), null, `${name}: ${input}`);
    const one = new Masker({ columns: [], detectors: [name], applyTo: { client: true, log: true } });
    assert.equal(one.maskText(input), null, `${name} via Masker: ${input}`);
  }
});

test('replacements add no JSON or array-literal syntax and keep documents valid', () => {
  for (const [name, input] of POSITIVES) {
    const out = DETECTORS[name].mask(input)!;
    // Whatever was removed, what was put in its place holds no structural character.
    for (const piece of out.match(/\[masked[^\]]*\]|\*{3,4}[^\s,.]*/g) ?? []) assert.doesNotMatch(piece, FORBIDDEN, piece);
  }
  const doc = {
    url: 'postgresql://user:s3cr3t@db/app', cards: ['4111 1111 1111 1111', '5500-0000-0000-0004'],
    key: `-----BEGIN RSA PRIVATE KEY-----\n${PEM_BODY}\n-----END RSA PRIVATE KEY-----`, truncated: `-----BEGIN PRIVATE KEY-----\n${PEM_BODY.slice(0, 80)}`,
    who: 'alice.smith@example.com', jwt: JWT, sas: SAS, gh: GHP, iban: 'DE89370400440532013000', storage: STORAGE_KEY,
  };
  const masked = all.maskText(JSON.stringify(doc));
  assert.ok(masked);
  const back = JSON.parse(masked.text) as typeof doc;
  assert.equal(back.url, 'postgresql://user:[masked]@db/app');
  assert.deepEqual(back.cards, ['****1111', '****0004']);
  assert.equal(back.key, '[masked:private-key]');
  assert.equal(back.truncated, '[masked:private-key]');
  assert.equal(back.who, 'a***@***.com');
  assert.equal(back.jwt, '[masked:jwt]');
  assert.equal(back.storage, '[masked:azure-storage-key]');
  assert.deepEqual(new Set(masked.detectors), new Set(DETECTOR_NAMES));
  // A PostgreSQL array literal keeps its element count.
  const arr = all.maskText(`{alice@example.com,4111111111111111,${GHP},"4111 1111 1111 1111"}`);
  assert.equal(arr?.text, '{a***@***.com,****1111,[masked:github-token],"****1111"}');
});

test('maskText returns null on ordinary text and without detectors', () => {
  const plain = 'Order 4711 shipped to warehouse B on 2024-01-15 at 10:30, status=ok, total 129.95 EUR (ref A-42)';
  assert.ok(plain.length >= 90);
  assert.equal(all.maskText(plain), null);
  for (let i = 0; i < 1000; i++) assert.equal(all.maskText(plain), null);
  const none = new Masker({ columns: ['email'], detectors: [], applyTo: { client: true, log: false } });
  assert.equal(none.maskText('alice@example.com'), null);
  assert.equal(none.enabled, true);
  assert.equal(none.detects, false);
  assert.equal(all.detects, true);
  assert.equal(new Masker({ columns: [], detectors: [], applyTo: { client: true, log: true } }).enabled, false);
  // Masking twice changes nothing more and reports nothing.
  const once = all.maskText('postgresql://u:pw@h/db Password=x AccountKey=abc')!;
  assert.equal(all.maskText(once.text), null);
});

test('column patterns: bare, qualified, schema-qualified, glob, case, quotes', () => {
  const m = new Masker({ columns: ['email', 'ssn', 'customers.phone', '*.card_number', 'billing.invoices.note', '"Secret"'], detectors: [], applyTo: { client: true, log: true } });
  assert.equal(m.columnMasked('email', 'public.users'), true);
  assert.equal(m.columnMasked('EMAIL', null), true);
  assert.equal(m.columnMasked('Email', 'crm.contacts'), true);
  assert.equal(m.columnMasked('email_verified', 'public.users'), false);
  assert.equal(m.columnMasked('phone', 'public.customers'), true);
  assert.equal(m.columnMasked('phone', 'sales.Customers'), true);
  assert.equal(m.columnMasked('phone', 'customers'), true);
  assert.equal(m.columnMasked('phone', 'public.suppliers'), false);
  assert.equal(m.columnMasked('phone', null), false);
  assert.equal(m.columnMasked('card_number', 'public.payments'), true);
  assert.equal(m.columnMasked('card_number', null), false);
  assert.equal(m.columnMasked('note', 'billing.invoices'), true);
  assert.equal(m.columnMasked('note', 'public.invoices'), false);
  assert.equal(m.columnMasked('note', 'invoices'), true, 'an unknown schema over-masks');
  assert.equal(m.columnMasked('Secret', null), true);
  assert.equal(m.columnMasked('secret', null), false, 'quoted names are exact');

  assert.equal(m.columnNeedsTable('phone'), true);
  assert.equal(m.columnNeedsTable('CARD_NUMBER'), true);
  assert.equal(m.columnNeedsTable('note'), true);
  assert.equal(m.columnNeedsTable('email'), false);
  assert.equal(m.columnNeedsTable('id'), false);

  const g = new Masker({ columns: ['pii_*', 'audit.*.ip*'], detectors: [], applyTo: { client: true, log: true } });
  assert.equal(g.columnMasked('PII_name', null), true);
  assert.equal(g.columnMasked('ip_addr', 'audit.logins'), true);
  assert.equal(g.columnMasked('ip_addr', 'public.logins'), false);
  assert.equal(g.columnMasked('xpii_name', null), false);
  assert.throws(() => new Masker({ columns: ['a.b.c.d'], detectors: [], applyTo: { client: true, log: true } }));
  assert.throws(() => new Masker({ columns: ['a..b'], detectors: [], applyTo: { client: true, log: true } }));
});

test('whole values keep only a shape hint', () => {
  const m = new Masker({ columns: ['x'], detectors: [], applyTo: { client: true, log: true } });
  assert.equal(m.maskWholeValue('alice.smith@example.com'), 'a***@***.com');
  assert.equal(m.maskWholeValue('123-45-6789'), '****6789');
  assert.equal(m.maskWholeValue('+1 (555) 010-9999'), '****9999');
  assert.equal(m.maskWholeValue('1234567'), '****');
  assert.equal(m.maskWholeValue('Jane Doe'), '****');
  assert.equal(m.maskWholeValue(''), '****');
  assert.equal(m.maskWholeValue('"x"@example.com'), '****@***.com');
  for (const v of ['alice.smith@example.com', '4111 1111 1111 1111', 'a, {b} "c"', 'x']) {
    const out = m.maskWholeValue(v);
    assert.notEqual(out, v);
    assert.doesNotMatch(out, FORBIDDEN);
  }
});
