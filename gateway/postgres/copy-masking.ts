// Masking of COPY ... TO STDOUT rows (pg_dump's data, psql's \copy, COPY of a query). The
// statement's options, as the real parser read them, say how a row is written: format (text,
// CSV, binary), delimiter, quote, escape, NULL string, header, encoding. Each row is split into
// its fields exactly as PostgreSQL writes them, each field decoded to its value; a field whose
// column is masked by name is replaced whole, every other value is read by the detectors, and
// what changed is written back in the same format. Whatever cannot be split with certainty (an
// option not known here, an encoding other than UTF-8, a row that does not split into the
// columns the server announced, a COPY statement the gateway did not see) has every field of
// every row masked: nothing is guessed at.
import { parseCopyOut, type CopyOut } from './copy-statements.ts';
import type { Masker } from '../masking/engine.ts';
import type { DetectorName } from '../masking/detectors.ts';
import { isTextType } from './row-masking.ts';
import { maskValue, readOf } from './value-masking.ts';
import type { TableColumns } from './table-names.ts';

export interface CopyPlan {
  format: 'text' | 'csv' | 'binary';
  delimiter: string;
  quote: string;
  escape: string;
  /** How NULL is written (text `\N`, CSV an empty unquoted field, or the NULL option). */
  nullString: string;
  /** A header line is still to come (HEADER): column names, read by detectors only. */
  header: boolean;
  /** Fields per row, as the server's CopyOutResponse announced. */
  columns: number;
  /** Per field: null to read with detectors, or how it is masked whole by name. */
  masks: ('text' | 'null' | null)[];
  /** Per field, the column's type (0: unknown), for binary rows. */
  types: number[];
  /** Why the rows cannot be mapped or split with certainty: every field is then masked. */
  whole: string | null;
}

/** The COPY TO STDOUT statements of a text, in order. */
export function copyOuts(text: string): CopyOut[] {
  if (!/copy/i.test(text)) return [];
  try {
    return parseCopyOut(text);
  } catch {
    return [];
  }
}

/** Options the server accepts for COPY TO, whose effect on the output is followed here. */
const KNOWN_OPTIONS = new Set(['format', 'delimiter', 'quote', 'escape', 'null', 'default', 'header', 'force_quote', 'force_not_null', 'force_null', 'encoding', 'freeze']);
const UTF8_NAMES = new Set(['utf8', 'unicode']);

type TableByName = (schema: string | null, table: string) => TableColumns | undefined;

/**
 * How the rows of one COPY are masked. `copy` is the statement (undefined when the gateway did
 * not see it), `columns` and `binary` what the server's CopyOutResponse announced.
 */
export function planCopy(masker: Masker, copy: CopyOut | undefined, columns: number, binary: boolean, tableByName: TableByName): CopyPlan {
  const plan: CopyPlan = {
    format: binary ? 'binary' : 'text', delimiter: '\t', quote: '"', escape: '"', nullString: '\\N',
    header: false, columns, masks: new Array(columns).fill(null), types: new Array(columns).fill(0), whole: null,
  };
  if (!copy) return { ...plan, whole: 'the COPY statement is not known' };
  const opts = new Map(copy.options.map((o) => [o.name, o.value]));
  const text = (name: string): string | undefined => {
    const v = opts.get(name);
    return typeof v === 'string' ? v : undefined;
  };
  for (const name of opts.keys()) if (!KNOWN_OPTIONS.has(name)) return { ...plan, whole: `COPY option ${name} is not known` };
  const format = (text('format') ?? 'text').toLowerCase();
  if (format !== 'text' && format !== 'csv' && format !== 'binary') return { ...plan, whole: `COPY format ${format} is not known` };
  if ((format === 'binary') !== binary) return { ...plan, whole: 'the server answered in another format than the statement asked' };
  plan.format = format;
  const encoding = text('encoding');
  if (encoding !== undefined && !UTF8_NAMES.has(encoding.toLowerCase().replace(/[-_]/g, ''))) return { ...plan, whole: `COPY writes encoding ${encoding}, not UTF-8` };
  if (format === 'csv') {
    plan.delimiter = text('delimiter') ?? ',';
    plan.quote = text('quote') ?? '"';
    plan.escape = text('escape') ?? plan.quote;
    plan.nullString = text('null') ?? '';
  } else if (format === 'text') {
    plan.delimiter = text('delimiter') ?? '\t';
    plan.nullString = text('null') ?? '\\N';
  }
  if ([plan.delimiter, plan.quote, plan.escape].some((c) => c.length !== 1)) return { ...plan, whole: 'a COPY delimiter, quote or escape that is not one character' };
  if (opts.has('header')) {
    const h = opts.get('header');
    const v = h === true ? 'true' : typeof h === 'string' ? h.toLowerCase() : '?';
    if (['true', 'on', '1', 'match'].includes(v)) plan.header = format !== 'binary';
    else if (!['false', 'off', '0'].includes(v)) return { ...plan, whole: `COPY HEADER ${v} is not known` };
  }
  const mapped = mapColumns(masker, copy, tableByName);
  if (mapped === null) return masker.masksColumns ? { ...plan, whole: 'the columns of COPY of a query cannot be mapped to table columns' } : plan;
  if (mapped.masks.length !== columns) return { ...plan, whole: `the COPY statement names ${mapped.masks.length} columns and the server sent ${columns}` };
  return { ...plan, masks: mapped.masks, types: mapped.types };
}

