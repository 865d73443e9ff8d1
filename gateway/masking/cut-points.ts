// Where a text stream may be cut so that masking the two sides apart gives what masking them
// together gives: the hold-back of stream-masker.ts, derived from the detectors' own
// declarations (`joins`, `spaceJoins`, `spans` in detectors.ts).
//
// A cut at p (between text[p-1] and text[p]) is safe when
//  - text[p-1] is in no enabled detector's `joins` (so no match, lookbehind or lookahead runs
//    across p: every detector's boundaries look at one character, except a card's lookahead,
//    which looks at two when the first is a space or dash, both covered), is not a space after
//    a `spaceJoins` character, not a backslash (JSON escapes stay whole) and not the first half
//    of a surrogate pair; and
//  - no span of an enabled detector runs through p: a span starting at s and ending at e
//    blocks every cut in (s, e], since with the text only up to p it would still be open.
// Whether p is safe depends on text[0..p) alone, so a position found unsafe stays unsafe as
// more text arrives: each push only examines the new positions, and spans are rescanned only
// from the start of one still open (or the last few characters, where one may be starting).

import type { Detector } from './detectors.ts';
import { isHighSurrogate } from './utf8-text.ts';

/** Longer than any span's starting text (`sharedaccesskey` and the character before it). */
const MAX_ANCHOR = 17;

export interface Analysis {
  /** The last safe cut after `from`, or -1. */
  cut: number;
  /** Starts of the spans still open at the end of the text, ascending (empty when none). */
  open: number[];
  /** Where the next analysis (of this text grown) rescans spans from: the first open span,
   * or one that ended within the last few characters (had the text ended inside a span's
   * fixed part, it may have looked closed), or -1. */
  resume: number;
}

export class CutFinder {
  /** 1 for an ASCII character after which no cut may fall; 2 where a space after it joins too. */
  readonly #table = new Uint8Array(128);
  readonly #spans: RegExp[];

  constructor(detectors: readonly Detector[]) {
    const joins = new RegExp(`[${['\\\\', ...detectors.map((d) => d.joins)].join('')}]`);
    const spaceJoins = detectors.filter((d) => d.spaceJoins).map((d) => d.spaceJoins);
    const spaceRe = spaceJoins.length ? new RegExp(`[${spaceJoins.join('')}]`) : null;
    for (let c = 0; c < 128; c++) {
      const ch = String.fromCharCode(c);
      if (joins.test(ch)) this.#table[c] = 1;
      if (spaceRe?.test(ch)) this.#table[c]! |= 2;
    }
    // Own copies: lastIndex is state.
    this.#spans = detectors.flatMap((d) => d.spans ?? []).map((re) => new RegExp(re.source, re.flags));
  }

  /** Whether a cut after text[p-1] is safe as far as characters go; `before` stands for text[-1]. */
  neutralAt(text: string, p: number, before: number): boolean {
    const c1 = text.charCodeAt(p - 1);
    if (c1 < 128) {
      if ((this.#table[c1]! & 1) !== 0) return false;
      if (c1 !== 32) return true;
      const c2 = p >= 2 ? text.charCodeAt(p - 2) : before;
      return !(c2 >= 0 && c2 < 128 && (this.#table[c2]! & 2) !== 0);
    }
    return !isHighSurrogate(c1);
  }

  /** Positions in (from, text.length] are examined; positions up to `from` are known unsafe.
   * `openFrom` is the previous analysis's `resume` (less what was cut off), or -1. With
   * `all`, every safe cut after `from` is listed instead of the last. */
  analyse(text: string, from: number, openFrom: number, before: number): Analysis;
  analyse(text: string, from: number, openFrom: number, before: number, all: true): Analysis & { cuts: number[] };
  analyse(text: string, from: number, openFrom: number, before: number, all = false): Analysis & { cuts?: number[] } {
    const len = text.length;
    let spanFrom = Math.max(0, from - MAX_ANCHOR);
    if (openFrom >= 0 && openFrom < spanFrom) spanFrom = openFrom;
    // Closed spans reaching into the new positions, as [start, end] pairs; open span starts.
    const closed: number[] = [];
    const open: number[] = [];
    // Spans are looked for from every start, nested ones too (a match the detector finds
    // inside another's span can outrun it). Past a budget, the text is taken as open from
    // there: holding more is the safe mistake.
    let budget = 4 * (len - spanFrom) + 4096;
    let resume = -1;
    for (const re of this.#spans) {
      re.lastIndex = spanFrom;
      for (let m = re.exec(text); m; m = re.exec(text)) {
        const start = m.index;
        const end = start + m[0].length;
        budget -= m[0].length;
        if (end >= len || budget < 0) {
          open.push(start);
          break;
        }
        if (end > from) closed.push(start, end);
        if (end > len - MAX_ANCHOR && (resume < 0 || start < resume)) resume = start;
        re.lastIndex = start + 1;
      }
    }
    open.sort((a, b) => a - b);
    const openAt = open.length ? open[0]! : len;
    if (open.length && (resume < 0 || openAt < resume)) resume = openAt;
    const blocked = (p: number): boolean => {
      if (p > openAt) return true;
      for (let i = 0; i < closed.length; i += 2) if (closed[i]! < p && p <= closed[i + 1]!) return true;
      return false;
    };
    if (all) {
      const cuts: number[] = [];
      for (let p = from + 1; p <= len; p++) if (this.neutralAt(text, p, before) && !blocked(p)) cuts.push(p);
      return { cut: cuts.length ? cuts[cuts.length - 1]! : -1, open, resume, cuts };
    }
    for (let p = Math.min(len, openAt); p > from; p--) if (this.neutralAt(text, p, before) && !blocked(p)) return { cut: p, open, resume };
    return { cut: -1, open, resume };
  }
}
