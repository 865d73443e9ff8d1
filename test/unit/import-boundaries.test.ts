// The seam holds only if the core never reaches into a protocol: gateway/daemon, gateway/config,
// gateway/evidence, gateway/core, gateway/policy, gateway/masking, gateway/approval and action/
// import no adapter folder (and no composition root that does), so a new protocol is an adapter,
// not a fork. Read from the sources' import statements, including dynamic imports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from '../helpers/gateway.ts';

const CORE = ['gateway/daemon', 'gateway/config', 'gateway/evidence', 'gateway/core', 'gateway/policy', 'gateway/masking', 'gateway/approval', 'action'];
/** A folder with an adapter.ts that is not the core (whose core/adapter.ts is the seam itself). */
const ADAPTER_FOLDERS = fs.readdirSync(path.join(ROOT, 'gateway'), { withFileTypes: true })
  .filter((d) => d.isDirectory() && !CORE.includes(`gateway/${d.name}`) && fs.existsSync(path.join(ROOT, 'gateway', d.name, 'adapter.ts')))
  .map((d) => path.join(ROOT, 'gateway', d.name));

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = path.join(dir, d.name);
    return d.isDirectory() ? sources(p) : d.name.endsWith('.ts') ? [p] : [];
  });
}

/** Every module specifier of static imports, re-exports and dynamic imports. */
function specifiers(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/\b(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s*['"]([^'"]+)['"]/gm)) out.push((m[1] ?? m[2] ?? m[3])!);
  return out;
}

function violations(): string[] {
  const out: string[] = [];
  for (const area of CORE) {
    for (const file of sources(path.join(ROOT, area))) {
      for (const spec of specifiers(fs.readFileSync(file, 'utf8'))) {
        if (!spec.startsWith('.')) continue;
        const target = path.resolve(path.dirname(file), spec);
        const bad = ADAPTER_FOLDERS.find((f) => target === f || target.startsWith(f + path.sep)) ?? (target === path.join(ROOT, 'gateway/adapters.ts') && area !== 'action' ? 'the composition root' : undefined);
        if (bad) out.push(`${path.relative(ROOT, file)} imports ${spec}`);
      }
    }
  }
  return out;
}

test('there is an adapter folder to keep out (the check cannot pass vacuously)', () => {
  assert.ok(ADAPTER_FOLDERS.some((f) => f.endsWith(`${path.sep}postgres`)), ADAPTER_FOLDERS.join(', '));
});

test('the daemon, config, evidence, core, policy, masking, approval and action/ import no adapter folder', () => {
  assert.deepEqual(violations(), []);
});

test('the check sees static, re-exported and dynamic imports', () => {
  const text = `import { a } from '../postgres/x.ts';\nexport { b } from "../ssh/y.ts";\nconst c = await import('../http/z.ts');\nimport '../k/side.ts';\nimport type { T } from '../postgres/t.ts';`;
  assert.deepEqual(specifiers(text), ['../postgres/x.ts', '../ssh/y.ts', '../http/z.ts', '../k/side.ts', '../postgres/t.ts']);
});
