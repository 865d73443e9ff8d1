// The request-target of an HTTP request read into one unambiguous path and its raw query.
// Servers disagree on what `%2F`, `..`, `//` or a backslash mean; a path that two servers could
// read differently is refused here, so the path the policy decides is the path the upstream
// serves. The gateway forwards exactly the normalized path (never the client's spelling), so the
// log never names a different request than the one that ran.

export type NormalizedPath = { path: string; query: string } | { problem: string };

// RFC 3986 unreserved: percent-escapes of these mean the character itself (`%6CistKeys` is
// `listKeys`), so they are decoded; every other escape is kept, with upper-case hex.
const UNRESERVED = /^[A-Za-z0-9\-._~]$/;
// Characters a path may hold unescaped (pchar without `%`, and `/`). Anything else (space,
// quotes, `<>^`{|}`, backslash, non-ASCII) is refused rather than guessed at.
const PATH_CHAR = /^[A-Za-z0-9\-._~!$&'()*+,;=:@/]$/;
// Escapes that would change how the path splits or ends (`/` `\` `?` `#`) or that servers stop at
// (NUL): no single path means the same to every server.
const SPLITTING: Record<string, string> = { '2F': '/', '5C': '\\', '3F': '?', '23': '#', '00': 'NUL' };
const HEX = /^[0-9A-Fa-f]{2}$/;

/**
 * Reads a request-target: origin-form (`/a/b?x=1`) or absolute-form (`https://host/a?x=1`, whose
 * scheme and authority the caller checks). Returns the normalized path (unreserved escapes
 * decoded, other escapes in upper-case hex) and the raw query without `?`, or why no single path
 * can be read from it.
 */
export function normalizeRequestPath(raw: string): NormalizedPath {
  let target = raw;
  const absolute = /^https?:\/\/[^/?#]*/i.exec(target);
  if (absolute) {
    target = target.slice(absolute[0].length);
    if (target === '' || target[0] === '?') target = '/' + target;
  }
  if (target === '*') return { problem: 'the asterisk request-target (server-wide OPTIONS) names no resource' };
  if (!target.startsWith('/')) return { problem: 'the request path does not start with /' };
  const q = target.indexOf('?');
  const rawPath = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? '' : target.slice(q + 1);
  const queryProblem = checkQuery(query);
  if (queryProblem) return { problem: queryProblem };
  const path = canonicalPath(rawPath);
  if (typeof path !== 'string') return path;
  if (path === '/') return { path, query };
  const segments = path.split('/').slice(1);
  for (const s of segments) {
    if (s === '') return { problem: 'the request path has an empty segment (// or a trailing /): servers disagree on what it names' };
    // `..;x` is `..` to some servers (path parameters are cut before dot segments are resolved).
    const bare = s.split(';')[0];
    if (bare === '.' || bare === '..') return { problem: `the request path has a dot segment "${s}": servers resolve it differently` };
  }
  return { path, query };
}

/** The path with unreserved escapes decoded and the others upper-cased; or why it cannot be. */
function canonicalPath(p: string): string | { problem: string } {
  let out = '';
  for (let i = 0; i < p.length; i++) {
    const ch = p[i]!;
    if (ch === '%') {
      const hex = p.slice(i + 1, i + 3);
      if (!HEX.test(hex)) return { problem: `the request path has an invalid percent-escape "${p.slice(i, i + 3)}"` };
      const up = hex.toUpperCase();
      if (SPLITTING[up]) return { problem: `the request path has an encoded ${SPLITTING[up]} (%${up}): servers disagree on whether it splits the path` };
      const code = parseInt(up, 16);
      if (code < 0x20 || code === 0x7f) return { problem: `the request path has an encoded control character (%${up})` };
      // `%25` followed by hex digits is an escape escaped once more: a server that decodes twice
      // would read another path (`%252F` is `/` to it).
      if (up === '25' && HEX.test(p.slice(i + 3, i + 5))) return { problem: 'the request path has a double-encoded escape (%25 followed by hex digits)' };
      const c = String.fromCharCode(code);
      out += UNRESERVED.test(c) ? c : `%${up}`;
      i += 2;
      continue;
    }
    if (ch === '\\') return { problem: 'the request path has a backslash: some servers read it as /' };
    const code = ch.charCodeAt(0);
    if (code < 0x20 || code === 0x7f) return { problem: 'the request path has a control character' };
    if (!PATH_CHAR.test(ch)) return { problem: `the request path has a character that must be percent-encoded (${JSON.stringify(ch)})` };
    out += ch;
  }
  // The escapes must spell UTF-8: a name read from them is then one string, the same everywhere.
  try {
    decodeURIComponent(out);
  } catch {
    return { problem: 'the request path has percent-escapes that are not UTF-8' };
  }
  return out;
}

function checkQuery(query: string): string | null {
  for (let i = 0; i < query.length; i++) {
    const code = query.charCodeAt(i);
    if (code <= 0x20 || code === 0x7f) return 'the query has a space or a control character';
    if (code > 0x7e) return 'the query has a character that must be percent-encoded (non-ASCII)';
    if (query[i] === '#') return 'the request-target has a fragment (#), which clients never send';
  }
  return null;
}

/**
 * Escapes in the spelling the normalized path uses (unreserved decoded, others upper-case hex);
 * invalid escapes are left as they are. For patterns matched against normalized paths.
 */
export function canonicalEscapes(s: string): string {
  return s.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => {
    const c = String.fromCharCode(parseInt(hex, 16));
    return UNRESERVED.test(c) ? c : `%${hex.toUpperCase()}`;
  });
}
