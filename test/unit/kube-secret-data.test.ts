// Secret values masked out of the bodies of `secrets` requests (gateway/kubernetes/secret-data.ts).
// The bodies are the shapes the API server and kubectl v1.32 produce: the request bodies are
// byte for byte what `kubectl -v=9` logged for client-side apply (create, then a strategic merge
// patch), server-side apply and `kubectl patch --type=json`; the responses are the API server's
// Secret, SecretList, Table (`kubectl get secrets`) and watch shapes, with the last-applied
// annotation and managedFields kubectl's client-side apply leaves on the object.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import {
  LAST_APPLIED_ANNOTATION, MASKED_SECRET_BASE64, MASKED_SECRET_TEXT, UnreadableSecretBody,
  maskSecretValues, secretRequestSample, secretResponseFilter, type SecretBodyFilter,
} from '../../gateway/kubernetes/secret-data.ts';

const b64 = (s: string) => Buffer.from(s).toString('base64');
const DSN = 'postgres://admin:hunter2@db:5432/app';
/** Every secret value of the fixtures, plain and base64: none may appear in any output. */
const SECRETS = ['hunter2', b64('hunter2'), b64('admin'), 'new-password', b64('new-password'), b64('patched'), 'prod-token-5f1e9c', b64('prod-token-5f1e9c')];
function assertNoSecret(text: string): void {
  for (const s of SECRETS) assert.ok(!text.includes(s), `a secret value (${s}) is left in: ${text.slice(0, 300)}`);
}

/** What kubectl's client-side apply stores: json.Marshal of the applied object, sorted keys, and a newline. */
const lastApplied = (name: string, password: string) =>
  `${JSON.stringify({ apiVersion: 'v1', data: { password: b64(password), user: b64('admin') }, kind: 'Secret', metadata: { annotations: {}, name, namespace: 'default' }, stringData: { dsn: DSN }, type: 'Opaque' })}\n`;

const managedFields = [{
  manager: 'kubectl-client-side-apply', operation: 'Update', apiVersion: 'v1', time: '2026-12-04T20:50:05Z', fieldsType: 'FieldsV1',
  fieldsV1: { 'f:data': { '.': {}, 'f:password': {}, 'f:user': {} }, 'f:metadata': { 'f:annotations': { '.': {}, [`f:${LAST_APPLIED_ANNOTATION}`]: {} } }, 'f:type': {} },
}];
const metadata = (name: string, password: string) => ({
  name, namespace: 'default', uid: '2bf73721-885f-4e1e-b03b-8da7c7347667', resourceVersion: '1010', creationTimestamp: '2026-12-04T20:50:05Z',
  annotations: { [LAST_APPLIED_ANNOTATION]: lastApplied(name, password) }, managedFields,
});
const secret = (name: string, password: string) => ({ kind: 'Secret', apiVersion: 'v1', metadata: metadata(name, password), data: { password: b64(password), user: b64('admin') }, type: 'Opaque' });
const tokenSecret = { kind: 'Secret', apiVersion: 'v1', metadata: { name: 'api-key', namespace: 'prod', resourceVersion: '1011', creationTimestamp: '2026-12-04T20:51:00Z', annotations: { note: 'für die Prüfung ✓ 😀' } }, data: { token: b64('prod-token-5f1e9c') }, type: 'Opaque' };
const notFound = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'secrets "app-db" not found', reason: 'NotFound', details: { name: 'app-db', kind: 'secrets' }, code: 404 };

/** The API server writes each body with json.Encoder: compact, then a newline. */
const wire = (v: unknown) => Buffer.from(`${JSON.stringify(v)}\n`);
function run(filter: SecretBodyFilter, chunks: Buffer[]): Buffer {
  const out = chunks.map((c) => filter.push(c));
  out.push(filter.flush());
  return Buffer.concat(out);
}
const oneShot = (body: Buffer, watch = false) => {
  const f = secretResponseFilter({ watch });
  return { text: run(f, [body]).toString(), masked: f.masked };
};
const throwsUnreadable = (fn: () => unknown, message: RegExp) =>
  assert.throws(fn, (e: unknown) => e instanceof UnreadableSecretBody && message.test(e.message));

