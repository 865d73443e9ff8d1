// Secret and personal-data detectors for masking, protocol-independent: each finds its kind of
// value inside arbitrary text and replaces it in place. The text may be one column value, a
// JSON document or a PostgreSQL array literal, so every matched span stops at the characters
// that carry structure there (`"` `\` `{` `}` `,`, whitespace, and `'` for SQL text), and no
// replacement contains any of them: masking never changes how the surrounding text parses.
// Every pattern is anchored with a lookbehind so it is only tried at the start of a token,
// which keeps each scan linear on long values.

export const DETECTOR_NAMES = [
  'email', 'credit-card', 'iban', 'jwt', 'azure-storage-key', 'azure-sas-token',
  'connection-string', 'private-key', 'github-token',
] as const;
export type DetectorName = typeof DETECTOR_NAMES[number];

export interface Detector {
  readonly name: DetectorName;
  /** RegExp source that matches wherever this detector could fire: an over-approximation
   * the engine joins with the others into one cheap pre-check. */
  readonly hint: string;
  /** The text with every occurrence replaced, or null when there is none. */
  mask(s: string): string | null;
  /** For text streams (stream-masker.ts), a RegExp character-class body: the characters a
   * match is made of or that its boundaries look at. A stream is never cut right after one
   * of them, so a cut neither splits a match nor changes how one is read. */
  readonly joins: string;
  /** Characters after which a space may sit inside a match (groups of a card, an IBAN, the
   * words of a PEM header): a stream is not cut after such a space either. */
  readonly spaceJoins?: string;
  /** Stretches a match may run through that hold characters outside `joins` (whitespace,
   * punctuation, any character of a value), each found from its start (global, anchored on
   * what starts it). Over-approximated: the stretch may be longer than any match. One that
   * reaches the end of the text read so far is still open: a stream holds it back. */
  readonly spans?: readonly RegExp[];
}

/** A case-insensitive RegExp source for a keyword. The pre-check is one case-sensitive RegExp:
 * an `i` flag on all of it would make the other hints (`[A-Z]{2}\d{2}`) fire on most text. */
function anyCase(word: string): string {
  return word.replace(/[a-z]/gi, (c) => `[${c.toLowerCase()}${c.toUpperCase()}]`);
}

/** Already-masked spans start with this; detectors that could see their own output skip it. */
const MASKED = '[masked';

/** Runs `re` with a replacer that returns null to leave a match alone; null when nothing changed. */
function replaceAll(s: string, re: RegExp, fn: (m: RegExpExecArray) => string | null): string | null {
  re.lastIndex = 0;
  let out = '';
  let last = 0;
  let changed = false;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    const r = fn(m);
    if (r === null) continue;
    out += s.slice(last, m.index) + r;
    last = m.index + m[0].length;
    changed = true;
  }
  return changed ? out + s.slice(last) : null;
}

const EMAIL = /(?<![A-Za-z0-9._%+\-/])([A-Za-z0-9._%+-]{1,64})@(?:[A-Za-z0-9-]+\.)+([A-Za-z]{2,24})(?![A-Za-z0-9-])/g;

/** `alice.smith@example.com` → `a***@***.com`: enough to tell addresses apart in a log, no more. */
export function maskEmail(local: string, tld: string): string {
  return `${/^[A-Za-z0-9]/.test(local) ? local[0] : '*'}***@***.${tld}`;
}

const email: Detector = {
  name: 'email',
  hint: '@',
  mask: (s) => replaceAll(s, EMAIL, (m) => maskEmail(m[1]!, m[2]!)),
  joins: 'A-Za-z0-9._%+\\-/@',
};

// The first group of every card scheme's printed form has 4 digits; the rest 3 to 7, with one
// separator kind throughout. The boundaries refuse digit runs, decimals and words around it,
// so a card-like stretch of a longer number or hex string is not taken.
const CARD = /(?<![\w.]|\d[ -])\d{4}([ -]?)\d{3,7}(?:\1\d{3,7}){0,3}(?![\w]|[ -]\d|\.\d)/g;

export function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let i = digits.length - 1, double = false; i >= 0; i--, double = !double) {
    let d = digits.charCodeAt(i) - 48;
    if (double && (d *= 2) > 9) d -= 9;
    sum += d;
  }
  return sum % 10 === 0;
}

const creditCard: Detector = {
  name: 'credit-card',
  hint: '\\d{4}[ -]?\\d{3}',
  mask: (s) => replaceAll(s, CARD, (m) => {
    const digits = m[0].replace(/[ -]/g, '');
    if (digits.length < 13 || digits.length > 19 || !luhnValid(digits)) return null;
    return `****${digits.slice(-4)}`;
  }),
  joins: 'A-Za-z0-9_.\\-',
  spaceJoins: '0-9',
};

