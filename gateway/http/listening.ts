// Starting a loopback server the same way for every HTTP listener.
import type net from 'node:net';

/**
 * Listens on a free loopback port. An error while starting fails the start; one later (an accept
 * that fails: EMFILE) must not take the daemon down, so a listener stays for the server's life.
 */
export function listening(server: net.Server, port = 0): Promise<void> {
  return new Promise((resolve, reject) => {
    let started = false;
    server.on('error', (e) => {
      if (!started) reject(e);
    });
    server.listen(port, '127.0.0.1', () => {
      started = true;
      resolve();
    });
  });
}
