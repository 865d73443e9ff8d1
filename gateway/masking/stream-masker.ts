// The masking engine's face for streams of text and terminal output (SSH exec and shell
// output, HTTP text bodies, kubectl exec): bytes in, masked bytes out, chunk by chunk.
//
// What it guarantees: however the stream is cut into chunks (at any byte, inside a UTF-8
// character too), the output is the same as masking the whole stream at once (Masker.maskText
// over the whole text, for valid UTF-8 without JSON `\u` escapes; see maskStretch for those),
// and no byte outside a finding changes, not even bytes that are not UTF-8. Only a tail that
// could still be, or decide, a secret is held back (cut-points.ts says where a cut is safe);
// everything before it is released at once. See docs/policy.md, "Masking streams and JSON
// bodies", for the limits: the hold-back cap and the idle flush.

import { CutFinder } from './cut-points.ts';
import type { DetectorName } from './detectors.ts';
import type { Masker } from './engine.ts';
import { Utf8Reader, encodeText } from './utf8-text.ts';

/** What one push or flush releases, and what masking it took (for the recorder's noteMasked). */
export interface MaskedChunk {
  bytes: Buffer;
  /** Values or stretches replaced whole (a JSON field by path, text held past the cap). */
  values: number;
  /** Detectors that found something in what was released. */
  detectors: DetectorName[];
}

export interface StreamOptions {
  /** Characters held back at most while no cut is safe (default STREAM_MAX_HOLD). */
  maxHold?: number;
}

/** 64 KiB of text: ten times the longest PEM private key in use (RSA 8192, about 6.4 KiB). */
export const STREAM_MAX_HOLD = 65536;

/** What replaces text held back past the cap. */
export const HELD_BACK_MASK = '[masked:held-back]';

/** A `\u` escape of a character detectors match (engine.ts decodes these in values). */
const ESCAPE = /\\u00[2-7][0-9A-Fa-f]/;

/** Kept of a span's start and of the end of the text when held text past the cap is dropped. */
const KEEP = 256;

const EMPTY: MaskedChunk = Object.freeze({ bytes: Buffer.alloc(0), values: 0, detectors: [] }) as MaskedChunk;

export class StreamMasker {
  readonly #masker: Masker;
  readonly #cuts: CutFinder;
  /** Any detector's hint: a held tail with one already looks like a secret's start. */
  readonly #hints: RegExp | null;
  readonly #maxHold: number;
  readonly #reader = new Utf8Reader();
  /** Text read and not yet released; it starts at a safe cut (or a forced one). */
  #held = '';
  /** Positions of #held up to this one are known not to be safe cuts. */
  #scanned = 0;
  /** Where the next analysis rescans spans from (see Analysis.resume), or -1. */
  #openFrom = -1;
  /** A span is open at the end of #held (a PEM block, `password=`...). */
  #spanOpen = false;
  /** The character before #held, as a char code, or -1. */
  #before = -1;
  /** Past the cap: what is held is dropped, not released, up to the next safe cut. */
  #dropping = false;

  constructor(masker: Masker, options: StreamOptions = {}) {
    this.#masker = masker;
    this.#cuts = new CutFinder(masker.detectorList);
    this.#hints = masker.detectorList.length ? new RegExp(masker.detectorList.map((d) => `(?:${d.hint})`).join('|')) : null;
    this.#maxHold = Math.max(1024, options.maxHold ?? STREAM_MAX_HOLD);
  }

  /** Bytes read and not yet released (an adapter arms its idle timer while this is not 0). */
  get pending(): number {
    return this.#held.length + this.#reader.pendingBytes;
  }

