// What an SFTP request that names paths is, as the gate and a person see it: the operation,
// its paths made absolute and normalised, the open mode and flags, a one-line text. A path that
// cannot be named exactly in the log (not UTF-8, a NUL byte) or a relative path when the start
// directory is unknown is refused here, before anything reaches the host.
import { FX, KNOWN_OPEN_FLAGS, OPEN_FLAGS, type Attrs, type FieldReader, type SftpRequest } from './sftp-codec.ts';
import { normalizePath, shownPath, type FileOperation } from './file-operation.ts';

export type Described = Omit<FileOperation, 'forwarded'>;
export type Description = { operation: Described } | { refuse: { code: number; message: string } };

class Refusal extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The path as sent, as text; refused when it is not UTF-8 or holds a NUL (the host would read a different name). */
function text(raw: Buffer): string {
  let s: string;
  try {
    s = utf8.decode(raw);
  } catch {
    throw new Refusal(FX.PERMISSION_DENIED, `a path that is not UTF-8 (${raw.toString('hex')}) cannot be named in the log`);
  }
  if (s.includes('\0')) throw new Refusal(FX.BAD_MESSAGE, 'a path holds a NUL byte');
  return s;
}

function absolute(raw: Buffer, start: string | null): string {
  const s = text(raw);
  if (!s.startsWith('/') && start === null) {
    throw new Refusal(FX.PERMISSION_DENIED, `relative path ${shownPath(s)}: the session's start directory is unknown`);
  }
  return normalizePath(s, start ?? '/');
}

function modeText(permissions: number): string {
  return `mode ${(permissions & 0o7777).toString(8).padStart(4, '0')}`;
}

function attrsText(a: Attrs): string[] {
  const out: string[] = [];
  if (a.permissions !== undefined) out.push(modeText(a.permissions));
  if (a.uid !== undefined) out.push(`uid ${a.uid} gid ${a.gid}`);
  if (a.size !== undefined) out.push(`size ${a.size}`);
  if (a.atime !== undefined) out.push(`atime ${new Date(a.atime * 1000).toISOString()}`, `mtime ${new Date(a.mtime! * 1000).toISOString()}`);
  if (a.extended?.length) out.push(`extended ${a.extended.map(([n]) => n).join(' ')}`);
  return out;
}

function withDetails(head: string, details: string[]): string {
  return details.length ? `${head} (${details.join(', ')})` : head;
}

function openMode(pflags: number): 'read' | 'write' | 'read-write' {
  const r = (pflags & OPEN_FLAGS.READ) !== 0;
  const w = (pflags & OPEN_FLAGS.WRITE) !== 0;
  // Neither bit: OpenSSH's sftp-server opens read-only.
  return r && w ? 'read-write' : w ? 'write' : 'read';
}

function openFlags(pflags: number): string[] {
  if ((pflags & ~KNOWN_OPEN_FLAGS) !== 0) throw new Refusal(FX.BAD_MESSAGE, `unknown open flags 0x${(pflags >>> 0).toString(16)}`);
  const out: string[] = [];
  if (pflags & OPEN_FLAGS.CREAT) out.push('create');
  if (pflags & OPEN_FLAGS.TRUNC) out.push('truncate');
  if (pflags & OPEN_FLAGS.APPEND) out.push('append');
  if (pflags & OPEN_FLAGS.EXCL) out.push('exclusive');
  return out;
}

function guard(build: () => Described): Description {
  try {
    return { operation: build() };
  } catch (e) {
    if (e instanceof Refusal) return { refuse: { code: e.code, message: e.message } };
    throw e;
  }
}

/** A symlink's target as the policy sees it: relative targets resolve from the link's directory. */
function linkTarget(target: string, link: string): string {
  return normalizePath(target, link.slice(0, link.lastIndexOf('/')) || '/');
}

