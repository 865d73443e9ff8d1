// The pieces of JSON the streamed JSON masker (json-masker.ts) reads byte by byte, and what a
// finished string or number is written as. Pure functions over bytes and text.

import type { DetectorName } from './detectors.ts';
import type { Masker } from './engine.ts';

/** What a value too long to keep, or an object or array at a masked path, becomes. */
export const WHOLE_MASK = '****';

export const WS = new Uint8Array(256);
for (const c of [0x20, 0x09, 0x0a, 0x0d]) WS[c] = 1;
/** Bytes a number token is made of (checked whole against NUMBER at its end). */
export const NUM = new Uint8Array(256);
for (const c of '0123456789+-.eE') NUM[c.charCodeAt(0)] = 1;
const HEX = new Uint8Array(256);
for (const c of '0123456789abcdefABCDEF') HEX[c.charCodeAt(0)] = 1;
export const NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;
export const BOM = [0xef, 0xbb, 0xbf];
export const LITERALS: Readonly<Record<number, Buffer>> = { 0x74: Buffer.from('true'), 0x66: Buffer.from('false'), 0x6e: Buffer.from('null') };

/** Where a string's scan stopped: at its closing quote (`end` is its index), at the end of
 * the chunk (`end` -1), or at a byte no string may hold (`error`). `esc` is the escape state
 * to go on with: 0, 1 after a backslash, 2..5 for the hex digits of \u still due. */
export interface StringScan { end: number; esc: number; escaped: boolean; error: string | null; at: number }

/** Reads string bytes (after the opening quote) from i, checking escapes. */
export function scanString(chunk: Buffer, i: number, esc: number): StringScan {
  let escaped = false;
  for (const n = chunk.length; i < n; i++) {
    const c = chunk[i]!;
    if (esc === 0) {
      if (c === 0x22) return { end: i, esc, escaped, error: null, at: i };
      if (c === 0x5c) {
        esc = 1;
        escaped = true;
      } else if (c < 0x20) return { end: -1, esc, escaped, error: 'control character in a string', at: i };
    } else if (esc === 1) {
      if (c === 0x75) esc = 5;
      else if (c === 0x22 || c === 0x5c || c === 0x2f || c === 0x62 || c === 0x66 || c === 0x6e || c === 0x72 || c === 0x74) esc = 0;
      else return { end: -1, esc, escaped, error: 'bad escape in a string', at: i };
    } else {
      if (!HEX[c]) return { end: -1, esc, escaped, error: 'bad \\u escape in a string', at: i };
      esc = esc === 2 ? 0 : esc - 1;
    }
  }
  return { end: -1, esc, escaped, error: null, at: chunk.length };
}

/** A string token's value: its bytes between the quotes, escapes decoded (the scan has
 * checked them, so JSON.parse cannot fail). */
export function stringValue(token: Buffer, escaped: boolean): string {
  const inner = token.toString('utf8', 1, token.length - 1);
  return escaped ? (JSON.parse(`"${inner}"`) as string) : inner;
}

/** What a finished token is written as: null for its bytes as they came. */
export interface TokenVerdict { out: string | null; values: number; detectors: readonly DetectorName[] }

const AS_IS: TokenVerdict = { out: null, values: 0, detectors: [] };

/** A string, key or number: `value` is its text (null when too long to keep); `pathMasked`
 * when a path masks it (never for a key). */
export function tokenVerdict(masker: Masker, value: string | null, pathMasked: boolean): TokenVerdict {
  if (value === null) return { out: JSON.stringify(WHOLE_MASK), values: 1, detectors: [] };
  if (pathMasked) return { out: JSON.stringify(masker.maskWholeValue(value)), values: 1, detectors: [] };
  const r = masker.maskText(value);
  return r ? { out: JSON.stringify(r.text), values: 0, detectors: r.detectors } : AS_IS;
}
