// The masking engine, protocol-independent: which result columns are masked by name, and
// which secrets or personal data inside any text are masked by detector. Adapters decide
// where it applies (what the client receives, what the session log records).

import { DETECTORS, DETECTOR_ORDER, maskEmail, type Detector, type DetectorName } from './detectors.ts';
import { JsonMasker, type JsonOptions } from './json-masker.ts';
import { StreamMasker, type StreamOptions } from './stream-masker.ts';
import { nameGlob } from '../policy/glob.ts';

export interface MaskingRules {
  columns: string[];
  detectors: DetectorName[];
  applyTo: { client: boolean; log: boolean };
  /** JSONPath-subset paths masked whole in JSON bodies (json-path.ts); none when absent. */
  jsonFields?: string[];
}

/** One part of a column pattern, matching one identifier. */
type NameTest = (name: string) => boolean;

interface ColumnPattern {
  column: NameTest;
  /** Absent for a bare column name, which matches in any table and computed columns too. */
  table?: NameTest;
  schema?: NameTest;
}

/** Splits `a."B.c".*` into identifiers, honouring double quotes (and `""` inside them). */
function splitIdentifiers(pattern: string): { text: string; quoted: boolean }[] {
  const parts: { text: string; quoted: boolean }[] = [];
  let text = '';
  let quoted = false;
  let inQuotes = false;
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (inQuotes) {
      if (ch !== '"') text += ch;
      else if (pattern[i + 1] === '"') text += pattern[++i];
      else inQuotes = false;
    } else if (ch === '"') {
      inQuotes = quoted = true;
    } else if (ch === '.') {
      parts.push({ text, quoted });
      text = '';
      quoted = false;
    } else {
      text += ch;
    }
  }
  if (inQuotes) throw new Error(`masking column pattern "${pattern}": unterminated quote`);
  parts.push({ text, quoted });
  return parts;
}

// Quoted identifiers are exact, as in SQL. Unquoted ones compare case-insensitively even
// though PostgreSQL folds them to lower case: a column created as "Email" is still meant.
function nameTest(part: { text: string; quoted: boolean }, pattern: string): NameTest {
  if (part.text === '') throw new Error(`masking column pattern "${pattern}": empty name`);
  if (part.quoted) return (name) => name === part.text;
  if (!part.text.includes('*')) {
    const lower = part.text.toLowerCase();
    return (name) => name.toLowerCase() === lower;
  }
  return nameGlob(part.text, { ignoreCase: true });
}

function compileColumn(pattern: string): ColumnPattern {
  const parts = splitIdentifiers(pattern.trim()).map((p) => ({ text: p.quoted ? p.text : p.text.trim(), quoted: p.quoted }));
  if (parts.length > 3) throw new Error(`masking column pattern "${pattern}": at most schema.table.column`);
  const tests = parts.map((p) => nameTest(p, pattern));
  const column = tests.pop()!;
  const table = tests.pop();
  const schema = tests.pop();
  return { column, table, schema };
}

/** Why a column pattern is malformed (for the policy loader's message), or null. */
export function columnPatternProblem(pattern: string): string | null {
  if (/[[\]?{}]/.test(pattern) || pattern.includes('**')) return 'only * is a wildcard';
  try {
    compileColumn(pattern);
    return null;
  } catch (e) {
    return (e as Error).message.replace(/^masking column pattern "(?:[^"]|"")*": /, '');
  }
}

/** `schema.table` as the caller knows it; a name without a schema leaves the schema unknown. */
function splitTable(table: string): { schema: string | null; name: string } {
  const dot = table.indexOf('.');
  return dot < 0 ? { schema: null, name: table } : { schema: table.slice(0, dot), name: table.slice(dot + 1) };
}

/** A `\u` escape (behind any number of backslashes: JSON inside an array or record literal
 * doubles them) of a character detectors match: letters, digits, `@ . _ % + - / : = ~` and space.
 * Structural characters (quotes, backslashes, commas, braces) stay escaped, so the decoded text
 * parses as the original did. */
const TOKEN_CHAR = /^[A-Za-z0-9@._%+\-/:=~ ]$/;
const ESCAPED_TOKEN_CHAR = /\\u00[2-7][0-9A-Fa-f]/;
const ESCAPED_TOKEN_CHARS = /\\+u(00[2-7][0-9A-Fa-f])/g;

const EMAIL_VALUE = /^[^\s@]+@[^\s@]+\.([A-Za-z]{2,24})$/;

