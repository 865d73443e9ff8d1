import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { DETECTOR_NAMES, type DetectorName } from '../../gateway/masking/detectors.ts';
import { Masker } from '../../gateway/masking/engine.ts';
import { HELD_BACK_MASK, idleFlush, type MaskedChunk, type StreamMasker } from '../../gateway/masking/stream-masker.ts';

const b64url = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
const JWT_SIGNED = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub: 'deployer', iat: 1700000000 })}`;
const JWT = `${JWT_SIGNED}.${createHmac('sha256', 'k').update(JWT_SIGNED).digest('base64url')}`;
const STORAGE_KEY = randomBytes(64).toString('base64');
const PEM_BODY = (randomBytes(300).toString('base64').match(/.{1,64}/g) ?? []).join('\n');
const PEM = `-----BEGIN RSA PRIVATE KEY-----\n${PEM_BODY}\n-----END RSA PRIVATE KEY-----`;
const GHP = `ghp_${'aB3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gI3kM5'}`;
const GH_PAT = `github_pat_11ABCDEFG0123456789abc_${'x'.repeat(59)}`;
const SAS = 'sv=2022-11-02&ss=b&srt=co&sp=rl&se=2030-01-01T00:00:00Z&st=2024-01-01T00:00:00Z&spr=https&sig=q5sd%2BzJ0aB3cD4eF5gH6iJ7kL8mN9oP0qR1sT2uV3w%3D';

const rules = (detectors: DetectorName[]) => ({ columns: [], detectors, applyTo: { client: true, log: true } });
const all = new Masker(rules([...DETECTOR_NAMES]));

/** Terminal and program output with every detector's secrets, multi-byte UTF-8 around them. */
const SAMPLES: string[] = [
  `$ echo $TOKEN\r\n${GHP}\r\n$ `,
  `Authorization: Bearer ${JWT}\nnext line`,
  `key:\n${PEM}\nüber ✓ done\n`,
  `truncated ${PEM.slice(0, 200)}`,
  `contact: Bob+ci@mail.example.co.uk, thanks — 日本語 alice@example.com.`,
  `card 4111 1111 1111 1111 expires 12/29; amex 3782 822463 10005. order 1234567812345678`,
  `pay GB82 WEST 1234 5698 7654 32 or DE89 3704 0044 0532 0130 00 EUR now`,
  `AZURE_STORAGE_KEY=${STORAGE_KEY}\nDefaultEndpointsProtocol=https;AccountName=a;AccountKey=c2VjcmV0;EndpointSuffix=x`,
  `GET https://acct.blob.core.windows.net/c/b.txt?${SAS} 200\n`,
  `db: postgresql://user:s3cr3t@db.internal:5432/app mongodb+srv://admin:p@ss:w0rd@cluster0.mongodb.net/test`,
  `Server=tcp:db,1433;User ID=sa;Password=Pa55w0rd!;Encrypt=true\nPGPASSWORD=x PASSWORD=Hunter2 pwd = 'two words' ok`,
  `password=\n  hunter2 and AccountKey =\n\n  abc+def= end`,
  `fine-grained ${GH_PAT} 😀 and \u001b[32mgreen\u001b[0m ${GHP}`,
  `{"token":"${GHP}","key":"-----BEGIN PRIVATE KEY-----\\n${PEM_BODY.slice(0, 120).replace(/\n/g, '\\n')}\\n-----END PRIVATE KEY-----","url":"https:\\/\\/u:pw@h\\/x"}`,
  `Order 4711 shipped to warehouse B on 2024-01-15 at 10:30, status=ok, total 129.95 EUR (ref A-42)\n`,
];

