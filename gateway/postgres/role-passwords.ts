// Passwords written into SQL text: `CREATE ROLE ... PASSWORD '...'`, `ALTER USER ... WITH
// ENCRYPTED PASSWORD '...'` (what psql's \password sends), `CREATE USER MAPPING ... OPTIONS
// (password '...')`. The session log, approval requests and PR comments keep command texts, so
// the password is masked there before anything records it; the server still gets the text as
// sent. The literal is found with the real parser and scanner (libpg-query), never by a pattern
// over the text, and where they cannot say exactly where it is, more is masked, never less:
//
// - a statement that does not parse: from each PASSWORD keyword to the end of the statement;
// - a PASSWORD option whose value is not a plain string constant (U&'...' UESCAPE, a parameter):
//   from the keyword to the end of the statement, and a parameter's value at Bind;
// - a string constant (a DO or function body, dynamic SQL, dblink) that says "password": from
//   that word to the end of the string;
// - a text the scanner rejects, one whose reading depends on settings (sql-reading-hazards.ts),
//   or any text while the parser is not loaded (a policy without rules or masked columns does
//   not load it): from the first "password" (or U&" / U&' escape) to the end of the text.
import { loadedParser } from './pg-parser.ts';
import { readingHazard, type ScanToken } from './sql-reading-hazards.ts';

export const MASKED_PASSWORD = '[masked:password]';

export interface PasswordMasking {
  /** The text with every password masked (the same string when there was none). */
  text: string;
  /** Numbers of the parameters ($1 is 1) that carry a password: their Bind values are masked. */
  params: number[];
}

