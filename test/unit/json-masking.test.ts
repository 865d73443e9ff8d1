import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { DETECTOR_NAMES } from '../../gateway/masking/detectors.ts';
import { Masker } from '../../gateway/masking/engine.ts';
import { MAX_DEPTH, NOT_JSON_MASK, type JsonMasker } from '../../gateway/masking/json-masker.ts';
import { jsonPathProblem } from '../../gateway/masking/json-path.ts';

const all = new Masker({ columns: [], detectors: [...DETECTOR_NAMES], applyTo: { client: true, log: true } });
const GHP = `ghp_${'aB3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gI3kM5'}`;
// A PEM key as PHP and others write it in JSON: newlines and slashes escaped.
const PEM_BODY = randomBytes(200).toString('base64');
const PEM_JSON = `-----BEGIN PRIVATE KEY-----\\n${PEM_BODY.replace(/\//g, '\\/').match(/.{1,64}/g)!.join('\\n')}\\n-----END PRIVATE KEY-----`;
const PATHS = ['$..primaryKey', '$..keys[*].value', '$.items[0].x', "$['odd name']"];

function run(masker: JsonMasker, bytes: Buffer, cuts: number[]): { text: string; values: number; detectors: Set<string> } {
  const parts: Buffer[] = [];
  let values = 0;
  const detectors = new Set<string>();
  let at = 0;
  for (const c of [...cuts, bytes.length]) {
    const r = masker.push(bytes.subarray(at, c));
    parts.push(r.bytes);
    values += r.values;
    r.detectors.forEach((d) => detectors.add(d));
    at = c;
  }
  const r = masker.flush();
  parts.push(r.bytes);
  values += r.values;
  r.detectors.forEach((d) => detectors.add(d));
  return { text: Buffer.concat(parts).toString(), values, detectors };
}

function* cutSets(length: number): Generator<number[]> {
  for (let i = 0; i <= length; i++) yield [i];
  let s = length;
  const rnd = (): number => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s % (length + 1);
  };
  for (let k = 0; k < 20; k++) {
    const a = rnd();
    const b = rnd();
    yield [Math.min(a, b), Math.max(a, b)];
  }
  yield Array.from({ length }, (_, i) => i);
}

/** Masks `input` whole, then cut at every byte (and at random pairs, and byte by byte), and
 * checks every way gives the same. */
function maskEveryWay(input: string, paths = PATHS, masker = all, options = {}): { text: string; values: number; detectors: Set<string>; error: string | null } {
  const bytes = Buffer.from(input);
  const m = masker.json(paths, options);
  const whole = { ...run(m, bytes, []), error: m.error };
  for (const cuts of cutSets(bytes.length)) {
    const again = masker.json(paths, options);
    const r = run(again, bytes, cuts);
    assert.equal(r.text, whole.text, `cut at ${cuts.slice(0, 3)}`);
    assert.equal(r.values, whole.values, `values, cut at ${cuts.slice(0, 3)}`);
    assert.deepEqual(r.detectors, whole.detectors);
    assert.equal(again.error, whole.error);
  }
  return whole;
}

test('fields by path are masked whole, every string and key by detectors; every other byte kept', () => {
  const input = `{ "name" : "x\\u00e9",\t"primaryKey": "c2VjcmV0IGtleQ==", "n": 12345678901, "odd name": "o",
  "keys": [ {"value": "k1", "other": "ok"}, {"value": {"deep": [1, "a", {"b": null}]}}, {"value": 12345678} ],
  "items": [{"x": 1}, {"x": 2}], "t": "\\u0067hp_${GHP.slice(4)}", "u": "https:\\/\\/u:pw@h\\/x", "e": "alice@example.com",
  "pem": "${PEM_JSON}", "card": 4111111111111111, "${GHP}": 1,
  "nested": {"primaryKey": [true, null], "deeper": {"primaryKey": false}}, "lit": [true, false, null, -0.5e+3, ""] }`;
  const r = maskEveryWay(input);
  assert.equal(r.error, null);
  assert.equal(r.text, `{ "name" : "x\\u00e9",\t"primaryKey": "****", "n": 12345678901, "odd name": "****",
  "keys": [ {"value": "****", "other": "ok"}, {"value": "****"}, {"value": "****5678"} ],
  "items": [{"x": "****"}, {"x": 2}], "t": "[masked:github-token]", "u": "https://u:[masked]@h/x", "e": "a***@***.com",
  "pem": "[masked:private-key]", "card": "****1111", "[masked:github-token]": 1,
  "nested": {"primaryKey": "****", "deeper": {"primaryKey": "****"}}, "lit": [true, false, null, -0.5e+3, ""] }`);
  assert.equal(r.values, 8);
  assert.deepEqual(r.detectors, new Set(['github-token', 'connection-string', 'email', 'private-key', 'credit-card']));
  JSON.parse(r.text);
});

test('a document with nothing to mask comes out byte for byte', () => {
  const input = '\ufeff  {"a":[1,2.5e-3,{"b":"\\"q\\" \\\\ \\/ \\n \\u00e9 日本 😀"}],"c" :\r\n null , "d":{}, "e":[]}\n';
  const r = maskEveryWay(input, ['$..nothing']);
  assert.equal(r.text, input);
  assert.equal(r.values, 0);
});

