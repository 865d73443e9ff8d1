// Proves the artifact-backend stand-in with the REAL @actions/artifact client: its twirp calls,
// its Azure SDK upload to Azurite through the SAS URL, the zip it produces, and GitHub's
// one-name-per-run rule.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { startArtifactService, type ArtifactService } from '../helpers/artifact-service.ts';

let service: ArtifactService;
let work: string;
const savedEnv = { ...process.env };

const FILES: Record<string, Buffer> = {
  'session.jsonl': Buffer.from('{"seq":1,"sql":"SELECT 1"}\n{"seq":2,"sql":"SELECT 2"}\n'),
  'checkpoints/0001.json': Buffer.from(JSON.stringify({ seq: 2, sig: 'abc' }, null, 2)),
  'blob.bin': randomBytes(2 * 1024 * 1024),
};

before(async () => {
  service = await startArtifactService();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'artifact-e2e-'));
  // Exactly what the client reads for an upload; nothing else from a runner is needed.
  for (const k of ['ACTIONS_RESULTS_URL', 'ACTIONS_RUNTIME_TOKEN', 'GITHUB_SERVER_URL', 'GITHUB_RETENTION_DAYS', 'GITHUB_WORKSPACE', 'RUNNER_TEMP'])
    delete process.env[k];
  Object.assign(process.env, service.env());
  for (const [rel, data] of Object.entries(FILES)) {
    fs.mkdirSync(path.dirname(path.join(work, 'src', rel)), { recursive: true });
    fs.writeFileSync(path.join(work, 'src', rel), data);
  }
});

after(async () => {
  for (const k of Object.keys(process.env)) if (!(k in savedEnv)) delete process.env[k];
  Object.assign(process.env, savedEnv);
  await service?.close();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

test('the real @actions/artifact client uploads through the stand-in; the artifact round-trips byte for byte', async () => {
  const { DefaultArtifactClient } = await import('@actions/artifact');
  const client = new DefaultArtifactClient();
  const root = path.join(work, 'src');
  const files = Object.keys(FILES).map((rel) => path.join(root, rel));
  const before = Date.now();

  const result = await client.uploadArtifact('gateway-session-log', files, root, { retentionDays: 5 });

  assert.equal(result.id, 1);
  const [stored] = service.artifacts();
  assert.ok(stored);
  assert.deepEqual({ name: stored.name, finalized: stored.finalized }, { name: 'gateway-session-log', finalized: true });
  assert.equal(result.size, stored.size);
  assert.ok(stored.size > 2 * 1024 * 1024, `zip of a 2 MB random file should exceed 2 MB, got ${stored.size}`);
  assert.equal(stored.hash, `sha256:${result.digest}`);

  // The twirp conversation: CreateArtifact (name, version 7, retention as expires_at), then FinalizeArtifact (size, hash).
  assert.deepEqual(service.calls.map((c) => c.method), ['CreateArtifact', 'FinalizeArtifact']);
  const [create, finalize] = service.calls.map((c) => c.body);
  assert.equal(create!.name, 'gateway-session-log');
  assert.equal(create!.version, 7);
  assert.equal(create!.mime_type, 'application/zip');
  const expires = Date.parse(String(create!.expires_at));
  const fiveDays = 5 * 24 * 3600 * 1000;
  assert.ok(Math.abs(expires - (before + fiveDays)) < 2 * 3600 * 1000, `expires_at ${String(create!.expires_at)} is not ~5 days out`);
  assert.equal(finalize!.name, 'gateway-session-log');
  assert.equal(finalize!.size, String(stored.size), 'int64 size travels as a JSON string');

  // The hash the client sent is the sha256 of the zip actually in blob storage (fetched via GetSignedArtifactURL).
  const signed = await twirp('GetSignedArtifactURL', {
    workflow_run_backend_id: create!.workflow_run_backend_id,
    workflow_job_run_backend_id: create!.workflow_job_run_backend_id,
    name: 'gateway-session-log',
  });
  const zip = Buffer.from(await (await fetch(String(signed.signed_url))).arrayBuffer());
  assert.equal(zip.length, stored.size);
  assert.equal(finalize!.hash, `sha256:${createHash('sha256').update(zip).digest('hex')}`);

  // download() extracts the zip; every file comes back byte for byte.
  const dest = path.join(work, 'out');
  const listed = await service.download('gateway-session-log', dest);
  assert.deepEqual([...listed].sort(), Object.keys(FILES).sort());
  for (const [rel, data] of Object.entries(FILES)) assert.ok(fs.readFileSync(path.join(dest, rel)).equals(data), `${rel} differs`);

  // The real client's own list/download path works against the stand-in too.
  const { artifacts } = await client.listArtifacts();
  assert.deepEqual(artifacts.map((a) => [a.name, a.id, a.size, a.digest]), [['gateway-session-log', 1, stored.size, stored.hash]]);
  const dest2 = path.join(work, 'out2');
  const dl = await client.downloadArtifact(1, { path: dest2, expectedHash: stored.hash });
  assert.equal(dl.digestMismatch, false);
  for (const [rel, data] of Object.entries(FILES)) assert.ok(fs.readFileSync(path.join(dest2, rel)).equals(data), `${rel} differs (client download)`);
});

test('a second upload with the same name in the run is rejected, like GitHub does', async () => {
  const { DefaultArtifactClient } = await import('@actions/artifact');
  const root = path.join(work, 'src');
  const callsBefore = service.calls.length;
  await assert.rejects(
    new DefaultArtifactClient().uploadArtifact('gateway-session-log', [path.join(root, 'session.jsonl')], root),
    (e: Error) => {
      assert.match(e.message, /CreateArtifact.*\(409\).*an artifact with this name already exists on the workflow run/);
      return true;
    },
  );
  // One attempt only (409 is not retried), and nothing else was stored.
  assert.deepEqual(service.calls.slice(callsBefore).map((c) => c.method), ['CreateArtifact']);
  assert.equal(service.artifacts().length, 1);
});

test('the twirp service demands the runtime token', async () => {
  const res = await fetch(new URL('/twirp/github.actions.results.api.v1.ArtifactService/ListArtifacts', service.env().ACTIONS_RESULTS_URL), {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer nope' }, body: '{}',
  });
  assert.equal(res.status, 401);
  assert.equal(((await res.json()) as { code: string }).code, 'unauthenticated');
});

async function twirp(method: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  const env = service.env();
  const res = await fetch(new URL(`/twirp/github.actions.results.api.v1.ArtifactService/${method}`, env.ACTIONS_RESULTS_URL), {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${env.ACTIONS_RUNTIME_TOKEN}` },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as Record<string, unknown>;
  assert.equal(res.status, 200, JSON.stringify(json));
  return json;
}