/** Each output column's mask and type, from the catalog; null when they cannot be known. */
function mapColumns(masker: Masker, copy: CopyOut, tableByName: TableByName): { masks: ('text' | 'null' | null)[]; types: number[] } | null {
  let names: (string | null)[];
  let table: TableColumns | undefined;
  if (copy.table !== null) {
    table = tableByName(copy.schema, copy.table);
    if (copy.columns) names = copy.columns;
    else if (table) names = table.columns.map((c) => c.name);
    else return null;
  } else if (copy.select) {
    table = tableByName(copy.select.schema, copy.select.table);
    // `*` stands for the relation's columns in order; unknown until the catalog holds it.
    names = copy.select.targets.flatMap((t) => (t !== '*' ? [t] : table ? table.columns.map((c) => c.name) : [null]));
  } else return null;
  const tableName = table?.name ?? null;
  const byName = new Map((table?.columns ?? []).map((c) => [c.name, c]));
  const masks: ('text' | 'null' | null)[] = [];
  const types: number[] = [];
  for (const n of names) {
    const col = n === null ? undefined : byName.get(n);
    types.push(col?.typeOid ?? 0);
    // In a query, an output column that is not a plain column of the table (an expression, a
    // whole-row reference, `*`) cannot be checked against the patterns: masked whole; so is a
    // column the catalog does not hold (added, or renamed from a masked one, since its last read).
    let masked: boolean;
    if (n === null || !col) masked = masker.masksColumns;
    // A table the catalog does not hold yet (created or renamed since its last read): any of its
    // columns may be one masked under an earlier name.
    else if (tableName === null) masked = masker.masksColumns;
    // The column's identity counts too: masked under a name it had earlier in the run (a rename).
    else masked = masker.columnMasked(n, tableName) || col?.masked === true;
    masks.push(!masked ? null : col && isTextType(col.typeOid) ? 'text' : 'null');
  }
  return { masks, types };
}

export interface MaskedCopyRow { row: Buffer; masked: number; detectors: DetectorName[] }

/** One CopyData message (one row, or the header, or the binary trailer) masked, or null when
 * nothing in it changed. */
