// docs/session-log.md promises that a log can be verified with bash, coreutils, jq and OpenSSL:
// chain, checkpoint signatures, seal, and the OIDC token that binds the key. Run the recipe
// exactly as documented against real logs (local and attested) and tampered copies.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { appCluster, cliAsync, policyFor, ROOT, tempDir, type Cluster } from '../helpers/gateway.ts';
import { startOidcIssuer, type OidcIssuer } from '../helpers/oidc-issuer.ts';
import { resign } from '../helpers/log-forgery.ts';

let cluster: Cluster;
let issuer: OidcIssuer;
let local: string;
let attested: string;
let jwks: string;
let recipe: string;
const dir = tempDir();

const PSQL = ['psql', '-X', '-c', `SELECT 'quote " and backslash \\ and "prev":"x" and ,"hash":"' AS tricky`, '-c', 'SELECT * FROM generate_series(1, 3)', '-c', 'SELECT 1/0'];

async function job(env: NodeJS.ProcessEnv): Promise<string> {
  const r = await cliAsync(['run', '--policy', path.join(dir, 'gateway.yml'), '--log-dir', fs.mkdtempSync(path.join(dir, 'logs-')), '--', ...PSQL], { env: { ...env, APP_DB_PASSWORD: 'deployer-pw' } });
  assert.equal(r.status, 1, r.stderr);
  return /session log: (.*)/.exec(r.stderr)![1]!.trim();
}

before(async () => {
  cluster = await appCluster();
  issuer = await startOidcIssuer();
  fs.writeFileSync(path.join(dir, 'gateway.yml'), policyFor(cluster) + 'session-log:\n  checkpoints: { every-records: 3 }\n');
  const plainEnv: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(plainEnv)) if (k.startsWith('ACTIONS_') || k.startsWith('GITHUB_')) delete plainEnv[k];
  local = await job(plainEnv);
  attested = await job({ ...process.env, ...issuer.requestEnv, ...issuer.githubEnv() });
  jwks = path.join(dir, 'jwks.json');
  const saved = await cliAsync(['verify', attested, '--issuer', issuer.url, '--save-jwks', jwks]);
  assert.equal(saved.status, 0, saved.stderr);
  const doc = fs.readFileSync(path.join(ROOT, 'docs/session-log.md'), 'utf8');
  const block = /## Verifying with standard tools[\s\S]*?```bash\n([\s\S]*?)```/.exec(doc);
  assert.ok(block, 'the recipe is in docs/session-log.md');
  recipe = path.join(dir, 'verify-log.sh');
  fs.writeFileSync(recipe, block[1]!);
});

after(async () => {
  await issuer?.close();
  cluster?.stop();
});

const runRecipe = (file: string, keys?: string) => spawnSync('bash', [recipe, file, ...(keys ? [keys] : [])], { encoding: 'utf8', env: { ...process.env, ISSUER: issuer.url } });
const linesOf = (file: string): string[] => fs.readFileSync(file, 'utf8').trimEnd().split('\n');
const variant = (name: string, ls: string[], raw = false): string => {
  const f = path.join(dir, name);
  fs.writeFileSync(f, raw ? ls.join('\n') : ls.join('\n') + '\n');
  return f;
};

test('the documented recipe verifies a real local log and says it is unattested', () => {
  const r = runRecipe(local);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const records = linesOf(local).length;
  assert.match(r.stdout, new RegExp(`^OK: ${records} records, chain intact, checkpoints signed, sealed; key [\\w-]{43}\\nidentity: unattested`));
});

test('the documented recipe verifies an attested log and prints the identity the token proves', () => {
  const r = runRecipe(attested, jwks);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /identity: verified\n {2}repository: octo-org\/payments\n {2}workflow: octo-org\/payments\/\.github\/workflows\/migrate\.yml@refs\/heads\/main\n {2}run: 9876543210 attempt 1\n {2}commit: a3c5e1f0/);
  assert.match(r.stdout, /triggering actor: alice/);
});

test('the documented recipe catches what verify catches', async () => {
  const lines = linesOf(attested);
  const cmd = lines.findIndex((l) => l.includes('"type":"command"'));
  const checkpoint = lines.findIndex((l) => l.includes('"type":"checkpoint"'));
  const other = await startOidcIssuer();
  const otherKeys = variant('other-jwks.json', [JSON.stringify(other.jwks())]);
  await other.close();
  const cases: [string, string, RegExp][] = [
    ['edited', variant('edited', lines.map((l, i) => (i === cmd ? l.replace('tricky', 'TRICKY') : l))), new RegExp(`record ${cmd}: hash mismatch`)],
    ['deleted', variant('deleted', lines.filter((_, i) => i !== cmd)), new RegExp(`record ${cmd}: does not chain`)],
    ['seal removed', variant('truncated', lines.slice(0, -1)), new RegExp(`unsealed: ${lines.length - 1} records; last signed checkpoint: \\d+`)],
    ['cut after a checkpoint', variant('cut', lines.slice(0, checkpoint + 1)), new RegExp(`unsealed: ${checkpoint + 1} records; last signed checkpoint: ${checkpoint}`)],
    ['torn', variant('torn', [...lines.slice(0, -1), lines.at(-1)!.slice(0, 30)], true), /unsealed: record \d+ is torn/],
    ['appended', variant('appended', [...lines, lines[1]!]), /appended after the seal/],
    ['re-chained without the key', variant('rechained', resign(lines.map((l, i) => (i === cmd ? l.replace('tricky', 'TRICKY') : l)), (r) => r, { keepKey: true })), /checkpoint's signature does not verify with the log's key/],
    ['re-signed with another key', variant('rekeyed', resign(lines)), /token: its audience does not name this log's key/],
  ];
  for (const [name, file, message] of cases) {
    const r = runRecipe(file, jwks);
    assert.notEqual(r.status, 0, name);
    assert.match(r.stdout, message, `${name}: ${r.stdout}${r.stderr}`);
    // The tool agrees that each is bad.
    assert.notEqual((await cliAsync(['verify', file, '--jwks', jwks, '--issuer', issuer.url])).status, 0, name);
  }
  const wrongKeys = runRecipe(attested, otherKeys);
  assert.notEqual(wrongKeys.status, 0);
  assert.match(wrongKeys.stdout, /token: no key in .* has the token's kid/);
});