  /** The next chunk of the stream: what can be released now, masked. */
  push(chunk: Buffer): MaskedChunk {
    if (!this.#masker.detects) return chunk.length ? { bytes: chunk, values: 0, detectors: [] } : EMPTY;
    const text = this.#reader.read(chunk);
    if (text === '') return EMPTY;
    this.#held += text;
    const from = this.#scanned;
    const a = this.#cuts.analyse(this.#held, from, this.#openFrom, this.#before);
    if (a.cut < 0) {
      this.#scanned = this.#held.length;
      this.#openFrom = a.resume;
      this.#spanOpen = a.open.length > 0;
      return this.#held.length > this.#maxHold ? this.#overflow(a.open) : EMPTY;
    }
    let at = 0;
    if (this.#dropping) {
      // What was held past the cap ends at the first safe cut: dropped up to the character
      // before it (a separator, which no secret holds).
      at = this.#cuts.analyse(this.#held, from, this.#openFrom, this.#before, true).cuts[0]! - 1;
      this.#dropping = false;
      if (at > 0) this.#before = this.#held.charCodeAt(at - 1);
    }
    const piece = this.#held.slice(at, a.cut);
    const out = piece === '' ? EMPTY : this.#maskPiece(piece, Math.max(0, from - at));
    this.#held = this.#held.slice(a.cut);
    this.#scanned = this.#held.length;
    this.#openFrom = a.resume >= a.cut ? a.resume - a.cut : -1;
    this.#spanOpen = a.open.length > 0;
    if (piece !== '') this.#before = piece.charCodeAt(piece.length - 1);
    if (this.#held.length <= this.#maxHold) return out;
    const mark = this.#overflow(a.open.map((s) => s - a.cut));
    return { bytes: Buffer.concat([out.bytes, mark.bytes]), values: out.values + mark.values, detectors: out.detectors };
  }

  /** The end of the stream: everything held, masked as the end of the text. */
  flush(): MaskedChunk {
    if (!this.#masker.detects) return EMPTY;
    this.#held += this.#reader.end();
    return this.#release();
  }

  /** After a short idle time (an adapter's timer, or idleFlush): releases what is held, as
   * if the stream were cut there, unless it already looks like a secret's start (an open
   * span, such as a PEM block or `password=`, or any detector's hint such as `ghp_`, `eyJ`,
   * `@`), which stays held until the text decides it or the stream ends. A UTF-8 character
   * still missing bytes stays held. */
  flushIdle(): MaskedChunk {
    if (this.#held === '' || this.#dropping || this.#spanOpen || this.#hints?.test(this.#held)) return EMPTY;
    return this.#release();
  }

  #release(): MaskedChunk {
    const held = this.#held;
    this.#held = '';
    this.#scanned = 0;
    this.#openFrom = -1;
    this.#spanOpen = false;
    if (held === '') return EMPTY;
    let at = 0;
    if (this.#dropping) {
      // Dropped up to the first safe cut (less its separator), or to the end when there is none.
      const { cuts } = this.#cuts.analyse(held, 0, 0, this.#before, true);
      at = cuts.length ? cuts[0]! - 1 : held.length;
      this.#dropping = false;
      if (at > 0) this.#before = held.charCodeAt(at - 1);
    }
    // The end of the text is a cut for every detector (nothing follows); with escapes the
    // stretches before it are masked one by one, as they would be had the stream gone on.
    const out = at < held.length ? this.#maskPiece(held.slice(at), 0, true) : EMPTY;
    this.#before = held.charCodeAt(held.length - 1);
    return out;
  }

  /** No safe cut in more than maxHold characters: the held text is replaced by one mark and
   * dropped, and so is what follows up to the next safe cut. Only the starts of open spans
   * and the end are kept, so that cut is still found where the whole text would put it. */
  #overflow(open: number[]): MaskedChunk {
    const held = this.#held;
    const ranges: [number, number][] = open.map((s) => [Math.max(0, s - 1), Math.min(held.length, s + KEEP)]);
    ranges.push([Math.max(0, held.length - KEEP), held.length]);
    ranges.sort((x, y) => x[0] - y[0]);
    let kept = '';
    const starts: number[] = [];
    for (let i = 0; i < ranges.length; ) {
      const rs = ranges[i]![0];
      let re = ranges[i]![1];
      for (i++; i < ranges.length && ranges[i]![0] <= re; i++) re = Math.max(re, ranges[i]![1]);
      for (const s of open) if (s >= rs && s < re) starts.push(kept.length + s - rs);
      kept += held.slice(rs, re);
    }
    this.#held = kept;
    this.#scanned = kept.length;
    this.#openFrom = starts.length ? Math.min(...starts) : -1;
    if (this.#dropping) return EMPTY;
    this.#dropping = true;
    return { bytes: Buffer.from(HELD_BACK_MASK), values: 1, detectors: [] };
  }

  /** Masks released text. `from`: positions up to it are known unsafe (for finding the
   * stretches of a piece with escapes); `atEnd`: the piece ends the text. */
  #maskPiece(piece: string, from: number, atEnd = false): MaskedChunk {
    let text: string;
    let fired: DetectorName[] = [];
    if (!ESCAPE.test(piece)) {
      const r = this.#masker.maskText(piece);
      text = r ? r.text : piece;
      if (r) fired = r.detectors;
    } else {
      // JSON `\u` escapes are decoded per stretch between two safe cuts (maskText decodes
      // them across the whole value it is given, which a stream cannot know).
      const { cuts } = this.#cuts.analyse(piece, atEnd ? 0 : from, 0, this.#before, true);
      if (cuts[cuts.length - 1] !== piece.length) cuts.push(piece.length);
      text = '';
      let at = 0;
      const seen = new Set<DetectorName>();
      for (const c of cuts) {
        const stretch = piece.slice(at, c);
        const r = this.#masker.maskText(stretch);
        text += r ? r.text : stretch;
        for (const d of r?.detectors ?? []) seen.add(d);
        at = c;
      }
      fired = [...seen];
    }
    return { bytes: encodeText(text, this.#reader.sawRawBytes), values: 0, detectors: fired };
  }
}

/** Drives a StreamMasker for a live stream: writes what each push releases and, after `ms`
 * without input while something is held, what flushIdle releases (interactive echo stays
 * live). The timer lives here so that adapters need not each write one. */
export function idleFlush(stream: StreamMasker, ms: number, write: (chunk: MaskedChunk) => void): { push(chunk: Buffer): void; end(): void } {
  let timer: NodeJS.Timeout | null = null;
  const emit = (r: MaskedChunk): void => {
    if (r.bytes.length || r.values || r.detectors.length) write(r);
  };
  const stop = (): void => {
    if (timer) clearTimeout(timer);
    timer = null;
  };
  return {
    push(chunk) {
      stop();
      emit(stream.push(chunk));
      if (stream.pending > 0) timer = setTimeout(() => {
        timer = null;
        emit(stream.flushIdle());
      }, ms);
    },
    end() {
      stop();
      emit(stream.flush());
    },
  };
}