test('several documents one after another (JSON Lines, watch streams) are each masked', () => {
  const input = '{"type":"ADDED","object":{"primaryKey":"a"}}\n{"type":"MODIFIED","object":{"primaryKey":"b"}}\n[1] 2 "s" {"primaryKey":3}';
  const r = maskEveryWay(input);
  assert.equal(r.text, '{"type":"ADDED","object":{"primaryKey":"****"}}\n{"type":"MODIFIED","object":{"primaryKey":"****"}}\n[1] 2 "s" {"primaryKey":"****"}');
  assert.equal(r.error, null);
});

test('$ masks a whole document; paths select names, indexes and any member', () => {
  assert.equal(maskEveryWay('{"a":[1,2]} 7', ['$']).text, '"****" "****"');
  assert.equal(maskEveryWay('{"a":{"b":{"c":1}},"x":{"b":{"c":2}}}', ['$.a.b.c']).text, '{"a":{"b":{"c":"****"}},"x":{"b":{"c":2}}}');
  assert.equal(maskEveryWay('{"a":[{"c":1},{"c":2}],"c":3}', ['$.a[1].c']).text, '{"a":[{"c":1},{"c":"****"}],"c":3}');
  assert.equal(maskEveryWay('{"a":{"p":1,"q":[5]},"b":2}', ['$.a.*']).text, '{"a":{"p":"****","q":"****"},"b":2}');
  assert.equal(maskEveryWay('[[1,2],[3,[4]]]', ['$..[1]']).text, '[[1,"****"],"****"]');
  assert.equal(maskEveryWay('{"a":{"b":1},"c":[{"b":2}]}', ['$..*']).text, '{"a":"****","c":"****"}');
});

test('paths outside the subset are refused with a reason', () => {
  for (const ok of PATHS.concat(['$', '$.a', '$..a', '$[*]', '$..[0]', '$.a.*', '$["x y"]'])) assert.equal(jsonPathProblem(ok), null, ok);
  for (const bad of ['a.b', '$[?(@.a)]', '$.a[0:2]', "$['a','b']", '$.a[', '$.', '$..', '$.a b']) {
    assert.ok(jsonPathProblem(bad), bad);
    assert.throws(() => all.json([bad]), /JSON path/, bad);
  }
});

test('a body that is not JSON fails closed from the first byte that cannot be JSON', () => {
  const cases: [string, string, RegExp][] = [
    ['{"a": 1,}', `{"a": "****",${NOT_JSON_MASK}`, /byte 8: expected a key/],
    ['{"b" 1}', `{"b" ${NOT_JSON_MASK}`, /byte 5/],
    ['<html>secret</html>', NOT_JSON_MASK, /byte 0: expected a value/],
    ['[1, 2', `[1, 2${NOT_JSON_MASK}`, /unexpected end/],
    [`{"b":"x${GHP}\u0001"}`, `{"b":${NOT_JSON_MASK}`, /control character/],
    ['{"b":"\\x41"}', `{"b":${NOT_JSON_MASK}`, /bad escape/],
    ['{"b":01}', `{"b":${NOT_JSON_MASK}`, /bad number/],
    ['{"b":tru}', `{"b":tru${NOT_JSON_MASK}`, /bad literal/],
    ['{"a":{"b":"secret" "c":2}} {"d":1}', `{"a":"****"${NOT_JSON_MASK}`, /expected "," or "}"/],
    ['{"b":1}}{"a":"s"}', `{"b":1}${NOT_JSON_MASK}`, /expected a value/],
  ];
  for (const [input, expected, why] of cases) {
    const r = maskEveryWay(input, ['$.a']);
    assert.equal(r.text, expected, input);
    assert.match(r.error ?? '', why, input);
  }
});

test('a string or number longer than the cap is masked whole; memory stays bounded', () => {
  const long = 'x'.repeat(1100);
  const input = `{"a":"${long}","b":"${long}${GHP}","${long}":1,"primaryKey":"${long}","n":${'1'.repeat(1100)},"ok":"short"}`;
  const r = maskEveryWay(input, ['$.z'], all, { maxToken: 1024 });
  // (The long key counts as any name, so `$.z` masks its value too: see below.)
  assert.equal(r.text, '{"a":"****","b":"****","****":"****","primaryKey":"****","n":"****","ok":"short"}');
  assert.equal(r.values, 6);
  // A key too long to keep counts as any name: `$.z` masks its value.
  assert.equal(maskEveryWay(`{"${long}":"v","y":"w"}`, ['$.z'], all, { maxToken: 1024 }).text, '{"****":"****","y":"w"}');
});

test(`nesting deeper than ${MAX_DEPTH} is refused, not followed`, () => {
  const m = all.json([]);
  const deep = '['.repeat(MAX_DEPTH + 5);
  const out = Buffer.concat([m.push(Buffer.from(deep)).bytes, m.flush().bytes]).toString();
  assert.equal(out, `${'['.repeat(MAX_DEPTH)}${NOT_JSON_MASK}`);
  assert.match(m.error ?? '', /nested deeper/);
});

test('without detectors only paths mask; strings pass as they are', () => {
  const none = new Masker({ columns: [], detectors: [], applyTo: { client: true, log: true } });
  assert.equal(maskEveryWay(`{"t":"${GHP}","primaryKey":"alice@example.com"}`, PATHS, none).text, `{"t":"${GHP}","primaryKey":"a***@***.com"}`);
});
