// SFTP version 3 (draft-ietf-secsh-filexfer-02, as OpenSSH speaks it) over bytes, framing aside
// (sftp-framer.ts): the requests a client sends parsed into what the relay needs (paths as raw
// bytes, where a handle sits so it can be swapped), and the few packets the gateway writes
// itself. Pure: no streams, no sockets. A packet that does not parse exactly (short, trailing bytes, unknown
// attribute flags) is Malformed: the relay answers BAD_MESSAGE and forwards nothing of it.

export const FXP = {
  INIT: 1,
  VERSION: 2,
  OPEN: 3,
  CLOSE: 4,
  READ: 5,
  WRITE: 6,
  LSTAT: 7,
  FSTAT: 8,
  SETSTAT: 9,
  FSETSTAT: 10,
  OPENDIR: 11,
  READDIR: 12,
  REMOVE: 13,
  MKDIR: 14,
  RMDIR: 15,
  REALPATH: 16,
  STAT: 17,
  RENAME: 18,
  READLINK: 19,
  SYMLINK: 20,
  STATUS: 101,
  HANDLE: 102,
  DATA: 103,
  NAME: 104,
  ATTRS: 105,
  EXTENDED: 200,
  EXTENDED_REPLY: 201,
} as const;

export const FX = {
  OK: 0,
  EOF: 1,
  NO_SUCH_FILE: 2,
  PERMISSION_DENIED: 3,
  FAILURE: 4,
  BAD_MESSAGE: 5,
  NO_CONNECTION: 6,
  CONNECTION_LOST: 7,
  OP_UNSUPPORTED: 8,
} as const;

const STATUS_NAMES = ['ok', 'eof', 'no-such-file', 'permission-denied', 'failure', 'bad-message', 'no-connection', 'connection-lost', 'op-unsupported'];

/** `permission-denied` for 3; `status-N` for codes v3 does not name. */
export function statusName(code: number): string {
  return STATUS_NAMES[code] ?? `status-${code}`;
}

export const OPEN_FLAGS = { READ: 0x01, WRITE: 0x02, APPEND: 0x04, CREAT: 0x08, TRUNC: 0x10, EXCL: 0x20 } as const;
export const KNOWN_OPEN_FLAGS = 0x3f;

export const ATTR = { SIZE: 0x01, UIDGID: 0x02, PERMISSIONS: 0x04, ACMODTIME: 0x08, EXTENDED: 0x80000000 } as const;
const KNOWN_ATTR_FLAGS = 0x8000000f;

/** A packet that cannot be read as its type says; the relay answers it with BAD_MESSAGE. */
export class Malformed extends Error {}

export { SftpFramer, SftpProtocolError } from './sftp-framer.ts';
/** Reads the fields of one packet; running past its end is Malformed. */
export class FieldReader {
  readonly buf: Buffer;
  pos: number;

  constructor(buf: Buffer, pos: number) {
    this.buf = buf;
    this.pos = pos;
  }

  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw new Malformed('the packet ends inside a field');
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** A uint64 as a number; above 2^53 it is rounded (only digests and texts use offsets). */
  u64(): number {
    this.need(8);
    const v = Number(this.buf.readBigUInt64BE(this.pos));
    this.pos += 8;
    return v;
  }

  string(): Buffer {
    const len = this.u32();
    this.need(len);
    const s = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return s;
  }

  attrs(): Attrs {
    const flags = this.u32();
    if ((flags & ~KNOWN_ATTR_FLAGS) !== 0) throw new Malformed(`unknown attribute flags 0x${(flags >>> 0).toString(16)}`);
    const a: Attrs = {};
    if (flags & ATTR.SIZE) a.size = this.u64();
    if (flags & ATTR.UIDGID) {
      a.uid = this.u32();
      a.gid = this.u32();
    }
    if (flags & ATTR.PERMISSIONS) a.permissions = this.u32();
    if (flags & ATTR.ACMODTIME) {
      a.atime = this.u32();
      a.mtime = this.u32();
    }
    if (flags & ATTR.EXTENDED) {
      const n = this.u32();
      a.extended = [];
      for (let i = 0; i < n; i++) a.extended.push([this.string().toString('latin1'), this.string().length]);
    }
    return a;
  }

  end(): void {
    if (this.pos !== this.buf.length) throw new Malformed(`${this.buf.length - this.pos} bytes after the last field`);
  }
}

export interface Attrs {
  size?: number;
  uid?: number;
  gid?: number;
  permissions?: number;
  atime?: number;
  mtime?: number;
  /** Extended attribute names and the lengths of their data. */
  extended?: [string, number][];
}

