// Which arguments of a command are files, for `path:` rules. Recognised file commands (cat, cp,
// rm, tar, scp, rsync --server, git-upload-pack, ...) name files with every operand, so each
// operand is a path (a pattern for a glob word; unknown, so unclassified, for an expansion).
// Any other program contributes the arguments that look like paths (holding a `/`): `vim
// /etc/shadow` is caught, `python3 -c CODE` is not read.
import { readOptions, type OptionSpec, type ReadOptions } from './shell-options.ts';
import { ShellUnreadable, type ShellWord } from './shell-words.ts';

interface FileCommand extends OptionSpec {
  /** Leading operands that are not files (chmod's mode, grep's pattern) ... */
  skip?: number;
  /** ... unless one of these options gave that operand (grep -e PATTERN, chmod --reference=FILE). */
  skipUnless?: readonly string[];
  /** Operands are KEY=FILE for these keys, other KEY=VALUE operands are not files (dd). */
  keyed?: readonly string[];
  /** Options whose value is a command the program runs (tar --to-command): unreadable. */
  runs?: readonly string[];
  /** Operands may be `host:path` (scp, rsync): the path part is the file. */
  remote?: boolean;
}

const PLAIN: FileCommand = {};
const GREP: FileCommand = { values: 'efmABCdD', pathValues: 'f', longValues: ['--regexp', '--file', '--max-count', '--context'], longPathValues: ['--file'], skip: 1, skipUnless: ['-e', '-f', '--regexp', '--file'] };
const SED: FileCommand = { values: 'efl', pathValues: 'f', longValues: ['--expression', '--file', '--line-length'], longPathValues: ['--file'], skip: 1, skipUnless: ['-e', '-f', '--expression', '--file'] };
const AWK: FileCommand = { values: 'fvF', pathValues: 'f', longValues: ['--file', '--assign', '--field-separator'], longPathValues: ['--file'], skip: 1, skipUnless: ['-f', '--file'] };
const MODE: FileCommand = { skip: 1, skipUnless: ['--reference'] };
const COPY: FileCommand = { values: 'tSm', pathValues: 't', longValues: ['--target-directory', '--suffix'], longPathValues: ['--target-directory'] };
const HEAD: FileCommand = { values: 'nc', longValues: ['--lines', '--bytes'] };
const SUMS: FileCommand = {};

