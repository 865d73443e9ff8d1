// Bundles the CLI and the action entry points into dist/. GitHub runs dist/ with no node_modules,
// so everything (yaml, ajv, pg-protocol) is inlined. Output is deterministic so a test can compare
// a fresh build with the committed files.
import { build, type Plugin } from 'esbuild';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { copyFileSync, writeFileSync } from 'node:fs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outdir = process.argv[2] ? path.resolve(process.argv[2]) : path.join(root, 'dist');

// ssh2's optional native crypto and cpu-features are compiled per machine: dist/ runs on any
// runner, so they are left out and ssh2 uses its JavaScript/node:crypto paths (it catches the
// failed require). Replaced by a module that throws, so no node_modules nearby can change that.
const withoutNativeAddons: Plugin = {
  name: 'without-native-addons',
  setup(b) {
    b.onResolve({ filter: /\.node$|^cpu-features$/ }, (args) => ({ path: args.path, namespace: 'native-addon' }));
    b.onLoad({ filter: /.*/, namespace: 'native-addon' }, () => ({ contents: "throw new Error('native addons are not bundled');", loader: 'js' }));
  },
};

await build({
  absWorkingDir: root,
  entryPoints: { cli: 'gateway/cli.ts', main: 'action/entry/main.ts', post: 'action/entry/post.ts' },
  outdir,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  legalComments: 'none',
  logLevel: 'warning',
  plugins: [withoutNativeAddons],
  banner: {
    // ESM bundles of CommonJS dependencies need a require(); the shebang makes dist/cli.js the bin.
    // __dirname lets the bundled WebAssembly loader find libpg-query.wasm beside the bundle.
    js: "#!/usr/bin/env node\nimport { createRequire as __gwCreateRequire } from 'node:module';\nimport { dirname as __gwDirname } from 'node:path';\nimport { fileURLToPath as __gwFileURLToPath } from 'node:url';\nconst require = __gwCreateRequire(import.meta.url);\nvar __dirname = __gwDirname(__gwFileURLToPath(import.meta.url));",
  },
});

// The SQL classifier's WebAssembly parser is loaded at run time from beside the bundle.
copyFileSync(path.join(root, 'node_modules/libpg-query/wasm/libpg-query.wasm'), path.join(outdir, 'libpg-query.wasm'));
// So is the SSH exec-line parser's: tree-sitter's runtime and its bash grammar.
copyFileSync(path.join(root, 'node_modules/web-tree-sitter/web-tree-sitter.wasm'), path.join(outdir, 'web-tree-sitter.wasm'));
copyFileSync(path.join(root, 'node_modules/tree-sitter-bash/tree-sitter-bash.wasm'), path.join(outdir, 'tree-sitter-bash.wasm'));
// The report's terminal player (asciinema-player's bundle) is read at run time from beside the bundle too.
for (const f of ['asciinema-player.min.js', 'asciinema-player.css']) copyFileSync(path.join(root, 'node_modules/asciinema-player/dist/bundle', f), path.join(outdir, f));

// The policy schema editors read (yaml-language-server): the core's merged with every shipped
// adapter's targets and conditions, as the loader validates. Written beside the loader, and only
// for the real dist/ (a build into another directory, as the dist test does, leaves it alone).
if (!process.argv[2]) {
  const { policySchemaText } = await import('../gateway/adapters.ts');
  writeFileSync(path.join(root, 'gateway/config/policy.schema.json'), policySchemaText());
}
