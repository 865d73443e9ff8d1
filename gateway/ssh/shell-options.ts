// Command-line options as programs read them, for the `option:` facts and to find operands.
// GNU programs take options anywhere before `--` (`rm /x -rf` is recursive), so every word
// before `--` that starts with `-` is an option: a short cluster holds each of its letters
// (`-rf` holds -r and -f, and itself), a long option holds its name without `=value`.
// A word whose first character only the running shell knows (`$FLAGS`, a glob such as `*`
// that a file named `-rf` would fill) may be any option: it holds ANY_OPTION.
import { escapeGlob, ShellUnreadable, type ShellWord } from './shell-words.ts';

/** The option fact of a word that may expand to any option; every `option:` value matches it. */
export const ANY_OPTION = '*';

/** How a program's options take values (so a value is not read as an operand or an option). */
export interface OptionSpec {
  /** Short options that take a value: the rest of the cluster, or the next word. */
  values?: string;
  /** Of those, the ones whose value is a path. */
  pathValues?: string;
  /** Long options (with `--`) that take a value as `=value` or as the next word. */
  longValues?: readonly string[];
  /** Of those, the ones whose value is a path. */
  longPathValues?: readonly string[];
}

export interface ReadOptions {
  /** The option facts. */
  options: string[];
  /** The words that are not options (nor option values). */
  operands: ShellWord[];
  /** Values of options whose value is a path (and `=value`s of unknown long options holding `/`). */
  pathValues: ShellWord[];
  /** Every option value by option, for the few programs that look at one (`tar -I`, `rsync -e`). */
  valued: { option: string; value: ShellWord }[];
}

/** A word made of known text (an option's value taken from inside another word). */
export function literalWord(s: string): ShellWord {
  return { literal: s, pattern: escapeGlob(s), dynamic: false, glob: false, first: s[0] ?? null };
}

/** Reads the options and operands of an ordinary command's arguments. */
export function readOptions(args: readonly ShellWord[], spec: OptionSpec = {}): ReadOptions {
  const r: ReadOptions = { options: [], operands: [], pathValues: [], valued: [] };
  const opts = new Set<string>();
  const add = (o: string): void => void opts.add(o);
  let ended = false;
  for (let i = 0; i < args.length; i++) {
    const w = args[i];
    if (ended) {
      r.operands.push(w);
      continue;
    }
    if (w.literal === '--') {
      ended = true;
      continue;
    }
    if (w.literal === null) {
      // A word the shell fills in: if it may start with `-` it may be any option; it stays an operand too.
      if (w.first === null || w.first === '-') add(ANY_OPTION);
      r.operands.push(w);
      continue;
    }
    const s = w.literal;
    if (s.length < 2 || s[0] !== '-') {
      r.operands.push(w);
      continue;
    }
    if (s.startsWith('--')) {
      const eq = s.indexOf('=');
      const name = eq < 0 ? s : s.slice(0, eq);
      add(name);
      const takes = spec.longValues?.includes(name) ?? false;
      let value: ShellWord | undefined;
      if (eq >= 0) value = literalWord(s.slice(eq + 1));
      else if (takes && i + 1 < args.length) value = args[++i];
      if (value) {
        r.valued.push({ option: name, value });
        if (spec.longPathValues?.includes(name) || (!takes && value.literal?.includes('/'))) r.pathValues.push(value);
      }
      continue;
    }
    add(s);
    for (let k = 1; k < s.length; k++) {
      const letter = s[k];
      if (letter !== '-') add(`-${letter}`);
      if (!spec.values?.includes(letter)) continue;
      const rest = s.slice(k + 1);
      const value = rest !== '' ? literalWord(rest) : i + 1 < args.length ? args[++i] : undefined;
      if (value) {
        r.valued.push({ option: `-${letter}`, value });
        if (spec.pathValues?.includes(letter)) r.pathValues.push(value);
      }
      break;
    }
  }
  r.options = [...opts];
  return r;
}

/** How a program that runs another command takes its own options (sudo, env, timeout, ...). */
export interface WrapperOptionSpec extends OptionSpec {
  /** Short options without a value. */
  flags?: string;
  /** Long options without a value. */
  longFlags?: readonly string[];
  /** Long options whose value is optional (`--preserve-env[=list]`): only `=value` is a value. */
  longOptional?: readonly string[];
  /** Whether `-N` words (nice's `-5`) are options. */
  numeric?: boolean;
}

export interface WrapperOptions {
  options: string[];
  /** Each option's value by option name (`-u` → the user). */
  values: Map<string, ShellWord>;
  pathValues: ShellWord[];
  /** Index in `args` of the first word after the options (the command, or what precedes it). */
  rest: number;
}

/**
 * Reads a wrapper's options up to its first operand. The set is closed: an option the gateway
 * does not know may take a value and so hide or shift the command, so it is unreadable.
 */
export function readWrapperOptions(program: string, args: readonly ShellWord[], spec: WrapperOptionSpec): WrapperOptions {
  const out: WrapperOptions = { options: [], values: new Map(), pathValues: [], rest: args.length };
  const done = (rest: number): WrapperOptions => ({ ...out, options: [...new Set(out.options)], rest });
  const take = (name: string, value: ShellWord | undefined, path: boolean): void => {
    if (!value) throw new ShellUnreadable(`${program} ${name} without its value`);
    out.values.set(name, value);
    if (path) out.pathValues.push(value);
  };
  for (let i = 0; i < args.length; i++) {
    const w = args[i];
    if (w.literal === null) {
      if (w.first === '-' || w.first === null) throw new ShellUnreadable(`an argument of ${program} that may be an option comes from an expansion or a glob`);
      return done(i);
    }
    const s = w.literal;
    if (s === '--') return done(i + 1);
    if (s.length < 2 || s[0] !== '-') return done(i);
    if (s.startsWith('--')) {
      const eq = s.indexOf('=');
      const name = eq < 0 ? s : s.slice(0, eq);
      out.options.push(name);
      if (spec.longValues?.includes(name)) take(name, eq >= 0 ? literalWord(s.slice(eq + 1)) : args[++i], spec.longPathValues?.includes(name) ?? false);
      else if (spec.longOptional?.includes(name)) {
        if (eq >= 0) take(name, literalWord(s.slice(eq + 1)), false);
      } else if (!spec.longFlags?.includes(name) || eq >= 0) throw new ShellUnreadable(`${program} option ${name} is not one the gateway reads`);
      continue;
    }
    if (spec.numeric && isNumber(s.slice(1))) {
      out.options.push(s);
      continue;
    }
    out.options.push(s);
    for (let k = 1; k < s.length; k++) {
      const letter = s[k];
      if (spec.values?.includes(letter)) {
        out.options.push(`-${letter}`);
        const rest = s.slice(k + 1);
        take(`-${letter}`, rest !== '' ? literalWord(rest) : args[++i], spec.pathValues?.includes(letter) ?? false);
        break;
      }
      if (!spec.flags?.includes(letter)) throw new ShellUnreadable(`${program} option -${letter} is not one the gateway reads`);
      out.options.push(`-${letter}`);
    }
  }
  return done(args.length);
}

function isNumber(s: string): boolean {
  if (s === '') return false;
  for (const c of s) if (c < '0' || c > '9') return false;
  return true;
}
