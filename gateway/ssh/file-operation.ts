// What the SFTP relay and the scp observer ask the session before a file operation reaches the
// host, and what they report once it is over. One FileOperation is one command in the log: an
// SFTP request naming paths (an open covers every read and write on its handle until CLOSE), or
// one file or directory of a legacy scp transfer. The session implements FileGate with the core
// (decide on the paths, record, wait for the log write, hold for approval); these modules never
// import the core.

export type FileOp =
  // SFTP requests that name paths
  | 'open'
  | 'opendir'
  | 'remove'
  | 'rename'
  | 'mkdir'
  | 'rmdir'
  | 'setstat'
  | 'symlink'
  | 'hardlink'
  | 'readlink'
  | 'stat'
  | 'lstat'
  | 'realpath'
  | 'statvfs'
  // legacy scp (`scp -t` / `scp -f` in an exec channel), one per file or directory
  | 'scp-upload'
  | 'scp-download';

export interface FileOperation {
  op: FileOp;
  /**
   * Every path the operation touches or names, absolute and lexically normalised (`.`, `..`
   * and repeated slashes resolved; relative SFTP paths joined to the session's start
   * directory), the first being the one acted on. `path:` rules match each; the strictest
   * decision wins. A legacy scp upload whose target may or may not be a directory lists both
   * places the file can land.
   */
  paths: string[];
  /** open, scp: which way the bytes go. */
  mode?: 'read' | 'write' | 'read-write';
  /** open: create, truncate, append, exclusive; setstat: nofollow; realpath: expand-path; scp: directory, preserve-times. */
  flags?: string[];
  /** What a person reads in the log and the approval request, for example `open /srv/app.tar for write (create, truncate; mode 0644)`. */
  text: string;
  /** Every byte this operation sends to the host once allowed (the SFTP request, the scp header line): an approval binds them. */
  forwarded: readonly Buffer[];
}

export interface FileOutcome {
  status: 'ok' | 'error';
  /** SFTP: the status name (`no-such-file`, `permission-denied`, ...) and message; scp: the error line. */
  error?: { code: string; message: string };
  bytesRead?: number;
  bytesWritten?: number;
  /**
   * SHA-256 (hex) of the bytes transferred. With `sequential: true` they formed one run from
   * offset 0 and this is the digest of the file's first `bytes` bytes (the whole file for a
   * complete transfer); with `sequential: false` (gaps, overlaps, a seek, a resumed transfer)
   * it is the digest of the bytes in the order the gateway relayed them. When an open both
   * read and wrote, this is the written bytes' digest and `readSha256` the read ones'.
   */
  sha256?: string;
  readSha256?: string;
  sequential?: boolean;
}

export type GateAnswer =
  | {
      allowed: true;
      /** Called exactly once, when the operation is over (for an open: at its CLOSE, or when the channel ends first). */
      end(outcome: FileOutcome): void;
    }
  | { allowed: false; reason: string };

/** The session's side: decide on the paths, record the command, wait for the log write, hold for approval. */
export interface FileGate {
  /**
   * `signal` aborts when the channel that asked has gone (a held operation can stop waiting).
   * A rejected promise counts as a refusal: nothing reaches the host.
   */
  begin(op: FileOperation, signal: AbortSignal): Promise<GateAnswer>;
  /**
   * For the record: a request the gateway refused by itself, before any decision (malformed, a
   * packet type or extension it does not relay, a handle it never gave or used beyond its open,
   * a path it cannot name exactly or place, a name the host sent that nobody asked for).
   * `text` says what was asked, `reason` why it was refused. Nothing of it reached the host.
   */
  refusedHere?(text: string, reason: string): void;
}

/** A path as a person reads it: plain when it is plain, JSON-quoted when it holds spaces, quotes or control characters. */
export function shownPath(p: string): string {
  return /^[\x21-\x7e\u00a0-\uffff]+$/u.test(p) && !/["'\\]/.test(p) ? p : JSON.stringify(p);
}

/**
 * Joins `p` to `base` when relative and resolves `.`, `..` and repeated slashes lexically, as
 * a path rule must see it (`/home/u/./.ssh//k` is `/home/u/.ssh/k`). `..` above `/` stays at `/`.
 */
export function normalizePath(p: string, base: string): string {
  const whole = p.startsWith('/') ? p : `${base}/${p}`;
  const out: string[] = [];
  for (const part of whole.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return '/' + out.join('/');
}