// Groups of four, optionally space-separated, as IBANs are printed; the trailing group may be
// shorter. A following all-caps word can be swallowed as a last group, so a candidate whose
// checksum fails is retried without its trailing groups.
const IBAN = /(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?![A-Za-z0-9])/g;

export function ibanValid(compact: string): boolean {
  if (compact.length < 15 || compact.length > 34) return false;
  const rearranged = compact.slice(4) + compact.slice(0, 4);
  let rem = 0;
  for (const ch of rearranged) {
    const v = Number.parseInt(ch, 36);
    rem = (v > 9 ? rem * 100 + v : rem * 10 + v) % 97;
  }
  return rem === 1;
}

const iban: Detector = {
  name: 'iban',
  hint: '[A-Z]{2}\\d{2}',
  mask: (s) => replaceAll(s, IBAN, (m) => {
    for (let cand = m[0]; ; ) {
      const compact = cand.replace(/ /g, '');
      if (ibanValid(compact)) return `${compact.slice(0, 2)}****${compact.slice(-4)}${m[0].slice(cand.length)}`;
      const sp = cand.lastIndexOf(' ');
      if (sp < 0) return null;
      cand = cand.slice(0, sp);
    }
  }),
  joins: 'A-Za-z0-9',
  spaceJoins: 'A-Z0-9',
};

// A JWS compact serialisation: the header is base64url JSON, so it starts `eyJ` (`{"`). The
// header must decode to a JSON object, which rules out words that merely start with eyJ.
const JWT = /(?<![A-Za-z0-9_-])(eyJ[A-Za-z0-9_-]{10,})\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g;

function jsonObjectHeader(seg: string): boolean {
  try {
    const v: unknown = JSON.parse(Buffer.from(seg, 'base64url').toString('utf8'));
    return typeof v === 'object' && v !== null && !Array.isArray(v);
  } catch {
    return false;
  }
}

const jwt: Detector = {
  name: 'jwt',
  hint: 'eyJ',
  mask: (s) => replaceAll(s, JWT, (m) => (jsonObjectHeader(m[1]!) ? '[masked:jwt]' : null)),
  joins: 'A-Za-z0-9_.\\-',
};

