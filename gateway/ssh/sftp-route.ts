// Where one SFTP client request goes: answered by the gateway (malformed, unknown, an extension
// it does not relay), on an open handle (under that open's command), or to the gate (a request
// naming paths, with what it is). Pure: the relay does the sending.
import { FX, Malformed, handleRef, parseRequest, type HandleRef, type SftpRequest } from './sftp-codec.ts';
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
