// The two wrappers whose command gets arguments the line does not hold: `xargs CMD` appends
// words read from its input (unknown), `find START... -exec CMD {} ;` puts each file found
// under START where `{}` stands, which is known as the pattern START/**.
import { literalWord, readWrapperOptions } from './shell-options.ts';
import { escapeGlob, ShellUnreadable, type ShellWord } from './shell-words.ts';
import type { Run, Wrapping } from './shell-wrappers.ts';

/** A word the running shell or program fills in. */
const FROM_INPUT: ShellWord = { literal: null, pattern: '*', dynamic: true, glob: false, first: null, origin: 'the input of xargs' };

export function xargs(program: string, args: ShellWord[]): Wrapping {
  // -e, -i and -l take their value only inside the same word (`-i{}`); alone they are flags.
  const attached: string[] = [];
  const words = args.map((w) => {
    const s = w.literal;
    if (s !== null && s.length > 2 && (s.startsWith('-e') || s.startsWith('-i') || s.startsWith('-l')) && !s.startsWith('--')) {
      attached.push(s);
      return literalWord(s.slice(0, 2));
    }
    return w;
  });
  const o = readWrapperOptions(program, words, {
    flags: '0oprtxeil', values: 'adEILnPs', pathValues: 'a',
    longFlags: ['--null', '--open-tty', '--interactive', '--no-run-if-empty', '--verbose', '--exit', '--show-limits', '--help', '--version'],
    longValues: ['--arg-file', '--delimiter', '--max-args', '--max-procs', '--max-chars', '--process-slot-var'], longPathValues: ['--arg-file'],
    longOptional: ['--max-lines', '--eof', '--replace'],
  });
  const options = [...new Set([...o.options, ...attached])];
  const replaceWord = o.values.get('-I') ?? o.values.get('--replace');
  let replace: string | null = null;
  if (replaceWord) {
    if (replaceWord.literal === null) throw new ShellUnreadable('the replace string of xargs -I comes from an expansion');
    replace = replaceWord.literal;
  } else if (options.includes('-i') || attached.some((a) => a.startsWith('-i'))) {
    const a = attached.find((x) => x.startsWith('-i'));
    replace = a ? a.slice(2) : '{}';
  }
  const command = args.slice(o.rest);
  if (command.length === 0) command.push(literalWord('echo'));
  // Each input item becomes an argument (appended, or wherever the replace string stands).
  const filled = replace === null ? [...command, FROM_INPUT] : command.map((w, k) => (k > 0 && (w.literal === null || w.literal.includes(replace)) ? FROM_INPUT : w));
  return { options, paths: o.pathValues, runs: [{ words: filled }] };
}

const FIND_PATH_PRIMARIES = new Set(['-fprint', '-fprint0', '-fprintf', '-fls', '-newer', '-anewer', '-cnewer', '-samefile', '-files0-from']);
const FIND_EXEC = new Set(['-exec', '-execdir', '-ok', '-okdir']);

/**
 * `find [-H -L -P -D x -Ox] START... EXPRESSION`: its starting points are its paths (and
 * START/** with -delete); each -exec runs its command once per starting point, `{}` being
 * START/**. -execdir runs in each file's directory: other relative paths there are unknown.
 */
export function find(_program: string, args: ShellWord[]): Wrapping {
  let i = 0;
  const options: string[] = [];
  for (; i < args.length; i++) {
    const s = args[i].literal;
    if (s === '-H' || s === '-L' || s === '-P') options.push(s);
    else if (s === '-D') options.push(s), i++;
    else if (s !== null && s.startsWith('-O')) options.push(s);
    else break;
  }
  const starts: ShellWord[] = [];
  for (; i < args.length; i++) {
    const w = args[i];
    const s = w.literal;
    if (s !== null && (s.startsWith('-') || s === '(' || s === '!' || s === ')' || s === ',')) break;
    if (s === null && (w.first === '-' || w.first === null) && !w.glob) throw new ShellUnreadable('a find argument from an expansion may be a starting point or an expression');
    starts.push(w);
  }
  if (starts.length === 0) starts.push(literalWord('.'));
  const paths: ShellWord[] = [...starts];
  const runs: Run[] = [];
  for (; i < args.length; i++) {
    const s = args[i].literal;
    if (s === null) continue;
    if (s.startsWith('-')) options.push(s);
    if (FIND_PATH_PRIMARIES.has(s) && args[i + 1]) paths.push(args[++i]);
    else if (s === '-delete') paths.push(...starts.map(under));
    else if (FIND_EXEC.has(s)) {
      let end = i + 1;
      while (end < args.length && args[end].literal !== ';' && !(args[end].literal === '+' && args[end - 1].literal === '{}')) end++;
      if (end >= args.length) throw new ShellUnreadable(`find ${s} without its closing ; or +`);
      const words = args.slice(i + 1, end);
      if (words.length === 0) throw new ShellUnreadable(`find ${s} without a command`);
      const inDir = s === '-execdir' || s === '-okdir';
      for (const start of starts) {
        const found = under(start);
        const filled = words.map((w) => (w.literal !== null && w.literal.includes('{}') ? { ...found, pattern: w.literal.split('{}').map(escapeGlob).join(found.pattern) } : w));
        runs.push({ words: filled, ...(inDir ? { scope: { cwd: 'unknown' as const } } : {}) });
      }
      i = end;
    }
  }
  return { options: [...new Set(options)], paths, runs };
}

/** START/**: any file under a starting point, as a fact pattern. */
function under(start: ShellWord): ShellWord {
  if (start.dynamic) return start;
  const base = start.pattern.endsWith('/') ? start.pattern.slice(0, -1) : start.pattern;
  return { literal: null, pattern: `${base}/**`, dynamic: false, glob: true, first: base[0] ?? '/' };
}
