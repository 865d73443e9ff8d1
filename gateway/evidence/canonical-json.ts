// RFC 8785 (JSON Canonicalization Scheme) for the values the session log contains: objects with
// string keys, arrays, strings, finite numbers, booleans and null. ECMAScript's JSON.stringify
// already produces JCS strings and numbers; JCS adds member order by UTF-16 code units, which is
// what the default sort of JavaScript strings compares.

export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new TypeError('canonical JSON has no representation for ' + value);
    if (value === undefined) throw new TypeError('canonical JSON has no representation for undefined');
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i ? ',' : '') + canonicalJson(value[i] === undefined ? null : value[i]);
    return out + ']';
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
  let out = '{';
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    out += (i ? ',' : '') + JSON.stringify(k) + ':' + canonicalJson(obj[k]);
  }
  return out + '}';
}
