// The evidence an auditor relies on months later: a log written under a (local stand-in for)
// GitHub Actions' OIDC issuer binds its signing key to the job, `verify` proves it offline, and
// every way of forging or trimming the log is caught with its own exit code and record.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { appCluster, cliAsync, policyFor, psql, readLog, startGateway, tempDir, waitFor, type Cluster, type LogRecord } from '../helpers/gateway.ts';
import { startOidcIssuer, type OidcIssuer } from '../helpers/oidc-issuer.ts';
import { resign } from '../helpers/log-forgery.ts';
import { verifyLog } from '../../gateway/evidence/verification.ts';
import { CheckpointSigner, keyAudience } from '../../gateway/evidence/checkpoint.ts';

let cluster: Cluster;
let issuer: OidcIssuer;
let work: string;
let policy: string;
let attested: string;

before(async () => {
  cluster = await appCluster();
  issuer = await startOidcIssuer();
  work = tempDir('gw-attest-');
  policy = path.join(work, 'gateway.yml');
  fs.writeFileSync(policy, policyFor(cluster) + 'session-log:\n  checkpoints: { every-records: 4 }\n');
  attested = await runJob(['-c', 'SELECT 1', '-c', 'SELECT 2', '-c', 'SELECT 3', '-c', 'SELECT 4']);
});
after(async () => {
  await issuer?.close();
  cluster?.stop();
});

/** `gateway-action run -- psql ARGS` as a job step would run it; returns the log. */
async function runJob(psqlArgs: string[], env: Record<string, string> = {}): Promise<string> {
  const logDir = fs.mkdtempSync(path.join(work, 'logs-'));
  const r = await cliAsync(['run', '--policy', policy, '--log-dir', logDir, '--', 'psql', '-X', '-At', ...psqlArgs], {
    env: { ...process.env, ...issuer.requestEnv, ...issuer.githubEnv(), APP_DB_PASSWORD: 'deployer-pw', ...env },
  });
  assert.equal(r.status, 0, r.stderr);
  return /session log: (.*)/.exec(r.stderr)![1]!.trim();
}

const verify = (args: string[]) => cliAsync(['verify', ...args]);

function variant(name: string, lines: string[], tail = '\n'): string {
  const file = path.join(work, name);
  fs.writeFileSync(file, lines.join('\n') + tail);
  return file;
}
const linesOf = (file: string): string[] => fs.readFileSync(file, 'utf8').trimEnd().split('\n');

test('under Actions the signing key is bound to the job: the token names the key, verify prints the identity', async () => {
  const start = readLog(attested)[0]!;
  assert.equal(start.attestation.kind, 'github-oidc');
  assert.equal(start.attestation.audience, keyAudience(start.key.thumbprint));
  assert.ok(issuer.requests.includes(start.attestation.audience), 'the daemon asked the issuer for exactly that audience');
  assert.equal(start.identity.kind, 'github-actions');
  assert.equal(JSON.stringify(start).includes(issuer.requestEnv.ACTIONS_ID_TOKEN_REQUEST_TOKEN), false, 'the request token is not logged');

  const r = await verify([attested, '--issuer', issuer.url]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /VALID: hash chain intact, \d+ checkpoints signed, sealed; identity verified by http:\/\/127\.0\.0\.1:\d+/);
  for (const line of [/repository: +octo-org\/payments/, /workflow: +octo-org\/payments\/\.github\/workflows\/migrate\.yml@refs\/heads\/main/, /run id: +9876543210/, /run attempt: +1/, /commit: +a3c5e1f09b2d4c6e8f0a1b3c5d7e9f1a2b4c6d8e/, /ref: +refs\/heads\/main/, /event: +push/, /actor: +alice/, /triggering actor: +alice/, /commands: +4/]) {
    assert.match(r.stdout, line);
  }
  const j = JSON.parse((await verify([attested, '--issuer', issuer.url, '--json'])).stdout) as Record<string, any>;
  assert.equal(j.identity.status, 'verified');
  assert.equal(j.identity.claims.repository, 'octo-org/payments');
  assert.equal(j.identity.recorded.kind, 'github-actions');
  assert.equal(j.totals.commands, 4);
  assert.ok(j.signing.checkpoints >= 3, 'every 4 records, and the seal');
});

