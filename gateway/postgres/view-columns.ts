// Which base column each column of a view (or materialized view) is, read from the view's
// stored query (`pg_rewrite.ev_action`, PostgreSQL's node-tree text). The parser marks every
// output column that is a plain column reference, through subqueries, joins and CTEs, with the
// table and column it comes from (`resorigtbl`, `resorigcol`): the same numbers a
// RowDescription carries. An expression, a set operation or anything else gets 0 there.
// Pure: text in, origins out; null when the text does not read as expected (the caller then
// treats every column of the view as unresolved).

/** A view column's source: table OID and column number; table 0 when it is not a plain column. */
export interface ColumnOrigin { table: number; column: number }

type Item = string | Item[] | NodeItem;
interface NodeItem { node: string; fields: Map<string, Item[]> }

/** View column number to its origin, from the view's `_RETURN` rule action; null if unreadable. */
export function viewColumnOrigins(action: string): Map<number, ColumnOrigin> | null {
  let items: Item[];
  try {
    items = new NodeTreeReader(action).all();
  } catch {
    return null;
  }
  // A view's rule has exactly one action: the view's query.
  const list = items.length === 1 ? items[0] : undefined;
  const query = Array.isArray(list) && list.length === 1 ? list[0] : undefined;
  if (!isNode(query) || query.node !== 'QUERY') return null;
  const targets = query.fields.get('targetList');
  if (!targets || targets.length !== 1 || !Array.isArray(targets[0])) return null;
  const out = new Map<number, ColumnOrigin>();
  for (const t of targets[0]) {
    if (!isNode(t) || t.node !== 'TARGETENTRY') return null;
    if (atom(t, 'resjunk') === 'true') continue;
    const resno = Number(atom(t, 'resno'));
    const table = Number(atom(t, 'resorigtbl'));
    const column = Number(atom(t, 'resorigcol'));
    if (!Number.isInteger(resno) || !Number.isInteger(table) || !Number.isInteger(column)) return null;
    out.set(resno, table === 0 ? { table: 0, column: 0 } : { table, column });
  }
  return out;
}

function isNode(i: Item | undefined): i is NodeItem {
  return typeof i === 'object' && i !== null && !Array.isArray(i);
}

/** A field's single-atom value; the last occurrence wins (a column named `:resorigtbl` is
 * printed as a bare token, but the real field always follows the name). */
function atom(n: NodeItem, key: string): string | undefined {
  const v = n.fields.get(key);
  return v && v.length === 1 && typeof v[0] === 'string' ? v[0] : undefined;
}

/**
 * Reads PostgreSQL's node-tree text: `{NAME :field value ...}` nodes, `( ... )` lists, `[ ... ]`
 * datum bytes, `"..."` strings, `<>` for null, and tokens in which a backslash escapes the
 * next character.
 */
class NodeTreeReader {
  private pos = 0;
  private readonly s: string;
  constructor(s: string) {
    this.s = s;
  }

  all(): Item[] {
    const out: Item[] = [];
    for (let t = this.token(); t !== null; t = this.token()) out.push(this.item(t));
    return out;
  }

  private item(t: Token): Item {
    if (t.kind === 'open') {
      if (t.text === '{') return this.node();
      return this.list(t.text === '(' ? ')' : ']');
    }
    if (t.kind === 'close') throw new Error(`unexpected ${t.text}`);
    return t.text;
  }

  private list(close: string): Item[] {
    const out: Item[] = [];
    for (;;) {
      const t = this.token();
      if (t === null) throw new Error('unterminated list');
      if (t.kind === 'close') {
        if (t.text !== close) throw new Error('mismatched list');
        return out;
      }
      out.push(this.item(t));
    }
  }

  private node(): NodeItem {
    const name = this.token();
    if (name === null || name.kind !== 'word') throw new Error('node without a name');
    const fields = new Map<string, Item[]>();
    let current: Item[] | null = null;
    for (;;) {
      const t = this.token();
      if (t === null) throw new Error('unterminated node');
      if (t.kind === 'close') {
        if (t.text !== '}') throw new Error('mismatched node');
        return { node: name.text, fields };
      }
      if (t.kind === 'word' && !t.escaped && t.text.startsWith(':')) {
        current = [];
        fields.set(t.text.slice(1), current);
        continue;
      }
      const value = this.item(t);
      current?.push(value);
    }
  }

  private token(): Token | null {
    const s = this.s;
    while (this.pos < s.length && /\s/.test(s[this.pos]!)) this.pos++;
    if (this.pos >= s.length) return null;
    const c = s[this.pos]!;
    if (c === '{' || c === '(' || c === '[') {
      this.pos++;
      return { kind: 'open', text: c, escaped: false };
    }
    if (c === '}' || c === ')' || c === ']') {
      this.pos++;
      return { kind: 'close', text: c, escaped: false };
    }
    if (c === '"') {
      let text = '';
      this.pos++;
      // Inside a string only whitespace, brackets and backslashes are escaped, so a quote ends
      // the string only where a delimiter follows it (a name may contain quotes).
      while (this.pos < s.length && !(s[this.pos] === '"' && /^[\s)}\]]?$/.test(s[this.pos + 1] ?? ''))) {
        if (s[this.pos] === '\\') this.pos++;
        text += s[this.pos] ?? '';
        this.pos++;
      }
      if (this.pos >= s.length) throw new Error('unterminated string');
      this.pos++;
      return { kind: 'word', text, escaped: true };
    }
    let text = '';
    let escaped = false;
    while (this.pos < s.length) {
      const ch = s[this.pos]!;
      if (ch === '\\') {
        escaped = true;
        text += s[this.pos + 1] ?? '';
        this.pos += 2;
        continue;
      }
      if (/\s/.test(ch) || '{}()[]'.includes(ch)) break;
      text += ch;
      this.pos++;
    }
    return { kind: 'word', text, escaped };
  }
}

interface Token { kind: 'open' | 'close' | 'word'; text: string; escaped: boolean }
