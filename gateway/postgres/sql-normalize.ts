// The normalized statement text that `text-matches` rules see: comments dropped, unquoted words
// lower-cased (PostgreSQL folds unquoted identifiers and keywords the same way), string
// literals and quoted identifiers kept as written, tokens one space apart except around `.`.
// A small lexer rather than the WebAssembly scanner: it runs on every statement of a policy
// with text-matches, and this costs about a tenth.

const OPERATOR = /[+\-*/<>=~!@#%^&|`?]/;
const WORD_START = /[A-Za-z_\u0080-\uffff]/;
// Sticky: one match takes the rest of a word (or number) instead of one test per character.
const WORD_REST = /[A-Za-z0-9_$\u0080-\uffff]*/y;
const NUMBER_REST = /[0-9A-Za-z_.]*/y;

export function normalizeSql(sql: string): string {
  const tokens: string[] = [];
  const n = sql.length;
  let i = 0;
  while (i < n) {
    const c = sql[i]!;
    const next = sql[i + 1];
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v') {
      i++;
    } else if (c === '-' && next === '-') {
      while (i < n && sql[i] !== '\n') i++;
    } else if (c === '/' && next === '*') {
      let depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        if (sql[i] === '/' && sql[i + 1] === '*') (depth++, (i += 2));
        else if (sql[i] === '*' && sql[i + 1] === '/') (depth--, (i += 2));
        else i++;
      }
    } else if (c === "'") {
      const end = quoted(sql, i, "'", false);
      tokens.push(sql.slice(i, end));
      i = end;
    } else if (c === '"') {
      const end = quoted(sql, i, '"', false);
      tokens.push(sql.slice(i, end));
      i = end;
    } else if (c === '$' && next !== undefined && /[0-9]/.test(next)) {
      let j = i + 1;
      while (j < n && /[0-9]/.test(sql[j]!)) j++;
      tokens.push(sql.slice(i, j));
      i = j;
    } else if (c === '$') {
      const m = /^\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/.exec(sql.slice(i, i + 64));
      if (!m) {
        tokens.push('$');
        i++;
        continue;
      }
      const close = sql.indexOf(m[0], i + m[0].length);
      const end = close < 0 ? n : close + m[0].length;
      tokens.push(sql.slice(i, end));
      i = end;
    } else if ((c === 'u' || c === 'U') && next === '&' && sql[i + 2] === '"') {
      // U&"d\0061ta": the identifier the escapes spell, so rules see the name PostgreSQL uses.
      const end = quoted(sql, i + 2, '"', false);
      const escape = uescape(sql, end);
      const name = escape ? decodeUnicodeEscapes(sql.slice(i + 3, end - 1).replaceAll('""', '"'), escape.char) : null;
      tokens.push(name === null ? sql.slice(i, end) : `"${name.replaceAll('"', '""')}"`);
      i = name === null ? end : escape!.end;
    } else if (WORD_START.test(c)) {
      WORD_REST.lastIndex = i + 1;
      WORD_REST.test(sql);
      const j = WORD_REST.lastIndex;
      const word = sql.slice(i, j);
      // E'...', B'...', X'...', N'...': a prefixed string literal is one token.
      if (j - i === 1 && sql[j] === "'" && /[eEbBxXnN]/.test(c)) {
        const end = quoted(sql, j, "'", c === 'e' || c === 'E');
        tokens.push(c.toLowerCase() + sql.slice(j, end));
        i = end;
      } else {
        tokens.push(word.toLowerCase());
        i = j;
      }
    } else if (/[0-9]/.test(c) || (c === '.' && next !== undefined && /[0-9]/.test(next))) {
      NUMBER_REST.lastIndex = i + 1;
      NUMBER_REST.test(sql);
      const j = NUMBER_REST.lastIndex;
      tokens.push(sql.slice(i, j).toLowerCase());
      i = j;
    } else if (c === ':' && next === ':') {
      tokens.push('::');
      i += 2;
    } else if (OPERATOR.test(c)) {
      let j = i + 1;
      // An operator never contains the start of a comment.
      while (j < n && OPERATOR.test(sql[j]!) && !(sql[j] === '-' && sql[j + 1] === '-') && !(sql[j] === '/' && sql[j + 1] === '*')) j++;
      tokens.push(sql.slice(i, j));
      i = j;
    } else {
      tokens.push(c);
      i++;
    }
  }
  let out = '';
  let glue = true;
  for (const t of tokens) {
    out += glue || t === '.' ? t : ' ' + t;
    glue = t === '.';
  }
  return out;
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

/** End (exclusive) of a quoted token starting at `start`; a doubled quote escapes it. */
function quoted(sql: string, start: number, q: string, backslashes: boolean): number {
  let i = start + 1;
  while (i < sql.length) {
    const c = sql[i];
    if (backslashes && c === '\\') i += 2;
    else if (c === q && sql[i + 1] === q) i += 2;
    else if (c === q) return i + 1;
    else i++;
  }
  return sql.length;
}
