// Secrets the gateway itself holds (an upstream's bearer token, API key or Entra ID token) masked
// wherever a target echoes them back: a debug endpoint that returns the request's headers, an
// error that quotes the token. Whatever the policy's masking says, such a value never reaches a
// client or the log. The values are asked for at every chunk (a token is refreshed during a run);
// a value cut across two chunks is found because the last bytes that could start one are held
// back until the next chunk or the end.

export const CREDENTIAL_MASK = '[masked:credential]';

/** Values shorter than this are not masked: they would match ordinary text. */
const MIN_LENGTH = 8;

export class LiteralMasker {
  private readonly values: () => readonly string[];
  private held: Buffer = Buffer.alloc(0);
  /** Occurrences replaced so far. */
  found = 0;

  /** `values` returns a new array whenever the list changes (what is built from one is kept). */
  constructor(values: () => readonly string[]) {
    this.values = values;
  }

  /**
   * The chunk with every complete occurrence replaced; held back: only the end that could start a
   * value (a stream that pauses after a line, a watch event or a log line, is not held up).
   */
  push(chunk: Buffer): Buffer {
    const secrets = this.secrets();
    if (secrets.length === 0) {
      const out = this.held.length ? Buffer.concat([this.held, chunk]) : chunk;
      this.held = Buffer.alloc(0);
      return out;
    }
    const data = this.replace(this.held.length ? Buffer.concat([this.held, chunk]) : chunk, secrets);
    const keep = heldTail(data, secrets);
    this.held = Buffer.from(data.subarray(data.length - keep));
    return data.subarray(0, data.length - keep);
  }

  flush(): Buffer {
    const out = this.held;
    this.held = Buffer.alloc(0);
    return out;
  }

  /** A whole text (a header value, a message) with every value replaced. */
  text(s: string): string {
    let out = s;
    for (const v of patternsOf(this.values()).strings) {
      if (out.includes(v)) {
        out = out.split(v).join(CREDENTIAL_MASK);
        this.found++;
      }
    }
    return out;
  }

  /** The values' spellings as bytes, built once per list (a list changes when a token is refreshed). */
  private secrets(): Buffer[] {
    return patternsOf(this.values()).bytes;
  }

  private replace(data: Buffer, secrets: Buffer[]): Buffer {
    let out = data;
    for (const s of secrets) {
      let at = out.indexOf(s);
      if (at < 0) continue;
      const parts: Buffer[] = [];
      let from = 0;
      while (at >= 0) {
        parts.push(out.subarray(from, at), Buffer.from(CREDENTIAL_MASK));
        this.found++;
        from = at + s.length;
        at = out.indexOf(s, from);
      }
      parts.push(out.subarray(from));
      out = Buffer.concat(parts);
    }
    return out;
  }
}

/** Built once per list of values and shared by every masker reading that list. */
const PATTERNS = new WeakMap<readonly string[], { strings: string[]; bytes: Buffer[] }>();

function patternsOf(values: readonly string[]): { strings: string[]; bytes: Buffer[] } {
  let p = PATTERNS.get(values);
  if (!p) {
    const strings = spellings(values);
    p = { strings, bytes: strings.map((v) => Buffer.from(v)) };
    PATTERNS.set(values, p);
  }
  return p;
}

/**
 * Each value as an echo may spell it: as sent, JSON-escaped (`\/` for `/`, as PHP and others
 * write it; `\"` and `\\`), and percent-encoded (a value echoed in a URL or form). Longest
 * first, so a spelling that contains another is replaced whole.
 */
function spellings(values: readonly string[]): string[] {
  const out = new Set<string>();
  for (const v of values) {
    if (v.length < MIN_LENGTH) continue;
    out.add(v);
    out.add(JSON.stringify(v).slice(1, -1));
    out.add(JSON.stringify(v).slice(1, -1).replace(/\//g, '\\/'));
    out.add(encodeURIComponent(v));
  }
  return [...out].sort((a, b) => b.length - a.length);
}

/**
 * How many of the last bytes of `data` could be the start of a value cut across chunks: the
 * longest suffix that is a proper prefix of one of them (0 when none). Only positions holding a
 * value's first byte are compared, so a chunk costs about a value's length to check.
 */
function heldTail(data: Buffer, secrets: readonly Buffer[]): number {
  let longest = 0;
  for (const s of secrets) longest = Math.max(longest, s.length);
  const from = Math.max(0, data.length - longest + 1);
  for (let pos = from; pos < data.length; pos++) {
    const b = data[pos];
    const tail = data.length - pos;
    for (const s of secrets) {
      if (s[0] === b && tail < s.length && data.compare(s, 0, tail, pos) === 0) return tail;
    }
  }
  return 0;
}
