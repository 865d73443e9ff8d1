// The normalized statement text that `text-matches` rules see: comments dropped, unquoted words
// lower-cased (PostgreSQL folds unquoted identifiers and keywords the same way), string
// literals and quoted identifiers kept as written, tokens one space apart except around `.`.
// A small lexer rather than the WebAssembly scanner: it runs on every statement of a policy
// with text-matches, and this costs about a tenth.

const OPERATOR = /[+\-*/<>=~!@#%^&|`?]/;
const WORD_START = /[A-Za-z_\u0080-\uffff]/;
const WORD = /[A-Za-z0-9_$\u0080-\uffff]/;

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
    } else if (WORD_START.test(c)) {
      let j = i + 1;
      while (j < n && WORD.test(sql[j]!)) j++;
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
      let j = i + 1;
      while (j < n && /[0-9A-Za-z_.]/.test(sql[j]!)) j++;
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