export function maskCopyRow(masker: Masker, plan: CopyPlan, data: Buffer): MaskedCopyRow | null {
  if (plan.format === 'binary') return maskBinaryCopy(masker, plan, data);
  // Nothing masked by name and no detector: a text row has nothing to change.
  if (!masker.detects && plan.whole === null && plan.masks.every((m) => m === null)) return null;
  const s = data.toString('utf8');
  const eol = s.endsWith('\n') ? '\n' : '';
  const line = eol ? s.slice(0, -1) : s;
  if (plan.header) {
    // Column names: nothing to mask by name, but detectors read them like any text.
    plan.header = false;
    const r = masker.maskText(line);
    return r && { row: Buffer.from(r.text + eol), masked: 0, detectors: r.detectors };
  }
  const fields = plan.whole === null ? (plan.format === 'csv' ? splitCsv(plan, line) : splitText(plan, line)) : null;
  // A row that does not split into the announced columns is not guessed at.
  if (fields === null || fields.length !== plan.columns) return { row: Buffer.from(new Array(plan.columns).fill(plan.nullString).join(plan.delimiter) + eol), masked: plan.columns, detectors: [] };
  let masked = 0;
  let changed = false;
  let detectors: DetectorName[] = [];
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    if (f === plan.nullString && !nullCouldBeData(plan)) continue;
    const m = plan.masks[i];
    const value = plan.format === 'csv' ? decodeCsv(plan, f) : decodeText(f);
    let next: string | null = null;
    if (m === 'null') next = plan.nullString;
    else if (m === 'text') next = encode(plan, masker.maskWholeValue(value));
    else {
      // Read by the column's type, as a result value is (bytea's hex behind it, textless types
      // skipped); a column of unknown type as text.
      const r = maskValue(masker, readOf(masker, plan.types[i] ?? 0, 0), Buffer.from(value));
      if (r) {
        next = r.value === null ? plan.nullString : encode(plan, r.value.toString('utf8'));
        if (r.value === null) masked++;
        for (const d of r.detectors) if (!detectors.includes(d)) detectors = [...detectors, d];
      }
    }
    if (next === null) continue;
    if (m) masked++;
    fields[i] = next;
    changed = true;
  }
  return changed ? { row: Buffer.from(fields.join(plan.delimiter) + eol), masked, detectors } : null;
}

/**
 * Whether a field written as the NULL string may be a value. CSV quotes a value equal to the
 * NULL string, so an unquoted one is NULL; text format never quotes, and a NULL option a value
 * prints as (`NULL 'x'`, `NULL '+1 555 0100'`) makes them the same bytes: such a field is read
 * as a value (masked, or read by detectors), which a real NULL also gets. `\N` cannot be data:
 * a value's backslash is written doubled.
 */
function nullCouldBeData(plan: CopyPlan): boolean {
  return plan.format === 'text' && encodeText(decodeText(plan.nullString), plan.delimiter) === plan.nullString;
}

/** PostgreSQL's text COPY escapes (CopyAttributeOutText): backslash, the delimiter and control characters. */
const TEXT_OUT_ESCAPES: Record<string, string> = { '\b': 'b', '\f': 'f', '\n': 'n', '\r': 'r', '\t': 't', '\v': 'v' };

function encodeText(value: string, delimiter: string): string {
  let out = '';
  for (const c of value) {
    if (c === '\\' || c === delimiter) out += '\\' + c;
    else if (TEXT_OUT_ESCAPES[c] !== undefined) out += '\\' + TEXT_OUT_ESCAPES[c];
    else out += c;
  }
  return out;
}

// Text format: fields are separated by the delimiter; a backslash escapes the next character
// (PostgreSQL writes the delimiter inside a value as `\` and the delimiter).
function splitText(plan: CopyPlan, line: string): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '\\') i++;
    else if (c === plan.delimiter) {
      out.push(line.slice(start, i));
      start = i + 1;
    }
  }
  out.push(line.slice(start));
  return out;
}

const TEXT_ESCAPES: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };

function decodeText(f: string): string {
  if (!f.includes('\\')) return f;
  return f.replace(/\\(x[0-9A-Fa-f]{1,2}|[0-7]{1,3}|[\s\S])/g, (_, e: string) => {
    if (e[0] === 'x' && e.length > 1) return String.fromCharCode(parseInt(e.slice(1), 16));
    if (/^[0-7]/.test(e)) return String.fromCharCode(parseInt(e, 8));
    return TEXT_ESCAPES[e] ?? e;
  });
}

// CSV: a field may be quoted anywhere; inside quotes, the escape character before a quote or
// an escape character makes it literal, and a delimiter is data (PostgreSQL's CSV reader).
function splitCsv(plan: CopyPlan, line: string): string[] | null {
  const out: string[] = [];
  let start = 0;
  let inQuote = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (inQuote) {
      const next = line[i + 1];
      if (c === plan.escape && (next === plan.quote || next === plan.escape) && i + 1 < line.length) i++;
      else if (c === plan.quote) inQuote = false;
    } else if (c === plan.quote) inQuote = true;
    else if (c === plan.delimiter) {
      out.push(line.slice(start, i));
      start = i + 1;
    }
  }
  // An unterminated quote: the row is not what it seems.
  if (inQuote) return null;
  out.push(line.slice(start));
  return out;
}

