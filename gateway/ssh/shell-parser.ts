// The real shell parser that reads exec lines: tree-sitter's bash grammar, compiled to
// WebAssembly, run by web-tree-sitter. Loaded once (about 40 ms); a parse then takes tens of
// microseconds and is synchronous, so concurrent sessions never share a half-done parse.
//
// sh-syntax (mvdan/sh as Go WebAssembly) was the first choice and was dropped: its JSON output
// keeps only statement positions and redirect words (a command is `{Pos, End}`: no node types,
// no words), so nothing can be classified from it.
//
// The two .wasm files are read from beside the bundle (dist/, where scripts/build.ts copies
// them: GitHub runs dist/ with no node_modules) and else from node_modules.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Language, Parser, type Node, type Tree } from 'web-tree-sitter';

export type { Node as ShellNode };

/** The longest exec line (in UTF-16 code units) the parser is given; a longer one is unclassified. */
export const MAX_EXEC_LINE = 256 * 1024;

let parser: Parser | null = null;
let loading: Promise<void> | null = null;

async function wasmBytes(besideBundle: string, packageFile: string): Promise<Uint8Array> {
  const here = path.dirname(fileURLToPath(import.meta.url));
  try {
    return await readFile(path.join(here, besideBundle));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  return readFile(createRequire(import.meta.url).resolve(packageFile));
}

/** Loads the parser once; parseShell() may be called when this resolves. */
export function loadShellParser(): Promise<void> {
  return (loading ??= (async () => {
    const [runtime, bash] = await Promise.all([
      wasmBytes('web-tree-sitter.wasm', 'web-tree-sitter/web-tree-sitter.wasm'),
      wasmBytes('tree-sitter-bash.wasm', 'tree-sitter-bash/tree-sitter-bash.wasm'),
    ]);
    await Parser.init({ wasmBinary: runtime });
    const p = new Parser();
    p.setLanguage(await Language.load(bash));
    parser = p;
  })().catch((e: unknown) => {
    loading = null;
    throw e;
  }));
}

export type ShellParse = { tree: Tree } | { error: string };

/**
 * Parses a script. A text the grammar does not accept whole (tree-sitter recovers from errors
 * and marks them) is an error: a recovered tree is a guess, and guesses are not read.
 * The caller must delete() the tree.
 */
export function parseShell(text: string): ShellParse {
  if (!parser) throw new Error('the shell parser is not loaded (call loadShellParser first)');
  if (text.length > MAX_EXEC_LINE) return { error: `the line is ${text.length} characters long and the gateway reads at most ${MAX_EXEC_LINE}` };
  const tree = parser.parse(text);
  if (!tree) return { error: 'the shell parser gave no tree' };
  if (tree.rootNode.hasError) {
    const where = firstError(tree.rootNode);
    tree.delete();
    return { error: `the shell parser does not accept it${where}` };
  }
  return { tree };
}

function firstError(n: Node): string {
  if (n.isError || n.isMissing) return ` (at character ${n.startIndex + 1})`;
  for (const c of n.children) {
    if (c && c.hasError) return firstError(c);
  }
  return '';
}
