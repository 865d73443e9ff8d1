// The masking engine's face for JSON bodies (HTTP requests and responses, Kubernetes
// objects): a streamed document, or several one after another (JSON Lines, watch streams),
// masked as it passes. A value at a masked path (json-path.ts) becomes a JSON string of the
// whole-value mask; every other string, key and number is read by the detectors (json-tokens.ts);
// every other byte passes as it came. What is kept is bounded by the longest string or number
// (`maxToken`); a body that is not JSON is replaced from its first bad byte. docs/policy.md,
// "Masking streams and JSON bodies", says precisely what is guaranteed.
//
// The tokenizer is its own, over bytes: the streaming JSON parsers on npm (@streamparser/json,
// stream-json, jsonparse) yield decoded values, not the bytes they came from, and keep strings
// without bound, so re-emitting the input exactly and capping what is held would sit on top of
// them anyway.

import type { DetectorName } from './detectors.ts';
import type { Masker } from './engine.ts';
import { JsonPaths, type PathState } from './json-path.ts';
import { BOM, LITERALS, NUM, NUMBER, WHOLE_MASK, WS, scanString, stringValue, tokenVerdict, type TokenVerdict } from './json-tokens.ts';
import type { MaskedChunk } from './stream-masker.ts';

export interface JsonOptions {
  /** Bytes of one string or number kept at most (default JSON_MAX_TOKEN). */
  maxToken?: number;
}

/** 1 MiB: more than any key or secret, and most embedded documents (a Kubernetes ConfigMap
 * value is at most 1 MiB). */
export const JSON_MAX_TOKEN = 1 << 20;
export const MAX_DEPTH = 1000;
export const NOT_JSON_MASK = '[masked:not-json]';

const S = {
  Bom: 0, Top: 1, Value: 2, ObjFirst: 3, ObjKey: 4, Colon: 5, ObjNext: 6, ArrFirst: 7, ArrNext: 8, Str: 9, Num: 10, Lit: 11, Error: 12,
} as const;
type State = typeof S[keyof typeof S];

interface Frame { obj: boolean; state: PathState; index: number }

export class JsonMasker {
  readonly #masker: Masker;
  readonly #paths: JsonPaths;
  readonly #maxToken: number;
  #state: State = S.Bom;
  #stack: Frame[] = [];
  /** Stack depth at which a masked object or array began: nothing below it is written. */
  #maskDepth = -1;
  /** The value about to start: its path state and whether a path masks it. */
  #next: { state: PathState; masked: boolean };
  /** The token being read: a string (key or value) or a number. While it lies in the
   * current chunk, #tokenIn is where it starts there (the pass-through run goes on through
   * it, in case it comes out unchanged); a token that goes on past a chunk keeps the bytes
   * read so far in #token (its first byte on), unless there are too many. */
  #tokenIsKey = false;
  #tokenMasked = false;
  #tokenIn = -1;
  #token: Buffer[] = [];
  #tokenLen = 0;
  #tokenTooLong = false;
  #tokenHasEscape = false;
  /** Offset of the token's first byte in the body. */
  #tokenAt = 0;
  /** In a string: 0, or 1 after a backslash, or 2..5 for the hex digits of \u still due. */
  #esc = 0;
  #lit: Buffer | null = null;
  #litAt = 0;
  #litMasked = false;
  #offset = 0;
  #chunk: Buffer = Buffer.alloc(0);
  #error: string | null = null;
  // Per push: output pieces, the pass-through run, what masking fired.
  #out: Buffer[] = [];
  #run = -1;
  #values = 0;
  #fired = new Set<DetectorName>();

  constructor(masker: Masker, paths: readonly string[], options: JsonOptions = {}) {
    this.#masker = masker;
    this.#paths = new JsonPaths(paths);
    this.#maxToken = Math.max(1024, options.maxToken ?? JSON_MAX_TOKEN);
    this.#next = this.#rootNext();
  }

  /** Why the body stopped being JSON (with the byte offset), or null. */
  get error(): string | null {
    return this.#error;
  }

  push(chunk: Buffer): MaskedChunk {
    this.#scan(chunk);
    return this.#result();
  }

