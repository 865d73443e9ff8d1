// Reads the untyped packets that open a connection, answering SSL and GSS encryption requests,
// until a StartupMessage or CancelRequest arrives. It keeps no more than one startup packet
// (10000 bytes at most, as the server) and answers malformed openings as PostgreSQL does
// (postmaster.c ProcessStartupPacket): a bad length, a truncated packet or a malformed cancel
// request closes the connection without a reply; a bad layout or protocol version gets a FATAL.
import type net from 'node:net';
import type { ProtocolError } from './codec/framer.ts';
import { CANCEL_REQUEST, decodeStartupPacket, startupPacketLength, type StartupPacket } from './codec/startup.ts';

/** Why a connection is closed during the opening, with the FATAL to send first (none: close silently). */
export class StartupRefusal extends Error {
  readonly reply: { code: string; message: string } | null;
  constructor(message: string, reply: { code: string; message: string } | null) {
    super(message);
    this.name = 'StartupRefusal';
    this.reply = reply;
  }
}

/** The next packet, or null when the client closed first. */
function nextPacket(socket: net.Socket, state: { buf: Buffer }): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const tryParse = (): boolean => {
      const buf = state.buf;
      if (buf.length >= 1 && buf[0] === 0x16) {
        // A PostgreSQL 17 client opening with a TLS ClientHello (sslnegotiation=direct).
        reject(new StartupRefusal('direct TLS handshake', { code: '08P01', message: 'direct TLS connections are not supported by the gateway; use sslmode=disable (the listener is on loopback)' }));
        return true;
      }
      let len: number | null;
      try {
        len = startupPacketLength(buf);
      } catch (e) {
        // ProcessStartupPacket: "invalid length of startup packet", logged, no reply.
        reject(new StartupRefusal((e as Error).message, null));
        return true;
      }
      if (len === null || buf.length < len) return false;
      state.buf = buf.subarray(len);
      resolve(buf.subarray(0, len));
      return true;
    };
    if (tryParse()) return;
    const onData = (d: Buffer): void => {
      state.buf = state.buf.length ? Buffer.concat([state.buf, d]) : d;
      if (tryParse()) cleanup();
    };
    // A connection closed before a whole packet arrived is dropped silently, as by the server.
    const onClose = (): void => (cleanup(), resolve(null));
    const cleanup = (): void => {
      socket.off('data', onData);
      socket.off('close', onClose);
    };
    socket.on('data', onData);
    socket.on('close', onClose);
  });
}

export async function readStartup(socket: net.Socket): Promise<StartupPacket | null> {
  const state = { buf: Buffer.alloc(0) };
  let sslDone = false;
  let gssDone = false;
  for (;;) {
    const packet = await nextPacket(socket, state);
    if (!packet) return null;
    const code = packet.readInt32BE(4);
    let p: StartupPacket;
    try {
      p = decodeStartupPacket(packet);
    } catch (e) {
      const err = e as ProtocolError;
      // A malformed cancel request is dropped without a reply; other packets get a FATAL.
      if (code === CANCEL_REQUEST) throw new StartupRefusal(err.message, null);
      throw new StartupRefusal(err.message, { code: err.sqlState ?? '08P01', message: err.message });
    }
    if ((p.kind === 'ssl-request' && !sslDone) || (p.kind === 'gssenc-request' && !gssDone)) {
      // Bytes sent before the answer would not have been encrypted had we said yes.
      if (state.buf.length > 0) throw new StartupRefusal('data after an encryption request', { code: '08P01', message: `received unencrypted data after ${p.kind === 'ssl-request' ? 'SSL' : 'GSSAPI encryption'} request` });
      // TLS to the client is not offered: the listener is bound to loopback only.
      socket.write('N');
      if (p.kind === 'ssl-request') sslDone = true;
      else gssDone = true;
      continue;
    }
    if (p.kind === 'ssl-request' || p.kind === 'gssenc-request') {
      // A second request of the same kind: the server reads its code as a protocol version.
      throw new StartupRefusal('repeated encryption request', { code: '0A000', message: `unsupported frontend protocol ${code >>> 16}.${code & 0xffff}: server supports 3.0` });
    }
    // The server reads nothing after a cancel request; after a StartupMessage the rest is the
    // client's first typed message (its password), read by the next owner of the socket.
    // Paused until then, so nothing is read (or lost) before that owner listens.
    socket.pause();
    if (p.kind !== 'cancel' && state.buf.length > 0) socket.unshift(state.buf);
    return p;
  }
}
