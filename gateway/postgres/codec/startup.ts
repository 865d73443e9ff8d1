// The first packet of a connection has no type byte: int32 length, int32 code, payload.
import { ProtocolError } from './framer.ts';
import { BodyReader, MessageWriter } from './reader.ts';

export const PROTOCOL_3_0 = 196608;
export const SSL_REQUEST = 80877103;
export const GSSENC_REQUEST = 80877104;
export const CANCEL_REQUEST = 80877102;
/** PostgreSQL itself refuses startup packets over 10000 bytes. */
export const MAX_STARTUP_LENGTH = 10000;

export type StartupPacket =
  | { kind: 'ssl-request' }
  | { kind: 'gssenc-request' }
  | { kind: 'cancel'; processId: number; secretKey: Buffer }
  | { kind: 'startup'; major: number; minor: number; parameters: Map<string, string>; protocolOptions: string[] };

/** Length of the startup packet at the head of buf, or null if fewer than 4 bytes are there. */
export function startupPacketLength(buf: Buffer): number | null {
  if (buf.length < 4) return null;
  const len = buf.readInt32BE(0);
  if (len < 8 || len > MAX_STARTUP_LENGTH) {
    throw new ProtocolError(`invalid startup packet length ${len}`);
  }
  return len;
}

export function decodeStartupPacket(packet: Buffer): StartupPacket {
  const r = new BodyReader(packet.subarray(4), 'startup packet');
  const code = r.int32();
  if (code === SSL_REQUEST) return { kind: 'ssl-request' };
  if (code === GSSENC_REQUEST) return { kind: 'gssenc-request' };
  if (code === CANCEL_REQUEST) {
    const processId = r.int32();
    // Protocol 3.2 allows a longer secret key; 3.0 uses 4 bytes.
    const secretKey = Buffer.from(r.rest());
    if (secretKey.length < 4 || secretKey.length > 256) throw new ProtocolError('malformed cancel request');
    return { kind: 'cancel', processId, secretKey };
  }
  const major = code >>> 16;
  const minor = code & 0xffff;
  if (major !== 3) {
    throw new ProtocolError(`unsupported frontend protocol ${major}.${minor}: server supports 3.0`, '0A000');
  }
  const parameters = new Map<string, string>();
  const protocolOptions: string[] = [];
  for (;;) {
    const key = r.cstring();
    if (key === '') break;
    const value = r.cstring();
    if (key.startsWith('_pq_.')) protocolOptions.push(key);
    else parameters.set(key, value);
  }
  r.end();
  return { kind: 'startup', major, minor, parameters, protocolOptions };
}

/**
 * A 3.0 StartupMessage with exactly the given parameters. (pg-protocol's serializer appends
 * client_encoding=UTF8, which would override the client's own choice.)
 */
export function encodeStartupMessage(parameters: Iterable<[string, string]>): Buffer {
  const w = new MessageWriter().int32(PROTOCOL_3_0);
  for (const [k, v] of parameters) w.cstring(k).cstring(v);
  return w.byte(0).finish(null);
}