test('offline: a saved key set verifies without contacting the issuer', async () => {
  const jwks = path.join(work, 'jwks.json');
  assert.equal((await verify([attested, '--issuer', issuer.url, '--save-jwks', jwks])).status, 0);
  const fetches = issuer.jwksFetches;
  const r = await verify([attested, '--jwks', jwks, '--issuer', issuer.url, '--repository', 'octo-org/payments']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(issuer.jwksFetches, fetches, 'the key set was read from the file');
  // An issuer that cannot be reached is its own exit code, with the way out.
  const down = await verify([attested, '--issuer', 'http://127.0.0.1:1']);
  assert.equal(down.status, 6, down.stderr);
  assert.match(down.stderr, /IDENTITY NOT CHECKED: cannot fetch the key set of http:\/\/127\.0\.0\.1:1 .*pass the saved key set with --jwks FILE/);
  // A key set that is not the issuer's.
  const other = await startOidcIssuer();
  const wrongKeys = path.join(work, 'other-jwks.json');
  fs.writeFileSync(wrongKeys, JSON.stringify(other.jwks()));
  await other.close();
  const w = await verify([attested, '--jwks', wrongKeys, '--issuer', issuer.url]);
  assert.equal(w.status, 5, w.stderr);
  assert.match(w.stderr, /no key in .* key set matches the attestation token/);
});

test('expectations: repository, workflow and commit must match the token', async () => {
  const ok = async (args: string[]): Promise<void> => assert.equal((await verify([attested, '--issuer', issuer.url, ...args])).status, 0, args.join(' '));
  await ok(['--repository', 'Octo-Org/Payments']);
  await ok(['--workflow', 'octo-org/payments/.github/workflows/migrate.yml@refs/heads/main']);
  await ok(['--workflow', '.github/workflows/migrate.yml']);
  await ok(['--workflow', '.github/workflows/migrate.yml@refs/heads/main']);
  await ok(['--sha', 'a3c5e1f']);
  // Checks any fork or repository could pass are said to be weak.
  assert.match((await verify([attested, '--issuer', issuer.url, '--sha', 'a3c5e1f'])).stderr, /note: --sha matches the commit in forks too; add --repository OWNER\/NAME/);
  assert.equal((await verify([attested, '--issuer', issuer.url, '--sha', 'a3c5e1f', '--repository', 'octo-org/payments'])).stderr, '');
  for (const [args, message] of [
    [['--repository', 'octo-org/other'], /issued to repository octo-org\/payments, expected octo-org\/other/],
    [['--workflow', '.github/workflows/deploy.yml'], /issued to workflow .*migrate\.yml@refs\/heads\/main, expected \.github\/workflows\/deploy\.yml/],
    [['--workflow', '.github/workflows/migrate.yml@refs/heads/evil'], /expected \.github\/workflows\/migrate\.yml@refs\/heads\/evil/],
    [['--sha', 'ffffffffff'], /issued for commit a3c5e1f.*, expected ffffffffff/],
  ] as [string[], RegExp][]) {
    const r = await verify([attested, '--issuer', issuer.url, ...args]);
    assert.equal(r.status, 5, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
});

test('editing any field of any record is tampering, named by record and line', async () => {
  const lines = linesOf(attested);
  let cases = 0;
  for (let i = 0; i < lines.length; i++) {
    const rec = JSON.parse(lines[i]!) as LogRecord;
    for (const key of Object.keys(rec)) {
      const edited = { ...rec, [key]: mutate(rec[key]) };
      const file = variant('edited.jsonl', lines.map((l, k) => (k === i ? JSON.stringify(edited) : l)));
      const v = await verifyLog(file, { issuer: issuer.url });
      assert.equal(v.status, 'tampered', `record ${i} field ${key}: ${v.problem}`);
      assert.match(v.problem ?? '', new RegExp(`^record ${i} \\(line ${i + 1}\\)`), `record ${i} field ${key}`);
      cases++;
    }
  }
  assert.ok(cases > 100, `${cases} edits`);
  const r = await verify([variant('edited-text.jsonl', lines.map((l) => l.replace('SELECT 3', 'SELECT 9')))]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /TAMPERED: record \d+ \(line \d+\) has been modified \(hash mismatch\)/);
});

function mutate(v: unknown): unknown {
  if (typeof v === 'string') return v.length > 0 ? v.slice(0, -1) + (v.endsWith('0') ? '1' : '0') : 'x';
  if (typeof v === 'number') return v + 1;
  if (typeof v === 'boolean') return !v;
  if (v === null) return 'x';
  if (Array.isArray(v)) return [...v, 'x'];
  return { ...(v as object), injected: true };
}

test('removed, reordered, inserted, truncated, appended and spliced records each get their exit code', async () => {
  const lines = linesOf(attested);
  const cmd = lines.findIndex((l) => l.includes('"type":"command"'));
  const checkpoint = lines.findIndex((l) => l.includes('"type":"checkpoint"'));
  const other = linesOf(await runJob(['-c', 'SELECT 42']));
  const cases: [string, string, number, RegExp][] = [
    ['deleted', variant('deleted.jsonl', lines.filter((_, i) => i !== cmd)), 1, new RegExp(`record ${cmd} \\(line ${cmd + 1}\\) has sequence number ${cmd + 1}, expected ${cmd}`)],
    ['reordered', variant('reordered.jsonl', lines.map((l, i) => (i === cmd ? lines[cmd + 1]! : i === cmd + 1 ? lines[cmd]! : l))), 1, new RegExp(`record ${cmd} \\(line ${cmd + 1}\\)`)],
    ['inserted', variant('inserted.jsonl', [...lines.slice(0, cmd), lines[cmd]!, ...lines.slice(cmd)]), 1, new RegExp(`record ${cmd + 1} \\(line ${cmd + 2}\\) has sequence number ${cmd}`)],
    ['truncated after a checkpoint', variant('cut.jsonl', lines.slice(0, checkpoint + 1)), 4, new RegExp(`UNSEALED: the log has no seal.*the last signed checkpoint is record ${checkpoint}; the 0 records after it are unsigned`)],
    ['truncated mid-line', variant('torn.jsonl', lines.slice(0, checkpoint + 2), '\n' + lines[checkpoint + 2]!.slice(0, 50)), 4, new RegExp(`UNSEALED: record ${checkpoint + 2} \\(line ${checkpoint + 3}\\) is torn.*the 1 records after it are unsigned`)],
    ['appended after the seal', variant('appended.jsonl', [...lines, other[5]!]), 1, new RegExp(`record ${lines.length} \\(line ${lines.length + 1}\\) was appended after the seal`)],
    ['spliced from another run', variant('spliced.jsonl', [...lines.slice(0, cmd), ...other.slice(cmd, cmd + 2), ...lines.slice(cmd)]), 1, new RegExp(`record ${cmd} \\(line ${cmd + 1}\\)`)],
    ['spliced and re-chained without the key', variant('rechained.jsonl', resign([...lines.slice(0, cmd), ...other.slice(cmd, cmd + 2), ...lines.slice(cmd)], (r) => r, { keepKey: true })), 1, /a checkpoint, has a signature that does not verify with the log's public key/],
  ];
  for (const [name, file, code, message] of cases) {
    const r = await verify([file, '--issuer', issuer.url]);
    assert.equal(r.status, code, `${name}: ${r.stderr}`);
    assert.match(r.stderr, message, name);
  }
});

test('a replaced key, a token of another repository or issuer, and a stale token are identity failures (exit 5)', async () => {
  const lines = linesOf(attested);
  // Everything re-signed with the forger's own key: chain and signatures verify, the token does not name the key.
  const rekeyed = await verify([variant('rekeyed.jsonl', resign(lines, (r) => (r.type === 'command' ? { ...r, text: 'SELECT harmless' } : r))), '--issuer', issuer.url]);
  assert.equal(rekeyed.status, 5, rekeyed.stderr);
  assert.match(rekeyed.stderr, /IDENTITY MISMATCH: the attestation token's audience .* does not name this log's signing key \(gateway-action:jwk:.*\): the key was replaced/);

  // A forger with their own key and a token for it from a repository they control.
  const withToken = async (token: (aud: string) => Promise<string>): Promise<string[]> => {
    const signer = new CheckpointSigner();
    const t = await token(keyAudience(signer.thumbprint));
    return resign(lines, (r) => (r.type === 'run-start' ? { ...r, attestation: { ...(r.attestation as object), audience: keyAudience(signer.thumbprint), token: t } } : r), { signer });
  };
  const foreign = await withToken((aud) => issuer.mint(aud, { repository: 'evil-org/payments', sub: 'repo:evil-org/payments:ref:refs/heads/main' }));
  const f = await verify([variant('foreign.jsonl', foreign), '--issuer', issuer.url, '--repository', 'octo-org/payments']);
  assert.equal(f.status, 5, f.stderr);
  assert.match(f.stderr, /issued to repository evil-org\/payments, expected octo-org\/payments/);

  // A token signed by someone else's issuer key.
  const rogue = await startOidcIssuer();
  const forgedIssuerToken = await withToken(async (aud) => (await rogue.mint(aud)));
  await rogue.close();
  const g = await verify([variant('rogue.jsonl', forgedIssuerToken), '--issuer', issuer.url]);
  assert.equal(g.status, 5, g.stderr);
  assert.match(g.stderr, /issued by "http:\/\/127\.0\.0\.1:\d+", expected|no key in .* key set matches/);

  // A genuine token for the key that also names another audience: not bound to one key.
  const multi = await withToken((aud) => issuer.mint([aud, 'api://AzureADTokenExchange']));
  const m = await verify([variant('multi-aud.jsonl', multi), '--issuer', issuer.url]);
  assert.equal(m.status, 5, m.stderr);
  assert.match(m.stderr, /audience is not a single string/);

  // Odd shapes are verdicts, not crashes.
  const nullAttestation = await verify([variant('null-attestation.jsonl', resign(lines, (r) => (r.type === 'run-start' ? { ...r, attestation: null } : r))), '--issuer', issuer.url]);
  assert.equal(nullAttestation.status, 5, nullAttestation.stderr);
  assert.match(nullAttestation.stderr, /the run-start attestation is not a GitHub OIDC token/);

  // A genuine token for the key, but issued long before this log began.
  const stale = await withToken((aud) => issuer.mint(aud, {}, Math.floor(Date.now() / 1000) - 3600));
  const s = await verify([variant('stale.jsonl', stale), '--issuer', issuer.url]);
  assert.equal(s.status, 5, s.stderr);
  assert.match(s.stderr, /the attestation token was issued at .* which does not fit the log's start/);
});

test('tokens expire in minutes, audits happen later: the token is checked as of its own issue time', async () => {
  issuer.lifetimeS = 1;
  let log: string;
  try {
    log = await runJob(['-c', 'SELECT 1']);
  } finally {
    issuer.lifetimeS = 300;
  }
  await new Promise((r) => setTimeout(r, 2100));
  const start = readLog(log)[0]!;
  const exp = JSON.parse(Buffer.from(String(start.attestation.token).split('.')[1]!, 'base64url').toString()).exp as number;
  assert.ok(exp * 1000 < Date.now(), 'the token has expired by now');
  const r = await verify([log, '--issuer', issuer.url]);
  assert.equal(r.status, 0, r.stderr);
});

test('unattested: a local log verifies on its own, but not when an identity is demanded', async () => {
  const logDir = fs.mkdtempSync(path.join(work, 'local-'));
  const env: NodeJS.ProcessEnv = { ...process.env, APP_DB_PASSWORD: 'deployer-pw' };
  for (const k of Object.keys(env)) if (k.startsWith('GITHUB_') || k.startsWith('ACTIONS_')) delete env[k];
  const run = await cliAsync(['run', '--policy', policy, '--log-dir', logDir, '--', 'psql', '-X', '-c', 'SELECT 1'], { env });
  assert.equal(run.status, 0, run.stderr);
  const log = /session log: (.*)/.exec(run.stderr)![1]!.trim();
  assert.equal(readLog(log)[0]!.attestation, 'unattested');
  const plain = await verify([log]);
  assert.equal(plain.status, 0, plain.stderr);
  assert.match(plain.stdout, /identity: +unattested: local user/);
  const demanded = await verify([log, '--repository', 'octo-org/payments']);
  assert.equal(demanded.status, 5);
  assert.match(demanded.stderr, /the log is unattested/);
});

test('a failed token request stops the start: no unattested log pretends to be a job', async () => {
  const logDir = fs.mkdtempSync(path.join(work, 'denied-'));
  const r = await cliAsync(['run', '--policy', policy, '--log-dir', logDir, '--', 'true'], {
    env: { ...process.env, ...issuer.githubEnv(), ...issuer.requestEnv, ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'wrong', APP_DB_PASSWORD: 'deployer-pw' },
  });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /cannot bind the session log's signing key to this job: the OIDC token request to 127\.0\.0\.1:\d+ failed: HTTP 401/);
  assert.equal(r.stderr.includes('wrong'), false, 'the request token is not echoed');
  assert.deepEqual(fs.readdirSync(logDir), []);
});

test('an idle daemon signs what it wrote within the interval, so a SIGKILL leaves nothing unsigned', async () => {
  const gw = startGateway(policyFor(cluster) + 'session-log:\n  checkpoints: { every: 300ms }\n');
  try {
    assert.equal(psql(gw.env, ['-c', 'SELECT 1']).status, 0);
    await new Promise((r) => setTimeout(r, 900));
  } finally {
    process.kill(gw.pid, 'SIGKILL');
  }
  await waitFor(() => { try { process.kill(gw.pid, 0); return false; } catch { return true; } }, 'the daemon to die');
  const r = await verify([gw.logPath()]);
  assert.equal(r.status, 4, r.stderr);
  assert.match(r.stderr, /UNSEALED: the log has no seal.*the 0 records after it are unsigned/);
});

test("under Actions, rules match the claims GitHub signed: the job's environment comes from the token", async () => {
  const rulesPolicy = path.join(work, 'env-rules.yml');
  fs.writeFileSync(rulesPolicy, policyFor(cluster) + `rules:
  - name: production-is-read-only
    when: { environment: production, sql: [insert, update, delete, ddl] }
    action: deny
    reason: production changes go through the release job
default: allow
unclassified: deny
`);
  issuer.job.environment = 'production';
  try {
    const logDir = fs.mkdtempSync(path.join(work, 'env-'));
    const r = await cliAsync(['run', '--policy', rulesPolicy, '--log-dir', logDir, '--', 'psql', '-X', '-c', 'CREATE TABLE prod_t (id int)'], {
      // A variable cannot claim another environment: the token's claim wins.
      env: { ...process.env, ...issuer.requestEnv, ...issuer.githubEnv(), GATEWAY_ENVIRONMENT: 'staging', APP_DB_PASSWORD: 'deployer-pw' },
    });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /denied by rule "production-is-read-only"/);
    const start = readLog(/session log: (.*)/.exec(r.stderr)![1]!.trim())[0]!;
    assert.equal(start.claims.environment, 'production');
  } finally {
    delete issuer.job.environment;
  }
});