test('the masked data value is valid base64 of the masked text', () => {
  assert.equal(MASKED_SECRET_BASE64, b64(MASKED_SECRET_TEXT));
  assert.equal(Buffer.from(MASKED_SECRET_BASE64, 'base64').toString(), MASKED_SECRET_TEXT);
  assert.match(MASKED_SECRET_BASE64, /^[A-Za-z0-9+/]+=*$/);
  assert.equal(MASKED_SECRET_BASE64.length % 4, 0, 'padded, as Go base64.StdEncoding requires');
});

test('a Secret GET: data values masked (keys kept), last-applied masked and still JSON, managedFields and the rest unchanged', () => {
  const { text, masked } = oneShot(wire(secret('app-db', 'hunter2')));
  assertNoSecret(text);
  assert.ok(text.endsWith('}\n'), 'the trailing newline is kept');
  const got = JSON.parse(text);
  assert.deepEqual(Object.keys(got), ['kind', 'apiVersion', 'metadata', 'data', 'type']);
  assert.deepEqual(got.data, { password: MASKED_SECRET_BASE64, user: MASKED_SECRET_BASE64 });
  for (const v of Object.values(got.data)) assert.equal(Buffer.from(v as string, 'base64').toString(), MASKED_SECRET_TEXT);
  const applied: string = got.metadata.annotations[LAST_APPLIED_ANNOTATION];
  assert.ok(applied.endsWith('}\n'), 'written back compact, with the newline kubectl writes');
  assert.equal(applied, `${JSON.stringify({ apiVersion: 'v1', data: { password: MASKED_SECRET_BASE64, user: MASKED_SECRET_BASE64 }, kind: 'Secret', metadata: { annotations: {}, name: 'app-db', namespace: 'default' }, stringData: { dsn: MASKED_SECRET_TEXT }, type: 'Opaque' })}\n`);
  assert.deepEqual(got.metadata.managedFields, managedFields, 'managedFields hold field names only');
  const { annotations: _a, ...restMeta } = got.metadata;
  const { annotations: _b, ...wantMeta } = metadata('app-db', 'hunter2');
  assert.deepEqual(restMeta, wantMeta);
  assert.equal(masked, 5, 'two data values, and two data values and one stringData value in last-applied');
});

test('a SecretList: every item masked, the list metadata unchanged', () => {
  const list = { kind: 'SecretList', apiVersion: 'v1', metadata: { resourceVersion: '1012' }, items: [secret('app-db', 'hunter2'), tokenSecret] };
  const { text, masked } = oneShot(wire(list));
  assertNoSecret(text);
  const got = JSON.parse(text);
  assert.deepEqual(got.metadata, list.metadata);
  assert.deepEqual(got.items[1], { ...tokenSecret, data: { token: MASKED_SECRET_BASE64 } });
  assert.equal(got.items[0].data.password, MASKED_SECRET_BASE64);
  assert.equal(masked, 6);
});

test('a Table (kubectl get secrets): cells and column definitions unchanged, last-applied in rows[].object masked', () => {
  const column = (name: string, format: string, description: string) => ({ name, type: 'string', format, description, priority: 0 });
  const table = {
    kind: 'Table', apiVersion: 'meta.k8s.io/v1', metadata: { resourceVersion: '1012' },
    columnDefinitions: [
      column('Name', 'name', 'Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically.'),
      column('Type', '', 'Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types'),
      column('Data', '', "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string."),
      column('Age', '', 'CreationTimestamp is a timestamp representing the server time when this object was created.'),
    ],
    rows: [
      { cells: ['app-db', 'Opaque', 2, '5m'], object: { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: metadata('app-db', 'hunter2') } },
      { cells: ['api-key', 'Opaque', 1, '4m'], object: { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: tokenSecret.metadata } },
    ],
  };
  const { text, masked } = oneShot(wire(table));
  assertNoSecret(text);
  const got = JSON.parse(text);
  assert.deepEqual(got.columnDefinitions, table.columnDefinitions);
  assert.deepEqual(got.rows.map((r: { cells: unknown }) => r.cells), table.rows.map((r) => r.cells));
  assert.deepEqual(got.rows[1], table.rows[1]);
  assert.equal(JSON.parse(got.rows[0].object.metadata.annotations[LAST_APPLIED_ANNOTATION]).stringData.dsn, MASKED_SECRET_TEXT);
  assert.equal(masked, 3);
  // includeObject=Object: each row carries the whole Secret.
  const full = oneShot(wire({ ...table, rows: [{ cells: table.rows[1]!.cells, object: tokenSecret }] }));
  assertNoSecret(full.text);
  assert.equal(full.masked, 1);
});