/** Where a handle string sits in a frame (offset of its length field) and its bytes. */
export interface HandleRef {
  handle: Buffer;
  at: number;
}

export type SftpRequest =
  | { type: 'open'; id: number; path: Buffer; pflags: number; attrs: Attrs }
  | { type: 'close' | 'readdir' | 'fstat'; id: number; h: HandleRef }
  | { type: 'read'; id: number; h: HandleRef; offset: number; length: number }
  | { type: 'write'; id: number; h: HandleRef; offset: number; data: Buffer }
  | { type: 'fsetstat'; id: number; h: HandleRef; attrs: Attrs }
  | { type: 'lstat' | 'stat' | 'opendir' | 'remove' | 'rmdir' | 'realpath' | 'readlink'; id: number; path: Buffer }
  | { type: 'setstat' | 'mkdir'; id: number; path: Buffer; attrs: Attrs }
  | { type: 'rename'; id: number; from: Buffer; to: Buffer }
  /** As the bytes come: OpenSSH (and so nearly every client) sends the link's target first. */
  | { type: 'symlink'; id: number; first: Buffer; second: Buffer }
  | { type: 'extended'; id: number; name: string; r: FieldReader }
  | { type: 'unknown'; id: number; packetType: number };

const PATH_ONLY: Record<number, 'lstat' | 'stat' | 'opendir' | 'remove' | 'rmdir' | 'realpath' | 'readlink'> = {
  [FXP.LSTAT]: 'lstat',
  [FXP.STAT]: 'stat',
  [FXP.OPENDIR]: 'opendir',
  [FXP.REMOVE]: 'remove',
  [FXP.RMDIR]: 'rmdir',
  [FXP.REALPATH]: 'realpath',
  [FXP.READLINK]: 'readlink',
};
const HANDLE_ONLY: Record<number, 'close' | 'readdir' | 'fstat'> = { [FXP.CLOSE]: 'close', [FXP.READDIR]: 'readdir', [FXP.FSTAT]: 'fstat' };

/** The request id of a frame, or null when the frame is too short to hold one. */
export function requestId(frame: Buffer): number | null {
  return frame.length >= 9 ? frame.readUInt32BE(5) : null;
}

/**
 * Parses one client request (a whole frame, length included; not INIT). An extended request
 * comes back with its reader positioned after the name: its body depends on the name.
 */
export function parseRequest(frame: Buffer): SftpRequest {
  const type = frame[4]!;
  const r = new FieldReader(frame, 5);
  const id = r.u32();
  const pathOnly = PATH_ONLY[type];
  if (pathOnly) {
    const path = r.string();
    r.end();
    return { type: pathOnly, id, path };
  }
  const handleOnly = HANDLE_ONLY[type];
  if (handleOnly) {
    const h = handleRef(r);
    r.end();
    return { type: handleOnly, id, h };
  }
  switch (type) {
    case FXP.OPEN: {
      const path = r.string();
      const pflags = r.u32();
      const attrs = r.attrs();
      r.end();
      return { type: 'open', id, path, pflags, attrs };
    }
    case FXP.READ: {
      const h = handleRef(r);
      const offset = r.u64();
      const length = r.u32();
      r.end();
      return { type: 'read', id, h, offset, length };
    }
    case FXP.WRITE: {
      const h = handleRef(r);
      const offset = r.u64();
      const data = r.string();
      r.end();
      return { type: 'write', id, h, offset, data };
    }
    case FXP.FSETSTAT: {
      const h = handleRef(r);
      const attrs = r.attrs();
      r.end();
      return { type: 'fsetstat', id, h, attrs };
    }
    case FXP.SETSTAT:
    case FXP.MKDIR: {
      const path = r.string();
      const attrs = r.attrs();
      r.end();
      return { type: type === FXP.SETSTAT ? 'setstat' : 'mkdir', id, path, attrs };
    }
    case FXP.RENAME: {
      const from = r.string();
      const to = r.string();
      r.end();
      return { type: 'rename', id, from, to };
    }
    case FXP.SYMLINK: {
      const first = r.string();
      const second = r.string();
      r.end();
      return { type: 'symlink', id, first, second };
    }
    case FXP.EXTENDED: {
      const name = r.string().toString('latin1');
      return { type: 'extended', id, name, r };
    }
    default:
      return { type: 'unknown', id, packetType: type };
  }
}

export function handleRef(r: FieldReader): HandleRef {
  const at = r.pos;
  const handle = r.string();
  return { handle, at };
}

