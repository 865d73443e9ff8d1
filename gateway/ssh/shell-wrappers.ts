// Programs that run another command or a script: what they run is read like the line itself.
// Each wrapper's options are a closed set (an option the gateway does not know may take a value
// and so move the command), and every form not written down here is unreadable, so the line is
// unclassified rather than passed: `sudo -X rm` or `strace rm` are never read as harmless.
import { readWrapperOptions, type WrapperOptionSpec } from './shell-options.ts';
import { ShellUnreadable, type ShellWord } from './shell-words.ts';

/** What a wrapped command runs in: a new home (sudo -u, su), a new directory (env -C, sudo -D). */
export interface ScopeChange {
  /** The home of a shell parsed inside (`~` there); null when it is not known. */
  home?: string | null;
  /** The working directory: a path word, the (new) home, or unknown. */
  cwd?: ShellWord | 'home' | 'unknown';
  /** The words come from another host (`ssh other CMD`): its paths are not this host's. */
  remote?: boolean;
}

/** One thing a wrapper runs: a command's words, or a script the shell parses (`sh -c`). */
export type Run = ({ words: ShellWord[] } | { script: string }) & { scope?: ScopeChange };

export interface Wrapping {
  /** The wrapper's own options (its unit's `option:` facts). */
  options: string[];
  /** Paths the wrapper itself opens (`time -o FILE`, `sudo -e FILE`, a shell's script file). */
  paths: ShellWord[];
  runs: Run[];
}

/** The script a shell would read from its standard input, when the line fixes it (a here-doc). */
export type Stdin = { script: string } | { from: string };

type Unwrap = (program: string, args: ShellWord[], stdin: Stdin) => Wrapping;

const SHELLS = new Set(['sh', 'bash', 'dash', 'zsh', 'ksh', 'mksh', 'ash', 'rbash']);
const INTERPRETERS = new Set(['python', 'python2', 'python3', 'perl', 'ruby', 'node', 'nodejs', 'php', 'lua', 'tclsh', 'Rscript', 'bun', 'deno']);

/** Programs known to run a command or read commands whose forms the gateway does not read. */
const UNREAD_RUNNERS = new Set([
  'eval', 'source', '.', 'coproc', 'strace', 'ltrace', 'gdb', 'valgrind', 'perf', 'unbuffer', 'chrt', 'taskset', 'nsenter', 'unshare',
  'systemd-run', 'run-parts', 'fakeroot', 'fakechroot', 'firejail', 'proot', 'script', 'tmux', 'screen', 'parallel', 'at', 'batch',
  'dbus-launch', 'numactl', 'cgexec', 'prlimit', 'sg', 'newgrp', 'eatmydata', 'faketime', 'torsocks', 'proxychains', 'proxychains4',
  'expect', 'sshpass', 'xvfb-run', 'ssh-agent', 'daemonize', 'start-stop-daemon', 'runcon', 'authbind', 'catchsegv', 'cpulimit',
  'pkexec', 'fish', 'csh', 'tcsh', 'su-exec', 'gosu', 'chpst', 'setpriv', 'capsh', 'bwrap', 'systemd-nspawn',
]);

const literalOf = (w: ShellWord | undefined): string | null => w?.literal ?? null;