function decodeCsv(plan: CopyPlan, f: string): string {
  let out = '';
  let inQuote = false;
  for (let i = 0; i < f.length; i++) {
    const c = f[i]!;
    if (inQuote) {
      const next = f[i + 1];
      if (c === plan.escape && (next === plan.quote || next === plan.escape) && i + 1 < f.length) out += f[++i];
      else if (c === plan.quote) inQuote = false;
      else out += c;
    } else if (c === plan.quote) inQuote = true;
    else out += c;
  }
  return out;
}

/** A value written back: CSV always quoted, text with PostgreSQL's escapes. */
function encode(plan: CopyPlan, value: string): string {
  if (plan.format === 'csv') {
    let body = '';
    for (const c of value) body += c === plan.quote || c === plan.escape ? plan.escape + c : c;
    return plan.quote + body + plan.quote;
  }
  let out = '';
  for (const c of value) {
    if (c === '\\' || c === plan.delimiter) out += '\\' + c;
    else if (c === '\n') out += '\\n';
    else if (c === '\r') out += '\\r';
    else if (c === '\t') out += '\\t';
    else out += c;
  }
  return out;
}

// Binary format: an 11-byte signature, flags and a header extension before the first row; each
// row a field count and per field a length (-1: NULL) and the type's binary form; -1 ends it.
const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

function maskBinaryCopy(masker: Masker, plan: CopyPlan, data: Buffer): MaskedCopyRow | null {
  let pos = 0;
  if (data.length >= SIGNATURE.length && data.subarray(0, SIGNATURE.length).equals(SIGNATURE)) {
    if (data.length < 19) return binaryNulls(plan, data.subarray(0, 0));
    const extension = data.readInt32BE(15);
    if (extension < 0 || 19 + extension > data.length) return binaryNulls(plan, data.subarray(0, 0));
    pos = 19 + extension;
  }
  const parts: Buffer[] = [data.subarray(0, pos)];
  let masked = 0;
  let changed = false;
  let detectors: DetectorName[] = [];
  while (pos < data.length) {
    if (pos + 2 > data.length) return binaryNulls(plan, data.subarray(0, 0));
    const n = data.readInt16BE(pos);
    if (n === -1) {
      parts.push(data.subarray(pos, pos + 2));
      pos += 2;
      continue;
    }
    if (n !== plan.columns) return binaryNulls(plan, parts[0]!);
    parts.push(data.subarray(pos, pos + 2));
    pos += 2;
    for (let i = 0; i < n; i++) {
      if (pos + 4 > data.length) return binaryNulls(plan, parts[0]!);
      const len = data.readInt32BE(pos);
      const end = pos + 4 + Math.max(len, 0);
      if (len < -1 || end > data.length) return binaryNulls(plan, parts[0]!);
      const f = len < 0 ? null : data.subarray(pos + 4, end);
      let next: Buffer | null | undefined;
      if (f !== null) {
        const m = plan.whole !== null ? 'null' : plan.masks[i];
        if (m === 'null') next = null;
        else if (m === 'text') next = Buffer.from(masker.maskWholeValue(f.toString('utf8')));
        else {
          const r = maskValue(masker, readOf(masker, plan.types[i] ?? 0, 1), f);
          if (r) {
            next = r.value;
            if (r.whole) masked++;
            for (const d of r.detectors) if (!detectors.includes(d)) detectors = [...detectors, d];
          }
        }
        if (m) masked++;
      }
      if (next === undefined) parts.push(data.subarray(pos, end));
      else {
        changed = true;
        parts.push(lengthOf(next), ...(next ? [next] : []));
      }
      pos = end;
    }
  }
  return changed ? { row: Buffer.concat(parts), masked, detectors } : null;
}

function lengthOf(v: Buffer | null): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(v === null ? -1 : v.length);
  return b;
}

/** A binary row that does not parse: its header (if any) and one row of NULLs. */
function binaryNulls(plan: CopyPlan, header: Buffer): MaskedCopyRow {
  const row = Buffer.alloc(2 + 4 * plan.columns, 0xff);
  row.writeInt16BE(plan.columns, 0);
  return { row: Buffer.concat([header, row]), masked: plan.columns, detectors: [] };
}