  /** The end of the body: a document left incomplete is an error (the rest is the mark). */
  flush(): MaskedChunk {
    if (this.#state === S.Num) {
      this.#chunk = Buffer.alloc(0);
      this.#endNumber(0);
    }
    if (this.#state !== S.Top && this.#state !== S.Bom && this.#state !== S.Error) this.#fail('unexpected end of the body', this.#offset);
    return this.#result();
  }

  #result(): MaskedChunk {
    const r: MaskedChunk = {
      bytes: this.#out.length === 1 ? this.#out[0]! : Buffer.concat(this.#out),
      values: this.#values,
      detectors: [...this.#fired],
    };
    this.#out = [];
    this.#values = 0;
    this.#fired = new Set();
    return r;
  }

  #rootNext(): { state: PathState; masked: boolean } {
    return { state: this.#paths.root, masked: this.#paths.rootMasked };
  }

  get #hidden(): boolean {
    return this.#maskDepth >= 0;
  }

  // The pass-through run: bytes of the chunk from #run on are written as they are.
  #pass(i: number): void {
    if (this.#run < 0 && !this.#hidden) this.#run = i;
  }

  #hold(chunk: Buffer, i: number): void {
    if (this.#run >= 0) {
      if (i > this.#run) this.#out.push(chunk.subarray(this.#run, i));
      this.#run = -1;
    }
  }