// A storage account key is 64 random bytes in base64: exactly 88 characters ending `==`. The
// lookbehind refuses `-` so `sha512-…==` integrity digests (also 88 characters) are left alone.
const STORAGE_KEY = /(?<![A-Za-z0-9+/-])[A-Za-z0-9+/]{86}==(?![A-Za-z0-9+/=])/g;
const ACCOUNT_KEY = /(?<![A-Za-z0-9_])(AccountKey\s*=\s*)([^;\s"'\\{},&]+)/gi;

const azureStorageKey: Detector = {
  name: 'azure-storage-key',
  hint: `==|${anyCase('accountkey')}`,
  mask: (s) => {
    const a = replaceAll(s, ACCOUNT_KEY, (m) => (m[2]!.startsWith(MASKED) ? null : `${m[1]}[masked:azure-storage-key]`));
    const b = replaceAll(a ?? s, STORAGE_KEY, () => '[masked:azure-storage-key]');
    return b ?? a;
  },
  joins: 'A-Za-z0-9+/=_\\-',
  // `AccountKey`, then any spaces, `=` and the value (ACCOUNT_KEY's classes).
  spans: [/(?<![A-Za-z0-9_])accountkey\s*(?:=\s*[^;\s"'\\{},&]*)?/gi],
};

// Only the signature is secret-bearing; the rest of a SAS (resource, permissions, expiry) is
// what a reader needs to understand the command. A `sig=` counts only next to the SAS
// parameters `sv=`, `se=` or `sp=` within the same query string.
const SAS_SIG = /(?<![A-Za-z0-9_])sig=([A-Za-z0-9%+/=_-]+)/g;
const QUERY_STOP = /[\s"'<>\\{},;]/;
const SAS_PARAM = /(?<![A-Za-z0-9_])s[vep]=/;

const azureSasToken: Detector = {
  name: 'azure-sas-token',
  hint: 'sig=',
  mask: (s) => {
    // Each query string is scanned once, however many `sig=` it holds: linear on any input.
    let windowEnd = -1;
    let isSas = false;
    return replaceAll(s, SAS_SIG, (m) => {
      if (m.index >= windowEnd) {
        let from = m.index;
        while (from > 0 && !QUERY_STOP.test(s[from - 1]!)) from--;
        windowEnd = m.index + m[0].length;
        while (windowEnd < s.length && !QUERY_STOP.test(s[windowEnd]!)) windowEnd++;
        isSas = SAS_PARAM.test(s.slice(from, windowEnd));
      }
      return isSas ? 'sig=[masked:azure-sas-token]' : null;
    });
  },
  joins: 'A-Za-z0-9%+/=_\\-',
  // Whether a `sig=` is masked depends on its whole query string: from its first `sig=` or
  // SAS parameter to the next QUERY_STOP character.
  spans: [/(?<![A-Za-z0-9_])s(?:ig|[vep])=[^\s"'<>\\{},;]*/g],
};

// `scheme://user:password@host`: only the password goes. The password may hold raw `@` or `:`
// (people paste them unencoded), so it runs to the last `@` of the authority. `:\/\/` is the
// JSON-escaped form some encoders produce.
const URL_PASSWORD = /(?<![A-Za-z0-9+.-])([A-Za-z][A-Za-z0-9+.-]*:(?:\/\/|\\\/\\\/)[^\s:/?#@"'\\{},[\]]*:)([^\s/?#"'\\{},]+)@/g;
// Keyword/value forms: ADO.NET / JDBC (`Password=…;`), libpq (`password=…`), Azure
// (`AccountKey=`, `SharedAccessKey=`), and the same names as URL query parameters.
const KV_SECRET = /(?<![A-Za-z0-9_])((?:password|pwd|accountkey|sharedaccesskey)\s*=\s*)('[^'"\\{}\n]*'|[^;\s"'\\{},&]+)/gi;

const connectionString: Detector = {
  name: 'connection-string',
  hint: [':\\/\\/', ':\\\\\\/', ...['password', 'pwd', 'accountkey', 'sharedaccesskey'].map(anyCase)].join('|'),
  mask: (s) => {
    const a = replaceAll(s, URL_PASSWORD, (m) => (m[2]!.startsWith(MASKED) ? null : `${m[1]}[masked]@`));
    const b = replaceAll(a ?? s, KV_SECRET, (m) => {
      const v = m[2]!;
      if (v.startsWith(MASKED) || v.startsWith(`'${MASKED}`)) return null;
      return `${m[1]}${v.startsWith("'") ? "'[masked]'" : '[masked]'}`;
    });
    return b ?? a;
  },
  joins: 'A-Za-z0-9+.:/\\\\@=_\\-',
  spans: [
    // From `://` (or `:\/\/`) through user, password and every `@` to the end of the authority.
    /:(?:\/\/|\\\/\\\/)[^\s/?#"'\\{},]*/g,
    // A keyword, any spaces and `=` (newlines too), and the value, quoted or not.
    /(?<![A-Za-z0-9_])(?:password|pwd|accountkey|sharedaccesskey)\s*(?:=\s*(?:'[^'"\\{}\n]*'?|[^;\s"'\\{},&]*))?/gi,
  ],
};

// The body is base64 and PEM headers, either with raw line breaks or as JSON `\n` escapes.
// A value cut short (truncated column, log line) has no END line: the block then runs to the
// first character that cannot be part of a PEM body, i.e. the end of the value.
const PEM_BODY = String.raw`(?:[A-Za-z0-9+/=\s:.,_-]|\\[nrt])`;
const PRIVATE_KEY = new RegExp(
  String.raw`-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----${PEM_BODY}*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|(?!${PEM_BODY}))`, 'g');

const privateKey: Detector = {
  name: 'private-key',
  hint: '-----BEGIN',
  mask: (s) => replaceAll(s, PRIVATE_KEY, () => '[masked:private-key]'),
  joins: 'A-Za-z0-9+/=:._\\-\\\\',
  spaceJoins: 'A-Z0-9',
  // The header, then the body up to the first END line or the first character no body has.
  // (A text cut inside the header's closing dashes or a body's `\n` escape still reaches its end.)
  spans: [new RegExp(String.raw`-----BEGIN [A-Z0-9 ]*(?:-----(?:(?!-----END [A-Z0-9 ]*PRIVATE KEY-----)(?:${PEM_BODY}|\$))*(?:-----END [A-Z0-9 ]*PRIVATE KEY-----)?|-{1,4}$)?`, 'g')],
};

// Classic tokens are a prefix and 36 base62 characters; fine-grained PATs are `github_pat_`
// and 82 more. Lengths are open-ended upwards: GitHub reserves the right to grow them.
const GITHUB_TOKEN = /(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})(?![A-Za-z0-9_])/g;

const githubToken: Detector = {
  name: 'github-token',
  hint: 'gh[pousr]_|github_pat_',
  mask: (s) => replaceAll(s, GITHUB_TOKEN, () => '[masked:github-token]'),
  joins: 'A-Za-z0-9_',
};

export const DETECTORS: Readonly<Record<DetectorName, Detector>> = {
  email, 'credit-card': creditCard, iban, jwt, 'azure-storage-key': azureStorageKey,
  'azure-sas-token': azureSasToken, 'connection-string': connectionString,
  'private-key': privateKey, 'github-token': githubToken,
};

/** The order detectors run in: whole blocks and structured tokens first, so a later, looser
 * detector (card, email) never sees, or half-masks, the inside of a key or token. */
export const DETECTOR_ORDER: readonly DetectorName[] = [
  'private-key', 'jwt', 'azure-sas-token', 'azure-storage-key', 'connection-string',
  'github-token', 'iban', 'credit-card', 'email',
];
