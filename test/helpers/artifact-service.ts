// A local stand-in for GitHub Actions' artifact backend, so the real @actions/artifact (v6) code
// runs in tests end to end. Two real servers:
//  - the "results" twirp service at ACTIONS_RESULTS_URL (JSON twirp over HTTP, bearer
//    ACTIONS_RUNTIME_TOKEN): CreateArtifact, FinalizeArtifact, ListArtifacts,
//    GetSignedArtifactURL, DeleteArtifact;
//  - an Azurite blob server (child process, in-memory) that the client uploads the zip to
//    through the SAS URL CreateArtifact hands out (BlockBlobClient.uploadStream).
// Like GitHub, an artifact name is unique within a workflow run: a second CreateArtifact with a
// finalized name fails with 409 already_exists.
import http from 'node:http';
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createHash, createHmac, randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import {
  BlobSASPermissions,
  BlobServiceClient,
  SASProtocol,
  StorageSharedKeyCredential,
  generateBlobSASQueryParameters,
  type ContainerClient,
} from '@azure/storage-blob';

export interface StoredArtifact {
  name: string;
  size: number;
  /** 'sha256:<hex>' as sent with FinalizeArtifact ('' until finalized). */
  hash: string;
  finalized: boolean;
  /** Blob name inside the container. */
  blobPath: string;
}

export interface ArtifactService {
  /** What a job's environment holds for @actions/artifact: ACTIONS_RESULTS_URL, ACTIONS_RUNTIME_TOKEN (a JWT whose scp claim is 'Actions.Results:<runBackendId>:<jobBackendId>'), GITHUB_SERVER_URL=https://github.com (not GHES). */
  env(): Record<string, string>;
  artifacts(): StoredArtifact[];
  /** Downloads the named artifact's zip from the blob store and extracts it into destDir; returns the relative file paths. */
  download(name: string, destDir: string): Promise<string[]>;
  /** Every twirp call received, for assertions: method name and parsed JSON body. */
  calls: { method: string; body: Record<string, unknown> }[];
  close(): Promise<void>;
}

// Azurite's documented development account.
const ACCOUNT = 'devstoreaccount1';
const ACCOUNT_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
const CONTAINER = 'actions-results';
const SERVICE = 'github.actions.results.api.v1.ArtifactService';

const azuriteBin = createRequire(import.meta.url).resolve('azurite/dist/src/blob/main.js');
const execFileP = promisify(execFile);

/** Twirp error codes used here, with their HTTP statuses. */
const TWIRP_STATUS = {
  invalid_argument: 400, unauthenticated: 401, permission_denied: 403, not_found: 404,
  bad_route: 404, already_exists: 409, failed_precondition: 412, internal: 500,
} as const;
type TwirpCode = keyof typeof TWIRP_STATUS;

class TwirpError extends Error {
  readonly code: TwirpCode;
  constructor(code: TwirpCode, msg: string) {
    super(msg);
    this.code = code;
  }
}

interface Record_ extends StoredArtifact { id: number; runId: string; jobId: string; createdAt: Date }

