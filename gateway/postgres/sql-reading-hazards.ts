// Texts the server may read differently from the classifier, which reads them as UTF-8 with
// standard_conforming_strings on: such texts are unclassified, never read the harmless way.

/** A token of the SQL scanner (libpg-query's scanSync). */
export interface ScanToken { start: number; end: number; text: string; tokenName: string }

/**
 * Why the server may read `text` differently from the parser here, which reads it as UTF-8 with
 * standard_conforming_strings on; null when it cannot. A client can switch either setting
 * (SET, set_config(), startup parameters, ALTER DATABASE ... SET) without the text showing it,
 * so any text whose meaning depends on them is unclassified, never read the harmless way:
 *
 * - standard_conforming_strings off: a backslash escapes the next character in '...' strings.
 *   In `SELECT 'a\' /* ', 1; DELETE FROM t --` followed by the comment's end, the parser sees
 *   the string 'a\' and a comment; the server sees the string 'a'' /* ' and runs the DELETE.
 * - a client encoding such as SJIS, BIG5 or GBK, whose characters may end in the byte of `\`:
 *   in `SELECT E'Á\'; DELETE FROM t; --'` the server (in SJIS) sees no backslash before the
 *   second quote, so the string ends there and the DELETE runs.
 * - bytes that are not UTF-8 (decoded here as U+FFFD): what they are depends on the encoding.
 *
 * Readings can only part inside a string literal, at a backslash, so each such literal is read
 * the other ways too; where it ends the same, the readings go on together from there.
 */
export function readingHazard(text: string, scan: (text: string) => ScanToken[]): string | null {
  if (text.includes('\uFFFD')) return 'the statement is not valid UTF-8, so what the server reads depends on the client encoding';
  if (!text.includes('\\')) return null;
  const bytes = Buffer.from(text, 'utf8');
  const multibyte = /[^\x00-\x7f]/.test(text);
  let tokens: ScanToken[];
  try {
    tokens = scan(text);
  } catch (e) {
    return `the SQL scanner rejected the statement: ${(e as Error).message}`;
  }
  for (const t of tokens) {
    if (t.tokenName !== 'SCONST' || !t.text.includes('\\')) continue;
    // '...' (also after N) and E'...'; U&'', $$, B'' and X'' give a backslash no say in where they end.
    const plain = bytes[t.start] === 0x27;
    if (!plain && !/^[eE]'/.test(t.text)) continue;
    const quote = plain ? t.start : t.start + 1;
    if (plain && stringEnd(bytes, quote, UTF8) !== t.end) {
      return 'with standard_conforming_strings off a backslash in a string literal would end it elsewhere, and the server would read the statement differently';
    }
    if (multibyte && UNSAFE_ENCODINGS.some((mblen) => stringEnd(bytes, quote, mblen) !== t.end)) {
      return 'in a client encoding such as SJIS, BIG5 or GBK a character would take the byte of a backslash that ends a string literal elsewhere here, and the server would read the statement differently';
    }
  }
  return null;
}

/** Byte length of the character at `i` (of one at or above 0x80) in a client encoding. */
type MbLen = (b: Buffer, i: number) => number;
const UTF8: MbLen = () => 1;
/** The client encodings where a character's later byte may be 0x5C, the byte of `\`. */
const UNSAFE_ENCODINGS: MbLen[] = [
  // SJIS: 0xA1-0xDF are one-byte katakana.
  (b, i) => (b[i]! >= 0xa1 && b[i]! <= 0xdf ? 1 : 2),
  // BIG5, GBK, UHC: a high byte starts a two-byte character.
  () => 2,
  // GB18030: four bytes when the second is a digit.
  (b, i) => (b[i + 1]! >= 0x30 && b[i + 1]! <= 0x39 ? 4 : 2),
  // JOHAB (EUC lengths): SS3 starts three bytes.
  (b, i) => (b[i] === 0x8f ? 3 : 2),
];

/** SQL's string continuation: a quote on a later line, after whitespace and -- comments. */
const CONTINUATION = /^[ \t\f]*[\n\r](?:[ \t\n\r\f\v]+|--[^\n\r]*[\n\r])*'/;

/**
 * Where the string whose quote is at `start` ends (exclusive; -1 if it does not) when a backslash
 * escapes the next character (PostgreSQL's E'' rules), the bytes being characters of `mblen`.
 */
function stringEnd(bytes: Buffer, start: number, mblen: MbLen): number {
  const step = (i: number): number => (bytes[i]! >= 0x80 ? mblen(bytes, i) : 1);
  let i = start + 1;
  while (i < bytes.length) {
    const c = bytes[i];
    if (c === 0x5c) i += 1 + (i + 1 < bytes.length ? step(i + 1) : 1);
    else if (c === 0x27 && bytes[i + 1] === 0x27) i += 2;
    else if (c === 0x27) {
      const more = CONTINUATION.exec(bytes.subarray(i + 1, i + 1 + 4096).toString('latin1'));
      if (!more) return i + 1;
      i += 1 + more[0].length;
    } else i += step(i);
  }
  return -1;
}
