// Masking applied to PostgreSQL results: which columns of a result are masked (by name, with the
// source table resolved from its OID), and how a value of each type stays valid once masked.
// Text-like values keep their type (`a***@***.com`, `****1111`); a masked column of any other
// type becomes NULL, the one value every type accepts; detectors only read text-like values.
import type { Column } from './codec/backend.ts';
import type { Masker } from '../masking/engine.ts';
import type { DetectorName } from '../masking/detectors.ts';

/** How a value of a column is masked. */
const KIND = { other: 0, text: 1, json: 2, jsonb: 3, array: 4 } as const;
type Kind = (typeof KIND)[keyof typeof KIND];

const TEXT_TYPES = new Set([25, 1043, 1042, 19, 705, 142]); // text varchar bpchar name unknown xml
const ARRAY_TYPES = new Set([1009, 1015, 1014, 199, 3807]); // text[] varchar[] bpchar[] json[] jsonb[]

/** Types whose values are text, in both wire formats (what masking can rewrite in place). */
export function isTextType(typeOid: number): boolean {
  return TEXT_TYPES.has(typeOid);
}

/** A result never described: every text-format value is read as text by detectors. */
export function blindPlan(columns: number, resultFormats: number[] | null): RowMaskPlan {
  const kinds: Kind[] = [];
  for (let i = 0; i < columns; i++) kinds.push(formatOf(resultFormats, i, 0) === 0 ? KIND.text : KIND.other);
  return { masked: new Array<boolean>(columns).fill(false), kinds, active: true, complete: false };
}

function formatOf(resultFormats: number[] | null, i: number, described: number): number {
  return resultFormats && resultFormats.length > 0 ? (resultFormats.length === 1 ? resultFormats[0]! : resultFormats[i] ?? 0) : described;
}

function kindOf(typeOid: number, format: number): Kind {
  if (TEXT_TYPES.has(typeOid)) return KIND.text; // binary send format of these is the text itself
  if (typeOid === 114) return KIND.json;
  if (typeOid === 3802) return format === 1 ? KIND.jsonb : KIND.json;
  if (ARRAY_TYPES.has(typeOid) && format === 0) return KIND.array;
  return KIND.other;
}

export interface RowMaskPlan {
  /** Per column: masked whole by name. */
  masked: boolean[];
  kinds: Kind[];
  /** Any column masked by name, or any text-like column detectors must read. */
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
}

export function planRow(masker: Masker, cols: Column[] | null, resultFormats: number[] | null, catalog: ColumnCatalog): RowMaskPlan | null {
  if (!cols) return null;
  const masked: boolean[] = [];
  const kinds: Kind[] = [];
  let active = false;
  let complete = true;
  cols.forEach((c, i) => {
    const format = formatOf(resultFormats, i, c.format);
    const kind = kindOf(c.typeOid, format);
    const id = catalog.columnMasked(c);
    if (!id.settled) complete = false;
    const m = id.masked;
    masked.push(m);
    kinds.push(kind);
    if (m || (kind !== KIND.other && masker.detects)) active = true;
  });
  return { masked, kinds, active, complete };
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
    const kind = plan.kinds[i] ?? KIND.other;
    let next: Buffer | null | undefined;
    if (plan.masked[i]) {
      next = wholeValue(masker, kind, f);
      columns++;
    } else if (kind !== KIND.other) {
      const start = kind === KIND.jsonb ? 1 : 0;
      const r = masker.maskText(f.toString('utf8', start));
      if (r) {
        next = kind === KIND.jsonb ? Buffer.concat([f.subarray(0, 1), Buffer.from(r.text)]) : Buffer.from(r.text);
        for (const d of r.detectors) if (!detectors.includes(d)) detectors = [...detectors, d];
      }
    }
    if (next !== undefined) (out ??= fields.slice())[i] = next;
  }
  return out && { fields: out, columns, detectors };
}

function wholeValue(masker: Masker, kind: Kind, f: Buffer): Buffer | null {
  switch (kind) {
    case KIND.text:
      return Buffer.from(masker.maskWholeValue(f.toString('utf8')));
    case KIND.json:
      return Buffer.from(JSON.stringify(masker.maskWholeValue(jsonScalar(f.toString('utf8')))));
    case KIND.jsonb:
      return Buffer.concat([f.subarray(0, 1), Buffer.from(JSON.stringify(masker.maskWholeValue(jsonScalar(f.toString('utf8', 1)))))]);
    default:
      return null;
  }
}

/** A JSON string's content (so an email keeps its shape hint); other JSON as written. */
function jsonScalar(s: string): string {
  if (s.length >= 2 && s.startsWith('"') && s.endsWith('"')) {
    try {
      return JSON.parse(s) as string;
    } catch {
      return s;
    }
  }
  return s;
}

