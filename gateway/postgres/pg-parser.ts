// The real PostgreSQL parser (libpg-query, WebAssembly), loaded once when a policy needs it, and
// bounded: a text longer than MAX_PARSED_TEXT is refused as one the parser rejects.

/**
 * The Node flag processes that classify must start with: V8's optimizing compiler needs about
 * 550 MB, briefly, to tier up the parser's WebAssembly, and a running process cannot opt out.
 * The baseline compiler parses about 20% slower and keeps the footprint under 100 MB.
 */
export const BASELINE_WASM_FLAG = '--liftoff-only';

// Loaded on first use: the WebAssembly parser costs memory that a policy without rules never needs.
export type LibPgQuery = typeof import('libpg-query');
let pgQuery: LibPgQuery | null = null;

/**
 * The longest text (in UTF-16 code units) the parser is given. A parse tree is hundreds of times
 * its text (`SELECT 1,1,...` of 4 MiB took 1.3 GB and 17 s of the one event loop every session
 * shares; 15 MiB aborted the parser), so a longer text is treated as one the parser rejects:
 * unclassified, masked coarsely, its names forgotten.
 */
export const MAX_PARSED_TEXT = 1024 * 1024;

/** The parser with every entry point refusing texts over MAX_PARSED_TEXT (every caller reads a throw as "does not parse"). */
function bounded(m: LibPgQuery): LibPgQuery {
  const check = (text: string): void => {
    if (text.length > MAX_PARSED_TEXT) throw new Error(`the text is ${text.length} characters long and the gateway parses at most ${MAX_PARSED_TEXT}`);
  };
  return {
    ...m,
    parseSync: ((text: string) => (check(text), m.parseSync(text))) as LibPgQuery['parseSync'],
    scanSync: ((text: string) => (check(text), m.scanSync(text))) as LibPgQuery['scanSync'],
  };
}

let ready: Promise<void> | null = null;
/** Loads the parser (about 20 ms); classify() and the other readers may be called once this resolves. */
export function loadSqlParser(): Promise<void> {
  return (ready ??= import('libpg-query').then(async (m) => {
    await m.loadModule();
    pgQuery = bounded(m);
  }));
}

export function parser(): LibPgQuery {
  if (!pgQuery) throw new Error('the SQL classifier is not loaded (call loadSqlParser first)');
  return pgQuery;
}

/** The parser if a policy needed it loaded, else null (role-passwords.ts then masks coarsely). */
export function loadedParser(): LibPgQuery | null {
  return pgQuery;
}
