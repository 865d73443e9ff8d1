// Secret values out of every body of a `secrets` request: the responses a client reads (a Secret,
// a SecretList, watch events, Tables, Status errors) and the request bodies the log samples
// (create, update, the patches of `kubectl apply` and `kubectl patch`, server-side apply's
// YAML). Pure functions over bytes: the adapter applies them, before any other masking.
//
// The rules, at any depth of the JSON value (so a Secret, a list's items, a watch event's object,
// a Table row's object are all read alike, without knowing their kinds):
//   - a member `data`: each member value is replaced by MASKED_SECRET_BASE64, keys kept (clients
//     decode `data` values as base64 []byte, so the masked value must decode: to
//     MASKED_SECRET_TEXT); a `data` that is not an object is replaced whole (a Secret never has
//     one, so whatever it holds is unforeseen: nothing under it survives);
//   - a member `stringData`: likewise with MASKED_SECRET_TEXT (its values are plain text);
//   - the annotation kubectl.kubernetes.io/last-applied-configuration: kubectl's copy of the
//     whole applied Secret, `data` included, as a JSON string: parsed, masked by these rules and
//     written back compact, as kubectl writes it (its trailing newline kept), so `kubectl apply`
//     keeps computing its three-way merge; a value that does not parse is replaced whole;
//   - null stays null (it holds nothing; in a merge patch it deletes a key, which the log must
//     show as it is); managedFields hold only field names (`f:data`) and pass.
// Member names are compared without case (a `Data` in a request body may still carry a value);
// a `data` that is not a Secret's (a label named data) is masked too: the fail-closed side.
//
// Bodies are parsed (JSON.parse) and written back (JSON.stringify), never passed as received:
// with a duplicate key JSON.parse keeps the last member, and the first one, never masked, would
// otherwise go out in the original bytes. Re-writing keeps key order and values, except what
// JSON.parse itself changes: integer-like keys come first, numbers are read as doubles (integers
// beyond 2^53 round, 1.0 becomes 1), and `<`, `&` are written raw where Go writes \u003c, \u0026.
// A Secret, its list, its Table and a Status hold no such numbers (resourceVersion is a string;
// Table cells are small counts).
import { parseAllDocuments, stringify, visit } from 'yaml';

/** The text that replaces every Secret value; `data` values are its base64. */
export const MASKED_SECRET_TEXT = '[masked by gateway]';
/** base64 of the text that replaces every Secret data value: `kubectl get secret x -o jsonpath={.data.k} | base64 -d` prints it. */
export const MASKED_SECRET_BASE64: string = Buffer.from(MASKED_SECRET_TEXT).toString('base64');
export const LAST_APPLIED_ANNOTATION = 'kubectl.kubernetes.io/last-applied-configuration';
/** How much of a non-watch response, or of one watch line, is held to mask it. */
export const DEFAULT_SECRET_BODY_LIMIT = 64 * 1024 * 1024;
/** Secrets are a few levels deep; deeper JSON is refused rather than walked into a stack overflow. */
const MAX_DEPTH = 1000;

/** Thrown when a body cannot be read to mask (not JSON, a line or body over the limit): the caller refuses the response (fail closed). */
export class UnreadableSecretBody extends Error {}

/** A streaming filter over one HTTP response body of a `secrets` request. */
export interface SecretBodyFilter {
  /** What may go to the client now (may be empty). */
  push(chunk: Buffer): Buffer;
  /** The rest at the end of the body. */
  flush(): Buffer;
  /** How many values were replaced so far. */
  readonly masked: number;
}

type Counter = { n: number };

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function setMember(out: Record<string, unknown>, key: string, value: unknown): void {
  // A JSON member named __proto__ is an own property of JSON.parse's object; plain assignment
  // would set the prototype instead and drop it.
  if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  else out[key] = value;
}

