// One PostgreSQL value through the detectors, by its type and wire format, failing closed: the
// text form of every type that can carry text is read (records, arrays, ranges, tsvector, enums,
// domains and types the gateway has never heard of alike); binary values are taken apart only
// where their layout is known (text types, json, jsonb, bytea, arrays and anonymous records,
// which name their elements' types), and any other binary value is masked whole (NULL), since
// nothing in it could be read.
import type { Masker } from '../masking/engine.ts';
import type { DetectorName } from '../masking/detectors.ts';
import {
  BINARY_TEXTLESS_TYPES, BYTEA_TYPE, JSONB_TYPE, JSON_TYPE, RECORD_TYPE, TEXTLESS_TYPES, TEXT_ARRAY_TYPES, TEXT_TYPES, VERSIONED_TEXT_TYPES,
} from './pg-types.ts';

/** How a value is read. */
export const READ = {
  /** Nothing to read: a textless type, or text while no detector is on. */
  none: 0,
  /** UTF-8 text: the text format of any type, the binary format of text types. */
  text: 1,
  /** A version byte, then text (binary jsonb and jsonpath). */
  versioned: 2,
  /** bytea's text form, `\x` and hex (or the old escape form): its bytes are read. */
  byteaText: 3,
  /** bytea in binary: the bytes themselves. */
  byteaBinary: 4,
  binaryArray: 5,
  binaryRecord: 6,
  /** A binary value of a type whose layout is unknown: masked whole. */
  opaque: 7,
} as const;
export type Read = (typeof READ)[keyof typeof READ];

/** Arrays and records nest; past this depth a value is masked whole rather than followed. */
const MAX_DEPTH = 8;

export function readOf(masker: Masker, typeOid: number, format: number): Read {
  if (TEXTLESS_TYPES.has(typeOid)) return READ.none;
  if (format !== 1) {
    if (!masker.detects) return READ.none;
    return typeOid === BYTEA_TYPE ? READ.byteaText : READ.text;
  }
  if (BINARY_TEXTLESS_TYPES.has(typeOid)) return READ.none;
  if (TEXT_TYPES.has(typeOid)) return masker.detects ? READ.text : READ.none;
  if (VERSIONED_TEXT_TYPES.has(typeOid)) return masker.detects ? READ.versioned : READ.none;
  if (typeOid === BYTEA_TYPE) return masker.detects ? READ.byteaBinary : READ.none;
  // Containers are always taken apart: an element of an unknown type must be masked even when
  // no detector reads the text ones.
  if (typeOid === RECORD_TYPE) return READ.binaryRecord;
  if (TEXT_ARRAY_TYPES.has(typeOid)) return READ.binaryArray;
  return READ.opaque;
}

export interface MaskedValue {
  value: Buffer | null;
  detectors: DetectorName[];
  /** The value, or a part of it, was masked whole (could not be read). */
  whole: boolean;
}

const OPAQUE: MaskedValue = { value: null, detectors: [], whole: true };

/** The value with what detectors found masked (or masked whole when it cannot be read), or
 * null when it is unchanged. */
export function maskValue(masker: Masker, read: Read, f: Buffer, depth = 0): MaskedValue | null {
  switch (read) {
    case READ.none:
      return null;
    case READ.text: {
      const r = maskTextValue(masker, f.toString('utf8'));
      return r && { value: Buffer.from(r.text), detectors: r.detectors, whole: false };
    }
    case READ.versioned: {
      if (f.length === 0) return null;
      const r = masker.maskText(f.toString('utf8', 1));
      return r && { value: Buffer.concat([f.subarray(0, 1), Buffer.from(r.text)]), detectors: r.detectors, whole: false };
    }
    case READ.byteaText:
      return maskByteaText(masker, f);
    case READ.byteaBinary:
      return maskBytes(masker, f);
    case READ.binaryArray:
      return depth < MAX_DEPTH ? (maskBinaryArray(masker, f, depth) ?? null) : OPAQUE;
    case READ.binaryRecord:
      return depth < MAX_DEPTH ? (maskBinaryRecord(masker, f, depth) ?? null) : OPAQUE;
    default:
      return OPAQUE;
  }
}

/** bytea's hex form inside a text (a record's, an array's or JSON's text form, an error's
 * failing row), behind any number of backslashes: `"\\x6d61696c..."`. */
const HEX_BYTES = /(\\+x)((?:[0-9a-fA-F]{2}){4,})/g;

/**
 * A text value through the detectors, and the bytes of each bytea written inside it in hex
 * (`(1,"\\x6d61...")` of a row with a bytea field), found masked and written back in hex.
 */
export function maskTextValue(masker: Masker, s: string): { text: string; detectors: DetectorName[] } | null {
  let text = s;
  let detectors: DetectorName[] = [];
  const direct = masker.maskText(s);
  if (direct) ({ text, detectors } = direct);
  if (!masker.detects || !text.includes('\\x')) return direct;
  let changed = false;
  const out = text.replace(HEX_BYTES, (m, prefix: string, hex: string) => {
    const r = masker.maskText(Buffer.from(hex, 'hex').toString('latin1'));
    if (!r) return m;
    changed = true;
    for (const d of r.detectors) if (!detectors.includes(d)) detectors = [...detectors, d];
    return prefix + Buffer.from(r.text, 'latin1').toString('hex');
  });
  return changed ? { text: out, detectors } : direct;
}

/** Bytes are read one character per byte (latin1): detectors look for ASCII, and every byte they
 * do not replace comes back as it was. */
