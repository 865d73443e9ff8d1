// Shell words as bash would make them from the parse tree: quotes removed, backslash escapes
// applied, brace expansion and tilde expansion done, and what only the running shell knows (a
// variable, a command substitution's output) kept as unknown. A word is then either a literal
// or a fact pattern (the glob syntax the SSH conditions read: `*` any run, `?` any character,
// `[...]` a set, `\c` a literal c), so that `cat /etc/sha*` is still a way to /etc/shadow.
import type { ShellNode } from './shell-parser.ts';

/** Thrown for a word whose meaning the gateway does not read; the line is then unclassified. */
export class ShellUnreadable extends Error {}

export type Piece =
  /** Text from the line; `active` when unquoted (globs, braces and tildes act on it). */
  | { kind: 'text'; text: string; active: boolean }
  /** The value of an expansion: unknown until the shell runs (`origin` says what it is, for reasons). */
  | { kind: 'unknown'; origin?: string }
  /** A value known only as a fact pattern (a process substitution is some /dev/fd/N). */
  | { kind: 'pattern'; glob: string };

export interface ShellWord {
  /** The value when it is wholly known and holds no unquoted glob. */
  literal: string | null;
  /** The value as a fact pattern: an expansion is `*`, a glob stays one, other metacharacters are escaped. */
  pattern: string;
  /** Part of it comes from an expansion. */
  dynamic: boolean;
  /** It holds an unquoted glob (`*`, `?`, `[...]`). */
  glob: boolean;
  /** Its first character when known and literal; null when an expansion or a glob decides it. */
  first: string | null;
  /** Where an unknown value comes from, for the reason (`the input of xargs`); an expansion by default. */
  origin?: string;
}

/** At most this many words from one word's brace expansion (`{a,b}{c,d}...`). */
export const MAX_BRACE_WORDS = 256;

/** Escapes the fact-pattern metacharacters of a literal. */
export function escapeGlob(s: string): string {
  let out = '';
  for (const c of s) out += c === '\\' || c === '*' || c === '?' || c === '[' || c === ']' ? `\\${c}` : c;
  return out;
}

/** Whether a fact pattern has a wildcard or an escape (else it is its own literal). */
export function isPlainPattern(p: string): boolean {
  for (const c of p) if (c === '\\' || c === '*' || c === '?' || c === '[') return false;
  return true;
}

/**
 * The pieces of a word node. `onSubstitution` gets each command or process substitution
 * inside it (their commands run too); a backtick substitution holding a backslash is refused:
 * bash unescapes it before parsing, the grammar does not.
 */
export function wordPieces(node: ShellNode, onSubstitution: (n: ShellNode) => void): Piece[] {
  const out: Piece[] = [];
  collect(node, out, onSubstitution);
  return out;
}

function collect(n: ShellNode, out: Piece[], onSub: (n: ShellNode) => void): void {
  switch (n.type) {
    case 'word':
    case 'number':
    case 'extglob_pattern':
      if (n.namedChildCount > 0) { // a number holding an expansion (`$((...))` forms)
        for (const c of n.namedChildren) if (c) collect(c, out, onSub);
        return;
      }
      return unquoted(n.text, out);
    case 'brace_expression':
      return void out.push({ kind: 'text', text: n.text, active: true });
    case 'raw_string':
      return void out.push({ kind: 'text', text: n.text.slice(1, -1), active: false });
    case 'ansi_c_string':
      return void out.push({ kind: 'text', text: ansiC(n.text.slice(2, -1)), active: false });
    case 'string':
    case 'translated_string':
      for (const c of n.namedChildren) {
        if (!c) continue;
        if (c.type === 'string_content') out.push({ kind: 'text', text: doubleQuoted(c.text), active: false });
        else if (c.type === 'string') collect(c, out, onSub);
        else expansion(c, out, onSub);
      }
      return;
    case 'concatenation':
      for (const c of n.namedChildren) if (c) collect(c, out, onSub);
      return;
    default:
      return expansion(n, out, onSub);
  }
}