/** A `data` or `stringData` member: every value replaced, keys kept; anything but an object replaced whole. */
function maskValues(member: unknown, replacement: string, c: Counter): unknown {
  if (member === null) return null;
  if (!isPlainObject(member)) { c.n++; return replacement; }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(member)) {
    if (v === null) setMember(out, k, null);
    else { setMember(out, k, replacement); c.n++; }
  }
  return out;
}

function isJsonSpace(code: number): boolean {
  return code === 0x20 || code === 0x09 || code === 0x0a || code === 0x0d;
}

/** JSON.stringify of `value`, with the whitespace `text` had before and after its value. */
function rewrite(text: string, value: unknown): string {
  let start = 0;
  let end = text.length;
  while (start < end && isJsonSpace(text.charCodeAt(start))) start++;
  while (end > start && isJsonSpace(text.charCodeAt(end - 1))) end--;
  return text.slice(0, start) + JSON.stringify(value) + text.slice(end);
}

function maskLastApplied(member: unknown, c: Counter, depth: number): unknown {
  if (member === null) return null;
  let parsed: unknown;
  try { parsed = typeof member === 'string' ? JSON.parse(member) : undefined; } catch { parsed = undefined; }
  if (!isPlainObject(parsed)) { c.n++; return MASKED_SECRET_TEXT; }
  return rewrite(member as string, maskValue(parsed, c, depth + 1));
}

function maskValue(v: unknown, c: Counter, depth: number): unknown {
  if (depth > MAX_DEPTH) throw new UnreadableSecretBody(`the body is nested deeper than ${MAX_DEPTH} levels`);
  if (Array.isArray(v)) return v.map((e) => maskValue(e, c, depth + 1));
  if (v === null || typeof v !== 'object') return v;
  // JSON.parse makes only plain objects; YAML can make others (!!binary, !!set, timestamps).
  if (!isPlainObject(v)) throw new UnreadableSecretBody(`a value that is not JSON (${v.constructor?.name ?? 'an object'})`);
  const out: Record<string, unknown> = {};
  for (const [k, member] of Object.entries(v)) {
    const key = k.toLowerCase();
    if (key === 'data') setMember(out, k, maskValues(member, MASKED_SECRET_BASE64, c));
    else if (key === 'stringdata') setMember(out, k, maskValues(member, MASKED_SECRET_TEXT, c));
    else if (key === LAST_APPLIED_ANNOTATION) setMember(out, k, maskLastApplied(member, c, depth));
    else setMember(out, k, maskValue(member, c, depth + 1));
  }
  return out;
}

/** Masks a parsed JSON value by the rules above: returns a new value (the input is not changed) and the count. */
export function maskSecretValues(value: unknown): { value: unknown; masked: number } {
  const c: Counter = { n: 0 };
  return { value: maskValue(value, c, 0), masked: c.n };
}

/**
 * A JSON Patch (RFC 6902, `application/json-patch+json`): every operation's `value` is replaced
 * whole, whatever the op (add, replace, test, and a malformed copy or move that carries a value
 * instead of a `from`), since its path says where it goes, not what it is; a value under
 * /stringData gets the plain text, any other the base64. copy and move carry only paths. Any
 * other member is masked by the usual rules.
 */
function maskJsonPatch(ops: unknown[]): { value: unknown; masked: number } {
  const c: Counter = { n: 0 };
  const value = ops.map((op) => {
    if (!isPlainObject(op)) throw new UnreadableSecretBody('a JSON Patch operation that is not an object');
    const out: Record<string, unknown> = {};
    for (const [k, member] of Object.entries(op)) {
      if (k.toLowerCase() !== 'value' || member === null) { setMember(out, k, maskValue(member, c, 1)); continue; }
      const underStringData = typeof op.path === 'string' && /^\/stringdata(\/|$)/i.test(op.path);
      setMember(out, k, underStringData ? MASKED_SECRET_TEXT : MASKED_SECRET_BASE64);
      c.n++;
    }
    return out;
  });
  return { value, masked: c.n };
}