test('a Status error, and JSON holding no Secret value, pass byte for byte', () => {
  for (const body of [wire(notFound), wire({ kind: 'SecretList', apiVersion: 'v1', metadata: { resourceVersion: '7' }, items: [] })]) {
    const { text, masked } = oneShot(body);
    assert.equal(text, body.toString());
    assert.equal(masked, 0);
  }
  assert.equal(oneShot(Buffer.alloc(0)).text, '', 'an empty body (a 204, a HEAD) stays empty');
  assert.equal(oneShot(Buffer.from('\n')).text, '\n');
});

const events = [
  { type: 'ADDED', object: secret('app-db', 'hunter2') },
  { type: 'ADDED', object: tokenSecret },
  { type: 'MODIFIED', object: secret('app-db', 'new-password') },
  { type: 'BOOKMARK', object: { kind: 'Secret', apiVersion: 'v1', metadata: { resourceVersion: '1013', creationTimestamp: null, annotations: { 'k8s.io/initial-events-end': 'true' } } } },
  { type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'too old resource version: 1 (1010)', reason: 'Expired', code: 410 } },
];
// A blank line passes as it is; the stream ends without a final newline.
const stream = Buffer.from(`${events.slice(0, 2).map((e) => JSON.stringify(e)).join('\n')}\n\n${events.slice(2).map((e) => JSON.stringify(e)).join('\n')}`);

test('a watch stream: each event masked; split at every byte offset, the output is the one-shot output', () => {
  const whole = oneShot(stream, true);
  assertNoSecret(whole.text);
  const lines = whole.text.split('\n');
  assert.equal(lines.length, 6);
  assert.equal(lines[2], '');
  const got = lines.filter(Boolean).map((l) => JSON.parse(l));
  assert.deepEqual(got.map((e) => e.type), ['ADDED', 'ADDED', 'MODIFIED', 'BOOKMARK', 'ERROR']);
  assert.equal(got[1].object.metadata.annotations.note, 'für die Prüfung ✓ 😀');
  assert.deepEqual(got.slice(3), events.slice(3), 'bookmark and error events unchanged');
  assert.equal(whole.masked, 11);
  for (let i = 0; i <= stream.length; i++) {
    const f = secretResponseFilter({ watch: true });
    assert.equal(run(f, [stream.subarray(0, i), stream.subarray(i)]).toString(), whole.text, `split at ${i}`);
    assert.equal(f.masked, whole.masked);
  }
});

test('a watch stream byte by byte: each event is released when its newline arrives, nothing before', () => {
  const f = secretResponseFilter({ watch: true });
  const expected = oneShot(stream, true).text.split('\n');
  let line = 0;
  for (let i = 0; i < stream.length; i++) {
    const out = f.push(stream.subarray(i, i + 1));
    if (stream[i] === 0x0a) assert.equal(out.toString(), `${expected[line++]}\n`, `line ${line} released at its newline`);
    else assert.equal(out.length, 0, `nothing released at byte ${i}`);
  }
  assert.equal(f.flush().toString(), expected[line], 'the last line, without a newline, at the end');
});

