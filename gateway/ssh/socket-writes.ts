// The TCP sockets under the gateway's SSH connections (client side and host side), set up for
// bulk transfers. ssh2 writes every packet to its socket in pieces (with node:crypto's AES-GCM:
// the length, the ciphertext and the tag; three writes per packet) and never waits for the
// socket. Each write is a system call and, with Nagle's algorithm on, a 4-byte or 16-byte
// segment waits for the peer's delayed acknowledgement. So: no Nagle, and the writes of one
// event-loop turn are corked and leave as one writev when the turn's synchronous work is done.
// Nothing is held past that turn, so an interactive keystroke is not delayed.
import { connect, type Socket } from 'node:net';

/** Sockets already set up (a socket is set up once, whoever hands it over). */
const tuned = new WeakSet<Socket>();

export function tuneSshSocket(socket: Socket): void {
  if (tuned.has(socket)) return;
  tuned.add(socket);
  socket.setNoDelay(true);
  const write = socket.write;
  let corked = false;
  const uncork = (): void => {
    corked = false;
    socket.uncork();
  };
  // An own-property wrapper on this one socket: ssh2 calls socket.write(data) for every piece.
  socket.write = function coalescedWrite(this: Socket, ...args: unknown[]): boolean {
    if (!corked && !socket.destroyed) {
      corked = true;
      socket.cork();
      process.nextTick(uncork);
    }
    return (write as (...a: unknown[]) => boolean).apply(socket, args);
  } as Socket['write'];
}

/** A TCP connection to an SSH server, set up as above (ssh2's Client takes it as `sock`). */
export function connectSshSocket(host: string, port: number): Socket {
  const socket = connect({ host, port });
  tuneSshSocket(socket);
  return socket;
}