/** A request body's top level: an object (a Secret, a merge patch) or an array (a JSON Patch). */
function maskBodyValue(parsed: unknown): { value: unknown; masked: number } {
  if (Array.isArray(parsed)) return maskJsonPatch(parsed);
  if (isPlainObject(parsed)) return maskSecretValues(parsed);
  throw new UnreadableSecretBody('a body that is neither a JSON object nor an array');
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeUtf8(bytes: Buffer, what: string): string {
  // Invalid UTF-8 is refused, not replaced with U+FFFD: what comes out must be what was read.
  try { return utf8.decode(bytes); } catch { throw new UnreadableSecretBody(`${what} is not UTF-8 text, so not JSON`); }
}

function isBlank(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (!isJsonSpace(text.charCodeAt(i))) return false;
  return true;
}

/** One JSON object (a response body, a watch line) masked, its surrounding whitespace kept; a blank one passes. */
function maskJsonObject(bytes: Buffer, what: string, c: Counter): Buffer {
  const text = decodeUtf8(bytes, what);
  if (isBlank(text)) return bytes;
  let parsed: unknown;
  // JSON.parse's message quotes the input: it must not reach a log, so it is not passed on.
  try { parsed = JSON.parse(text); } catch { throw new UnreadableSecretBody(`${what} is not JSON`); }
  if (!isPlainObject(parsed)) throw new UnreadableSecretBody(`${what} is JSON but not an object`);
  const masked = maskSecretValues(parsed);
  c.n += masked.masked;
  return Buffer.from(rewrite(text, masked.value));
}

const EMPTY = Buffer.alloc(0);
const NEWLINE = Buffer.from('\n');
const mib = (bytes: number) => (bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)} MiB` : `${bytes} bytes`);

/** After a refusal, every later call refuses too: nothing of a body half-read goes out. */
abstract class Filter implements SecretBodyFilter {
  protected readonly maxBytes: number;
  protected readonly count: Counter = { n: 0 };
  private failure: UnreadableSecretBody | undefined;
  constructor(maxBytes: number) { this.maxBytes = maxBytes; }
  get masked(): number { return this.count.n; }
  push(chunk: Buffer): Buffer { return this.guard(() => this.take(chunk)); }
  flush(): Buffer { return this.guard(() => this.finish()); }
  protected abstract take(chunk: Buffer): Buffer;
  protected abstract finish(): Buffer;
  private guard(step: () => Buffer): Buffer {
    if (this.failure) throw this.failure;
    try { return step(); } catch (e) {
      // Only the error's class is kept: a message could quote the body.
      this.failure = e instanceof UnreadableSecretBody ? e : new UnreadableSecretBody(`the body could not be masked (${(e as Error)?.name ?? 'error'})`);
      throw this.failure;
    }
  }
}

/** A non-watch body: held whole (a JSON object cannot be masked before its end), then masked. */
class WholeBodyFilter extends Filter {
  private chunks: Buffer[] = [];
  private size = 0;
  protected take(chunk: Buffer): Buffer {
    this.size += chunk.length;
    if (this.size > this.maxBytes) throw new UnreadableSecretBody(`a secrets response body over ${mib(this.maxBytes)} cannot be held to mask its Secret values`);
    this.chunks.push(chunk);
    return EMPTY;
  }
  protected finish(): Buffer {
    const body = Buffer.concat(this.chunks);
    this.chunks = [];
    return maskJsonObject(body, 'the secrets response body', this.count);
  }
}

/** A watch: one JSON event per line, each masked and released as soon as its newline arrives. */
class WatchFilter extends Filter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  protected take(chunk: Buffer): Buffer {
    const out: Buffer[] = [];
    let start = 0;
    // 0x0a never occurs inside a multi-byte UTF-8 character: splitting bytes at it is safe.
    for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
      out.push(this.maskLine(chunk.subarray(start, nl)), NEWLINE);
      start = nl + 1;
    }
    if (start < chunk.length) this.hold(Buffer.from(chunk.subarray(start)));
    return out.length === 0 ? EMPTY : Buffer.concat(out);
  }
  protected finish(): Buffer {
    // A stream may end without a final newline: its last line is masked all the same.
    return this.pendingBytes === 0 ? EMPTY : this.maskLine(EMPTY);
  }
  private hold(piece: Buffer): void {
    this.pendingBytes += piece.length;
    if (this.pendingBytes > this.maxBytes) throw this.overLimit();
    this.pending.push(piece);
  }
  private maskLine(tail: Buffer): Buffer {
    if (this.pendingBytes + tail.length > this.maxBytes) throw this.overLimit();
    const line = this.pending.length === 0 ? tail : Buffer.concat([...this.pending, tail]);
    this.pending = [];
    this.pendingBytes = 0;
    return maskJsonObject(line, 'a watch event line', this.count);
  }
  private overLimit(): UnreadableSecretBody {
    return new UnreadableSecretBody(`a secrets watch event over ${mib(this.maxBytes)} cannot be held to mask its Secret values`);
  }
}

/** watch: true for `?watch=true` streams (newline-delimited JSON events: each complete line is masked and released at once, nothing held beyond the current line); false: the whole body is buffered up to maxBytes (default 64 MiB), then masked. Empty body -> empty output. Both throw UnreadableSecretBody for what is not JSON or is over the limit. */
export function secretResponseFilter(opts: { watch: boolean; maxBytes?: number }): SecretBodyFilter {
  const maxBytes = opts.maxBytes ?? DEFAULT_SECRET_BODY_LIMIT;
  return opts.watch ? new WatchFilter(maxBytes) : new WholeBodyFilter(maxBytes);
}

function isYamlMediaType(contentType: string | undefined): boolean {
  const media = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  return media.endsWith('+yaml') || ['application/yaml', 'application/x-yaml', 'text/yaml', 'text/x-yaml'].includes(media);
}

/**
 * YAML, one document or several, written back as YAML. Comments are dropped (free text may hold
 * an old password); a document with aliases is not sampled (an alias could repeat a data value
 * where no rule looks); a document that is a scalar is not a Kubernetes object and is not sampled.
 */
function yamlSample(text: string): { text: string; masked: number } | null {
  const parts: string[] = [];
  let masked = 0;
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) return null;
    let aliases = false;
    visit(doc, { Alias: () => { aliases = true; return visit.BREAK; } });
    if (aliases) return null;
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) { parts.push(''); continue; }
    const m = maskBodyValue(value);
    masked += m.masked;
    parts.push(stringify(m.value, { lineWidth: 0 }));
  }
  return { text: parts.length === 1 ? parts[0]! : parts.map((p) => `---\n${p}`).join(''), masked };
}

/** The log's sample of a request body sent to `secrets`: JSON (incl. merge / strategic-merge patches, server-side apply `application/apply-patch+yaml` which kubectl sends as JSON or YAML), JSON Patch arrays (`application/json-patch+json`: mask every op's `value`, and `from`-less copies), YAML (one or several documents): parsed, masked, written back in the same format. null when it cannot be read (the caller then keeps only the digest). */
export function secretRequestSample(body: Buffer, contentType: string | undefined): { text: string; masked: number } | null {
  try {
    if (body.length === 0) return { text: '', masked: 0 };
    const text = decodeUtf8(body, 'the request body');
    if (isBlank(text)) return { text, masked: 0 };
    let parsed: unknown;
    let json = true;
    try { parsed = JSON.parse(text); } catch { json = false; }
    if (json) {
      const m = maskBodyValue(parsed);
      return { text: rewrite(text, m.value), masked: m.masked };
    }
    // Only a body declared YAML is read as YAML: almost any text parses as a YAML scalar.
    return isYamlMediaType(contentType) ? yamlSample(text) : null;
  } catch {
    // Unreadable, or something the YAML library did not foresee (too deep, too many nodes): the
    // digest alone is recorded, never the body.
    return null;
  }
}