test('a watch line that is not JSON, or over the limit, is refused, and so is everything after it', () => {
  const f = secretResponseFilter({ watch: true });
  assert.ok(f.push(Buffer.from(`${JSON.stringify(events[4])}\n`)).length > 0);
  throwsUnreadable(() => f.push(Buffer.from('data: {"k": "aHVudGVyMg=="}\n')), /watch event line is not JSON/);
  throwsUnreadable(() => f.push(Buffer.from(`${JSON.stringify(events[4])}\n`)), /not JSON/);
  throwsUnreadable(() => f.flush(), /not JSON/);
  // The limit bounds the line held: it is refused before its newline arrives.
  const small = secretResponseFilter({ watch: true, maxBytes: 100 });
  small.push(Buffer.alloc(60, 0x20));
  throwsUnreadable(() => small.push(Buffer.alloc(60, 0x20)), /watch event over 100 bytes/);
  const last = secretResponseFilter({ watch: true });
  throwsUnreadable(() => run(last, [Buffer.from('{"type":"ADDED","object":{"data":{"k":"YQ=="}}')]), /not JSON/);
});

test('a non-watch body over the limit, not JSON, not UTF-8, protobuf or too deep is refused', () => {
  const over = secretResponseFilter({ watch: false, maxBytes: 1024 * 1024 });
  assert.equal(over.push(Buffer.alloc(1024 * 1024, 0x20)).length, 0);
  throwsUnreadable(() => over.push(Buffer.from('{}')), /over 1 MiB/);
  // A Protobuf Secret (Accept: application/vnd.kubernetes.protobuf): the magic "k8s\0", then the Unknown envelope.
  const protobuf = Buffer.concat([Buffer.from('k8s\0'), Buffer.from([0x0a, 0x08, 0x0a, 0x02, 0x76, 0x31, 0x12, 0x06]), Buffer.from('Secret')]);
  const bodies: [Buffer, RegExp][] = [
    [protobuf, /not JSON/],
    [Buffer.from('404 page not found\n'), /not JSON/],
    [Buffer.from('{"kind":"Secret","data":{"k":"YQ=="}'), /not JSON/],
    [Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), /not UTF-8/],
    [Buffer.from('"aHVudGVyMg=="'), /not an object/],
    [Buffer.from(`${'{"a":'.repeat(2000)}1${'}'.repeat(2000)}`), /nested deeper than 1000/],
  ];
  for (const [body, message] of bodies) {
    for (const watch of [false, true]) throwsUnreadable(() => run(secretResponseFilter({ watch }), [body]), message);
  }
});

test('maskSecretValues: the rules on odd shapes, without changing its input', () => {
  const input = {
    data: 'aHVudGVyMg==', nested: [{ Data: ['aHVudGVyMg=='] }, { data: null }, { data: { gone: null, kept: { x: 1 } } }],
    stringData: { dsn: DSN }, spec: { stringData: 'hunter2' }, labels: { data: 'x' },
    annotations: { [LAST_APPLIED_ANNOTATION]: '{not json hunter2', other: 'kept' }, more: { [LAST_APPLIED_ANNOTATION]: { data: 1 } },
    gone: { [LAST_APPLIED_ANNOTATION]: null }, '10': 'n', __proto__x: 1,
  };
  const snapshot = JSON.stringify(input);
  const { value, masked } = maskSecretValues(input);
  assert.equal(JSON.stringify(input), snapshot, 'the input is not changed');
  assert.deepEqual(value, {
    '10': 'n', data: MASKED_SECRET_BASE64,
    nested: [{ Data: MASKED_SECRET_BASE64 }, { data: null }, { data: { gone: null, kept: MASKED_SECRET_BASE64 } }],
    stringData: { dsn: MASKED_SECRET_TEXT }, spec: { stringData: MASKED_SECRET_TEXT }, labels: { data: MASKED_SECRET_BASE64 },
    annotations: { [LAST_APPLIED_ANNOTATION]: MASKED_SECRET_TEXT, other: 'kept' }, more: { [LAST_APPLIED_ANNOTATION]: MASKED_SECRET_TEXT },
    gone: { [LAST_APPLIED_ANNOTATION]: null }, __proto__x: 1,
  });
  assert.equal(masked, 8);
  const proto = maskSecretValues(JSON.parse('{"__proto__":{"data":{"k":"YQ=="}}}'));
  assert.equal(JSON.stringify(proto.value), `{"__proto__":{"data":{"k":"${MASKED_SECRET_BASE64}"}}}`, 'a member named __proto__ is kept as a member');
  assert.deepEqual(maskSecretValues('text'), { value: 'text', masked: 0 });
});

