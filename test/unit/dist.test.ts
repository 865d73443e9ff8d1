// GitHub runs dist/ and nothing else: the committed bundle must be what the sources build to.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, tempDir } from '../helpers/gateway.ts';
import { VERSION } from '../../gateway/version.ts';

test('dist/ matches a fresh build of the sources', () => {
  const out = tempDir('gw-dist-');
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts/build.ts'), out], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  for (const f of ['cli.js', 'main.js', 'post.js', 'libpg-query.wasm', 'web-tree-sitter.wasm', 'tree-sitter-bash.wasm', 'asciinema-player.min.js', 'asciinema-player.css']) {
    const fresh = fs.readFileSync(path.join(out, f));
    const committed = fs.readFileSync(path.join(ROOT, 'dist', f));
    assert.ok(fresh.equals(committed), `dist/${f} is stale: run \`npm run build\` and commit dist/`);
  }
  fs.rmSync(out, { recursive: true, force: true });
});

test('gateway/config/policy.schema.json is the schema the loader validates with (the build writes it)', async () => {
  const { policySchemaText } = await import('../../gateway/adapters.ts');
  const committed = fs.readFileSync(path.join(ROOT, 'gateway/config/policy.schema.json'), 'utf8');
  assert.ok(committed === policySchemaText(), 'gateway/config/policy.schema.json is stale: run `npm run build` and commit it');
});

test('the version in the code is the one in package.json', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
  assert.equal(VERSION, pkg.version);
});

test('tests run on the pinned Node 24 runtime (the one GitHub runs actions on)', () => {
  assert.equal(process.versions.node.split('.')[0], '24');
});
