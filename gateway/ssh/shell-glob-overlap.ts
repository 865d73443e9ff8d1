// Whether a rule's glob and a fact pattern can match one same string: how `cat /etc/sha*`
// meets a `path: [/etc/shadow]` rule, and `dd if=x of=$DEV` a `command: ["dd * of=/dev/*"]`
// one. Both are turned into small automata (the rule's exactly as gateway/policy/glob.ts reads
// it through wildcard-match) and their product is searched for a common accepted string. Used
// only for facts that hold a wildcard: a plain fact goes through the glob itself.

/** A set of characters an automaton edge accepts. */
type CharClass =
  | { kind: 'lit'; c: string }
  | { kind: 'any' }
  | { kind: 'notSlash' }
  /** A file name's first character under a glob: bash's `*`, `?` and `[...]` never match a leading dot. */
  | { kind: 'notSlashNotDot' }
  | { kind: 'set'; negate: boolean; ranges: [string, string][]; noSlash: boolean; noDot?: boolean };

const ANY: CharClass = { kind: 'any' };
const NOT_SLASH: CharClass = { kind: 'notSlash' };
const NOT_SLASH_NOT_DOT: CharClass = { kind: 'notSlashNotDot' };
const SLASH: CharClass = { kind: 'lit', c: '/' };

class Nfa {
  readonly eps: number[][] = [];
  readonly edges: { cls: CharClass; to: number }[][] = [];
  state(): number {
    this.eps.push([]);
    this.edges.push([]);
    return this.eps.length - 1;
  }
}

/** A piece of automaton from `start` to `end`. */
interface Frag { start: number; end: number }

function one(m: Nfa, cls: CharClass): Frag {
  const start = m.state();
  const end = m.state();
  m.edges[start].push({ cls, to: end });
  return { start, end };
}

function empty(m: Nfa): Frag {
  const s = m.state();
  return { start: s, end: s };
}

function seq(m: Nfa, frags: Frag[]): Frag {
  if (frags.length === 0) return empty(m);
  for (let i = 0; i + 1 < frags.length; i++) m.eps[frags[i].end].push(frags[i + 1].start);
  return { start: frags[0].start, end: frags[frags.length - 1].end };
}

function star(m: Nfa, f: Frag): Frag {
  const s = m.state();
  const e = m.state();
  m.eps[s].push(f.start, e);
  m.eps[f.end].push(f.start, e);
  return { start: s, end: e };
}

function alt(m: Nfa, a: Frag, b: Frag): Frag {
  const s = m.state();
  const e = m.state();
  m.eps[s].push(a.start, b.start);
  m.eps[a.end].push(e);
  m.eps[b.end].push(e);
  return { start: s, end: e };
}

const slashes = (m: Nfa): Frag => seq(m, [one(m, SLASH), star(m, one(m, SLASH))]);

/** Where a fact pattern is matched: a path (wildcards stay in a segment) or a command line. */
export type FactMode = 'path' | 'command';

/**
 * A fact pattern (`*` any run, `**` any run across segments, `?` one character, `[...]` a set,
 * `\c` literal c). In a path, a single `*`, `?` or `[...]` that starts a segment does not match
 * a leading dot, as bash's globs (the reading refuses lines that set dotglob or GLOBIGNORE).
 */
function factAutomaton(m: Nfa, pattern: string, mode: FactMode): Frag {
  const frags: Frag[] = [];
  const path = mode === 'path';
  const inSegment = path ? NOT_SLASH : ANY;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    const segmentStart = path && (i === 0 || (pattern[i - 1] === '/' && pattern[i - 2] !== '\\'));
    if (c === '\\' && i + 1 < pattern.length) frags.push(one(m, { kind: 'lit', c: pattern[++i] }));
    else if (c === '*') {
      const globstar = pattern[i + 1] === '*';
      while (pattern[i + 1] === '*') i++;
      if (globstar) frags.push(star(m, one(m, ANY)));
      else if (segmentStart) frags.push(alt(m, empty(m), seq(m, [one(m, NOT_SLASH_NOT_DOT), star(m, one(m, NOT_SLASH))])));
      else frags.push(star(m, one(m, inSegment)));
    } else if (c === '?') frags.push(one(m, segmentStart ? NOT_SLASH_NOT_DOT : inSegment));
    else if (c === '[') {
      const set = bracket(pattern, i, path);
      if (set) {
        frags.push(one(m, segmentStart && set.cls.kind === 'set' ? { ...set.cls, noDot: true } : set.cls));
        i = set.end;
      } else frags.push(one(m, { kind: 'lit', c }));
    } else frags.push(one(m, { kind: 'lit', c }));
  }
  return seq(m, frags);
}

/** A bracket expression at `open`: its class and closing index; null when it does not close. */
function bracket(p: string, open: number, noSlash: boolean): { cls: CharClass; end: number } | null {
  let i = open + 1;
  const negate = p[i] === '!' || p[i] === '^';
  if (negate) i++;
  const ranges: [string, string][] = [];
  for (let first = true; i < p.length; first = false, i++) {
    if (p[i] === ']' && !first) return { cls: { kind: 'set', negate, ranges, noSlash }, end: i };
    if (p[i + 1] === '-' && p[i + 2] !== undefined && p[i + 2] !== ']') {
      ranges.push([p[i], p[i + 2]]);
      i += 2;
    } else ranges.push([p[i], p[i]]);
  }
  return null;
}