/** Option names whose value is a password (a DefElem's defname, lower case). */
const PASSWORD_OPTIONS = new Set(['password']);
/** The word, or a Unicode-escaped identifier or string (U&"p\0061ssword"), which only the parser reads. */
const MENTION = /password|u&["']/i;

type Node = Record<string, unknown>;
type Span = { start: number; end: number; replacement: string };

/** A keyword or an identifier (quoted too): not a constant, parameter or punctuation. */
const isWord = (t: ScanToken): boolean => t.tokenName === 'IDENT' || t.tokenName === 'UIDENT' || (t.tokenName === 'UNKNOWN' && /^(?:[A-Za-z_][A-Za-z0-9_$]*|[Uu]&".*")$/s.test(t.text));

/** `text` with role and user-mapping passwords masked; see the top of this file for what is masked. */
export function maskPasswords(text: string): PasswordMasking {
  if (!MENTION.test(text)) return { text, params: [] };
  const pg = loadedParser();
  if (!pg) return coarse(text);
  let tokens: ScanToken[];
  try {
    tokens = pg.scanSync(text).tokens as ScanToken[];
  } catch {
    return coarse(text);
  }
  // Where the server may read the text differently, the scanner's spans cannot be trusted.
  if (readingHazard(text, () => tokens)) return coarse(text);
  const bytes = Buffer.from(text, 'utf8');
  const code = tokens.filter((t) => t.tokenName !== 'SQL_COMMENT' && t.tokenName !== 'C_COMMENT');
  const spans: Span[] = [];
  const params = new Set<number>();
  /** Byte offset where the statement holding `at` ends (its `;`, or the text's end). */
  const statementEnd = (at: number): number => code.find((t) => t.start >= at && t.text === ';')?.start ?? bytes.length;
  const toStatementEnd = (from: number): void => {
    const end = statementEnd(from);
    spans.push({ start: from, end, replacement: ` ${MASKED_PASSWORD}` });
    for (const t of code) if (t.start >= from && t.end <= end && t.tokenName === 'PARAM') params.add(Number(t.text.slice(1)));
  };
  const isPasswordKeyword = (t: ScanToken): boolean => t.text.toLowerCase() === 'password' && t.tokenName !== 'IDENT';

  let tree: { stmts?: { stmt?: Node }[] } | null;
  try {
    tree = pg.parseSync(text) as typeof tree;
  } catch {
    tree = null;
  }
  if (!tree) {
    // Unparsable: whatever follows a PASSWORD keyword may be one.
    for (const t of code) if (isPasswordKeyword(t)) toStatementEnd(t.end);
  } else {
    for (const option of passwordOptions(tree)) {
      if (option.arg === undefined) continue; // `OPTIONS (DROP password)`: no value
      const at = code.findIndex((t) => t.start === option.location);
      if (at < 0) {
        toStatementEnd(option.location >= 0 ? option.location : 0);
        continue;
      }
      // The option's words (ENCRYPTED PASSWORD, PASSWORD, "password"), then its value.
      let i = at;
      while (i < code.length && i < at + 3 && isWord(code[i]!) && !/^null$/i.test(code[i]!.text)) i++;
      const value = code[i];
      if (value?.tokenName === 'SCONST') spans.push({ start: value.start, end: value.end, replacement: `'${MASKED_PASSWORD}'` });
      else if (value && /^null$/i.test(value.text)) continue;
      else toStatementEnd(code[at]!.end);
      if (option.param !== null) params.add(option.param);
    }
  }
  // Strings the parser does not look into: bodies, dynamic SQL, arguments.
  for (const t of code) {
    if (t.tokenName !== 'SCONST' && !/^u&'/i.test(t.text)) continue;
    if (spans.some((s) => s.start <= t.start && t.end <= s.end)) continue;
    const m = /password/i.exec(t.text);
    if (!m) continue;
    const close = /\$[^$]*\$$/.exec(t.text)?.[0] ?? (t.text.endsWith("'") ? "'" : '');
    const from = t.start + Buffer.byteLength(t.text.slice(0, m.index + m[0].length));
    spans.push({ start: from, end: t.end, replacement: ` ${MASKED_PASSWORD}${close}` });
  }
  if (spans.length === 0) return { text, params: [...params] };
  return { text: splice(bytes, spans), params: [...params].sort((a, b) => a - b) };
}

/** Every DefElem naming a password option: where it starts, its value's parameter if one. */
function passwordOptions(tree: unknown): { location: number; arg: unknown; param: number | null }[] {
  const found: { location: number; arg: unknown; param: number | null }[] = [];
  const visit = (n: unknown): void => {
    if (Array.isArray(n)) return n.forEach(visit);
    if (!n || typeof n !== 'object') return;
    const d = (n as { DefElem?: Node }).DefElem;
    if (d && typeof d.defname === 'string' && PASSWORD_OPTIONS.has(d.defname.toLowerCase())) {
      const p = (d.arg as { ParamRef?: { number?: number } } | undefined)?.ParamRef;
      found.push({ location: typeof d.location === 'number' ? d.location : -1, arg: d.arg, param: p ? p.number ?? 0 : null });
    }
    for (const v of Object.values(n)) visit(v);
  };
  visit(tree);
  return found;
}

/** Without a reliable reading: from the first mention of a password (or a U& escape) to the end of the text. */
function coarse(text: string): PasswordMasking {
  const m = MENTION.exec(text);
  if (!m) return { text, params: [] };
  const cut = m.index + m[0].length;
  const params = [...new Set([...text.slice(cut).matchAll(/\$(\d+)/g)].map((p) => Number(p[1])))].sort((a, b) => a - b);
  return { text: `${text.slice(0, cut)} ${MASKED_PASSWORD}`, params };
}

/** `bytes` with each span (byte offsets) replaced; overlapping spans merge into the first. */
function splice(bytes: Buffer, spans: Span[]): string {
  spans.sort((a, b) => a.start - b.start || b.end - a.end);
  let out = '';
  let at = 0;
  for (const s of spans) {
    if (s.start < at) {
      at = Math.max(at, s.end); // inside what is already masked: mask on to its end
      continue;
    }
    out += bytes.subarray(at, s.start).toString('utf8') + s.replacement;
    at = s.end;
  }
  return out + bytes.subarray(at).toString('utf8');
}
