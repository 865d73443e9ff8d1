// Classification is about structure, not values: `... WHERE aid = 1` and `... WHERE aid = 2`
// have the same classes and tables. Statements an application sends over and over differ only
// in their literals, so their classification is cached by the text's shape (the text with its
// number and plain string literals replaced). The shape is taken only from plainly lexed text:
// anything where two lexers could disagree (backslashes, dollar quotes, comments, prefixed or
// Unicode strings and names, whose UESCAPE literal changes what they spell, non-ASCII) is
// classified afresh, and so is anything whose classification
// depends on a literal's value (EXPLAIN options) or on session state (PREPARE/EXECUTE).
import { classify, type Classification, type PreparedClasses } from './sql-classifier.ts';
import { normalizeSql } from './sql-normalize.ts';

const MAX_ENTRIES = 4096;
const MAX_TEXT = 4096;
/** For one statement, where its own text sits (the same for every text of the shape). */
interface Entry { c: Classification & { ok: true }; prefix: number; suffix: number }
const cache = new Map<string, Entry>();

/** Plain ASCII SQL without the constructs the shape cannot vouch for. */
const PLAIN = /^[A-Za-z0-9_ \t\r\n,.;()=<>+\-*/%'"[\]:!|&^~@#?$]*$/;
/** Stands for a literal in a shape; never part of a plain text, so it cannot be forged. */
const LITERAL = '\u0000';
const UNSAFE = /--|\/\*|&|\buescape\b|\bexplain\b|\bexecute\b|\bprepare\b|\bdeallocate\b/i;

/**
 * The text with literals replaced by LITERAL, or null when the text is not plain enough to say.
 * With keepStrings, only numbers are replaced: string literals stay as written (for facts that
 * read the words of strings, computed-columns.ts).
 */
export function literalShape(text: string, keepStrings = false): string | null {
  // Classification and the facts of computed columns both ask for the shape of the same text,
  // one after the other; without a string literal in it, its two shapes are one.
  const last = lastShape;
  if (last !== null && last.text === text && (last.keepStrings === keepStrings || !last.sawString)) return last.shape;
  const r = scanShape(text, keepStrings);
  lastShape = { text, keepStrings, shape: r.shape, sawString: r.sawString };
  return r.shape;
}

let lastShape: { text: string; keepStrings: boolean; shape: string | null; sawString: boolean } | null = null;

/** No shape; marked as if it had a string, so the other kind of shape is not taken from it. */
const REFUSED = Object.freeze({ shape: null, sawString: true });

function scanShape(text: string, keepStrings: boolean): { shape: string | null; sawString: boolean } {
  if (text.length > MAX_TEXT || !PLAIN.test(text) || UNSAFE.test(text)) return REFUSED;
  // The shape is the text with literal spans replaced: what lies between them is copied in one
  // slice each, so a shape is a few pieces rather than one per token.
  let out = '';
  let copied = 0;
  let sawString = false;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 39 /* ' */) {
      // E'..', X'..', N'..', U&'..' and the like are not plain strings.
      if (isWordChar(text.charCodeAt(i - 1)) || text.charCodeAt(i - 1) === 38) return REFUSED;
      let j = i + 1;
      for (;;) {
        if (j >= n) return REFUSED;
        if (text.charCodeAt(j) === 39) {
          if (text.charCodeAt(j + 1) === 39) j += 2;
          else break;
        } else j++;
      }
      sawString = true;
      if (!keepStrings) {
        out += text.slice(copied, i) + LITERAL;
        copied = j + 1;
      }
      i = j + 1;
    } else if (c === 34 /* " */) {
      const end = text.indexOf('"', i + 1);
      if (end < 0) return REFUSED;
      i = end + 1;
    } else if ((c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95) {
      // A word (keyword or identifier), digits and all, as written.
      i++;
      while (isWordChar(text.charCodeAt(i))) i++;
    } else if (c >= 48 && c <= 57) {
      // Only the plain forms 12, 1.5, 1e5, 1.5e-3, standing alone; anything else is not plain.
      if (isWordChar(text.charCodeAt(i - 1)) || text.charCodeAt(i - 1) === 46) return REFUSED;
      let j = digits(text, i);
      if (text.charCodeAt(j) === 46) {
        if (!isDigit(text.charCodeAt(j + 1))) return REFUSED;
        j = digits(text, j + 1);
      }
      if (text.charCodeAt(j) === 101 || text.charCodeAt(j) === 69) {
        const sign = text.charCodeAt(j + 1) === 43 || text.charCodeAt(j + 1) === 45 ? 1 : 0;
        if (!isDigit(text.charCodeAt(j + 1 + sign))) return REFUSED;
        j = digits(text, j + 1 + sign);
      }
      if (isWordChar(text.charCodeAt(j)) || text.charCodeAt(j) === 46) return REFUSED;
      out += text.slice(copied, i) + LITERAL;
      copied = i = j;
    } else if (c === 36 /* $ */) {
      // Only parameters ($1): a dollar quote ($$, $tag$) is not plain text.
      if (!isDigit(text.charCodeAt(i + 1))) return REFUSED;
      i = digits(text, i + 1);
      if (isWordChar(text.charCodeAt(i))) return REFUSED;
    } else {
      i++;
    }
  }
  return { shape: copied === 0 ? text : out + text.slice(copied), sawString };
}

function isWordChar(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
}
function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}
function digits(text: string, i: number): number {
  while (isDigit(text.charCodeAt(i))) i++;
  return i;
}

/** classify(), answered from the cache for a text shaped like one classified before. */
export function classifyCached(text: string, prepared: PreparedClasses, options: { normalize?: boolean }): Classification {
  const shape = literalShape(text);
  if (shape === null) return classify(text, prepared, options);
  const hit = cache.get(shape);
  if (hit) {
    // The statement's own text and normalized form are the current text's, cut where the
    // cached one was cut: only whitespace and semicolons lie outside it, identical in both.
    const s = hit.c.statements[0]!;
    const own = text.slice(hit.prefix, text.length - hit.suffix);
    return { ok: true, prepared: [], statements: [{ text: own, normalized: options.normalize ? normalizeSql(own) : '', classes: s.classes, tables: s.tables }] };
  }
  const c = classify(text, prepared, options);
  // Only single statements: a multi-statement text is rare on hot paths and cut in several places.
  if (c.ok && c.prepared.length === 0 && c.statements.length === 1) {
    const own = c.statements[0]!.text;
    const prefix = text.indexOf(own);
    if (prefix >= 0 && /^[\s;]*$/.test(text.slice(0, prefix) + text.slice(prefix + own.length))) {
      if (cache.size >= MAX_ENTRIES) cache.clear();
      cache.set(shape, { c, prefix, suffix: text.length - prefix - own.length });
    }
  }
  return c;
}