function run(stream: StreamMasker, bytes: Buffer, cuts: number[]): { bytes: Buffer; detectors: Set<string>; values: number } {
  const parts: Buffer[] = [];
  const detectors = new Set<string>();
  let values = 0;
  const take = (r: MaskedChunk): void => {
    parts.push(r.bytes);
    for (const d of r.detectors) detectors.add(d);
    values += r.values;
  };
  let at = 0;
  for (const c of [...cuts, bytes.length]) {
    take(stream.push(bytes.subarray(at, c)));
    at = c;
  }
  take(stream.flush());
  return { bytes: Buffer.concat(parts), detectors, values };
}

/** Every single cut, two random cuts (several times) and one byte at a time. */
function* cutSets(length: number, rnd: () => number): Generator<number[]> {
  for (let i = 0; i <= length; i++) yield [i];
  for (let k = 0; k < 20; k++) {
    const a = Math.floor(rnd() * (length + 1));
    const b = Math.floor(rnd() * (length + 1));
    yield [Math.min(a, b), Math.max(a, b)];
  }
  yield Array.from({ length }, (_, i) => i);
}

function seeded(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
}

test('a stream cut anywhere is masked exactly as the whole text', () => {
  const rnd = seeded(7);
  for (const sample of SAMPLES) {
    const whole = all.maskText(sample);
    const expected = Buffer.from(whole?.text ?? sample);
    const bytes = Buffer.from(sample);
    for (const cuts of cutSets(bytes.length, rnd)) {
      const r = run(all.stream(), bytes, cuts);
      assert.ok(r.bytes.equals(expected), `cuts ${cuts.slice(0, 3)}: ${JSON.stringify(r.bytes.toString())}\nwant ${JSON.stringify(expected.toString())}`);
      assert.deepEqual(r.detectors, new Set(whole?.detectors ?? []), `detectors at cuts ${cuts.slice(0, 3)}`);
    }
  }
  // Each sample really holds what it is meant to: the masking above is not vacuous.
  const fired = new Set(SAMPLES.flatMap((s) => all.maskText(s)?.detectors ?? []));
  assert.deepEqual(fired, new Set(DETECTOR_NAMES));
});

test('random texts built from secrets, their pieces and separators: every cut, with each detector alone', () => {
  const b64 = STORAGE_KEY;
  const pieces = [' ', ' ', '\n', '\r\n', '\t', 'x', 'A', '4111', ' 1111', '-', '.', ',', ';', '=', ':', '//', '\\/', '@', "'", '"', '{',
    '}', '&', '?', 'sig=', 'sv=2020', 'password', 'pwd', 'AccountKey', 'https', '://', 'u:p', 'ex.com', 'alice', 'GB82', ' WEST', ' 1234',
    'DE89370400440532013000', '4111111111111111', JWT, GHP, 'ghp_', 'eyJ', b64, '==', '-----BEGIN ', 'RSA ', 'PRIVATE KEY', '-----',
    '-----END ', 'MIIE', '\\n', 'é', '😀', '\u00a0', '\u2028', '\u001b[0m', '%2B', 'github_pat_', 'x'.repeat(30), '[masked', '\\', '/',
    'password=hunter2', "pwd = 'a b'", 'https://u:p@h.com/x', 'x://a:b@c@d', '?sv=2020&sig=abc%2B', 'alice@ex.com',
    '-----BEGIN PRIVATE KEY-----\nMIIEabc\n', '-----END PRIVATE KEY-----', 'AccountKey=abc', '= \n x', '5500-0000-0000-0004',
    '4111 1111 1111 1111', 'GB82 WEST 1234 5698 7654 32', 'pwd\n', `ghp_${'Z'.repeat(36)}`];
  const maskers = [all, ...DETECTOR_NAMES.map((d) => new Masker(rules([d])))];
  const rnd = seeded(42);
  let found = 0;
  for (let t = 0; t < 400; t++) {
    let text = '';
    for (let k = 2 + Math.floor(rnd() * 12); k > 0; k--) text += pieces[Math.floor(rnd() * pieces.length)];
    const masker = t % 2 ? all : maskers[Math.floor(rnd() * maskers.length)]!;
    const whole = masker.maskText(text);
    if (whole) found++;
    const expected = Buffer.from(whole?.text ?? text);
    const bytes = Buffer.from(text);
    for (const cuts of cutSets(bytes.length, rnd)) {
      const r = run(masker.stream(), bytes, cuts);
      assert.ok(r.bytes.equals(expected), `${JSON.stringify(text)} cut at ${cuts.slice(0, 3)} with ${masker.detectorList.map((d) => d.name)}:\n${JSON.stringify(r.bytes.toString())}\nwant ${JSON.stringify(expected.toString())}`);
    }
  }
  assert.ok(found > 60, `only ${found} texts had a finding`);
});