/** An expansion inside a word: its value is unknown; substitutions inside it still run. */
function expansion(n: ShellNode, out: Piece[], onSub: (n: ShellNode) => void): void {
  switch (n.type) {
    case 'simple_expansion':
    case 'expansion':
    case 'arithmetic_expansion':
    case 'command_substitution':
      findSubstitutions(n, onSub);
      return void out.push({ kind: 'unknown' });
    case 'process_substitution':
      onSub(n);
      return void out.push({ kind: 'pattern', glob: '/dev/fd/*' });
    default:
      throw new ShellUnreadable(`a word part the gateway does not read (${n.type})`);
  }
}

/** Hands every command or process substitution under `n` to `onSub` (the commands in them run). */
export function findSubstitutions(n: ShellNode, onSub: (n: ShellNode) => void): void {
  if (n.type === 'command_substitution' || n.type === 'process_substitution') {
    if (n.text.startsWith('`') && n.text.includes('\\')) throw new ShellUnreadable('a backslash inside a `...` substitution (write $(...) instead)');
    return onSub(n);
  }
  for (const c of n.namedChildren) if (c) findSubstitutions(c, onSub);
}

/** Unquoted text: `\c` is a quoted c, `\` + newline is nothing, the rest stays active. */
function unquoted(text: string, out: Piece[]): void {
  let active = '';
  for (let i = 0; i < text.length; i++) {
    if (text[i] !== '\\') {
      active += text[i];
      continue;
    }
    if (active) out.push({ kind: 'text', text: active, active: true }), (active = '');
    const next = text[i + 1];
    i++;
    if (next === undefined) out.push({ kind: 'text', text: '\\', active: false });
    else if (next !== '\n') out.push({ kind: 'text', text: next, active: false });
  }
  if (active) out.push({ kind: 'text', text: active, active: true });
}

/** Double-quoted text: a backslash escapes only $ ` " \ and newline. */
export function doubleQuoted(text: string): string {
  let s = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    const next = text[i + 1];
    if (c === '\\' && next !== undefined && '$`"\\\n'.includes(next)) {
      if (next !== '\n') s += next;
      i++;
    } else s += c;
  }
  return s;
}

/** An unquoted here-doc's text: a backslash escapes only $ ` \ and newline (a quote stays). */
export function heredocText(text: string): string {
  let s = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    const next = text[i + 1];
    if (c === '\\' && next !== undefined && '$`\\\n'.includes(next)) {
      if (next !== '\n') s += next;
      i++;
    } else s += c;
  }
  return s;
}

/** A `<<-` here-doc: leading tabs of every line removed. */
export function stripLeadingTabs(text: string): string {
  return text
    .split('\n')
    .map((line) => {
      let k = 0;
      while (line[k] === '\t') k++;
      return line.slice(k);
    })
    .join('\n');
}

