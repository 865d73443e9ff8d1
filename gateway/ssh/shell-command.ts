// One simple command of an exec line, once its words are made: the unit of facts the policy
// decides (class, command, program, options, paths), the commands it runs in turn (a wrapper's
// command, a `sh -c` script), and what it does to the working directory (`cd`).
import type { SshUnit } from './exec-facts.ts';
import { commandArgs } from './shell-file-commands.ts';
import { find, xargs } from './shell-find-xargs.ts';
import { joinCwd, resolvePath, type Cwd } from './shell-paths.ts';
import { escapeGlob, ShellUnreadable, type ShellWord } from './shell-words.ts';
import { basename, unwrap, type Run, type ScopeChange, type Stdin, type Wrapping } from './shell-wrappers.ts';

/** Where a command runs: the home `~` stands for, the working directories, how deep the reading is. */
export interface Scope {
  /** The home of the user running it; null when not known (changed HOME, another user or host). */
  home: string | null;
  cwd: Cwd;
  /** Scripts parsed inside scripts (`sh -c "sh -c ..."`): bounded by MAX_SCRIPT_DEPTH. */
  depth: number;
}

/** The working directories after a command: when it succeeded, when it failed. */
export interface CwdAfter { ok: Cwd; fail: Cwd }

/** How deep scripts may nest (`sh -c` in `sudo` in `ssh ...`) before the line is unclassified. */
export const MAX_SCRIPT_DEPTH = 8;
/** At most this many units from one exec line. */
export const MAX_UNITS = 2000;

/** What a reading gathers, and how it reads a script found inside the line. */
export interface Reading {
  units: SshUnit[];
  /** Why parts cannot be known statically (each once). */
  reasons: Set<string>;
  /** Parses and reads a script (`sh -c SCRIPT`) in a scope; its cwd changes stay inside. */
  readScript(script: string, scope: Scope): void;
}

/** Programs run by the shell itself, so a `cd` under them changes the shell's directory. */
const SAME_SHELL = new Set(['command', 'builtin', 'time']);

export function addUnit(reading: Reading, unit: SshUnit): void {
  if (reading.units.length >= MAX_UNITS) throw new ShellUnreadable(`the line runs more than ${MAX_UNITS} commands`);
  reading.units.push(unit);
}

/** Resolved paths of words; an unknown one is recorded as a reason. */
function paths(reading: Reading, words: ShellWord[], scope: Scope): string[] {
  const out: string[] = [];
  for (const w of words) {
    const r = resolvePath(w, scope.cwd);
    if (r === null) {
      reading.reasons.add(w.dynamic ? `a path comes from ${w.origin ?? 'an expansion'} (${w.pattern})` : `a relative path where the working directory is not known (${w.pattern})`);
    } else out.push(...r);
  }
  for (const p of out) if (throughProcLink(p)) reading.reasons.add(`a path through a /proc link to another file (${p})`);
  return [...new Set(out)];
}

/** /proc/PID/root, cwd, fd, map_files and exe lead elsewhere (`/proc/self/root/etc/shadow`). */
function throughProcLink(p: string): boolean {
  const seg = p.split('/');
  return seg[1] === 'proc' && seg.length > 3 && ['root', 'cwd', 'fd', 'map_files', 'exe', '*', '**'].includes(seg[3]);
}

/**
 * Reads one simple command: `words` made by the shell (expanded), `redirects` the files its
 * redirections open, `stdin` what a shell among them would read its script from.
 */
export function readSimpleCommand(reading: Reading, words: ShellWord[], redirects: ShellWord[], stdin: Stdin, scope: Scope): CwdAfter {
  const same: CwdAfter = { ok: scope.cwd, fail: scope.cwd };
  if (words.length === 0) {
    if (redirects.length) addUnit(reading, { ssh: 'exec', command: '', options: [], paths: paths(reading, redirects, scope) });
    return same;
  }
  const name = words[0].literal;
  if (name === null) throw new ShellUnreadable(`the command name comes from ${words[0].dynamic ? 'an expansion' : 'a glob'} (${words[0].pattern})`);
  const program = basename(name);
  const args = words.slice(1);
  // The first word is the program's basename, as `program:` sees it (`/sbin/reboot` is `reboot`).
  const command = [escapeGlob(program), ...args.map((w) => w.pattern)].join(' ');
  checkBuiltins(program, args);
  const wrapping: Wrapping | null = program === 'xargs' ? xargs(program, args) : program === 'find' ? find(program, args) : unwrap(program, args, stdin, scope.home);
  if (wrapping) {
    addUnit(reading, { ssh: 'exec', command, program, options: wrapping.options, paths: paths(reading, [...wrapping.paths, ...redirects], scope) });
    let after = same;
    for (const run of wrapping.runs) {
      const inner = readRun(reading, run, stdin, scope);
      if (SAME_SHELL.has(program) && inner) after = inner;
    }
    return after;
  }
  const a = commandArgs(program, args);
  const serverScp = program === 'scp' && (a.options.includes('-t') || a.options.includes('-f'));
  addUnit(reading, { ssh: serverScp ? 'scp' : 'exec', command, program, options: a.options, paths: paths(reading, [...a.files, ...redirects], scope) });
  if (program === 'cd' || program === 'pushd') return { ok: cdTarget(a.operands, scope), fail: scope.cwd };
  if (program === 'popd') return { ok: null, fail: scope.cwd };
  return same;
}

/** What one thing a wrapper runs does; its cwd effect when it is words. */
function readRun(reading: Reading, run: Run, stdin: Stdin, scope: Scope): CwdAfter | null {
  const inner = innerScope(scope, run.scope);
  if ('script' in run) {
    reading.readScript(run.script, inner);
    return null;
  }
  return readSimpleCommand(reading, run.words, [], stdin, inner);
}

function innerScope(scope: Scope, change: ScopeChange | undefined): Scope {
  if (!change) return scope;
  if (change.remote) return { home: null, cwd: null, depth: scope.depth };
  const home = change.home !== undefined ? change.home : scope.home;
  let cwd = scope.cwd;
  if (change.cwd === 'home') cwd = home === null ? null : [home];
  else if (change.cwd === 'unknown') cwd = null;
  else if (change.cwd) cwd = resolvePath(change.cwd, scope.cwd);
  return { home, cwd, depth: scope.depth };
}

/** `cd`, `cd DIR`, `cd -` (unknown), with -L/-P/-e/-@ options already read. */
function cdTarget(operands: ShellWord[], scope: Scope): Cwd {
  if (operands.length === 0) return scope.home === null ? null : [scope.home];
  const dir = operands[0];
  if (dir.literal === '-') return null;
  const r = resolvePath(dir, scope.cwd);
  return r === null ? null : joinCwd(r, []);
}

/** Builtins that change what later words mean are not read. */
function checkBuiltins(program: string, args: ShellWord[]): void {
  const lits = args.map((w) => w.literal);
  if (program === 'hash' && lits.some((l) => l === null || l.startsWith('-p'))) throw new ShellUnreadable('hash -p makes a name run another program');
  if (program === 'enable' && args.length > 0) throw new ShellUnreadable('enable changes which builtins run');
  if (program === 'shopt' && lits.some((l) => l === null || l === 'expand_aliases')) throw new ShellUnreadable('shopt expand_aliases makes aliases change later commands');
  if (program === 'set' && lits.some((l) => l === null)) throw new ShellUnreadable('set options from an expansion');
}
