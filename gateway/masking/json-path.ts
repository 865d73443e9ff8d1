// The JSONPath subset that names JSON fields to mask whole: `$` then steps, each a child
// (`.name`, `['name']`, `.*`, `[3]`, `[*]`) or, after `..`, a descendant at any depth
// (`..name`, `..*`, `..[*]`, `..[0]`). Examples: `$..primaryKey`, `$.a.b`, `$..keys[*].value`,
// `$.items[0].x`. Filters, slices, unions and scripts are refused: a path the masker cannot
// follow exactly must not silently match less than it says.
//
// Paths compile into one automaton read as a streamed document descends: a value's state set
// comes from its parent's and its own key or index, so a match costs no look-back.

/** What one step matches: a name, an index, or any member or element. */
type Selector = { kind: 'name'; name: string } | { kind: 'index'; index: number } | { kind: 'any' };

interface Step { descendant: boolean; selector: Selector }

/** One segment of a concrete path: an object key (null when unknown, e.g. too long to hold)
 * or an array index. */
export type Segment = string | number | null;

const NAME = /^[A-Za-z_$][A-Za-z0-9_$-]*/;

function parse(path: string): Step[] {
  const fail = (msg: string): never => {
    throw new Error(`JSON path "${path}": ${msg}`);
  };
  if (!path.startsWith('$')) fail('must start with $');
  const steps: Step[] = [];
  let i = 1;
  while (i < path.length) {
    let descendant = false;
    if (path.startsWith('..', i)) {
      descendant = true;
      i += 2;
    } else if (path[i] === '.') {
      i += 1;
    } else if (path[i] !== '[') {
      fail(`unexpected "${path[i]}" at ${i}`);
    }
    if (path[i] === '[') {
      const close = path.indexOf(']', i);
      if (close < 0) fail('unclosed [');
      const inner = path.slice(i + 1, close).trim();
      let selector: Selector;
      if (inner === '*') selector = { kind: 'any' };
      else if (/^\d+$/.test(inner)) selector = { kind: 'index', index: Number(inner) };
      else if (/^'[^'\\]*'$|^"[^"\\]*"$/.test(inner)) selector = { kind: 'name', name: inner.slice(1, -1) };
      else selector = fail(`only [n], [*] and ['name'] are supported, not [${inner}]`);
      steps.push({ descendant, selector });
      i = close + 1;
      continue;
    }
    if (path[i] === '*') {
      steps.push({ descendant, selector: { kind: 'any' } });
      i += 1;
      continue;
    }
    const m = NAME.exec(path.slice(i));
    if (!m) fail(`expected a name at ${i}`);
    steps.push({ descendant, selector: { kind: 'name', name: m![0] } });
    i += m![0].length;
  }
  return steps;
}

/** Why a path cannot be used (for a policy loader's message), or null. */
export function jsonPathProblem(path: string): string | null {
  try {
    parse(path);
    return null;
  } catch (e) {
    return (e as Error).message.replace(/^JSON path "(?:[^"]|")*?": /, '');
  }
}

function selects(sel: Selector, seg: Segment): boolean {
  if (sel.kind === 'any') return true;
  if (sel.kind === 'index') return seg === sel.index;
  // An unknown key could be the name: masking more is the safe mistake.
  return seg === null || seg === sel.name;
}

/** A set of automaton states (sorted ids of (path, step) pairs), interned, with the
 * transitions taken from it remembered (up to a bound: keys can be as many as the data has). */
export interface PathState {
  readonly ids: readonly number[];
  readonly next: Map<Segment, { state: PathState; masked: boolean }>;
}

const MAX_REMEMBERED = 256;

export class JsonPaths {
  readonly #steps: Step[][];
  readonly #ids: [number, number][] = [];
  readonly #interned = new Map<string, PathState>();
  /** The state at a document's root. */
  readonly root: PathState;
  /** The state below which no path can match. */
  readonly none: PathState;
  /** Some path is `$` alone: every document is masked whole. */
  readonly rootMasked: boolean;

  constructor(paths: readonly string[]) {
    this.#steps = paths.map(parse);
    const starts: number[] = [];
    for (const steps of this.#steps) {
      starts.push(this.#ids.length);
      for (let s = 0; s <= steps.length; s++) this.#ids.push([starts.length - 1, s]);
    }
    this.none = this.#intern([]);
    this.root = this.#intern(starts.filter((id) => !this.#final(id)));
    this.rootMasked = this.#steps.some((s) => s.length === 0);
  }

  #intern(ids: number[]): PathState {
    const key = ids.join(',');
    let state = this.#interned.get(key);
    if (!state) this.#interned.set(key, (state = { ids, next: new Map() }));
    return state;
  }

  #final(id: number): boolean {
    const [p, s] = this.#ids[id]!;
    return s === this.#steps[p]!.length;
  }

  /** The state of a child reached by `seg`, and whether some path ends there (mask it). */
  child(state: PathState, seg: Segment): { state: PathState; masked: boolean } {
    if (state.ids.length === 0) return { state, masked: false };
    const known = state.next.get(seg);
    if (known) return known;
    const next = new Set<number>();
    let masked = false;
    for (const id of state.ids) {
      const [p, s] = this.#ids[id]!;
      const step = this.#steps[p]![s]!;
      if (step.descendant) next.add(id); // `..` may skip this level
      if (selects(step.selector, seg)) {
        if (this.#final(id + 1)) masked = true;
        else next.add(id + 1);
      }
    }
    const r = { state: this.#intern([...next].sort((a, b) => a - b)), masked };
    if (state.next.size < MAX_REMEMBERED) state.next.set(seg, r);
    return r;
  }
}