test('kubectl client-side apply: the create and the strategic merge patch, masked and still JSON', () => {
  // POST .../secrets?fieldManager=kubectl-client-side-apply, Content-Type: application/json
  const create = `{"apiVersion":"v1","data":{"password":"aHVudGVyMg==","user":"YWRtaW4="},"kind":"Secret","metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":${JSON.stringify(lastApplied('app-db', 'hunter2'))}},"name":"app-db","namespace":"default"},"stringData":{"dsn":"${DSN}"},"type":"Opaque"}`;
  const c = secretRequestSample(Buffer.from(create), 'application/json')!;
  assertNoSecret(c.text);
  assert.equal(c.masked, 6);
  assert.deepEqual(JSON.parse(c.text).stringData, { dsn: MASKED_SECRET_TEXT });
  // PATCH .../secrets/app-db, Content-Type: application/strategic-merge-patch+json
  const patch = `{"data":{"password":"bmV3LXBhc3N3b3Jk"},"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":${JSON.stringify(lastApplied('app-db', 'new-password'))}}}}`;
  const p = secretRequestSample(Buffer.from(patch), 'application/strategic-merge-patch+json')!;
  assertNoSecret(p.text);
  assert.equal(p.masked, 4);
  const got = JSON.parse(p.text);
  assert.deepEqual(got.data, { password: MASKED_SECRET_BASE64 });
  assert.equal(JSON.parse(got.metadata.annotations[LAST_APPLIED_ANNOTATION]).data.password, MASKED_SECRET_BASE64);
  // A merge patch deleting a key shows the deletion.
  assert.deepEqual(secretRequestSample(Buffer.from('{"data":{"old":null}}'), 'application/merge-patch+json'), { text: '{"data":{"old":null}}', masked: 0 });
});

test('server-side apply: JSON (as kubectl sends it) stays JSON, YAML stays YAML', () => {
  const ssaJson = `{"apiVersion":"v1","data":{"password":"aHVudGVyMg==","user":"YWRtaW4="},"kind":"Secret","metadata":{"name":"ssa-db","namespace":"default"},"stringData":{"dsn":"${DSN}"},"type":"Opaque"}`;
  const j = secretRequestSample(Buffer.from(ssaJson), 'application/apply-patch+yaml')!;
  assertNoSecret(j.text);
  assert.equal(j.masked, 3);
  assert.equal(JSON.parse(j.text).metadata.name, 'ssa-db');
  const ssaYaml = `apiVersion: v1\nkind: Secret\nmetadata:\n  name: ssa-db\n  namespace: default\ntype: Opaque\ndata:\n  password: aHVudGVyMg==   # was: hunter2\n  user: YWRtaW4=\nstringData:\n  dsn: "${DSN}"\n`;
  const y = secretRequestSample(Buffer.from(ssaYaml), 'application/apply-patch+yaml; charset=utf-8')!;
  assertNoSecret(y.text);
  assert.ok(!y.text.includes('#'), 'comments are dropped');
  assert.equal(y.masked, 3);
  assert.deepEqual(parseYaml(y.text), { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'ssa-db', namespace: 'default' }, type: 'Opaque', data: { password: MASKED_SECRET_BASE64, user: MASKED_SECRET_BASE64 }, stringData: { dsn: MASKED_SECRET_TEXT } });
});

