// The paths a command names, as fact patterns (shell-words.ts): normalised (`//`, `.` and `..`
// removed, lexically: symbolic links are not followed), and a relative path resolved against
// every working directory the command may run in. A path the line does not fix (an expansion,
// an unknown working directory, another user's home) is null: the caller makes the reading
// unclassified.
import type { ShellWord } from './shell-words.ts';

/**
 * The working directories a command may run in (after `cd X; cmd` it is X, or the old one when
 * cd failed), as absolute fact patterns; null when the line does not fix it.
 */
export type Cwd = readonly string[] | null;

/** More possible working directories than this and the working directory is unknown. */
export const MAX_CWDS = 8;

/** An absolute fact pattern with empty and `.` segments dropped and `..` applied. */
export function normalisePath(p: string): string {
  const out: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  return `/${out.join('/')}`;
}

/** The absolute fact patterns a path word stands for; null when the line does not fix it. */
export function resolvePath(word: ShellWord, cwd: Cwd): string[] | null {
  if (word.dynamic) return null;
  return resolvePattern(word.pattern, cwd);
}

/** The same for a fact pattern (relative ones against each working directory). */
export function resolvePattern(pattern: string, cwd: Cwd): string[] | null {
  if (pattern.startsWith('/')) return [normalisePath(pattern)];
  if (cwd === null) return null;
  return cwd.map((d) => normalisePath(`${d}/${pattern}`));
}

/** Two sets of working directories joined (as after `if`, `||`); null when either is unknown or there are too many. */
export function joinCwd(a: Cwd, b: Cwd): Cwd {
  if (a === null || b === null) return null;
  const all = [...new Set([...a, ...b])];
  return all.length > MAX_CWDS ? null : all;
}

/** The one working directory when there is exactly one and it is a literal (for `~+`). */
export function singleCwd(cwd: Cwd): string | null {
  if (cwd === null || cwd.length !== 1) return null;
  for (const c of cwd[0]) if (c === '\\' || c === '*' || c === '?' || c === '[') return null;
  return cwd[0];
}