  #write(s: string): void {
    this.#out.push(Buffer.from(s, 'utf8'));
  }

  #fail(why: string, at: number): void {
    this.#error = `not JSON at byte ${at}: ${why}`;
    this.#state = S.Error;
    this.#token = [];
    this.#tokenIn = -1;
    this.#write(NOT_JSON_MASK);
    this.#values++;
  }

  #scan(chunk: Buffer): void {
    const n = chunk.length;
    const base = this.#offset;
    this.#offset += n;
    this.#run = -1;
    let i = 0;
    this.#chunk = chunk;
    while (i < n) {
      const c = chunk[i]!;
      switch (this.#state) {
        case S.Error:
          return;
        case S.Bom: {
          // A UTF-8 byte order mark, which some servers send first, is passed as it is.
          const at = base + i;
          if (at === 0 && c !== 0xef) {
            this.#state = S.Top;
            continue;
          }
          if (c !== BOM[at]) return this.#hold(chunk, i), this.#fail('bad byte order mark', at);
          this.#pass(i);
          i++;
          if (at === 2) this.#state = S.Top;
          continue;
        }
        case S.Top:
        case S.Value:
        case S.ArrFirst:
          if (WS[c]) {
            this.#pass(i);
            i++;
            continue;
          }
          if (this.#state === S.ArrFirst && c === 0x5d) {
            this.#closeContainer(chunk, i);
            i++;
            continue;
          }
          if (!this.#beginValue(chunk, i, c)) return;
          i++;
          continue;
        case S.ObjFirst:
        case S.ObjKey:
          if (WS[c]) {
            this.#pass(i);
            i++;
            continue;
          }
          if (this.#state === S.ObjFirst && c === 0x7d) {
            this.#closeContainer(chunk, i);
            i++;
            continue;
          }
          if (c !== 0x22) return this.#hold(chunk, i), this.#fail('expected a key', base + i);
          this.#beginString(chunk, i, true, false);
          i++;
          continue;
        case S.Colon:
          if (WS[c] || c === 0x3a) {
            this.#pass(i);
            if (c === 0x3a) this.#state = S.Value;
            i++;
            continue;
          }
          return this.#hold(chunk, i), this.#fail('expected ":"', base + i);
        case S.ObjNext:
        case S.ArrNext: {
          const obj = this.#state === S.ObjNext;
          if (WS[c]) {
            this.#pass(i);
            i++;
            continue;
          }
          if (c === 0x2c) {
            this.#pass(i);
            if (obj) this.#state = S.ObjKey;
            else {
              const f = this.#stack[this.#stack.length - 1]!;
              f.index++;
              this.#next = this.#hidden ? { state: this.#paths.none, masked: false } : this.#paths.child(f.state, f.index);
              this.#state = S.Value;
            }
            i++;
            continue;
          }
          if (c === (obj ? 0x7d : 0x5d)) {
            this.#closeContainer(chunk, i);
            i++;
            continue;
          }
          return this.#hold(chunk, i), this.#fail(obj ? 'expected "," or "}"' : 'expected "," or "]"', base + i);
        }
        case S.Str:
          i = this.#string(chunk, i, base);
          continue;
        case S.Num:
          while (i < n && NUM[chunk[i]!]) i++;
          if (i === n) continue;
          if (!this.#endNumber(i)) return;
          continue; // this byte is read again in the state after the number
        case S.Lit:
          if (c !== this.#lit![this.#litAt]) return this.#hold(chunk, i), this.#fail('bad literal', base + i);
          if (!this.#litMasked) this.#pass(i);
          i++;
          if (++this.#litAt === this.#lit!.length) this.#afterValue();
          continue;
      }
    }
    if (this.#state === S.Error) return;
    if ((this.#state === S.Str || this.#state === S.Num) && !this.#hidden) {
      // A token going on in the next chunk: what is before it is written, it is kept.
      const from = this.#tokenIn >= 0 ? this.#tokenIn : 0;
      this.#hold(chunk, from);
      this.#tokenKeep(chunk.subarray(from, n));
      this.#tokenIn = -1;
    }
    if (this.#run >= 0) {
      if (n > this.#run) this.#out.push(chunk.subarray(this.#run, n));
      this.#run = -1;
    }
  }

  /** The first byte of a value; false on an error. */
  #beginValue(chunk: Buffer, i: number, c: number): boolean {
    const { state, masked } = this.#next;
    const maskIt = masked && !this.#hidden;
    if (c === 0x7b || c === 0x5b) {
      if (this.#stack.length >= MAX_DEPTH) {
        this.#hold(chunk, i);
        this.#fail(`nested deeper than ${MAX_DEPTH}`, this.#offset - chunk.length + i);
        return false;
      }
      const obj = c === 0x7b;
      if (maskIt) {
        this.#maskWhole(chunk, i);
        this.#maskDepth = this.#stack.length;
      } else this.#pass(i);
      this.#stack.push({ obj, state: this.#hidden ? this.#paths.none : state, index: 0 });
      if (obj) this.#state = S.ObjFirst;
      else {
        this.#state = S.ArrFirst;
        this.#next = this.#hidden ? { state: this.#paths.none, masked: false } : this.#paths.child(state, 0);
      }
      return true;
    }
    if (c === 0x22) {
      this.#beginString(chunk, i, false, maskIt);
      return true;
    }
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      this.#tokenStart(chunk, i, false, maskIt);
      this.#state = S.Num;
      return true;
    }
    const lit = LITERALS[c];
    if (lit) {
      this.#lit = lit;
      this.#litAt = 1;
      this.#litMasked = maskIt || this.#hidden;
      if (maskIt) this.#maskWhole(chunk, i);
      else this.#pass(i);
      this.#state = S.Lit;
      return true;
    }
    this.#hold(chunk, i);
    this.#fail('expected a value', this.#offset - chunk.length + i);
    return false;
  }

  /** A value at a masked path starts at i: its bytes give way to the mask. */
  #maskWhole(chunk: Buffer, i: number): void {
    this.#hold(chunk, i);
    this.#write(JSON.stringify(WHOLE_MASK));
    this.#values++;
  }

  #closeContainer(chunk: Buffer, i: number): void {
    this.#pass(i);
    this.#stack.pop();
    if (this.#maskDepth === this.#stack.length) {
      // The closing byte of a masked value is not written; what follows is again.
      this.#hold(chunk, i);
      this.#maskDepth = -1;
    }
    this.#afterValue();
  }

  /** After a value: what the enclosing container (or the top level) expects next. */
  #afterValue(): void {
    const f = this.#stack[this.#stack.length - 1];
    if (!f) {
      this.#state = S.Top;
      this.#next = this.#rootNext();
    } else this.#state = f.obj ? S.ObjNext : S.ArrNext;
  }

  #tokenStart(chunk: Buffer, i: number, isKey: boolean, masked: boolean): void {
    this.#tokenAt = this.#offset - chunk.length + i;
    this.#tokenIn = i;
    this.#tokenIsKey = isKey;
    this.#tokenMasked = masked;
    this.#token = [];
    this.#tokenLen = 0;
    this.#tokenTooLong = false;
    this.#tokenHasEscape = false;
    this.#pass(i);
  }

  #tokenKeep(bytes: Buffer): void {
    if (this.#tokenTooLong || bytes.length === 0) return;
    this.#tokenLen += bytes.length;
    if (this.#tokenLen > this.#maxToken) {
      this.#tokenTooLong = true;
      this.#token = [];
    } else this.#token.push(Buffer.from(bytes));
  }

  /** The whole token, its last byte at `end` - 1 of the current chunk; null when too long. */
  #tokenBytes(end: number): Buffer | null {
    if (this.#tokenIn >= 0) return end - this.#tokenIn > this.#maxToken ? null : this.#chunk.subarray(this.#tokenIn, end);
    if (this.#tokenTooLong || this.#tokenLen + end > this.#maxToken) return null;
    return Buffer.concat([...this.#token, this.#chunk.subarray(0, end)]);
  }

  /** The token has ended in the current chunk: written as it came (null) or replaced. */
  #tokenEnd(replacement: string | null): void {
    if (replacement !== null) {
      this.#hold(this.#chunk, this.#tokenIn >= 0 ? this.#tokenIn : 0);
      this.#write(replacement);
    } else if (this.#tokenIn < 0) {
      this.#out.push(...this.#token);
      this.#run = 0;
    }
    this.#token = [];
    this.#tokenIn = -1;
    if (replacement !== null) this.#run = -1;
  }

  /** A malformed token: nothing of it is written. */
  #tokenDrop(): void {
    if (this.#tokenIn >= 0) this.#hold(this.#chunk, this.#tokenIn);
    this.#run = -1;
    this.#token = [];
    this.#tokenIn = -1;
  }

  #beginString(chunk: Buffer, i: number, isKey: boolean, masked: boolean): void {
    this.#tokenStart(chunk, i, isKey, masked);
    this.#esc = 0;
    this.#state = S.Str;
  }

  /** Reads string bytes from i; returns where reading goes on. */
  #string(chunk: Buffer, i: number, base: number): number {
    const r = scanString(chunk, i, this.#esc);
    this.#esc = r.esc;
    if (r.escaped) this.#tokenHasEscape = true;
    if (r.error) {
      this.#tokenDrop();
      this.#fail(r.error, base + r.at);
      return chunk.length;
    }
    if (r.end < 0) return chunk.length;
    this.#endString(r.end);
    return r.end + 1;
  }

  #apply(v: TokenVerdict): string | null {
    this.#values += v.values;
    for (const d of v.detectors) this.#fired.add(d);
    return v.out;
  }

  /** The closing quote is at `q` in the current chunk. */
  #endString(q: number): void {
    const isKey = this.#tokenIsKey;
    if (this.#hidden) {
      this.#state = isKey ? S.Colon : S.Value;
      if (isKey) this.#next = { state: this.#paths.none, masked: false };
      else this.#afterValue();
      return;
    }
    const bytes = this.#tokenBytes(q + 1);
    const value = bytes && stringValue(bytes, this.#tokenHasEscape);
    this.#tokenEnd(this.#apply(tokenVerdict(this.#masker, value, !isKey && this.#tokenMasked)));
    if (isKey) {
      const f = this.#stack[this.#stack.length - 1]!;
      this.#next = this.#paths.child(f.state, value);
      this.#state = S.Colon;
    } else this.#afterValue();
  }

  /** The end of a number, at `end` in the current chunk (the byte after it, or the end of
   * the body); false on an error. */
  #endNumber(end: number): boolean {
    if (!this.#hidden) {
      const bytes = this.#tokenBytes(end);
      const text = bytes && bytes.toString('latin1');
      if (text !== null && !NUMBER.test(text)) {
        this.#tokenDrop();
        this.#fail('bad number', this.#tokenAt);
        return false;
      }
      this.#tokenEnd(this.#apply(tokenVerdict(this.#masker, text, this.#tokenMasked)));
    }
    this.#afterValue();
    return true;
  }
}
