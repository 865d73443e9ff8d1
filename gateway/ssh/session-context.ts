// What every channel of one client connection shares: the target, the core's services, the
// session's recorder and command gate, the upstream connection (opened once the client has
// logged in; its failure is told to each channel), and the client's departure.
import type { Client } from 'ssh2';
import type { CoreServices } from '../core/adapter.ts';
import type { SessionRecorder } from '../core/recorder.ts';
import type { CommandGate, GateClient } from '../core/command-gate.ts';
import type { SshTarget } from './target.ts';

export interface SshSessionContext {
  target: SshTarget;
  core: CoreServices;
  rec: SessionRecorder;
  gate: CommandGate;
  /** Resolves with the authenticated upstream connection; rejects with an UpstreamError. */
  upstream(): Promise<Client>;
  /** The upstream login's home directory: relative paths of exec lines resolve against it. */
  home: string;
  /** Registers a callback for the client connection ending; returns how to unregister it. */
  onClientGone(cb: () => void): () => void;
}

/** Exit status of a command the gateway refused (denied, approval refused or timed out). */
export const DENIED_EXIT_STATUS = 126;
/** Exit status when the gateway could not run a command (log failure, host unreachable), as ssh's own. */
export const FAULT_EXIT_STATUS = 255;

/** A GateClient over a channel's stderr (a terminal, with a pty, wants CR LF line ends). */
export function stderrClient(ctx: SshSessionContext, stderr: { write(s: string): unknown }, terminal: boolean): GateClient {
  const eol = terminal ? '\r\n' : '\n';
  return {
    tell: (line) => void stderr.write(line.split('\n').join(eol) + eol),
    onGone: (cb) => ctx.onClientGone(cb),
  };
}

/** The home directory OpenSSH gives the user by default (the relative paths of exec lines start there). */
export function defaultHome(user: string): string {
  return user === 'root' ? '/root' : `/home/${user}`;
}