const FILE_COMMANDS: Record<string, FileCommand> = {
  cat: PLAIN, tac: PLAIN, nl: PLAIN, less: PLAIN, more: PLAIN, most: PLAIN, view: PLAIN, vi: PLAIN, vim: PLAIN, nvim: PLAIN, nano: PLAIN, emacs: PLAIN, ed: PLAIN,
  head: HEAD, tail: { ...HEAD, values: 'ncs' },
  od: { values: 'AjNStw' }, xxd: { values: 'clsgo' }, hexdump: { values: 'nsef', pathValues: 'f' }, strings: { values: 'nte' },
  base64: { values: 'w' }, base32: { values: 'w' }, basenc: { values: 'w' },
  md5sum: SUMS, sha1sum: SUMS, sha224sum: SUMS, sha256sum: SUMS, sha384sum: SUMS, sha512sum: SUMS, b2sum: SUMS, shasum: { values: 'a' }, cksum: SUMS, sum: SUMS,
  wc: PLAIN, sort: { values: 'okStT', pathValues: 'oT', longValues: ['--output', '--key', '--field-separator', '--buffer-size', '--temporary-directory'], longPathValues: ['--output', '--temporary-directory'], runs: ['--compress-program'] },
  uniq: { values: 'fsw' }, cut: { values: 'bcdf' }, paste: { values: 'd' }, join: { values: 'aejotv12' }, comm: PLAIN, diff: { values: 'CUIFSxX', pathValues: 'X' }, cmp: { values: 'inb' },
  file: { values: 'mfFeP', pathValues: 'mf' }, stat: { values: 'c', longValues: ['--format', '--printf'] }, ls: { values: 'IwT', longValues: ['--ignore', '--hide', '--width', '--tabsize'] },
  du: { values: 'dBtX', pathValues: 'X' }, touch: { values: 'dtr', pathValues: 'r' }, mkdir: { values: 'm' }, rmdir: PLAIN, rm: PLAIN, shred: { values: 'ns' }, truncate: { values: 'sr', pathValues: 'r' }, unlink: PLAIN,
  ln: COPY, cp: COPY, mv: COPY, install: { values: 'tSmogf', pathValues: 't', longValues: ['--target-directory', '--suffix', '--mode', '--owner', '--group'], longPathValues: ['--target-directory'] },
  chmod: MODE, chown: MODE, chgrp: MODE, chattr: PLAIN, lsattr: PLAIN, getfacl: PLAIN, setfacl: { values: 'mxMX', pathValues: 'MX' },
  tee: PLAIN, readlink: PLAIN, realpath: PLAIN, split: { values: 'lbnaC' }, csplit: { values: 'fbn' }, fold: { values: 'w' }, fmt: { values: 'wpg' }, pr: PLAIN, expand: { values: 't' }, unexpand: { values: 't' }, iconv: { values: 'fto', pathValues: 'o' },
  grep: GREP, egrep: GREP, fgrep: GREP, zgrep: GREP, rg: { ...GREP, values: 'efmABCgtTj' }, sed: SED, awk: AWK, gawk: AWK, mawk: AWK,
  zcat: PLAIN, zless: PLAIN, zmore: PLAIN, bzcat: PLAIN, xzcat: PLAIN, zstdcat: PLAIN, gzip: { values: 'S' }, gunzip: { values: 'S' }, bzip2: PLAIN, bunzip2: PLAIN, xz: PLAIN, unxz: PLAIN, zstd: { values: 'o', pathValues: 'o' }, unzstd: PLAIN, lz4: PLAIN,
  zip: { values: 'bnt' , runs: ['-TT', '--unzip-command'] }, unzip: { values: 'dx', pathValues: 'd' },
  tar: { values: 'bCfFgHIKLNTVX', pathValues: 'CfgKNTX', longValues: ['--file', '--directory', '--exclude-from', '--files-from', '--listed-incremental'], longPathValues: ['--file', '--directory', '--exclude-from', '--files-from', '--listed-incremental'], runs: ['-I', '-F', '--to-command', '--checkpoint-action', '--use-compress-program', '--rsh-command', '--info-script', '--new-volume-script'] },
  dd: { keyed: ['if', 'of'] },
  scp: { values: 'cDFiJlPoS', pathValues: 'Fi', remote: true, runs: ['-S'] },
  rsync: { remote: true, values: 'eBfT', pathValues: 'T', longValues: ['--rsh', '--rsync-path', '--exclude-from', '--include-from', '--files-from', '--temp-dir', '--log-file', '--password-file', '--partial-dir', '--backup-dir', '--compare-dest', '--copy-dest', '--link-dest'], longPathValues: ['--exclude-from', '--include-from', '--files-from', '--temp-dir', '--log-file', '--password-file', '--partial-dir', '--backup-dir', '--compare-dest', '--copy-dest', '--link-dest'], runs: ['-e', '--rsh'] },
  'git-upload-pack': { longValues: ['--timeout'] }, 'git-receive-pack': PLAIN, 'git-upload-archive': PLAIN,
  sqlite3: { values: 'cmd' }, openssl: PLAIN, find: PLAIN,
};

/** File commands that read the working directory when given no file. */
const READS_CWD = new Set(['ls', 'du', 'find', 'getfacl', 'lsattr']);

/** Programs whose arguments are text, never files. */
const TEXT_ONLY = new Set(['cd', 'pushd', 'popd', 'echo', 'printf', 'true', 'false', ':', 'test', '[', 'logger', 'export', 'declare', 'local', 'readonly', 'typeset', 'unset', 'alias', 'set', 'shift', 'return', 'exit']);

export interface CommandArgs extends ReadOptions {
  /** The words that name files. */
  files: ShellWord[];
  /** Whether the program is one whose operands all name files (a glob or an expansion there matters). */
  fileCommand: boolean;
}

