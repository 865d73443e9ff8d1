// Column masking for COPY ... TO STDOUT of a table (pg_dump's data, psql's \copy): the COPY
// statement names the table (and maybe the columns), the catalog gives the columns in order,
// and each text or CSV row is split, its masked fields replaced. COPY of a query has no table
// columns behind it and gets detectors only, as computed columns do; binary COPY passes as is.
import { parseCopyOut, type CopyOut } from './sql-classifier.ts';
import type { Masker } from '../masking/engine.ts';
import { isTextType } from './row-masking.ts';
import type { TableColumns } from './table-names.ts';

export interface CopyPlan {
  format: 'text' | 'csv';
  delimiter: string;
  quote: string;
  /** Per column: null to keep, or how a masked value is written. */
  masks: ('text' | 'null' | null)[];
}

/** The COPY TO STDOUT statements of a text, in order (null entries: not a table COPY). */
export function copyOuts(text: string): CopyOut[] {
  if (!/copy/i.test(text)) return [];
  try {
    return parseCopyOut(text);
  } catch {
    return [];
  }
}

export function planCopy(masker: Masker, copy: CopyOut, table: TableColumns | undefined): CopyPlan | null {
  if (copy.format === 'binary' || copy.table === null) return null;
  const tableName = table?.name ?? (copy.schema ? `${copy.schema}.${copy.table}` : copy.table);
  const byName = new Map((table?.columns ?? []).map((c) => [c.name, c]));
  const names = copy.columns ?? (table?.columns ?? []).map((c) => c.name);
  const masks = names.map((n) => {
    // The column's identity counts too: masked under a name it had earlier in the run (a rename).
    if (!masker.columnMasked(n, tableName) && byName.get(n)?.masked !== true) return null;
    const type = byName.get(n)?.typeOid;
    return type !== undefined && isTextType(type) ? 'text' : 'null';
  });
  if (!masks.some((m) => m !== null)) return null;
  return { format: copy.format, delimiter: copy.delimiter, quote: copy.quote, masks };
}

/** The row with its masked fields replaced, or null when none needed it. */
export function maskCopyRow(masker: Masker, plan: CopyPlan, row: string): { row: string; masked: number } | null {
  const eol = row.endsWith('\n') ? '\n' : '';
  const fields = splitRow(plan, eol ? row.slice(0, -1) : row);
  // A row that does not split into the table's columns is not guessed at: every field the plan
  // masks could be anywhere, so the whole row is masked.
  if (fields.length !== plan.masks.length) return { row: fields.map(() => nullOf(plan)).join(plan.delimiter) + eol, masked: fields.length };
  let masked = 0;
  for (let i = 0; i < fields.length; i++) {
    const m = plan.masks[i];
    const f = fields[i]!;
    if (m === null || f === nullOf(plan)) continue;
    fields[i] = m === 'null' ? nullOf(plan) : masker.maskWholeValue(plan.format === 'csv' ? unquoteCsv(f, plan.quote) : f);
    masked++;
  }
  return masked ? { row: fields.join(plan.delimiter) + eol, masked } : null;
}

const nullOf = (plan: CopyPlan): string => (plan.format === 'csv' ? '' : '\\N');

function splitRow(plan: CopyPlan, row: string): string[] {
  const out: string[] = [];
  let start = 0;
  let inQuote = false;
  for (let i = 0; i < row.length; i++) {
    const c = row[i];
    if (plan.format === 'text' && c === '\\') i++;
    else if (plan.format === 'csv' && c === plan.quote) inQuote = !inQuote;
    else if (c === plan.delimiter && !inQuote) {
      out.push(row.slice(start, i));
      start = i + 1;
    }
  }
  out.push(row.slice(start));
  return out;
}

function unquoteCsv(f: string, q: string): string {
  return f.length >= 2 && f.startsWith(q) && f.endsWith(q) ? f.slice(1, -1).replaceAll(q + q, q) : f;
}