test('a JSON Patch: every operation value masked, copy and move left with their paths', () => {
  // kubectl patch secret app-db --type=json -p '[...]': Content-Type application/json-patch+json
  const ops = '[{"op":"replace","path":"/data/password","value":"cGF0Y2hlZA=="},{"from":"/data/user","op":"copy","path":"/data/user2"},'
    + '{"op":"add","path":"/data","value":{"k":"aHVudGVyMg=="}},{"op":"add","path":"/stringData/dsn","value":"hunter2"},{"op":"test","path":"/data/user","value":"YWRtaW4="},'
    + '{"op":"copy","path":"/data/x","value":"aHVudGVyMg=="},{"op":"remove","path":"/data/old"},{"op":"replace","path":"/data/k","value":null}]';
  const s = secretRequestSample(Buffer.from(ops), 'application/json-patch+json')!;
  assertNoSecret(s.text);
  assert.equal(s.masked, 5);
  assert.deepEqual(JSON.parse(s.text), [
    { op: 'replace', path: '/data/password', value: MASKED_SECRET_BASE64 }, { from: '/data/user', op: 'copy', path: '/data/user2' },
    { op: 'add', path: '/data', value: MASKED_SECRET_BASE64 }, { op: 'add', path: '/stringData/dsn', value: MASKED_SECRET_TEXT },
    { op: 'test', path: '/data/user', value: MASKED_SECRET_BASE64 }, { op: 'copy', path: '/data/x', value: MASKED_SECRET_BASE64 },
    { op: 'remove', path: '/data/old' }, { op: 'replace', path: '/data/k', value: null },
  ]);
  assert.equal(secretRequestSample(Buffer.from('["aHVudGVyMg=="]'), 'application/json-patch+json'), null, 'an operation that is not an object');
});

test('multi-document YAML: each document masked, written back as documents', () => {
  const body = `---\napiVersion: v1\nkind: Secret\nmetadata: {name: a}\ndata: {password: aHVudGVyMg==}\n---\n# only a comment: hunter2\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: b\nstringData:\n  token: prod-token-5f1e9c\n`;
  const s = secretRequestSample(Buffer.from(body), 'application/yaml')!;
  assertNoSecret(s.text);
  assert.equal(s.masked, 2);
  const docs = parseAllDocuments(s.text);
  assert.ok(Array.isArray(docs));
  assert.deepEqual(docs.map((d) => d.toJS()), [
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'a' }, data: { password: MASKED_SECRET_BASE64 } },
    null,
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'b' }, stringData: { token: MASKED_SECRET_TEXT } },
  ]);
});

test('request bodies that cannot be read are not sampled (the digest alone is kept)', () => {
  const unread: [string, string | undefined][] = [
    ['apiVersion: v1\ndata:\n  k: &pw aHVudGVyMg==\nmetadata:\n  labels: {x: *pw}\n', 'application/yaml'],
    ['hunter2', 'application/yaml'],
    ['data: [unclosed', 'application/yaml'],
    ['data: {k: a}\ndata: {k: b}\n', 'application/yaml'],
    ['v: !!binary aHVudGVyMg==\n', 'application/yaml'],
    ['data:\n  k: aHVudGVyMg==\n', 'application/json'],
    ['data:\n  k: aHVudGVyMg==\n', undefined],
    ['"aHVudGVyMg=="', 'application/json'],
    ['k8s\0\n\x08\n\x02v1\x12\x06Secret', 'application/vnd.kubernetes.protobuf'],
  ];
  for (const [body, type] of unread) assert.equal(secretRequestSample(Buffer.from(body, 'latin1'), type), null, `${type}: ${JSON.stringify(body)}`);
  assert.deepEqual(secretRequestSample(Buffer.alloc(0), 'application/json'), { text: '', masked: 0 });
  // A duplicate key: JSON.parse keeps the last, and the first, never masked, is not written back.
  const dup = secretRequestSample(Buffer.from('{"data":{"k":"aHVudGVyMg=="},"data":null}'), 'application/json')!;
  assert.deepEqual(dup, { text: '{"data":null}', masked: 0 });
});
