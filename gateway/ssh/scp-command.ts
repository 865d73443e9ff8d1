// The server side of a legacy scp (`scp -t TARGET` receives, `scp -f SOURCE...` sends) as the
// words of its exec line, and where on the host each file or directory of the transfer is: the
// target or the requested source joined with the names the protocol carries. Pure.
import { normalizePath, shownPath, type FileOperation } from './file-operation.ts';
import type { ScpEntry } from './scp-stream.ts';

export interface ScpCommand {
  /** upload: `scp -t` (the client sends); download: `scp -f` (the host sends). */
  direction: 'upload' | 'download';
  /** -t: the one target; -f: the sources, as the words say. */
  paths: string[];
  recursive: boolean;
  preserveTimes: boolean;
  /** -d: the target must be a directory. */
  targetIsDirectory: boolean;
}

/** The flags OpenSSH's scp client passes to the remote scp; any other is not read as scp. */
const SERVER_FLAGS = new Set(['t', 'f', 'r', 'p', 'd', 'v']);

/**
 * Reads `scp [-v] [-r] [-p] [-d] -t|-f [--] PATH...` from the words of a simple command (the exec
 * classifier's reading, quotes removed). Options may follow operands, as glibc's getopt lets them.
 */
export function parseScpCommand(words: readonly string[]): ScpCommand | { error: string } {
  if (words.length === 0 || words[0]!.split('/').pop() !== 'scp') return { error: 'not an scp command' };
  const flags = new Set<string>();
  const operands: string[] = [];
  let optionsDone = false;
  for (const w of words.slice(1)) {
    if (!optionsDone && w === '--') {
      optionsDone = true;
      continue;
    }
    if (!optionsDone && w.startsWith('-') && w.length > 1) {
      for (const c of w.slice(1)) {
        if (!SERVER_FLAGS.has(c)) return { error: `scp -${c} is not an option of the receiving or sending side` };
        flags.add(c);
      }
      continue;
    }
    operands.push(w);
  }
  const t = flags.has('t');
  const f = flags.has('f');
  if (t === f) return { error: 'scp needs exactly one of -t (receive) and -f (send)' };
  if (t && operands.length !== 1) return { error: `scp -t takes one target, not ${operands.length}` };
  if (f && operands.length === 0) return { error: 'scp -f without a source' };
  return { direction: t ? 'upload' : 'download', paths: operands, recursive: flags.has('r'), preserveTimes: flags.has('p'), targetIsDirectory: flags.has('d') };
}

/** A word as a host path: `~` and `~/...` are the home, relative words start there; `~user` is unknown (null). */
function hostPath(word: string, home: string): string | null {
  if (word === '~' || word.startsWith('~/')) return normalizePath(word.slice(1).replace(/^\//, '') || '.', home);
  if (word.startsWith('~')) return null;
  return normalizePath(word, home);
}

const GLOB = /[*?[]/;

/** A shell pattern as a whole-name regular expression (`*`, `?`, `[...]`, `{a,b}`). */
function patternRegex(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const close = pattern.indexOf(']', i + 2);
      if (close === -1) re += '\\[';
      else {
        let body = pattern.slice(i + 1, close);
        if (body.startsWith('!')) body = '^' + body.slice(1);
        re += `[${body.replace(/\\/g, '\\\\')}]`;
        i = close;
      }
    } else if (c === '{') {
      const close = pattern.indexOf('}', i);
      if (close === -1) re += '\\{';
      else {
        re += `(?:${pattern.slice(i + 1, close).split(',').map((a) => a.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})`;
        i = close;
      }
    } else re += c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 's');
}

/**
 * Where an entry is on the host. An upload lands in TARGET/names when the target is a directory,
 * else the first name is replaced by TARGET itself (OpenSSH's sink decides by looking): unless
 * the target must be a directory, both places are named. A download's first name must be what one
 * requested source names (literally or by its pattern); a source whose directory part holds a
 * pattern cannot be placed, and is an error.
 */
export function entryPaths(cmd: ScpCommand, names: readonly string[], home: string): { paths: string[] } | { error: string } {
  if (cmd.direction === 'upload') {
    const word = cmd.paths[0]!;
    const target = hostPath(word, home);
    if (target === null) return { error: `the target ${shownPath(word)} names another user's home` };
    const knownDirectory = cmd.targetIsDirectory || ['', '.', '..', '~'].includes(word) || word.endsWith('/') || word.endsWith('/.') || word.endsWith('/..');
    const inside = normalizePath(names.join('/'), target);
    if (knownDirectory) return { paths: [inside] };
    const instead = names.length === 1 ? target : normalizePath(names.slice(1).join('/'), target);
    return { paths: [inside, instead] };
  }
  const first = names[0]!;
  const found: string[] = [];
  for (const word of cmd.paths) {
    const source = hostPath(word, home);
    if (source === null) return { error: `the source ${shownPath(word)} names another user's home` };
    const cut = source.lastIndexOf('/');
    const dir = source.slice(0, cut) || '/';
    const base = source.slice(cut + 1);
    const pattern = GLOB.test(base) || /\{.*,.*\}/.test(base);
    if (pattern ? !patternRegex(base).test(first) : base !== first) continue;
    if (GLOB.test(dir) || /\{.*,.*\}/.test(dir)) return { error: `the source ${shownPath(word)} has a pattern in its directory: the gateway cannot tell where ${shownPath(first)} is` };
    const p = normalizePath(names.join('/'), dir);
    if (!found.includes(p)) found.push(p);
  }
  if (found.length === 0) return { error: `the host sent ${shownPath(first)}, which no requested source names` };
  return { paths: found };
}

/** Where an entry lands, as a person reads it: one path, or the two an upload may land on. */
export function shownWhere(cmd: ScpCommand, paths: readonly string[]): string {
  return paths.length > 1 ? `${shownPath(paths[0]!)} (or ${shownPath(paths[1]!)} if ${shownPath(cmd.paths[0]!)} is not a directory)` : shownPath(paths[0]!);
}

/** The entry as the gate sees it (its paths from entryPaths). */
export function describeEntry(cmd: ScpCommand, entry: ScpEntry, paths: string[], forwarded: Buffer[]): FileOperation {
  const upload = cmd.direction === 'upload';
  const flags: string[] = [];
  if (entry.kind === 'directory') flags.push('directory');
  if (entry.times) flags.push('preserve-times');
  const details = entry.kind === 'file' ? [`${entry.size} bytes`] : [];
  details.push(`mode ${entry.mode.toString(8).padStart(4, '0')}`);
  const where = shownWhere(cmd, paths);
  return {
    op: upload ? 'scp-upload' : 'scp-download',
    paths,
    mode: upload ? 'write' : 'read',
    flags,
    text: `scp ${upload ? 'upload' : 'download'}${entry.kind === 'directory' ? ' directory' : ''} ${where} (${details.join(', ')})`,
    forwarded,
  };
}