/** A rule's name glob as nameGlob reads it: `*` any run, all else literal. */
function nameAutomaton(m: Nfa, glob: string): Frag {
  return seq(m, [...glob].map((c) => (c === '*' ? star(m, one(m, ANY)) : one(m, { kind: 'lit', c }))));
}

/**
 * A rule's path glob as pathGlob reads it (wildcard-match with separator `/`): a `/` is one or
 * more slashes, `*` and `?` stay in a segment, a `**` segment is any number of segments, a
 * trailing `/` is optional, `\` is literal.
 */
function pathAutomaton(m: Nfa, glob: string): Frag {
  const segments = glob.split('/');
  const frags: Frag[] = [];
  for (let s = 0; s < segments.length; s++) {
    const seg = segments[s];
    if (!seg && s > 0) continue;
    const last = s === segments.length - 1;
    const nextIsGlobstar = segments[s + 1] === '**';
    const separator = (): Frag => (last ? star(m, one(m, SLASH)) : nextIsGlobstar ? empty(m) : slashes(m));
    if (seg === '**') {
      if (!last && nextIsGlobstar) continue;
      const round = (): Frag => seq(m, [star(m, one(m, NOT_SLASH)), separator()]);
      if (s === 0) frags.push(star(m, round()));
      else if (last) frags.push(alt(m, seq(m, [slashes(m), star(m, round())]), empty(m)));
      else frags.push(seq(m, [slashes(m), star(m, round())]));
      continue;
    }
    for (const c of seg) frags.push(c === '?' ? one(m, NOT_SLASH) : c === '*' ? star(m, one(m, NOT_SLASH)) : one(m, { kind: 'lit', c }));
    frags.push(separator());
  }
  return seq(m, frags);
}

function contains(cls: CharClass, ch: string): boolean {
  switch (cls.kind) {
    case 'lit':
      return cls.c === ch;
    case 'any':
      return true;
    case 'notSlash':
      return ch !== '/';
    case 'notSlashNotDot':
      return ch !== '/' && ch !== '.';
    case 'set': {
      if ((cls.noSlash && ch === '/') || (cls.noDot && ch === '.')) return false;
      const inside = cls.ranges.some(([a, b]) => a <= ch && ch <= b);
      return inside !== cls.negate;
    }
  }
}

/** Characters that decide whether two classes meet: each one's bounds, their neighbours, and some others. */
function witnesses(cls: CharClass, out: Set<string>): void {
  if (cls.kind === 'lit') out.add(cls.c);
  if (cls.kind !== 'set') return;
  for (const [a, b] of cls.ranges) {
    for (const c of [a, b]) {
      const code = c.codePointAt(0)!;
      out.add(c);
      if (code > 0) out.add(String.fromCodePoint(code - 1));
      if (code < 0x10ffff) out.add(String.fromCodePoint(code + 1));
    }
  }
}

function meet(x: CharClass, y: CharClass): boolean {
  if (x.kind === 'lit') return contains(y, x.c);
  if (y.kind === 'lit') return contains(x, y.c);
  const candidates = new Set(['/', '.', 'a', '\u{e000}', '\u{10fffd}']);
  witnesses(x, candidates);
  witnesses(y, candidates);
  for (const c of candidates) if (contains(x, c) && contains(y, c)) return true;
  return false;
}

/** Pairs of states searched before giving up; a search that gives up says "they meet" (fail closed). */
const MAX_PAIRS = 200_000;

function intersect(a: Nfa, fa: Frag, b: Nfa, fb: Frag): boolean {
  const key = (x: number, y: number): number => x * b.eps.length + y;
  const seen = new Set<number>();
  const stack: [number, number][] = [[fa.start, fb.start]];
  seen.add(key(fa.start, fb.start));
  while (stack.length) {
    const [x, y] = stack.pop()!;
    if (x === fa.end && y === fb.end) return true;
    if (seen.size > MAX_PAIRS) return true;
    const next: [number, number][] = [];
    for (const e of a.eps[x]) next.push([e, y]);
    for (const e of b.eps[y]) next.push([x, e]);
    for (const ea of a.edges[x]) for (const eb of b.edges[y]) if (meet(ea.cls, eb.cls)) next.push([ea.to, eb.to]);
    for (const [p, q] of next) {
      const k = key(p, q);
      if (!seen.has(k)) seen.add(k), stack.push([p, q]);
    }
  }
  return false;
}

/** A rule glob, compiled once, that tells whether a fact pattern may match it. */
export function overlapMatcher(glob: string, flavour: 'name' | 'path', mode: FactMode): (factPattern: string) => boolean {
  const rule = new Nfa();
  const rf = flavour === 'name' ? nameAutomaton(rule, glob) : pathAutomaton(rule, glob);
  return (factPattern) => {
    const fact = new Nfa();
    return intersect(fact, factAutomaton(fact, factPattern, mode), rule, rf);
  };
}