export async function startArtifactService(): Promise<ArtifactService> {
  const runBackendId = randomUUID();
  const jobBackendId = randomUUID();
  const token = fakeRuntimeToken(`Actions.ExampleScope Actions.Results:${runBackendId}:${jobBackendId}`);
  const credential = new StorageSharedKeyCredential(ACCOUNT, ACCOUNT_KEY);

  const azurite = await startAzurite();
  let container: ContainerClient;
  try {
    container = new BlobServiceClient(`${azurite.url}/${ACCOUNT}`, credential).getContainerClient(CONTAINER);
    await container.createIfNotExists();
  } catch (e) {
    await azurite.stop();
    throw e;
  }

  const store: Record_[] = [];
  const calls: ArtifactService['calls'] = [];
  let nextId = 1;

  function sasUrl(blobPath: string, permissions: string): string {
    const now = Date.now();
    const sas = generateBlobSASQueryParameters({
      containerName: CONTAINER,
      blobName: blobPath,
      permissions: BlobSASPermissions.parse(permissions),
      startsOn: new Date(now - 5 * 60_000),
      expiresOn: new Date(now + 60 * 60_000),
      protocol: SASProtocol.HttpsAndHttp,
    }, credential);
    return `${container.getBlockBlobClient(blobPath).url}?${sas.toString()}`;
  }

  function checkIds(body: Record<string, unknown>): void {
    if (body.workflow_run_backend_id !== runBackendId || body.workflow_job_run_backend_id !== jobBackendId)
      throw new TwirpError('permission_denied', 'backend ids do not match the runtime token');
  }

  function requireName(body: Record<string, unknown>): string {
    const name = body.name;
    if (typeof name !== 'string' || name === '') throw new TwirpError('invalid_argument', 'name is required');
    return name;
  }

  function listed(a: Record_): Record<string, unknown> {
    return {
      workflow_run_backend_id: a.runId, workflow_job_run_backend_id: a.jobId,
      database_id: String(a.id), name: a.name, size: String(a.size),
      created_at: a.createdAt.toISOString(), ...(a.hash ? { digest: a.hash } : {}),
    };
  }

  const methods: Record<string, (body: Record<string, unknown>) => Promise<Record<string, unknown>>> = {
    async CreateArtifact(body) {
      checkIds(body);
      const name = requireName(body);
      if (body.version !== 7) throw new TwirpError('invalid_argument', `unsupported artifact version ${String(body.version)}`);
      if (body.expires_at !== undefined && Number.isNaN(Date.parse(String(body.expires_at))))
        throw new TwirpError('invalid_argument', 'expires_at is not an RFC 3339 timestamp');
      const existing = store.findIndex((a) => a.name === name);
      if (existing >= 0) {
        // GitHub's wording; an unfinalized one (a failed earlier attempt) is replaced.
        if (store[existing]!.finalized)
          throw new TwirpError('already_exists', 'an artifact with this name already exists on the workflow run');
        store.splice(existing, 1);
      }
      const id = nextId++;
      const blobPath = `${runBackendId}/${jobBackendId}/${id}.zip`;
      store.push({ id, name, size: 0, hash: '', finalized: false, blobPath, runId: runBackendId, jobId: jobBackendId, createdAt: new Date() });
      return { ok: true, signed_upload_url: sasUrl(blobPath, 'cw') };
    },

    async FinalizeArtifact(body) {
      checkIds(body);
      const name = requireName(body);
      const a = store.find((x) => x.name === name && !x.finalized);
      if (!a) throw new TwirpError('not_found', `no pending artifact named ${name}`);
      const size = Number(body.size ?? 0); // int64 travels as a JSON string
      const blob = container.getBlockBlobClient(a.blobPath);
      if (!(await blob.exists())) throw new TwirpError('failed_precondition', 'artifact content was never uploaded');
      const content = await blob.downloadToBuffer();
      if (content.length !== size)
        throw new TwirpError('invalid_argument', `size ${size} does not match the uploaded ${content.length} bytes`);
      const hash = body.hash === undefined ? '' : String(body.hash); // StringValue travels as a bare string
      if (hash && hash !== `sha256:${createHash('sha256').update(content).digest('hex')}`)
        throw new TwirpError('invalid_argument', 'hash does not match the uploaded content');
      Object.assign(a, { size, hash, finalized: true });
      return { ok: true, artifact_id: String(a.id) };
    },

    async ListArtifacts(body) {
      checkIds(body);
      const nameFilter = body.name_filter === undefined ? undefined : String(body.name_filter);
      const idFilter = body.id_filter === undefined ? undefined : Number(body.id_filter);
      const artifacts = store
        .filter((a) => a.finalized && (nameFilter === undefined || a.name === nameFilter) && (idFilter === undefined || a.id === idFilter))
        .map(listed);
      return { artifacts };
    },

    async GetSignedArtifactURL(body) {
      checkIds(body);
      const name = requireName(body);
      const a = store.find((x) => x.name === name && x.finalized);
      if (!a) throw new TwirpError('not_found', `artifact ${name} not found`);
      return { signed_url: sasUrl(a.blobPath, 'r') };
    },

    async DeleteArtifact(body) {
      checkIds(body);
      const name = requireName(body);
      const i = store.findIndex((x) => x.name === name && x.finalized);
      if (i < 0) throw new TwirpError('not_found', `artifact ${name} not found`);
      const [a] = store.splice(i, 1);
      await container.getBlockBlobClient(a!.blobPath).deleteIfExists();
      return { ok: true, artifact_id: String(a!.id) };
    },
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        try {
          const prefix = `/twirp/${SERVICE}/`;
          const url = new URL(req.url ?? '/', 'http://x');
          const method = url.pathname.startsWith(prefix) ? url.pathname.slice(prefix.length) : '';
          const handler = Object.hasOwn(methods, method) ? methods[method] : undefined;
          if (req.method !== 'POST' || !handler) throw new TwirpError('bad_route', `no handler for ${req.method} ${url.pathname}`);
          if (req.headers.authorization !== `Bearer ${token}`) throw new TwirpError('unauthenticated', 'invalid runtime token');
          if (!String(req.headers['content-type'] ?? '').startsWith('application/json'))
            throw new TwirpError('bad_route', 'only the JSON twirp encoding is served');
          let body: Record<string, unknown>;
          try {
            body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
          } catch {
            throw new TwirpError('invalid_argument', 'body is not JSON');
          }
          calls.push({ method, body });
          send(res, 200, await handler(body));
        } catch (e) {
          const err = e instanceof TwirpError ? e : new TwirpError('internal', e instanceof Error ? e.message : String(e));
          send(res, TWIRP_STATUS[err.code], { code: err.code, msg: err.message });
        }
      })();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const resultsUrl = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/`;

  return {
    calls,
    env: () => ({
      ACTIONS_RESULTS_URL: resultsUrl,
      ACTIONS_RUNTIME_TOKEN: token,
      GITHUB_SERVER_URL: 'https://github.com',
    }),
    artifacts: () => store.map(({ name, size, hash, finalized, blobPath }) => ({ name, size, hash, finalized, blobPath })),
    async download(name, destDir) {
      const a = store.find((x) => x.name === name && x.finalized);
      if (!a) throw new Error(`artifact ${name} not found (or not finalized)`);
      fs.mkdirSync(destDir, { recursive: true });
      const zipFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'artifact-dl-')), 'artifact.zip');
      try {
        await container.getBlockBlobClient(a.blobPath).downloadToFile(zipFile);
        return await unzip(zipFile, destDir);
      } finally {
        fs.rmSync(path.dirname(zipFile), { recursive: true, force: true });
      }
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await azurite.stop();
    },
  };
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** A JWT shaped like the runner's ACTIONS_RUNTIME_TOKEN (the client only decodes it; HS256 with a throwaway key). */
function fakeRuntimeToken(scp: string): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const unsigned = `${b64({ typ: 'JWT', alg: 'HS256' })}.${b64({ scp, iat: now, nbf: now, exp: now + 6 * 3600, iss: 'vstoken.actions.githubusercontent.com', aud: 'vso:local' })}`;
  return `${unsigned}.${createHmac('sha256', randomUUID()).update(unsigned).digest('base64url')}`;
}

/** Extracts with Info-ZIP's unzip; returns the file entries (directories left out), relative, '/'-separated. */
async function unzip(zipFile: string, destDir: string): Promise<string[]> {
  const { stdout } = await execFileP('unzip', ['-Z1', zipFile]);
  await execFileP('unzip', ['-q', '-o', zipFile, '-d', destDir]);
  return stdout.split('\n').filter((l) => l !== '' && !l.endsWith('/'));
}

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

async function startAzurite(): Promise<{ url: string; stop(): Promise<void> }> {
  const location = fs.mkdtempSync(path.join(os.tmpdir(), 'azurite-'));
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, [
    // --inMemoryPersistence and --location are mutually exclusive; a temp cwd keeps stray files out of the repo.
    azuriteBin, '--blobHost', '127.0.0.1', '--blobPort', String(port),
    '--inMemoryPersistence', '--skipApiVersionCheck', '--disableTelemetry', '--silent',
  ], { cwd: location, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => { output += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { output += d.toString(); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let dead = false;
  void exited.then(() => { dead = true; });
  const stop = async () => {
    if (!dead) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    fs.rmSync(location, { recursive: true, force: true });
  };
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (dead) {
      await stop();
      throw new Error(`azurite-blob exited before accepting connections:\n${output}`);
    }
    // Any HTTP answer (even 400/403) means Azurite is serving.
    const up = await fetch(`${url}/${ACCOUNT}?comp=list`).then(async (r) => { await r.arrayBuffer(); return true; }, () => false);
    if (up) return { url, stop };
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`azurite-blob did not accept connections on ${url} within 30s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