test('bytes that are not UTF-8 pass unchanged, cut anywhere, and secrets between them are masked', () => {
  const text = Buffer.concat([
    Buffer.from([0xff, 0xfe, 0x00, 0x80]), Buffer.from(` ${GHP} `), Buffer.from([0xc3]), Buffer.from(' é '),
    Buffer.from([0xe2, 0x82]), Buffer.from('x alice@example.com '), Buffer.from([0xf0, 0x9f, 0x98]), Buffer.from(' \u00a0end'), Buffer.from([0xed, 0xa0, 0x80, 0xc0, 0xaf]),
  ]);
  const expected = Buffer.from(text.toString('latin1').replace(GHP, '[masked:github-token]').replace('alice@example.com', 'a***@***.com'), 'latin1');
  for (const cuts of cutSets(text.length, seeded(3))) {
    const r = run(all.stream(), text, cuts);
    assert.ok(r.bytes.equals(expected), `cuts ${cuts.slice(0, 3)}: ${r.bytes.toString('hex')}`);
  }
  const binary = randomBytes(20000);
  const r = run(new Masker(rules(['github-token'])).stream(), binary, [1, 4097, 9999]);
  assert.ok(r.bytes.equals(binary));
});

test('only a tail that could still be a secret is held back; the rest is released at once', () => {
  const s = all.stream();
  assert.equal(s.push(Buffer.from('ls -la\r\ntotal 8\r\n')).bytes.toString(), 'ls -la\r\ntotal 8\r\n');
  assert.equal(s.pending, 0);
  // A word could begin a secret (an email, a token): held until a separator follows.
  assert.equal(s.push(Buffer.from('drwx 2 root ')).bytes.toString(), 'drwx 2 root ');
  assert.equal(s.push(Buffer.from('rea')).bytes.toString(), '');
  assert.equal(s.pending, 3);
  assert.equal(s.push(Buffer.from('dme.md\r\ntoken ghp_aB3d')).bytes.toString(), 'readme.md\r\ntoken ');
  assert.equal(s.push(Buffer.from('E5gH7jK9mN1pQ3sT5vX7zA9cE1gI3kM5\r\n')).bytes.toString(), '[masked:github-token]\r\n');
  // A PEM block stays held from its header to its END line, whatever the chunks.
  assert.equal(s.push(Buffer.from(`${PEM.slice(0, 100)}`)).bytes.toString(), '');
  assert.equal(s.push(Buffer.from(`${PEM.slice(100)}\n$ `)).bytes.toString(), '[masked:private-key]\n$ ');
  // A UTF-8 character cut in two is held until complete.
  const e = Buffer.from('é');
  assert.equal(s.push(e.subarray(0, 1)).bytes.length, 0);
  assert.equal(s.pending, 1);
  assert.equal(s.push(Buffer.concat([e.subarray(1), Buffer.from(' ')])).bytes.toString(), 'é ');
  assert.equal(s.flush().bytes.length, 0);
});