/** The options and file arguments of an ordinary (not wrapping) command. */
export function commandArgs(program: string, args: ShellWord[]): CommandArgs {
  const spec = Object.hasOwn(FILE_COMMANDS, program) ? FILE_COMMANDS[program] : undefined;
  if (program === 'tar' && args[0]?.literal && !args[0].literal.startsWith('-')) {
    // Old-style `tar czf ARCHIVE ...`: the first word is a cluster of option letters.
    args = [{ ...args[0], literal: `-${args[0].literal}`, pattern: `-${args[0].pattern}` }, ...args.slice(1)];
  }
  const r = readOptions(args, spec ?? {});
  if (!spec) {
    const files = TEXT_ONLY.has(program) ? [] : [...r.operands.filter(holdsSlash), ...r.pathValues];
    return { ...r, files, fileCommand: false };
  }
  const rsyncServer = program === 'rsync' && r.options.includes('--server'); // its -e.xyz is the protocol's capabilities
  for (const v of rsyncServer ? [] : r.valued) {
    if (spec.runs?.includes(v.option) && !(program === 'rsync' && v.value.literal === 'ssh')) throw new ShellUnreadable(`${program} ${v.option} runs a command the gateway does not read`);
  }
  if (!rsyncServer && spec.runs?.some((o) => r.options.includes(o) && !spec.values?.includes(o.slice(1)))) throw new ShellUnreadable(`${program} runs a command the gateway does not read`);
  let operands = r.operands;
  if (spec.skip && !spec.skipUnless?.some((o) => r.options.includes(o))) operands = operands.slice(spec.skip);
  if (rsyncServer && operands[0]?.literal === '.') operands = operands.slice(1);
  let files: ShellWord[] = operands;
  if (spec.keyed) files = keyedFiles(operands, spec.keyed);
  else if (spec.remote) files = operands.map(remotePath);
  if (program === 'tar') files = [...files, ...underTarDirectories(operands, r)];
  // With no file operand these read the working directory: `cd /root; ls` lists /root.
  if (files.length === 0 && READS_CWD.has(program)) files = [{ literal: '.', pattern: '.', dynamic: false, glob: false, first: '.' }];
  return { ...r, files: [...files, ...r.pathValues], fileCommand: true };
}

/** A word that looks like a path: it holds a `/` (a URL, `scheme://...`, does not count). */
function holdsSlash(w: ShellWord): boolean {
  const s = w.literal ?? (w.dynamic ? '' : w.pattern);
  return s.includes('/') && !s.includes('://');
}

/** dd's `if=FILE of=FILE`: the files; other operands (bs=, count=) are values. */
function keyedFiles(operands: ShellWord[], keys: readonly string[]): ShellWord[] {
  const out: ShellWord[] = [];
  for (const w of operands) {
    if (w.dynamic && (w.first === null || w.first === undefined)) {
      out.push(w); // it may be of=... : unknown
      continue;
    }
    const eq = w.pattern.indexOf('=');
    if (eq < 0 || !keys.includes(w.pattern.slice(0, eq))) continue;
    const pattern = w.pattern.slice(eq + 1);
    out.push({ literal: w.literal === null ? null : w.literal.slice(eq + 1), pattern, dynamic: w.dynamic, glob: w.glob, first: pattern[0] ?? null });
  }
  return out;
}

/** `host:path` is path on host (`user@host:` is that user's home there); a local path is itself. */
function remotePath(w: ShellWord): ShellWord {
  const s = w.literal;
  if (s === null) return w;
  const colon = s.indexOf(':');
  const slash = s.indexOf('/');
  if (colon <= 0 || (slash >= 0 && slash < colon)) return w;
  const path = s.slice(colon + 1);
  return { ...w, literal: path === '' ? '.' : path, pattern: w.pattern.slice(w.pattern.indexOf(':') + 1) || '.', first: path[0] ?? '.' };
}

/** `tar -C DIR NAME`: NAME is read in DIR (as well as where tar starts: which -C applies is positional). */
function underTarDirectories(operands: ShellWord[], r: ReadOptions): ShellWord[] {
  const dirs = r.valued.filter((v) => v.option === '-C' || v.option === '--directory').map((v) => v.value);
  const out: ShellWord[] = [];
  for (const dir of dirs) {
    for (const op of operands) {
      if (op.pattern.startsWith('/')) continue;
      out.push({ literal: null, pattern: `${dir.pattern}/${op.pattern}`, dynamic: dir.dynamic || op.dynamic, glob: dir.glob || op.glob, first: dir.first });
    }
  }
  return out;
}
