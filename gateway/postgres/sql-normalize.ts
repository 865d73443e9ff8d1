// The normalized statement text that `text-matches` rules see: comments dropped, unquoted words
// lower-cased (PostgreSQL folds unquoted identifiers and keywords the same way), string
// literals and quoted identifiers kept as written, tokens one space apart except around `.`.
// A small lexer rather than the WebAssembly scanner: it runs on every statement of a policy
// with text-matches, and this costs about a tenth.

// Sticky: one match takes the rest of a word (or number) instead of one test per character.
const WORD_REST = /[A-Za-z0-9_$\u0080-\uffff]*/y;
const NUMBER_REST = /[0-9A-Za-z_.]*/y;
const DOLLAR_TAG = /^\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/;

// It runs on every statement of a policy with text-matches: character codes rather than
// one-character strings and regular expressions, and tokens written out as they are read.
export function normalizeSql(sql: string): string {
  let out = '';
  // The next token follows without a space: at the start, and after a `.` (so is a `.` itself).
  let glue = true;
  const n = sql.length;
  let i = 0;
  while (i < n) {
    const c = sql.charCodeAt(i);
    const next = sql.charCodeAt(i + 1); // NaN past the end
    let token: string;
    if (c === 32 || (c >= 9 && c <= 13)) {
      // space, \t, \n, \v, \f, \r
      i++;
      continue;
    } else if (c === 45 /* - */ && next === 45) {
      const eol = sql.indexOf('\n', i);
      i = eol < 0 ? n : eol;
      continue;
    } else if (c === 47 /* / */ && next === 42 /* * */) {
      let depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        const d = sql.charCodeAt(i);
        if (d === 47 && sql.charCodeAt(i + 1) === 42) (depth++, (i += 2));
        else if (d === 42 && sql.charCodeAt(i + 1) === 47) (depth--, (i += 2));
        else i++;
      }
      continue;
    } else if (c === 39 /* ' */ || c === 34 /* " */) {
      const end = quoted(sql, i, c, false);
      token = sql.slice(i, end);
      i = end;
    } else if (c === 36 /* $ */ && isDigit(next)) {
      let j = i + 1;
      while (j < n && isDigit(sql.charCodeAt(j))) j++;
      token = sql.slice(i, j);
      i = j;
    } else if (c === 36) {
      const m = DOLLAR_TAG.exec(sql.slice(i, i + 64));
      if (!m) {
        token = '$';
        i++;
      } else {
        const close = sql.indexOf(m[0], i + m[0].length);
        const end = close < 0 ? n : close + m[0].length;
        token = sql.slice(i, end);
        i = end;
      }
    } else if ((c === 117 || c === 85) /* u U */ && next === 38 /* & */ && sql.charCodeAt(i + 2) === 34) {
      // U&"d\0061ta": the identifier the escapes spell, so rules see the name PostgreSQL uses.
      const end = quoted(sql, i + 2, 34, false);
      const escape = uescape(sql, end);
      const name = escape ? decodeUnicodeEscapes(sql.slice(i + 3, end - 1).replaceAll('""', '"'), escape.char) : null;
      token = name === null ? sql.slice(i, end) : `"${name.replaceAll('"', '""')}"`;
      i = name === null ? end : escape!.end;
    } else if ((c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c >= 0x80) {
      WORD_REST.lastIndex = i + 1;
      WORD_REST.test(sql);
      const j = WORD_REST.lastIndex;
      // E'...', B'...', X'...', N'...': a prefixed string literal is one token.
      if (j - i === 1 && sql.charCodeAt(j) === 39 && STRING_PREFIXES.includes(sql[i]!)) {
        const end = quoted(sql, j, 39, c === 101 || c === 69);
        token = sql[i]!.toLowerCase() + sql.slice(j, end);
        i = end;
      } else {
        token = sql.slice(i, j).toLowerCase();
        i = j;
      }
    } else if (isDigit(c) || (c === 46 /* . */ && isDigit(next))) {
      NUMBER_REST.lastIndex = i + 1;
      NUMBER_REST.test(sql);
      const j = NUMBER_REST.lastIndex;
      token = sql.slice(i, j).toLowerCase();
      i = j;
    } else if (c === 58 /* : */ && next === 58) {
      token = '::';
      i += 2;
    } else if (isOperator(c)) {
      let j = i + 1;
      // An operator never contains the start of a comment.
      for (;;) {
        if (j >= n) break;
        const d = sql.charCodeAt(j);
        const after = sql.charCodeAt(j + 1);
        if (!isOperator(d) || (d === 45 && after === 45) || (d === 47 && after === 42)) break;
        j++;
      }
      token = sql.slice(i, j);
      i = j;
    } else {
      token = sql[i]!;
      i++;
    }
    out += glue || token === '.' ? token : ' ' + token;
    glue = token === '.';
  }
  return out;
}

const STRING_PREFIXES = 'eEbBxXnN';

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** + - * / < > = ~ ! @ # % ^ & | ` ? */
function isOperator(c: number): boolean {
  switch (c) {
    case 43: case 45: case 42: case 47: case 60: case 62: case 61: case 126: case 33: case 64: case 35: case 37: case 94: case 38: case 124: case 96: case 63:
      return true;
    default:
      return false;
  }
}

/** The escape character of a U& literal ending at `from`: `\` or the one UESCAPE 'c' names. */
function uescape(sql: string, from: number): { char: string; end: number } | null {
  const m = /^(?:\s+|--[^\n]*|\/\*[\s\S]*?\*\/)*uescape(?:\s+|--[^\n]*|\/\*[\s\S]*?\*\/)*'([^'])'/i.exec(sql.slice(from, from + 1024));
  if (!m) return { char: '\\', end: from };
  // PostgreSQL refuses hex digits, +, quotes and whitespace as the escape character.
  if (/[0-9a-fA-F+'"\s]/.test(m[1]!)) return null;
  return { char: m[1]!, end: from + m[0].length };
}

/** `\XXXX`, `\+XXXXXX` and a doubled escape character; null where PostgreSQL would refuse. */
function decodeUnicodeEscapes(body: string, esc: string): string | null {
  let out = '';
  for (let i = 0; i < body.length; ) {
    if (body[i] !== esc) {
      out += body[i++];
      continue;
    }
    if (body[i + 1] === esc) {
      out += esc;
      i += 2;
      continue;
    }
    const m = body[i + 1] === '+' ? /^[0-9a-fA-F]{6}/.exec(body.slice(i + 2)) : /^[0-9a-fA-F]{4}/.exec(body.slice(i + 1));
    if (!m) return null;
    const code = parseInt(m[0], 16);
    if (code > 0x10ffff || code === 0) return null;
    out += String.fromCodePoint(code);
    i += (body[i + 1] === '+' ? 2 : 1) + m[0].length;
  }
  return out;
}

/** End (exclusive) of a quoted token starting at `start` (q: the quote's code); a doubled quote escapes it. */
function quoted(sql: string, start: number, q: number, backslashes: boolean): number {
  let i = start + 1;
  while (i < sql.length) {
    const c = sql.charCodeAt(i);
    if (backslashes && c === 92 /* \\ */) i += 2;
    else if (c === q && sql.charCodeAt(i + 1) === q) i += 2;
    else if (c === q) return i + 1;
    else i++;
  }
  return sql.length;
}
