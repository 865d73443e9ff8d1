// Closing a client connection after a final ErrorResponse so that the client actually reads it.
// A client may still be writing (a message over the size limit, a pipeline): if we closed our side
// at once, libpq would see end-of-file while sending and report "server closed the connection
// unexpectedly" instead of our error, and closing with unread input resets the connection, which
// can discard the error in the client's buffers. So what the client sends meanwhile is read and
// discarded (never kept), our side is closed once the client has been quiet for QUIET_MS, and the
// socket is destroyed at a hard deadline whatever the client does.
import type net from 'node:net';

/**
 * How long the client must have sent nothing before we close our side. Long enough that a client
 * still writing a large message on a loaded runner (psql sending 65 MB while other jobs share the
 * cores, seen in CI at 200 ms) is not taken for one that has stopped.
 */
const QUIET_MS = 2000;
/** After closing our side, how long the client may take to read the error and close its side. */
const READ_MS = 1000;

export function closeWithFinalError(socket: net.Socket, finalMessage: Buffer | null, maxMs: number): void {
  if (socket.destroyed) return;
  socket.removeAllListeners('data');
  socket.on('data', () => undefined);
  socket.on('error', () => socket.destroy());
  socket.resume();
  const hardStop = setTimeout(() => socket.destroy(), maxMs);
  hardStop.unref();
  socket.once('close', () => clearTimeout(hardStop));
  if (finalMessage) socket.write(finalMessage);
  let ended = false;
  const endNow = (): void => {
    if (ended) return;
    ended = true;
    socket.setTimeout(0);
    socket.end();
    setTimeout(() => socket.destroy(), READ_MS).unref();
  };
  // The client closing its side means it sends no more.
  if (socket.readableEnded) endNow();
  else socket.once('end', endNow);
  socket.setTimeout(QUIET_MS, endNow);
}
