// Where one SFTP client request goes: answered by the gateway (malformed, unknown, an extension
// it does not relay), on an open handle (under that open's command), or to the gate (a request
// naming paths, with what it is). Pure: the relay does the sending.
import { FX, FXP, FieldReader, Malformed, handleRef, parseRequest, type HandleRef, type SftpRequest } from './sftp-codec.ts';
import { HANDLE_EXTENSIONS, describeExtended, describeRequest, type Description } from './sftp-operations.ts';

/** What a handle must be for the request: a file open for reading or writing, a directory, or any. */
export type HandleUse = 'file' | 'reading' | 'writing' | 'directory' | 'any';
export type HandleAction = { kind: 'read'; offset: number } | { kind: 'write'; offset: number; data: Buffer } | { kind: 'close' | 'handle' };

export type Route =
  | { route: 'answer'; code: number; message: string }
  /** `limits@openssh.com`: the gateway answers with its own limits (within the host's). */
  | { route: 'limits' }
  | { route: 'handle'; ref: HandleRef; use: HandleUse; action: HandleAction }
  | { route: 'gate'; description: Description; opens: 'open' | 'opendir' | null };

function malformed(what: string, e: unknown): Route {
  if (e instanceof Malformed) return { route: 'answer', code: FX.BAD_MESSAGE, message: `malformed ${what}: ${e.message}` };
  throw e;
}

/** One client request (a whole frame, not INIT). `start`: where relative paths start; `relayed`: the extensions offered to the client. */
export function routeRequest(frame: Buffer, start: string | null, relayed: ReadonlySet<string>): Route {
  let req: SftpRequest;
  try {
    req = parseRequest(frame);
  } catch (e) {
    return malformed('request', e);
  }
  switch (req.type) {
    case 'read':
      return { route: 'handle', ref: req.h, use: 'reading', action: { kind: 'read', offset: req.offset } };
    case 'write':
      return { route: 'handle', ref: req.h, use: 'writing', action: { kind: 'write', offset: req.offset, data: req.data } };
    case 'fsetstat':
      return { route: 'handle', ref: req.h, use: 'writing', action: { kind: 'handle' } };
    case 'readdir':
      return { route: 'handle', ref: req.h, use: 'directory', action: { kind: 'handle' } };
    case 'close':
      return { route: 'handle', ref: req.h, use: 'any', action: { kind: 'close' } };
    case 'fstat':
      return { route: 'handle', ref: req.h, use: 'any', action: { kind: 'handle' } };
    case 'unknown':
      return { route: 'answer', code: FX.OP_UNSUPPORTED, message: `the gateway does not relay SFTP packet type ${req.packetType}` };
    case 'extended':
      if (!relayed.has(req.name)) return { route: 'answer', code: FX.OP_UNSUPPORTED, message: `the gateway does not relay the ${req.name} extension` };
      try {
        if (req.name === 'limits@openssh.com') {
          req.r.end();
          return { route: 'limits' };
        }
        if (HANDLE_EXTENSIONS.has(req.name)) {
          const ref = handleRef(req.r);
          req.r.end();
          return { route: 'handle', ref, use: 'file', action: { kind: 'handle' } };
        }
        return { route: 'gate', description: describeExtended(req.name, req.r, start), opens: null };
      } catch (e) {
        return malformed(req.name, e);
      }
    default:
      return { route: 'gate', description: describeRequest(req, start), opens: req.type === 'open' || req.type === 'opendir' ? req.type : null };
  }
}

const TYPE_NAMES = new Map<number, string>(Object.entries(FXP).map(([name, n]) => [n, name]));

/**
 * A request as the log names it when the gateway refused it by itself: its type (an extension
 * by name), its id, and its first string when it is a path (hex when not UTF-8), never more.
 */
export function requestText(frame: Buffer): string {
  const type = frame[4]!;
  const name = TYPE_NAMES.get(type) ?? `packet type ${type}`;
  const r = new FieldReader(frame, 5);
  try {
    const id = r.u32();
    if (type === FXP.EXTENDED) return `sftp EXTENDED ${JSON.stringify(r.string().toString('latin1'))} (request ${id})`;
    const pathFirst = [FXP.OPEN, FXP.LSTAT, FXP.STAT, FXP.SETSTAT, FXP.OPENDIR, FXP.REMOVE, FXP.MKDIR, FXP.RMDIR, FXP.REALPATH, FXP.RENAME, FXP.READLINK, FXP.SYMLINK] as number[];
    if (!pathFirst.includes(type)) return `sftp ${name} (request ${id})`;
    const raw = r.string();
    let shown: string;
    try {
      shown = JSON.stringify(new TextDecoder('utf-8', { fatal: true }).decode(raw));
    } catch {
      shown = `0x${raw.toString('hex')}`;
    }
    return `sftp ${name} ${shown} (request ${id})`;
  } catch {
    return `sftp ${name} (malformed)`;
  }
}
