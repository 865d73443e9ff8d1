// docs/session-log.md promises that a log can be verified with bash, sha256sum and grep.
// Run the recipe exactly as documented against a real log from a real gateway run.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { appCluster, cli, policyFor, ROOT, tempDir, type Cluster } from '../helpers/gateway.ts';

let cluster: Cluster;
let log: string;
let recipe: string;
const dir = tempDir();

before(async () => {
  cluster = await appCluster();
  fs.writeFileSync(path.join(dir, 'gateway.yml'), policyFor(cluster));
  const r = cli(['run', '--policy', path.join(dir, 'gateway.yml'), '--log-dir', path.join(dir, 'logs'), '--',
    'psql', '-X', '-c', `SELECT 'quote " and backslash \\ and "prev":"x"' AS tricky`, '-c', 'SELECT * FROM generate_series(1, 3)', '-c', 'SELECT 1/0'],
  { env: { ...process.env, APP_DB_PASSWORD: 'deployer-pw' } });
  assert.equal(r.status, 1, r.stderr);
  log = /session log: (.*)/.exec(r.stderr)![1]!;
  const doc = fs.readFileSync(path.join(ROOT, 'docs/session-log.md'), 'utf8');
  const block = /## Verifying with standard tools[\s\S]*?```bash\n([\s\S]*?)```/.exec(doc);
  assert.ok(block, 'the recipe is in docs/session-log.md');
  recipe = path.join(dir, 'verify-log.sh');
  fs.writeFileSync(recipe, block[1]!);
});

after(() => cluster?.stop());

const runRecipe = (file: string) => spawnSync('bash', [recipe, file], { encoding: 'utf8' });

test('the documented recipe verifies a real log', () => {
  const r = runRecipe(log);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const records = fs.readFileSync(log, 'utf8').trimEnd().split('\n').length;
  assert.equal(r.stdout.trim(), `OK: ${records} records, chain intact, sealed`);
});

test('the documented recipe catches edits, deletions, truncation and appended records', () => {
  const lines = fs.readFileSync(log, 'utf8').trimEnd().split('\n');
  const variant = (name: string, ls: string[], raw = false): string => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, raw ? ls.join('\n') : ls.join('\n') + '\n');
    return f;
  };
  const cmdIndex = lines.findIndex((l) => l.includes('"type":"command"'));
  const edited = [...lines];
  edited[cmdIndex] = edited[cmdIndex]!.replace('tricky', 'TRICKY');
  assert.match(runRecipe(variant('edited', edited)).stdout, new RegExp(`record ${cmdIndex}: hash mismatch`));
  const deleted = lines.filter((_, i) => i !== cmdIndex);
  assert.match(runRecipe(variant('deleted', deleted)).stdout, new RegExp(`record ${cmdIndex}: does not chain`));
  assert.match(runRecipe(variant('truncated', lines.slice(0, -1))).stdout, /unsealed/);
  assert.match(runRecipe(variant('torn', [...lines.slice(0, -1), lines.at(-1)!.slice(0, 30)], true)).stdout, /torn last line/);
  assert.match(runRecipe(variant('appended', [...lines, lines[1]!])).stdout, /appended after the seal/);
  for (const name of ['edited', 'deleted', 'truncated', 'torn', 'appended']) {
    assert.notEqual(runRecipe(path.join(dir, name)).status, 0, name);
  }
});