function maskBytes(masker: Masker, f: Buffer): MaskedValue | null {
  const r = masker.maskText(f.toString('latin1'));
  return r && { value: Buffer.from(r.text, 'latin1'), detectors: r.detectors, whole: false };
}

function maskByteaText(masker: Masker, f: Buffer): MaskedValue | null {
  // `\x` then hex (bytea_output = hex, the default); otherwise the escape form, whose text is the
  // bytes with non-printable ones and backslashes written as escapes.
  if (f.length >= 2 && f[0] === 0x5c && f[1] === 0x78) {
    const bytes = Buffer.from(f.toString('latin1', 2), 'hex');
    const r = maskBytes(masker, bytes);
    return r && { ...r, value: Buffer.from(`\\x${r.value!.toString('hex')}`, 'latin1') };
  }
  return maskBytes(masker, f);
}

/** Elements of an array or fields of a record, masked by their own types. Unchanged: null;
 * malformed: masked whole. */
function maskElements(masker: Masker, f: Buffer, start: number, count: number, typeAt: ((pos: number) => number) | null, fixedType: number, depth: number): { parts: (Buffer | null)[]; types: number[]; out: MaskedValue } | null | 'malformed' {
  let pos = start;
  let changed = false;
  let whole = false;
  let detectors: DetectorName[] = [];
  const parts: (Buffer | null)[] = [];
  const types: number[] = [];
  for (let i = 0; i < count; i++) {
    let type = fixedType;
    if (typeAt) {
      if (pos + 4 > f.length) return 'malformed';
      type = typeAt(pos);
      pos += 4;
    }
    if (pos + 4 > f.length) return 'malformed';
    const len = f.readInt32BE(pos);
    pos += 4;
    types.push(type);
    if (len === -1) {
      parts.push(null);
      continue;
    }
    if (len < 0 || pos + len > f.length) return 'malformed';
    const v = f.subarray(pos, pos + len);
    pos += len;
    const m = maskValue(masker, readOf(masker, type, 1), v, depth + 1);
    if (m) {
      changed = true;
      whole ||= m.whole;
      for (const d of m.detectors) if (!detectors.includes(d)) detectors = [...detectors, d];
      parts.push(m.value);
    } else parts.push(v);
  }
  if (pos !== f.length) return 'malformed';
  return changed ? { parts, types, out: { value: null, detectors, whole } } : null;
}

function lengthPrefixed(parts: (Buffer | null)[], types: number[] | null): Buffer[] {
  const out: Buffer[] = [];
  parts.forEach((p, i) => {
    const head = Buffer.alloc(types ? 8 : 4);
    if (types) head.writeUInt32BE(types[i]!, 0);
    head.writeInt32BE(p === null ? -1 : p.length, types ? 4 : 0);
    out.push(head);
    if (p) out.push(p);
  });
  return out;
}

// array_send: ndim, has-nulls flag, element type, (size, lower bound) per dimension, then each
// element as a length (-1 for NULL) and its element type's binary form.
function maskBinaryArray(masker: Masker, f: Buffer, depth: number): MaskedValue | null {
  if (f.length < 12) return OPAQUE;
  const ndim = f.readInt32BE(0);
  const elemType = f.readUInt32BE(8);
  if (ndim < 0 || ndim > 6 || 12 + ndim * 8 > f.length) return OPAQUE;
  let count = ndim === 0 ? 0 : 1;
  for (let d = 0; d < ndim; d++) {
    const size = f.readInt32BE(12 + d * 8);
    if (size < 0) return OPAQUE;
    count *= size;
  }
  const start = 12 + ndim * 8;
  if (readOf(masker, elemType, 1) === READ.none) return null;
  const r = maskElements(masker, f, start, count, null, elemType, depth);
  if (r === 'malformed') return OPAQUE;
  if (r === null) return null;
  const head = Buffer.from(f.subarray(0, start));
  if (r.parts.includes(null)) head.writeInt32BE(1, 4);
  return { ...r.out, value: Buffer.concat([head, ...lengthPrefixed(r.parts, null)]) };
}

// record_send: the number of fields, then per field its type OID, a length and its binary form.
function maskBinaryRecord(masker: Masker, f: Buffer, depth: number): MaskedValue | null {
  if (f.length < 4) return OPAQUE;
  const n = f.readInt32BE(0);
  if (n < 0) return OPAQUE;
  const r = maskElements(masker, f, 4, n, (pos) => f.readUInt32BE(pos), 0, depth);
  if (r === 'malformed') return OPAQUE;
  if (r === null) return null;
  return { ...r.out, value: Buffer.concat([f.subarray(0, 4), ...lengthPrefixed(r.parts, r.types)]) };
}

/** A value masked whole because its column is masked: text types keep a hint of their shape,
 * JSON becomes a JSON string, any other type NULL (the one value every type accepts). */
export function wholeValue(masker: Masker, typeOid: number, format: number, f: Buffer): Buffer | null {
  if (typeOid === JSON_TYPE || (typeOid === JSONB_TYPE && format !== 1)) return Buffer.from(JSON.stringify(masker.maskWholeValue(jsonScalar(f.toString('utf8')))));
  if (typeOid === JSONB_TYPE) return Buffer.concat([f.subarray(0, 1), Buffer.from(JSON.stringify(masker.maskWholeValue(jsonScalar(f.toString('utf8', 1)))))]);
  if (TEXT_TYPES.has(typeOid)) return Buffer.from(masker.maskWholeValue(f.toString('utf8')));
  return null;
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