/** NAME=value words (before a command under env and sudo). */
export function isAssignmentWord(w: ShellWord): boolean {
  const s = w.literal ?? (w.first !== null ? w.pattern : null);
  if (s === null) return false;
  const eq = s.indexOf('=');
  if (eq <= 0) return false;
  for (let i = 0; i < eq; i++) {
    const c = s[i];
    const ok = c === '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

/** The home of a user the command switches to: root's, the login user's own, else unknown. */
function homeOf(user: ShellWord | undefined, loginHome: string | null): string | null {
  const name = user === undefined ? 'root' : literalOf(user);
  if (name === 'root' || name === '0') return '/root';
  return name !== null && loginHome !== null && loginHome === `/home/${name}` ? loginHome : null;
}

/** A simple wrapper: options, maybe some fixed operands, then the command (or nothing). */
function simple(spec: WrapperOptionSpec & { skip?: number; assignments?: boolean }): Unwrap {
  return (program, args) => {
    const o = readWrapperOptions(program, args, spec);
    let i = o.rest + (spec.skip ?? 0);
    if (spec.assignments) while (i < args.length && isAssignmentWord(args[i])) i++;
    return { options: o.options, paths: o.pathValues, runs: i < args.length ? [{ words: args.slice(i) }] : [] };
  };
}

/** `sh -c SCRIPT`, `bash -lc`, `bash FILE`, or a shell reading its script from stdin. */
function shell(program: string, args: ShellWord[], stdin: Stdin): Wrapping {
  const options: string[] = [];
  let script = false;
  let fromStdin = false;
  let i = 0;
  for (; i < args.length; i++) {
    const s = args[i].literal;
    if (s === null) {
      if (script) break; // the script word
      throw new ShellUnreadable(`an argument of ${program} that may be an option comes from an expansion or a glob`);
    }
    if (s === '--' || s === '-') {
      i++;
      break;
    }
    if (s.length < 2 || (s[0] !== '-' && s[0] !== '+')) break;
    if (s.startsWith('--')) {
      if (s === '--rcfile' || s === '--init-file') i++;
      else if (!['--login', '--noprofile', '--norc', '--posix', '--restricted', '--verbose', '--noediting', '--version', '--help'].includes(s)) throw new ShellUnreadable(`${program} option ${s} is not one the gateway reads`);
      options.push(s);
      continue;
    }
    options.push(s);
    for (const letter of s.slice(1)) {
      options.push(`${s[0]}${letter}`);
      if (letter === 'c') script = true;
      else if (letter === 's') fromStdin = true;
      else if (letter === 'i') throw new ShellUnreadable(`an interactive ${program} (-i) reads the aliases of its startup files`);
      else if (letter === 'o' || letter === 'O') {
        const v = literalOf(args[++i]);
        if (v === null || v === 'expand_aliases') throw new ShellUnreadable(`${program} ${s[0]}${letter} ${v ?? 'from an expansion'}`);
      } else if (!'abefhklmnprtuvxBCEHPT'.includes(letter)) throw new ShellUnreadable(`${program} option ${s[0]}${letter} is not one the gateway reads`);
    }
  }
  const opts = [...new Set(options)];
  if (script) {
    const w = args[i];
    if (w === undefined) throw new ShellUnreadable(`${program} -c without a script`);
    if (w.literal === null) throw new ShellUnreadable(`the script of ${program} -c comes from an expansion`);
    return { options: opts, paths: [], runs: [{ script: w.literal }] };
  }
  if (!fromStdin && i < args.length) return { options: opts, paths: [args[i]], runs: [] };
  if ('script' in stdin) return { options: opts, paths: [], runs: [{ script: stdin.script }] };
  throw new ShellUnreadable(`${program} reads its script from standard input (${stdin.from})`);
}

function interpreter(program: string, args: ShellWord[]): Wrapping {
  for (const w of args) {
    const s = w.literal;
    if (s === null) return { options: [], paths: [], runs: [] };
    if (s === '-') break;
    if (s === '-c' || s === '-e' || s === '-E' || s === '-r' || s === '-m' || s === '--eval' || s === '-p' || s === '--print') return { options: [s], paths: [], runs: [] };
    if (s[0] !== '-') return { options: [], paths: [w], runs: [] };
  }
  throw new ShellUnreadable(`${program} reads its program from standard input`);
}

const sudoSpec: WrapperOptionSpec = {
  flags: 'AbEeHiKklnPSsVv', values: 'CDghpRrtTUu', pathValues: 'D',
  longFlags: ['--askpass', '--background', '--bell', '--edit', '--help', '--set-home', '--login', '--remove-timestamp', '--reset-timestamp', '--list', '--non-interactive', '--preserve-groups', '--shell', '--stdin', '--version', '--validate'],
  longValues: ['--close-from', '--chdir', '--group', '--host', '--prompt', '--chroot', '--role', '--type', '--command-timeout', '--other-user', '--user'],
  longPathValues: ['--chdir'], longOptional: ['--preserve-env'],
};

function sudo(program: string, args: ShellWord[], stdin: Stdin, loginHome: string | null): Wrapping {
  const o = readWrapperOptions(program, args, sudoSpec);
  const has = (...names: string[]): boolean => names.some((n) => o.options.includes(n));
  if (has('-R', '--chroot')) throw new ShellUnreadable(`${program} --chroot changes what paths mean`);
  let i = o.rest;
  while (i < args.length && isAssignmentWord(args[i])) i++;
  const rest = args.slice(i);
  if (program === 'sudoedit' || has('-e', '--edit')) return { options: o.options, paths: rest, runs: [] };
  if (has('-l', '--list', '-v', '--validate', '-V', '--version', '-h', '--help') || (rest.length === 0 && has('-k', '-K', '--reset-timestamp', '--remove-timestamp'))) return { options: o.options, paths: [], runs: [] };
  const home = homeOf(o.values.get('-u') ?? o.values.get('--user'), loginHome);
  const dir = o.values.get('-D') ?? o.values.get('--chdir');
  const login = has('-i', '--login');
  const scope: ScopeChange = { home, ...(dir ? { cwd: dir } : login ? { cwd: 'home' } : {}) };
  if (rest.length === 0) {
    if (!login && !has('-s', '--shell')) throw new ShellUnreadable(`${program} without a command`);
    if ('script' in stdin) return { options: o.options, paths: [], runs: [{ script: stdin.script, scope }] };
    throw new ShellUnreadable(`${program} ${login ? '-i' : '-s'} runs a shell reading standard input (${stdin.from})`);
  }
  return { options: o.options, paths: o.pathValues, runs: [{ words: rest, scope }] };
}

function env(program: string, args: ShellWord[]): Wrapping {
  const o = readWrapperOptions(program, args, {
    flags: 'i0v', values: 'uCS', pathValues: 'C',
    longFlags: ['--ignore-environment', '--null', '--debug', '--list-signal-handling', '--help', '--version'],
    longValues: ['--unset', '--chdir', '--split-string'], longPathValues: ['--chdir'],
    longOptional: ['--block-signal', '--default-signal', '--ignore-signal'],
  });
  if (o.options.includes('-S') || o.options.includes('--split-string')) throw new ShellUnreadable('env -S splits a string by rules of its own');
  let i = o.rest;
  if (literalOf(args[i]) === '-') i++;
  let home: string | null | undefined;
  for (; i < args.length && isAssignmentWord(args[i]); i++) {
    const s = args[i].literal;
    if (s === null || s.startsWith('HOME=')) home = s === null ? null : s.slice(5);
  }
  const dir = o.values.get('-C') ?? o.values.get('--chdir');
  const scope: ScopeChange = { ...(home !== undefined ? { home } : {}), ...(dir ? { cwd: dir } : {}) };
  return { options: o.options, paths: o.pathValues, runs: i < args.length ? [{ words: args.slice(i), scope }] : [] };
}

function su(program: string, args: ShellWord[], stdin: Stdin, loginHome: string | null): Wrapping {
  const runuserCommand = program === 'runuser' && args.some((w) => w.literal === '-u' || w.literal?.startsWith('--user'));
  const o = readWrapperOptions(program, args, {
    flags: 'flmpP', values: runuserCommand ? 'cgGswu' : 'cCgGsw',
    longFlags: ['--login', '--preserve-environment', '--pty', '--fast', '--help', '--version'],
    longValues: ['--command', '--session-command', '--group', '--supp-group', '--shell', '--whitelist-environment', '--user'],
  });
  let i = o.rest;
  const login = o.options.includes('-l') || o.options.includes('--login') || literalOf(args[i]) === '-';
  if (literalOf(args[i]) === '-') i++;
  if (runuserCommand) {
    const home = homeOf(o.values.get('-u') ?? o.values.get('--user'), loginHome);
    return { options: o.options, paths: [], runs: i < args.length ? [{ words: args.slice(i), scope: { home } }] : [] };
  }
  const user = args[i] !== undefined && args[i].first !== '-' ? args[i++] : undefined;
  const shellWord = o.values.get('-s') ?? o.values.get('--shell');
  const shellName = shellWord ? basename(literalOf(shellWord) ?? '?') : 'sh';
  if (!SHELLS.has(shellName)) throw new ShellUnreadable(`${program} -s ${literalOf(shellWord) ?? 'from an expansion'} is not a shell the gateway reads`);
  const home = homeOf(user, loginHome);
  const scope: ScopeChange = { home, ...(login ? { cwd: 'home' } : {}) };
  const command = o.values.get('-c') ?? o.values.get('--command') ?? o.values.get('-C') ?? o.values.get('--session-command');
  if (command) {
    if (command.literal === null) throw new ShellUnreadable(`the command of ${program} -c comes from an expansion`);
    return { options: o.options, paths: [], runs: [{ script: command.literal, scope }] };
  }
  // Words after the user go to the user's shell as its arguments (`su root -c CMD`).
  const inner = shell(shellName, args.slice(i), stdin);
  return { options: o.options, paths: inner.paths, runs: inner.runs.map((r) => ({ ...r, scope })) };
}

function ssh(program: string, args: ShellWord[], stdin: Stdin): Wrapping {
  const spec: WrapperOptionSpec = { flags: '46AaCfGgKkMNnqsTtVvXxYy', values: 'BbcDEeFIiJLlmOopQRSWw', pathValues: 'EFiS' };
  const first = readWrapperOptions(program, args, spec);
  if (first.rest >= args.length) throw new ShellUnreadable(`${program} without a destination`);
  // OpenSSH reads options after the destination too (`ssh host -l user cmd`).
  const after = readWrapperOptions(program, args.slice(first.rest + 1), spec);
  const options = [...new Set([...first.options, ...after.options])];
  for (const o of [first, after]) {
    const option = o.values.get('-o');
    if (option) checkSshOption(option);
  }
  if (options.includes('-s')) throw new ShellUnreadable(`${program} -s asks the other host for a subsystem`);
  const command = args.slice(first.rest + 1 + after.rest);
  const paths = [...first.pathValues, ...after.pathValues];
  if (options.includes('-N') || options.includes('-V') || options.includes('-G')) return { options, paths, runs: [] };
  if (command.length === 0) {
    if ('script' in stdin) return { options, paths, runs: [{ script: stdin.script, scope: { remote: true } }] };
    throw new ShellUnreadable(`${program} without a command runs a shell on the other host reading standard input (${stdin.from})`);
  }
  const texts = command.map((w) => w.literal);
  if (texts.some((t) => t === null)) throw new ShellUnreadable(`the command ${program} sends to the other host comes from an expansion or a glob`);
  return { options, paths, runs: [{ script: texts.join(' '), scope: { remote: true } }] };
}

/** `ssh -o X=Y` options that run local commands are not read. */
function checkSshOption(w: ShellWord): void {
  const s = w.literal;
  if (s === null) throw new ShellUnreadable('an ssh -o option from an expansion');
  let end = 0;
  while (end < s.length && s[end] !== '=' && s[end] !== ' ' && s[end] !== '\t') end++;
  const key = s.slice(0, end).toLowerCase();
  if (['proxycommand', 'localcommand', 'knownhostscommand', 'remotecommand', 'permitlocalcommand', 'match'].includes(key)) throw new ShellUnreadable(`ssh -o ${s.slice(0, end)} runs a command the gateway does not read`);
}

function flock(program: string, args: ShellWord[]): Wrapping {
  const spec: WrapperOptionSpec = {
    flags: 'sexunoFhV', values: 'wEc',
    longFlags: ['--shared', '--exclusive', '--unlock', '--nonblock', '--close', '--no-fork', '--verbose', '--help', '--version'],
    longValues: ['--timeout', '--wait', '--conflict-exit-code', '--command'],
  };
  const o = readWrapperOptions(program, args, spec);
  const lock = args[o.rest];
  const paths = lock && lock.literal !== null && !isDigits(lock.literal) ? [lock] : [];
  // `flock FILE -c COMMAND`: options after the lock file too.
  const after = readWrapperOptions(program, args.slice(o.rest + 1), spec);
  const options = [...new Set([...o.options, ...after.options])];
  const command = o.values.get('-c') ?? o.values.get('--command') ?? after.values.get('-c') ?? after.values.get('--command');
  if (command) {
    if (command.literal === null) throw new ShellUnreadable('the command of flock -c comes from an expansion');
    return { options, paths, runs: [{ script: command.literal }] };
  }
  const rest = o.rest + 1 + after.rest;
  return { options, paths, runs: rest < args.length ? [{ words: args.slice(rest) }] : [] };
}

function watch(program: string, args: ShellWord[]): Wrapping {
  const o = readWrapperOptions(program, args, {
    flags: 'bcCdegptrwxh', values: 'nq',
    longFlags: ['--beep', '--color', '--no-color', '--errexit', '--chgexit', '--no-title', '--precise', '--no-wrap', '--exec', '--no-rerun', '--help', '--version'],
    longValues: ['--interval', '--equexit'], longOptional: ['--differences'],
  });
  const rest = args.slice(o.rest);
  if (rest.length === 0) return { options: o.options, paths: [], runs: [] };
  if (o.options.includes('-x') || o.options.includes('--exec')) return { options: o.options, paths: [], runs: [{ words: rest }] };
  const texts = rest.map((w) => w.literal);
  if (texts.some((t) => t === null)) throw new ShellUnreadable('the command watch runs comes from an expansion or a glob');
  return { options: o.options, paths: [], runs: [{ script: texts.join(' ') }] };
}

function trap(_program: string, args: ShellWord[]): Wrapping {
  let i = 0;
  if (literalOf(args[0]) === '--') i = 1;
  const rest = args.slice(i);
  if (rest.length < 2 || (rest[0].literal !== null && rest[0].literal.startsWith('-'))) return { options: [], paths: [], runs: [] };
  const action = rest[0].literal;
  if (action === null) throw new ShellUnreadable('the command trap runs comes from an expansion');
  return { options: [], paths: [], runs: action === '' ? [] : [{ script: action }] };
}

function chroot(program: string, args: ShellWord[]): Wrapping {
  const o = readWrapperOptions(program, args, { longFlags: ['--skip-chdir', '--help', '--version'], longValues: ['--userspec', '--groups'] });
  const root = literalOf(args[o.rest]);
  if (root === null || (root !== '/' && root !== '//')) throw new ShellUnreadable(`${program} to another root changes what paths mean`);
  const rest = args.slice(o.rest + 1);
  if (rest.length === 0) throw new ShellUnreadable(`${program} without a command runs an interactive shell`);
  return { options: o.options, paths: [], runs: [{ words: rest }] };
}

function command(program: string, args: ShellWord[]): Wrapping {
  const o = readWrapperOptions(program, args, { flags: 'pvV' });
  if (o.options.includes('-v') || o.options.includes('-V')) return { options: o.options, paths: [], runs: [] };
  return { options: o.options, paths: [], runs: o.rest < args.length ? [{ words: args.slice(o.rest) }] : [] };
}

function busybox(_program: string, args: ShellWord[]): Wrapping {
  if (args.length === 0 || args[0].first === '-') return { options: args.length ? [literalOf(args[0]) ?? '*'] : [], paths: [], runs: [] };
  return { options: [], paths: [], runs: [{ words: args }] };
}

function isDigits(s: string): boolean {
  if (s === '') return false;
  for (const c of s) if (c < '0' || c > '9') return false;
  return true;
}

export function basename(p: string): string {
  const trimmed = p.endsWith('/') ? p.slice(0, -1) : p;
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

const WRAPPERS: Record<string, Unwrap> = {
  nohup: simple({ longFlags: ['--help', '--version'] }),
  timeout: simple({ flags: 'v', values: 'ks', longFlags: ['--foreground', '--preserve-status', '--verbose', '--help', '--version'], longValues: ['--kill-after', '--signal'], skip: 1 }),
  nice: simple({ values: 'n', numeric: true, longValues: ['--adjustment'], longFlags: ['--help', '--version'] }),
  ionice: simple({ flags: 'tPu', values: 'cn', longValues: ['--class', '--classdata'], longFlags: ['--ignore', '--help', '--version'] }),
  stdbuf: simple({ values: 'ioe', longValues: ['--input', '--output', '--error'], longFlags: ['--help', '--version'] }),
  setsid: simple({ flags: 'cfw', longFlags: ['--ctty', '--fork', '--wait', '--help', '--version'] }),
  time: simple({ flags: 'pvqa', values: 'fo', pathValues: 'o', longFlags: ['--portability', '--verbose', '--quiet', '--append', '--help', '--version'], longValues: ['--format', '--output'], longPathValues: ['--output'] }),
  exec: simple({ flags: 'cl', values: 'a' }),
  builtin: simple({}),
  doas: (p, a, s) => {
    const o = readWrapperOptions(p, a, { flags: 'Lns', values: 'Cu' });
    if (o.options.includes('-C') || o.options.includes('-L')) return { options: o.options, paths: [], runs: [] };
    if (o.options.includes('-s') || o.rest >= a.length) return shell('sh', [], s);
    return { options: o.options, paths: [], runs: [{ words: a.slice(o.rest), scope: { home: homeOf(o.values.get('-u'), null) } }] };
  },
  command, busybox, toybox: busybox, trap, chroot, flock, watch, env, ssh,
};

/**
 * How `program` (a basename) wraps its arguments: null when it runs no other command. Throws
 * ShellUnreadable for a wrapper form the gateway does not read.
 */
export function unwrap(program: string, args: ShellWord[], stdin: Stdin, loginHome: string | null): Wrapping | null {
  if (UNREAD_RUNNERS.has(program)) throw new ShellUnreadable(`${program} runs commands the gateway does not read`);
  if (SHELLS.has(program)) return shell(program, args, stdin);
  if (INTERPRETERS.has(program) || (program.startsWith('python') && isVersion(program.slice(6)))) return interpreter(program, args);
  if (program === 'sudo' || program === 'sudoedit') return sudo(program, args, stdin, loginHome);
  if (program === 'su' || program === 'runuser') return su(program, args, stdin, loginHome);
  if (program === 'ip' && args.some((w) => w.literal === 'exec')) throw new ShellUnreadable('ip ... exec runs a command the gateway does not read');
  const w = Object.hasOwn(WRAPPERS, program) ? WRAPPERS[program] : undefined;
  return w ? w(program, args, stdin) : null;
}

function isVersion(s: string): boolean {
  if (s === '') return false;
  for (const c of s) if (c !== '.' && (c < '0' || c > '9')) return false;
  return true;
}