test('an idle flush releases a held word, but not what already looks like a secret', () => {
  const s = all.stream();
  assert.equal(s.push(Buffer.from('$ ec')).bytes.toString(), '$ ');
  assert.equal(s.flushIdle().bytes.toString(), 'ec');
  assert.equal(s.pending, 0);
  for (const start of ['ghp_aB3dE5', 'eyJhbGciOi', '-----BEGIN PRIVATE KEY-----\nMIIE', 'Password=', 'alice@exam', 'https://user:pa']) {
    const t = all.stream();
    t.push(Buffer.from(`x ${start}`));
    assert.equal(t.flushIdle().bytes.length, 0, start);
    assert.ok(t.pending > 0, start);
  }
  // The held secret is released masked when the text decides it.
  const t = all.stream();
  assert.equal(t.push(Buffer.from('x ghp_aB3dE5')).bytes.toString(), 'x ');
  assert.equal(t.flushIdle().bytes.length, 0);
  assert.equal(t.push(Buffer.from('gH7jK9mN1pQ3sT5vX7zA9cE1gI3kM5\n')).bytes.toString(), '[masked:github-token]\n');
});

test('idleFlush writes what a push releases and, once input pauses, the held tail', { timeout: 10000 }, async () => {
  const writes: string[] = [];
  let wrote: () => void = () => {};
  const live = idleFlush(all.stream(), 5, (r) => {
    writes.push(r.bytes.toString());
    wrote();
  });
  const next = (): Promise<void> => new Promise((resolve) => {
    wrote = resolve;
  });
  let w = next();
  live.push(Buffer.from('$ l'));
  await w;
  w = next();
  await w; // the idle flush of 'l'
  assert.deepEqual(writes, ['$ ', 'l']);
  live.push(Buffer.from(`s ${GHP}`));
  live.end();
  assert.deepEqual(writes, ['$ ', 'l', 's ', '[masked:github-token]']);
});

test('past the hold-back cap the held text is replaced by one mark and never released', () => {
  const body = randomBytes(6000).toString('base64').match(/.{1,64}/g)!.join('\n');
  const pem = `-----BEGIN PRIVATE KEY-----\n${body}\n-----END PRIVATE KEY-----\nafter\n`;
  for (const chunk of [1000, 4096]) {
    const r = run(all.stream({ maxHold: 2048 }), Buffer.from(`before ${pem}`), Array.from({ length: Math.floor(pem.length / chunk) }, (_, i) => (i + 1) * chunk));
    // Dropped up to the first place a cut is safe again: the newline after the END line.
    assert.equal(r.bytes.toString(), `before ${HELD_BACK_MASK}\nafter\n`);
    assert.equal(r.values, 1);
  }
  // A run with no place to cut at all (one long word) is dropped up to where it ends.
  const word = 'a'.repeat(5000);
  const r = run(all.stream({ maxHold: 2048 }), Buffer.from(`x ${word} y`), [100, 2500, 4000]);
  assert.equal(r.bytes.toString(), `x ${HELD_BACK_MASK} y`);
  // Within the cap nothing changes.
  const ok = run(all.stream({ maxHold: 2048 }), Buffer.from(`x ${'a'.repeat(1500)} y`), [100, 900]);
  assert.equal(ok.bytes.toString(), `x ${'a'.repeat(1500)} y`);
});

test('JSON \\u escapes are decoded in the stretch where a secret is, and only there; cut anywhere', () => {
  const text = `a\\u0040b.example.com then far \\u0041way {"t":"\\u0067hp_${GHP.slice(4)}"}\n`;
  const expected = 'a***@***.com then far \\u0041way {"t":"[masked:github-token]"}\n';
  const bytes = Buffer.from(text);
  for (const cuts of cutSets(bytes.length, seeded(9))) {
    const r = run(all.stream(), bytes, cuts);
    assert.equal(r.bytes.toString(), expected, `cuts ${cuts.slice(0, 3)}`);
  }
});

test('without detectors a stream is passed as it comes', () => {
  const none = new Masker({ columns: ['email'], detectors: [], applyTo: { client: true, log: true } });
  const s = none.stream();
  const chunk = Buffer.from(`alice@example.com ${GHP}`);
  assert.equal(s.push(chunk).bytes, chunk);
  assert.equal(s.flush().bytes.length, 0);
});