export class Masker {
  /** Any columns or detectors. */
  readonly enabled: boolean;
  /** Any detectors: text values need scanning even in columns not masked by name. */
  readonly detects: boolean;
  /** Some columns are masked by name, so results need their columns' table and real names. */
  readonly masksColumns: boolean;
  readonly applyTo: { readonly client: boolean; readonly log: boolean };
  /** The policy's `json-fields`: what json() masks whole in a JSON body. */
  readonly jsonFields: readonly string[];
  readonly #columns: ColumnPattern[];
  readonly #detectors: Detector[];
  /** One pass that rules out most text before any detector runs; null with no detectors. */
  readonly #precheck: RegExp | null;

  constructor(rules: MaskingRules) {
    this.#columns = rules.columns.map(compileColumn);
    const wanted = new Set(rules.detectors);
    for (const d of wanted) if (!Object.hasOwn(DETECTORS, d)) throw new Error(`unknown masking detector "${d}"`);
    this.#detectors = DETECTOR_ORDER.filter((n) => wanted.has(n)).map((n) => DETECTORS[n]);
    this.#precheck = this.#detectors.length ? new RegExp(this.#detectors.map((d) => `(?:${d.hint})`).join('|')) : null;
    this.detects = this.#detectors.length > 0;
    this.masksColumns = this.#columns.length > 0;
    this.enabled = this.#columns.length > 0 || this.detects;
    this.applyTo = { client: rules.applyTo.client, log: rules.applyTo.log };
    this.jsonFields = rules.jsonFields ?? [];
  }

  /** Which columns of a result are masked by name. `table` is "schema.table" when the source
   * table is known, null when the column is computed/unknown. A bare pattern matches the
   * column anywhere; `table.col` that table in any schema; `schema.table.col` exactly; `*`
   * globs within one part. Unquoted names compare case-insensitively. */
  columnMasked(column: string, table: string | null): boolean {
    const t = table === null ? null : splitTable(table);
    return this.#columns.some((p) => {
      if (!p.column(column)) return false;
      if (!p.table) return true;
      if (!t || !p.table(t.name)) return false;
      // An unknown schema could be the pattern's: over-masking is the safe mistake.
      return !p.schema || t.schema === null || p.schema(t.schema);
    });
  }

  /** True when a qualified pattern could match this column name if its table were known (so
   * the caller can decide to over-mask when the table is unknown). */
  columnNeedsTable(column: string): boolean {
    return this.#columns.some((p) => p.table !== undefined && p.column(column));
  }

  /** The enabled detectors, in the order they run (the stream and JSON faces derive their
   * hold-back from them). */
  get detectorList(): readonly Detector[] {
    return this.#detectors;
  }

  /** A masker for one stream of text or terminal output (stream-masker.ts): the same
   * detectors, across chunk boundaries. */
  stream(options?: StreamOptions): StreamMasker {
    return new StreamMasker(this, options);
  }

  /** A masker for one streamed JSON body (json-masker.ts): values at the given JSONPath-subset
   * paths masked whole, every string (and key) read by the detectors. Throws on a path it
   * cannot read (jsonPathProblem says why). */
  json(paths: readonly string[], options?: JsonOptions): JsonMasker {
    return new JsonMasker(this, paths, options);
  }

  /** Scans text with the enabled detectors; the masked text and which detectors fired, or
   * null when nothing matched. */
  maskText(s: string): { text: string; detectors: DetectorName[] } | null {
    if (this.#precheck === null) return null;
    // JSON may write any character as \uXXXX (`"alice\u0040example.com"`; json values keep
    // the escapes as written): detectors read the text with escapes of the characters secrets
    // are made of decoded, and when they find something, that decoded text is what is returned.
    if (ESCAPED_TOKEN_CHAR.test(s)) {
      const r = this.#scan(s.replace(ESCAPED_TOKEN_CHARS, (m, hex: string) => (TOKEN_CHAR.test(String.fromCharCode(parseInt(hex, 16))) ? String.fromCharCode(parseInt(hex, 16)) : m)));
      if (r) return r;
    }
    return this.#scan(s);
  }

  #scan(s: string): { text: string; detectors: DetectorName[] } | null {
    if (this.#precheck === null || !this.#precheck.test(s)) return null;
    let text = s;
    let fired: DetectorName[] | null = null;
    for (const d of this.#detectors) {
      const out = d.mask(text);
      if (out === null) continue;
      text = out;
      (fired ??= []).push(d.name);
    }
    return fired && { text, detectors: fired };
  }

  /** A whole value masked because its column is masked: keeps a hint of its shape (an email's
   * first letter and TLD, a number's last 4 digits when it has 8 or more), never the value. */
  maskWholeValue(s: string): string {
    const email = EMAIL_VALUE.exec(s);
    if (email) return maskEmail(s, email[1]!);
    if (/^[\d\s().+/-]+$/.test(s)) {
      const digits = s.replace(/\D/g, '');
      if (digits.length >= 8) return `****${digits.slice(-4)}`;
    }
    return '****';
  }
}
