// Bounds on connections that have not authenticated yet. Any local process can connect to the
// listener; until it proves it holds the per-run password it gets a bounded share of the daemon:
// a few connections, a few seconds, and no more bytes than the startup exchange needs.
import type net from 'node:net';

/** Connections between accept and a completed SCRAM exchange, per listener; more are refused. */
export const MAX_UNAUTHENTICATED = 64;

/**
 * Time from accept to a completed SCRAM exchange (PostgreSQL's authentication_timeout is 60 s, but
 * it serves remote clients; ours are on the same machine and answer in milliseconds).
 */
export const DEFAULT_LOGIN_TIMEOUT_MS = 10_000;

/** The variable that overrides the login timeout (milliseconds), for tests and slow machines. */
export const LOGIN_TIMEOUT_ENV = 'GATEWAY_ACTION_LOGIN_TIMEOUT_MS';

/** PostgreSQL's PG_MAX_AUTH_TOKEN_LENGTH: the largest authentication message, length word included. */
export const MAX_AUTH_MESSAGE_BODY = 65535 - 4;

/** How long a refused connection may still read our final error before it is cut off. */
export const REFUSAL_LINGER_MS = 1000;

export function loginTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  const v = Number(env[LOGIN_TIMEOUT_ENV]);
  return Number.isInteger(v) && v > 0 ? v : DEFAULT_LOGIN_TIMEOUT_MS;
}

/** The unauthenticated connections of one listener, each destroyed at its deadline. */
export class LoginGuard {
  private readonly pending = new Map<net.Socket, NodeJS.Timeout>();
  private readonly timeoutMs: number;
  private readonly max: number;

  constructor(timeoutMs = loginTimeoutMs(), max = MAX_UNAUTHENTICATED) {
    this.timeoutMs = timeoutMs;
    this.max = max;
  }

  /** Starts the socket's deadline; false when the listener already has too many. */
  admit(socket: net.Socket, onTimeout: () => void): boolean {
    if (this.pending.size >= this.max) return false;
    // An absolute deadline, not an idle timeout: a client trickling bytes is cut off all the same.
    const timer = setTimeout(() => {
      this.pending.delete(socket);
      onTimeout();
      socket.destroy();
    }, this.timeoutMs);
    this.pending.set(socket, timer);
    socket.once('close', () => this.release(socket));
    return true;
  }

  /** The client authenticated (or the connection ended): it no longer counts. */
  release(socket: net.Socket): void {
    const timer = this.pending.get(socket);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.pending.delete(socket);
  }

  get count(): number {
    return this.pending.size;
  }

  get timeout(): number {
    return this.timeoutMs;
  }
}

/**
 * Sends a final message (or none) and closes. Nothing more is read from a client that has not
 * logged in (what it keeps sending waits in the kernel's buffers, which fill and stop it), and
 * the socket is destroyed after REFUSAL_LINGER_MS whatever the client does.
 */
export function closeAfter(socket: net.Socket, finalMessage?: Buffer): void {
  socket.removeAllListeners('data');
  socket.pause();
  if (finalMessage) socket.end(finalMessage);
  else socket.end();
  setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS).unref();
}
