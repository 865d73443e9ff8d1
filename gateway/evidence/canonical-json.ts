// RFC 8785 (JSON Canonicalization Scheme) for the values the session log contains: objects with
// string keys, arrays, strings, finite numbers, booleans and null. ECMAScript's JSON.stringify
// already produces JCS strings and numbers; JCS adds member order by UTF-16 code units, which is
// what the default sort of JavaScript strings compares. Members whose value is undefined are
// omitted, as JSON.stringify omits them. This runs twice per command on the hot path, hence the
// plain loops.

/**
 * A value already written as canonical JSON, emitted as it is: an adapter builds the few shapes it
 * writes on every command (PostgreSQL's `{"protocol":"simple"}`, its result's tags) without an
 * object to walk. Whoever makes one vouches that `json` is canonical; tests check each builder.
 */
export class CanonicalText {
  readonly json: string;
  constructor(json: string) {
    this.json = json;
  }
}

/** A string as JSON.stringify (and so canonicalJson) writes it, without the call for plain text. */
export function jsonString(s: string): string {
  return plainString.test(s) ? '"' + s + '"' : JSON.stringify(s);
}
/** Printable ASCII other than `"` and `\`: written between quotes as it is. */
const plainString = /^[\x20-\x21\x23-\x5b\x5d-\x7e]*$/;

export function canonicalJson(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return jsonString(value);
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`canonical JSON has no representation for ${value}`);
      return JSON.stringify(value);
    case 'object':
      if (value === null) return 'null';
      if (value instanceof CanonicalText) return value.json;
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ',';
          const v: unknown = value[i];
          out += v === undefined ? 'null' : canonicalJson(v);
        }
        return out + ']';
      }
      if (Buffer.isBuffer(value)) throw new TypeError('canonical JSON has no representation for a Buffer');
      return canonicalObject(value as Record<string, unknown>);
    default:
      throw new TypeError(`canonical JSON has no representation for ${typeof value}`);
  }
}

function canonicalObject(obj: Record<string, unknown>): string {
  const keys = Object.keys(obj);
  // Most objects are built with their members in order already: checking costs less than sorting.
  for (let i = 1; i < keys.length; i++) {
    if (keys[i - 1]! > keys[i]!) {
      keys.sort();
      break;
    }
  }
  let out = '{';
  let first = true;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    const v = obj[k];
    if (v === undefined) continue;
    out += (first ? '"' : ',"') + (needsEscape(k) ? JSON.stringify(k).slice(1, -1) : k) + '":' + canonicalJson(v);
    first = false;
  }
  return out + '}';
}

// Member names come from a small fixed vocabulary; remember the answer for each.
const escapeKnown = new Map<string, boolean>();
function needsEscape(k: string): boolean {
  let v = escapeKnown.get(k);
  if (v === undefined) {
    v = !plainString.test(k);
    if (escapeKnown.size < 4096) escapeKnown.set(k, v);
  }
  return v;
}