/** A request of the base protocol that names paths (not the handle ones). */
export function describeRequest(req: SftpRequest, start: string | null): Description {
  return guard(() => {
    switch (req.type) {
      case 'open': {
        const p = absolute(req.path, start);
        const mode = openMode(req.pflags);
        const flags = openFlags(req.pflags);
        const details = [...flags];
        if (req.attrs.permissions !== undefined && (req.pflags & OPEN_FLAGS.CREAT)) details.push(modeText(req.attrs.permissions));
        return { op: 'open', paths: [p], mode, flags, text: `${withDetails(`open ${shownPath(p)} for ${mode}`, details)}` };
      }
      case 'opendir':
      case 'remove':
      case 'rmdir':
      case 'stat':
      case 'lstat':
      case 'readlink':
      case 'realpath': {
        const p = absolute(req.path, start);
        return { op: req.type, paths: [p], text: `${req.type} ${shownPath(p)}` };
      }
      case 'mkdir': {
        const p = absolute(req.path, start);
        return { op: 'mkdir', paths: [p], text: withDetails(`mkdir ${shownPath(p)}`, attrsText(req.attrs)) };
      }
      case 'setstat': {
        const p = absolute(req.path, start);
        return { op: 'setstat', paths: [p], text: withDetails(`setstat ${shownPath(p)}`, attrsText(req.attrs)) };
      }
      case 'rename': {
        const from = absolute(req.from, start);
        const to = absolute(req.to, start);
        return { op: 'rename', paths: [from, to], text: `rename ${shownPath(from)} -> ${shownPath(to)}` };
      }
      case 'symlink': {
        // OpenSSH's order (target, then link), which its sftp-server expects and most clients send.
        const link = absolute(req.second, start);
        const target = text(req.first);
        return { op: 'symlink', paths: [link, linkTarget(target, link)], text: `symlink ${shownPath(link)} -> ${shownPath(target)}` };
      }
      default:
        throw new Error(`describeRequest: ${req.type} names no path`);
    }
  });
}

/**
 * The extensions offered to the client, each only when the host offers it: relayed knowingly,
 * but for limits@openssh.com, which the gateway answers itself (the host's limits within its own).
 */
export const RELAYED_EXTENSIONS = [
  'limits@openssh.com',
  'posix-rename@openssh.com',
  'statvfs@openssh.com',
  'fstatvfs@openssh.com',
  'hardlink@openssh.com',
  'fsync@openssh.com',
  'lsetstat@openssh.com',
  'expand-path@openssh.com',
] as const;

/** Extensions that act on an open handle (they belong to its open's command). */
export const HANDLE_EXTENSIONS: ReadonlySet<string> = new Set(['fstatvfs@openssh.com', 'fsync@openssh.com']);

/** A path-naming extension request, its reader positioned after the name. */
export function describeExtended(name: string, r: FieldReader, start: string | null): Description {
  return guard(() => {
    switch (name) {
      case 'posix-rename@openssh.com': {
        const from = absolute(r.string(), start);
        const to = absolute(r.string(), start);
        r.end();
        return { op: 'rename', paths: [from, to], flags: ['posix'], text: `rename ${shownPath(from)} -> ${shownPath(to)} (posix)` };
      }
      case 'hardlink@openssh.com': {
        const existing = absolute(r.string(), start);
        const link = absolute(r.string(), start);
        r.end();
        return { op: 'hardlink', paths: [link, existing], text: `hardlink ${shownPath(link)} -> ${shownPath(existing)}` };
      }
      case 'statvfs@openssh.com': {
        const p = absolute(r.string(), start);
        r.end();
        return { op: 'statvfs', paths: [p], text: `statvfs ${shownPath(p)}` };
      }
      case 'lsetstat@openssh.com': {
        const p = absolute(r.string(), start);
        const attrs = r.attrs();
        r.end();
        return { op: 'setstat', paths: [p], flags: ['nofollow'], text: withDetails(`setstat ${shownPath(p)}`, ['nofollow', ...attrsText(attrs)]) };
      }
      case 'expand-path@openssh.com': {
        const raw = r.string();
        r.end();
        const s = text(raw);
        // `~` is the login's home, which is where OpenSSH's sftp-server starts; `~user` is kept as sent.
        let p: string;
        if (s === '~' || s.startsWith('~/')) {
          if (start === null) throw new Refusal(FX.PERMISSION_DENIED, `${shownPath(s)}: the session's start directory is unknown`);
          p = normalizePath(s === '~' ? '.' : s.slice(2), start);
        } else if (s.startsWith('~')) p = s;
        else p = absolute(raw, start);
        return { op: 'realpath', paths: [p], flags: ['expand-path'], text: `realpath ${shownPath(s)} (expand-path)` };
      }
      default:
        throw new Error(`describeExtended: ${name} is not a path extension`);
    }
  });
}
