// Secrets carried in URLs, masked before a URL is recorded or shown: SAS signatures (`sig=`),
// Azure Functions keys (`code=`), OAuth tokens and client secrets in queries, passwords in
// userinfo. The name stays (a reader sees that a signature was there), the value becomes `****`.
// Pure string functions: the gateway forwards the real URL and records only the masked one.

export const MASK = '****';

// Parameter names whose value is a secret, compared without case.
const SECRET_NAMES = new Set([
  'sig', 'code', 'token', 'access_token', 'refresh_token', 'id_token', 'client_secret', 'client_assertion',
  'password', 'passwd', 'pwd', 'secret', 'key', 'apikey', 'api-key', 'api_key', 'subscription-key',
  'assertion', 'auth', 'authorization', 'credential', 'credentials', 'sessionid', 'session_id',
]);
// Any name holding one of these is a secret too (`x-ms-token`, `sharedAccessSignature`, `db_password`).
const SECRET_PARTS = /token|secret|passw|signature|credential|apikey|api[-_]key|private/i;

/** Whether a query parameter's (decoded) name carries a secret value. */
export function isSecretParam(name: string): boolean {
  const n = name.toLowerCase();
  return SECRET_NAMES.has(n) || SECRET_PARTS.test(n);
}

/**
 * The query (without `?`) with the values of secret-bearing parameters masked. The rest is kept
 * byte for byte: separators, order, empty parameters, escapes.
 */
export function maskQuery(query: string): string {
  if (query === '') return query;
  // `;` separates parameters too for some servers (and old HTML forms): a value after it is
  // read as its own parameter.
  return query
    .split(/([&;])/)
    .map((pair, k) => {
      if (k % 2 === 1) return pair;
      const eq = pair.indexOf('=');
      if (eq < 0 || eq === pair.length - 1) return pair;
      const rawName = pair.slice(0, eq);
      return isSecretParam(decodeName(rawName)) ? `${rawName}=${MASK}` : pair;
    })
    .join('');
}

/** A parameter name as a server reads it (`%73ig` is `sig`, `+` a space); as written if undecodable. */
function decodeName(raw: string): string {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    return raw;
  }
}

/**
 * A URL with its query masked (maskQuery) and the password of its userinfo masked (the whole
 * userinfo when it has no password). A fragment,
 * which clients never send but a user may paste, is masked whole: it can hold tokens
 * (`#access_token=` in OAuth's implicit flow).
 */
export function maskUrl(url: string): string {
  let rest = url;
  let fragment = '';
  const hash = rest.indexOf('#');
  if (hash >= 0) {
    fragment = rest.length > hash + 1 ? `#${MASK}` : '#';
    rest = rest.slice(0, hash);
  }
  let query: string | null = null;
  const q = rest.indexOf('?');
  if (q >= 0) {
    query = rest.slice(q + 1);
    rest = rest.slice(0, q);
  }
  const authority = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^/]*)/.exec(rest);
  if (authority) {
    const [, scheme, auth] = authority as unknown as [string, string, string];
    const at = auth.lastIndexOf('@');
    if (at >= 0) {
      const userinfo = auth.slice(0, at);
      const colon = userinfo.indexOf(':');
      // Without a password the user part is often the token itself (`https://TOKEN@host`).
      const masked = colon >= 0 ? `${userinfo.slice(0, colon)}:${MASK}` : MASK;
      rest = scheme + masked + auth.slice(at) + rest.slice(scheme.length + auth.length);
    }
  }
  return rest + (query !== null ? `?${maskQuery(query)}` : '') + fragment;
}
