// The session's FileGate: each file operation of an sftp session or a legacy scp transfer goes
// through the command gate with its paths (class `sftp` or `scp`): decided, recorded, written to
// the log, held if a rule says so; its outcome (bytes moved, their SHA-256) is its result.
import type { GateClient } from '../core/command-gate.ts';
import type { FileGate, FileOperation, FileOutcome } from './file-operation.ts';
import type { SshSessionContext } from './session-context.ts';
import { escapeGlob } from './shell-words.ts';

const SILENT: GateClient = { tell: () => undefined, onGone: () => () => undefined };

/** The operation's channel going away withdraws a held operation (nothing is told: SFTP has no side channel). */
function signalClient(signal: AbortSignal): GateClient {
  return {
    tell: () => undefined,
    onGone: (cb) => {
      signal.addEventListener('abort', cb, { once: true });
      return () => signal.removeEventListener('abort', cb);
    },
  };
}

export function fileGate(ctx: SshSessionContext, cls: 'sftp' | 'scp'): FileGate {
  return {
    // A request the relay refuses on its own (an unknown extension, a path it cannot name
    // exactly): recorded as denied by the gateway, so the log shows every refusal.
    refusedHere(text: string, reason: string) {
      void ctx.gate.passDecided({ kind: `ssh.${cls}`, text, units: null, forwarded: [] }, { action: 'deny', rule: 'gateway', reason, matched: [] }, SILENT);
    },
    async begin(op: FileOperation, signal: AbortSignal) {
      // Paths are facts as patterns: a `*` in a real file name is that character, not a glob.
      const units = [{ ssh: cls, paths: op.paths.map(escapeGlob) }];
      const details = { op: op.op, ...(op.mode ? { mode: op.mode } : {}), ...(op.flags?.length ? { flags: op.flags } : {}) };
      const a = await ctx.gate.pass({ kind: `ssh.${cls}`, text: op.text, units, details, forwarded: op.forwarded }, signalClient(signal));
      if (!a.allowed) return { allowed: false, reason: a.message.replace(/^gateway: /, '') };
      const cmd = a.cmd;
      return {
        allowed: true,
        end(outcome: FileOutcome) {
          const d: Record<string, unknown> = {};
          if (outcome.bytesRead !== undefined) d.bytes_read = outcome.bytesRead;
          if (outcome.bytesWritten !== undefined) d.bytes_written = outcome.bytesWritten;
          if (outcome.sha256) d.sha256 = outcome.sha256;
          if (outcome.readSha256) d.read_sha256 = outcome.readSha256;
          if (outcome.sequential === false) d.sequential = false;
          cmd.finish(outcome.status === 'ok' ? { status: 'ok', details: d } : { status: 'error', error: outcome.error ?? { code: cls, message: 'failed' }, details: d });
        },
      };
    },
  };
}
