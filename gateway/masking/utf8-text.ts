// Bytes of a stream as text for the detectors, and back, without changing a byte: valid UTF-8
// becomes its characters; a byte that is not part of valid UTF-8 (binary output, another
// encoding) becomes one lone low surrogate U+DC80..U+DCFF, which no detector matches as part
// of a token and which encodeText turns back into that byte. A character cut between two
// chunks waits for its remaining bytes, so the text never depends on where chunks were cut.

import { isUtf8 } from 'node:buffer';

const RAW_BASE = 0xdc00;

/** Decodes a stream chunk by chunk; `end()` gives back a sequence left incomplete. */
export class Utf8Reader {
  #carry: Buffer | null = null;
  /** Some byte read so far was not UTF-8: encodeText must look for raw bytes. */
  sawRawBytes = false;

  /** Bytes held for a character not yet complete (at most 3). */
  get pendingBytes(): number {
    return this.#carry?.length ?? 0;
  }

  read(chunk: Buffer): string {
    let bytes = chunk;
    if (this.#carry) {
      bytes = Buffer.concat([this.#carry, chunk]);
      this.#carry = null;
    }
    const keep = incompleteTail(bytes);
    if (keep > 0) {
      this.#carry = Buffer.from(bytes.subarray(bytes.length - keep));
      bytes = bytes.subarray(0, bytes.length - keep);
    }
    return this.#decode(bytes);
  }

  #decode(b: Buffer): string {
    if (b.length === 0) return '';
    if (isUtf8(b)) return b.toString('utf8');
    this.sawRawBytes = true;
    return decodeWithRawBytes(b);
  }

  /** The end of the stream: an incomplete sequence is what it is, bytes that are not UTF-8. */
  end(): string {
    const carry = this.#carry;
    this.#carry = null;
    return carry ? this.#decode(carry) : '';
  }
}

/** How many bytes at the end start a multi-byte sequence that needs more bytes than follow. */
function incompleteTail(b: Buffer): number {
  for (let i = b.length - 1; i >= 0 && i >= b.length - 3; i--) {
    const c = b[i]!;
    if (c < 0x80) return 0;
    if (c < 0xc0) continue; // a continuation byte: look further back for its lead
    const need = c >= 0xf8 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
    return b.length - i < need ? b.length - i : 0;
  }
  return 0;
}

function decodeWithRawBytes(b: Buffer): string {
  const units = new Uint16Array(b.length); // never more code units than bytes
  let k = 0;
  for (let i = 0; i < b.length; ) {
    const c = b[i]!;
    const n = c < 0x80 ? 1 : validSequence(b, i);
    if (n === 1) units[k++] = c;
    else if (n === 2) units[k++] = ((c & 0x1f) << 6) | (b[i + 1]! & 0x3f);
    else if (n === 3) units[k++] = ((c & 0x0f) << 12) | ((b[i + 1]! & 0x3f) << 6) | (b[i + 2]! & 0x3f);
    else if (n === 4) {
      const cp = (((c & 0x07) << 18) | ((b[i + 1]! & 0x3f) << 12) | ((b[i + 2]! & 0x3f) << 6) | (b[i + 3]! & 0x3f)) - 0x10000;
      units[k++] = 0xd800 + (cp >> 10);
      units[k++] = 0xdc00 + (cp & 0x3ff);
    } else units[k++] = RAW_BASE + c;
    i += n || 1;
  }
  const parts: string[] = [];
  for (let j = 0; j < k; j += 8192) parts.push(String.fromCharCode.apply(null, units.subarray(j, Math.min(k, j + 8192)) as unknown as number[]));
  return parts.join('');
}

/** The length of the valid UTF-8 sequence starting at i, or 0 (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF). */
function validSequence(b: Buffer, i: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  const left = b.length - i;
  if (c >= 0xc2 && c <= 0xdf) return left >= 2 && (b[i + 1]! & 0xc0) === 0x80 ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (left < 3) return 0;
    const c1 = b[i + 1]!;
    if (c1 < (c === 0xe0 ? 0xa0 : 0x80) || c1 > (c === 0xed ? 0x9f : 0xbf)) return 0;
    return (b[i + 2]! & 0xc0) === 0x80 ? 3 : 0;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (left < 4) return 0;
    const c1 = b[i + 1]!;
    if (c1 < (c === 0xf0 ? 0x90 : 0x80) || c1 > (c === 0xf4 ? 0x8f : 0xbf)) return 0;
    return (b[i + 2]! & 0xc0) === 0x80 && (b[i + 3]! & 0xc0) === 0x80 ? 4 : 0;
  }
  return 0;
}

/** Whether a text read by Utf8Reader holds a byte that was not UTF-8. */
function hasRawBytes(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    if (c <= 0xdbff) {
      i++; // a pair from a valid 4-byte sequence
      continue;
    }
    return true;
  }
  return false;
}

/** The bytes of a text produced by Utf8Reader (and masking, which adds only ASCII). */
export function encodeText(s: string, mayHaveRaw: boolean): Buffer {
  if (!mayHaveRaw || !hasRawBytes(s)) return Buffer.from(s, 'utf8');
  const out = Buffer.allocUnsafe(s.length * 3);
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) out[n++] = c;
    else if (c < 0x800) {
      out[n++] = 0xc0 | (c >> 6);
      out[n++] = 0x80 | (c & 0x3f);
    } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const cp = 0x10000 + ((c - 0xd800) << 10) + (s.charCodeAt(++i) - 0xdc00);
      out[n++] = 0xf0 | (cp >> 18);
      out[n++] = 0x80 | ((cp >> 12) & 0x3f);
      out[n++] = 0x80 | ((cp >> 6) & 0x3f);
      out[n++] = 0x80 | (cp & 0x3f);
    } else if (c >= 0xdc80 && c <= 0xdcff) out[n++] = c - RAW_BASE;
    else {
      out[n++] = 0xe0 | (c >> 12);
      out[n++] = 0x80 | ((c >> 6) & 0x3f);
      out[n++] = 0x80 | (c & 0x3f);
    }
  }
  return out.subarray(0, n);
}

/** True for a high surrogate: a cut right after it would split a character in two. */
export function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}