/** The frame with the handle string at `h.at` replaced by `handle` (the length prefix fixed). */
export function withHandle(frame: Buffer, h: HandleRef, handle: Buffer): Buffer {
  const tailStart = h.at + 4 + h.handle.length;
  const out = Buffer.allocUnsafe(frame.length - h.handle.length + handle.length);
  frame.copy(out, 0, 0, h.at);
  out.writeUInt32BE(handle.length, h.at);
  handle.copy(out, h.at + 4);
  frame.copy(out, h.at + 4 + handle.length, tailStart);
  out.writeUInt32BE(out.length - 4, 0);
  return out;
}

/** A packet of u32 fields (numbers) and strings (buffers), in order; the first u32 of a request or response is its id. */
function packet(type: number, parts: (Buffer | number)[]): Buffer {
  let len = 1;
  for (const p of parts) len += typeof p === 'number' ? 4 : 4 + p.length;
  const out = Buffer.allocUnsafe(4 + len);
  out.writeUInt32BE(len, 0);
  out[4] = type;
  let pos = 5;
  for (const p of parts) {
    if (typeof p === 'number') {
      out.writeUInt32BE(p >>> 0, pos);
      pos += 4;
    } else {
      out.writeUInt32BE(p.length, pos);
      p.copy(out, pos + 4);
      pos += 4 + p.length;
    }
  }
  return out;
}

export function statusPacket(id: number, code: number, message: string): Buffer {
  return packet(FXP.STATUS, [id, code, Buffer.from(message, 'utf8'), Buffer.from('en', 'latin1')]);
}

export function handlePacket(id: number, handle: Buffer): Buffer {
  return packet(FXP.HANDLE, [id, handle]);
}

export function initPacket(version: number): Buffer {
  return packet(FXP.INIT, [version]);
}

export function versionPacket(version: number, extensions: [string, Buffer][]): Buffer {
  const parts: (Buffer | number)[] = [version];
  for (const [name, data] of extensions) parts.push(Buffer.from(name, 'latin1'), data);
  return packet(FXP.VERSION, parts);
}

export function realpathPacket(id: number, path: string): Buffer {
  return packet(FXP.REALPATH, [id, Buffer.from(path, 'utf8')]);
}

export function extendedPacket(id: number, name: string): Buffer {
  return packet(FXP.EXTENDED, [id, Buffer.from(name, 'latin1')]);
}

/** `limits@openssh.com`: the largest packet, read and write, and how many handles may be open (0: no limit). */
export interface Limits {
  packet: number;
  read: number;
  write: number;
  handles: number;
}

export function parseLimitsReply(frame: Buffer): Limits {
  if (frame[4] !== FXP.EXTENDED_REPLY) throw new Malformed(`packet type ${frame[4]} answering limits@openssh.com`);
  const r = new FieldReader(frame, 9);
  const limits = { packet: r.u64(), read: r.u64(), write: r.u64(), handles: r.u64() };
  r.end();
  return limits;
}

export function limitsReplyPacket(id: number, l: Limits): Buffer {
  const out = Buffer.alloc(4 + 1 + 4 + 32);
  out.writeUInt32BE(out.length - 4, 0);
  out[4] = FXP.EXTENDED_REPLY;
  out.writeUInt32BE(id >>> 0, 5);
  [l.packet, l.read, l.write, l.handles].forEach((v, i) => out.writeBigUInt64BE(BigInt(v), 9 + 8 * i));
  return out;
}

/** INIT from a client or VERSION from a server: the version and the extension pairs. */
export function parseHello(frame: Buffer): { version: number; extensions: [string, Buffer][] } {
  const r = new FieldReader(frame, 5);
  const version = r.u32();
  const extensions: [string, Buffer][] = [];
  while (r.pos < frame.length) extensions.push([r.string().toString('latin1'), r.string()]);
  return { version, extensions };
}

/** A STATUS response's code and message (the message as UTF-8 text). */
export function parseStatus(frame: Buffer): { code: number; message: string } {
  const r = new FieldReader(frame, 9);
  const code = r.u32();
  // Version 3 servers may omit the message and language tag.
  const message = r.pos < frame.length ? r.string().toString('utf8') : '';
  return { code, message };
}

/** The string of a HANDLE or DATA response. */
export function responseString(frame: Buffer): Buffer {
  const r = new FieldReader(frame, 9);
  const s = r.string();
  return s;
}

/** The first filename of a NAME response (REALPATH answers with one). */
export function firstName(frame: Buffer): Buffer {
  const r = new FieldReader(frame, 9);
  if (r.u32() < 1) throw new Malformed('a NAME response with no names');
  return r.string();
}
