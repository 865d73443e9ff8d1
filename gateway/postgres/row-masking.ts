// Masking applied to PostgreSQL results: which columns of a result are masked (by name, with the
// source table resolved from its OID), and how each value is read and stays valid once masked
// (see value-masking.ts): text-like values keep their type (`a***@***.com`, `****1111`), a
// masked column of any other type becomes NULL, the one value every type accepts.
import type { Column } from './codec/backend.ts';
import type { Masker } from '../masking/engine.ts';
import type { DetectorName } from '../masking/detectors.ts';
import { TEXT_TYPES, JSON_TYPE } from './pg-types.ts';
import { READ, maskValue, readOf, wholeValue, type Read } from './value-masking.ts';
import type { ComputedCatalog } from './computed-columns.ts';

/** Types whose masked whole value is text, in both wire formats (COPY writes them as text). */
export function isTextType(typeOid: number): boolean {
  return TEXT_TYPES.has(typeOid) && typeOid !== JSON_TYPE;
}

/**
 * A result whose columns are unknown (no RowDescription or Describe was seen): nothing says
 * which value is which column or type. With columns masked by name every value is masked whole
 * (NULL), since any could be one of them; with detectors only, text values are read and binary
 * ones, whose type is unknown, are masked whole.
 */
export function blindPlan(masker: Masker, columns: number, resultFormats: number[] | null): RowMaskPlan {
  const reads: Read[] = [];
  for (let i = 0; i < columns; i++) reads.push(formatOf(resultFormats, i, 0) === 1 ? READ.opaque : READ.text);
  return { masked: new Array<boolean>(columns).fill(masker.masksColumns), reads, types: new Array<number>(columns).fill(0), formats: reads.map((r) => (r === READ.opaque ? 1 : 0)), active: true, complete: false };
}

function formatOf(resultFormats: number[] | null, i: number, described: number): number {
  return resultFormats && resultFormats.length > 0 ? (resultFormats.length === 1 ? resultFormats[0]! : resultFormats[i] ?? 0) : described;
}

export interface RowMaskPlan {
  /** Per column: masked whole by name. */
  masked: boolean[];
  /** Per column: how detectors read its values (see value-masking.ts). */
  reads: Read[];
  /** Per column: its type and wire format, for values masked whole. */
  types: number[];
  formats: number[];
  /** Any column masked by name, or any column whose values must be read or masked whole. */
  active: boolean;
  /** Every table behind the columns was known: the plan will not change and may be reused. */
  complete: boolean;
}

/** Whether a result column is masked by name, by the column it is, or by its type (see
 * column-identity.ts); `settled` false: masked whole for now, and the plan is not reused. */
export interface ColumnCatalog {
  columnMasked(column: Column): { masked: boolean; settled: boolean };
  /** Changes with every catalog read and every catalog change seen: plans made before are stale. */
  readonly generation: number;
  /** Weighs what a statement's computed columns may come from (computed-columns.ts). */
  readonly computed?: ComputedCatalog;
}

/**
 * `computedMasked`: the statement could compute a value from a masked column, so every computed
 * column (no table behind it, table OID 0) is masked whole too (see computed-columns.ts).
 */
export function planRow(masker: Masker, cols: Column[] | null, resultFormats: number[] | null, catalog: ColumnCatalog, computedMasked = false): RowMaskPlan | null {
  if (!cols) return null;
  const masked: boolean[] = [];
  const reads: Read[] = [];
  const types: number[] = [];
  const formats: number[] = [];
  let active = false;
  let complete = true;
  cols.forEach((c, i) => {
    const format = formatOf(resultFormats, i, c.format);
    const read = readOf(masker, c.typeOid, format);
    const id = catalog.columnMasked(c);
    if (!id.settled) complete = false;
    const m = id.masked || (computedMasked && c.tableOid === 0);
    masked.push(m);
    reads.push(read);
    types.push(c.typeOid);
    formats.push(format);
    if (m || read !== READ.none) active = true;
  });
  return { masked, reads, types, formats, active, complete };
}

export interface MaskedRow { fields: (Buffer | null)[]; columns: number; detectors: DetectorName[] }

/** The row with masked values, or null when nothing in it needed masking. */
export function maskRow(masker: Masker, plan: RowMaskPlan, fields: (Buffer | null)[]): MaskedRow | null {
  let out: (Buffer | null)[] | null = null;
  let columns = 0;
  let detectors: DetectorName[] = [];
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    if (f === null) continue;
    let next: Buffer | null | undefined;
    // A field past the described columns has no plan: it is masked whole.
    if (i >= plan.reads.length || plan.masked[i]) {
      next = i >= plan.reads.length ? null : wholeValue(masker, plan.types[i]!, plan.formats[i]!, f);
      columns++;
    } else {
      const r = maskValue(masker, plan.reads[i]!, f);
      if (r) {
        next = r.value;
        if (r.whole) columns++;
        for (const d of r.detectors) if (!detectors.includes(d)) detectors = [...detectors, d];
      }
    }
    if (next !== undefined) (out ??= fields.slice())[i] = next;
  }
  return out && { fields: out, columns, detectors };
}