const C_ESCAPES: Record<string, string> = { a: '\x07', b: '\b', e: '\x1b', E: '\x1b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\', "'": "'", '"': '"', '?': '?' };

/** The value of a `$'...'` string (bash's ANSI-C quoting). */
function ansiC(body: string): string {
  let s = '';
  for (let i = 0; i < body.length; i++) {
    if (body[i] !== '\\') {
      s += body[i];
      continue;
    }
    const c = body[++i];
    if (c === undefined) throw new ShellUnreadable("a $'...' string ending in a backslash");
    if (c in C_ESCAPES) s += C_ESCAPES[c];
    else if (c === 'x' || c === 'u' || c === 'U' || (c >= '0' && c <= '7')) {
      const [digits, radix, max] = c === 'x' ? [hexRun(body, i + 1, 2), 16, 0] : c === 'u' ? [hexRun(body, i + 1, 4), 16, 0] : c === 'U' ? [hexRun(body, i + 1, 8), 16, 0] : [octRun(body, i, 3), 8, 1];
      if (!digits) throw new ShellUnreadable(`a $'...' escape \\${c} without digits`);
      const code = parseInt(digits, radix);
      if (code === 0 || code > 0x10ffff) throw new ShellUnreadable(`a $'...' escape for character ${code}`);
      s += String.fromCodePoint(code);
      i += digits.length - max;
    } else if (c === 'c') throw new ShellUnreadable("a $'...' control-character escape (\\c)");
    else s += `\\${c}`;
  }
  return s;
}

function hexRun(s: string, from: number, max: number): string {
  let d = '';
  while (d.length < max && from + d.length < s.length && '0123456789abcdefABCDEF'.includes(s[from + d.length])) d += s[from + d.length];
  return d;
}

function octRun(s: string, from: number, max: number): string {
  let d = '';
  while (d.length < max && from + d.length < s.length && '01234567'.includes(s[from + d.length])) d += s[from + d.length];
  return d;
}

// --- brace expansion, tilde expansion and the finished words

/** One character of a word (active when unquoted), or a piece that is not text. */
type Token = { ch: string; active: boolean } | Exclude<Piece, { kind: 'text' }>;

function tokens(pieces: Piece[]): Token[] {
  const t: Token[] = [];
  for (const p of pieces) {
    if (p.kind === 'text') for (const ch of p.text) t.push({ ch, active: p.active });
    else t.push(p);
  }
  return t;
}

const isActive = (t: Token | undefined, ch: string): boolean => t !== undefined && 'ch' in t && t.active && t.ch === ch;

/** Brace expansion as bash does it first: `a{b,c}d` is abd acd; `{1..3}` is 1 2 3. */
function braces(t: Token[], out: Token[][]): void {
  for (let open = 0; open < t.length; open++) {
    if (!isActive(t[open], '{') || isActive(t[open - 1], '$')) continue;
    let depth = 0;
    const commas: number[] = [];
    let close = -1;
    for (let j = open; j < t.length && close < 0; j++) {
      if (isActive(t[j], '{')) depth++;
      else if (isActive(t[j], '}')) {
        depth--;
        if (depth === 0) close = j;
      } else if (depth === 1 && isActive(t[j], ',')) commas.push(j);
    }
    if (close < 0) return void out.push(t);
    const alternatives: Token[][] = [];
    if (commas.length) {
      let from = open + 1;
      for (const c of [...commas, close]) alternatives.push(t.slice(from, c)), (from = c + 1);
    } else {
      const seq = sequence(t.slice(open + 1, close));
      if (!seq) continue;
      for (const v of seq) alternatives.push([...v].map((ch) => ({ ch, active: false })));
    }
    for (const a of alternatives) {
      if (out.length >= MAX_BRACE_WORDS) throw new ShellUnreadable(`a brace expansion of more than ${MAX_BRACE_WORDS} words`);
      braces([...t.slice(0, open), ...a, ...t.slice(close + 1)], out);
    }
    return;
  }
  out.push(t);
}

/** `{x..y[..step]}` with integers or single letters; null when it is not one (then literal). */
function sequence(inner: Token[]): string[] | null {
  let s = '';
  for (const t of inner) {
    if (!('ch' in t) || !t.active) return null;
    s += t.ch;
  }
  const parts = s.split('..');
  if (parts.length < 2 || parts.length > 3) return null;
  const int = (x: string): number | null => {
    const digits = x[0] === '-' || x[0] === '+' ? x.slice(1) : x;
    if (digits === '') return null;
    for (const c of digits) if (c < '0' || c > '9') return null;
    return Number(x);
  };
  const step = parts.length === 3 ? int(parts[2]) : 1;
  if (step === null) return null;
  const a = int(parts[0]);
  const b = int(parts[1]);
  const letters = a === null && b === null && parts[0].length === 1 && parts[1].length === 1;
  if (!letters && (a === null || b === null)) return null;
  const from = letters ? parts[0].codePointAt(0)! : a!;
  const to = letters ? parts[1].codePointAt(0)! : b!;
  const by = Math.abs(step) || 1;
  if (Math.abs(to - from) / by >= MAX_BRACE_WORDS) throw new ShellUnreadable(`a brace sequence of more than ${MAX_BRACE_WORDS} words`);
  const out: string[] = [];
  for (let v = from; from <= to ? v <= to : v >= to; v += from <= to ? by : -by) out.push(letters ? String.fromCodePoint(v) : String(v));
  return out;
}

export interface TildeContext {
  /** The login user's home; null when the line may have changed HOME. */
  home: string | null;
  /** The working directory when it is one known literal directory (for `~+`). */
  cwd: string | null;
}

/** `~`, `~+`, `~root` and the login user's own `~name` at the start of a word; other users' homes are not known. */
function tilde(t: Token[], ctx: TildeContext): Token[] {
  if (!isActive(t[0], '~')) return t;
  let end = 1;
  let name = '';
  for (; end < t.length && !isActive(t[end], '/'); end++) {
    const k = t[end];
    if (!('ch' in k) || !k.active) return t; // a quoted or expanded character: no tilde expansion
    name += k.ch;
  }
  let dir: string | null;
  if (name === '') dir = ctx.home;
  else if (name === '+') dir = ctx.cwd;
  else if (name === 'root') dir = '/root';
  else if (name === '-') dir = null;
  else dir = ctx.home !== null && ctx.home === `/home/${name}` ? ctx.home : null;
  const origin = name === '' ? 'HOME, which the line may set' : `the home of ~${name}, which is not known`;
  const head: Token[] = dir === null ? [{ kind: 'unknown', origin }] : [...dir].map((ch) => ({ ch, active: false }));
  return [...head, ...t.slice(end)];
}

/** The words one word node stands for once braces and tildes are expanded. */
export function expandWord(pieces: Piece[], ctx: TildeContext): ShellWord[] {
  const expanded: Token[][] = [];
  braces(tokens(pieces), expanded);
  return expanded.map((t) => finish(tilde(t, ctx)));
}

function finish(t: Token[]): ShellWord {
  let pattern = '';
  let literal = '';
  let dynamic = false;
  let glob = false;
  let first: string | null = null;
  let origin: string | undefined;
  for (let i = 0; i < t.length; i++) {
    const k = t[i];
    if (!('ch' in k)) {
      if (k.kind === 'unknown') (dynamic = true), (origin ??= k.origin);
      else glob = true;
      pattern += k.kind === 'unknown' ? '*' : k.glob;
      continue;
    }
    const bracketEnd = k.active && k.ch === '[' ? closingBracket(t, i) : -1;
    if (k.active && (k.ch === '*' || k.ch === '?')) {
      glob = true;
      pattern += k.ch;
    } else if (bracketEnd > 0) {
      glob = true;
      for (let j = i; j <= bracketEnd; j++) pattern += (t[j] as { ch: string }).ch;
      literal += '[';
      i = bracketEnd;
      continue;
    } else pattern += escapeGlob(k.ch);
    if (i === 0 && !glob) first = k.ch;
    literal += k.ch;
  }
  return { literal: dynamic || glob ? null : literal, pattern, dynamic, glob, first, ...(origin ? { origin } : {}) };
}

/** The index of the active `]` that closes a bracket expression opened at `open` (-1 if none). */
function closingBracket(t: Token[], open: number): number {
  let j = open + 1;
  if (isActive(t[j], '!') || isActive(t[j], '^')) j++;
  if (isActive(t[j], ']')) j++;
  for (; j < t.length; j++) {
    const k = t[j];
    if (!('ch' in k) || !k.active || k.ch === '/') return -1;
    if (k.ch === ']') return j;
  }
  return -1;
}
