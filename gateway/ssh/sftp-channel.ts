// The sftp subsystem (sftp, and OpenSSH 9's scp): the channel itself passes the gate first
// (class `sftp`), then the gateway terminates SFTP and relays it operation by operation
// (sftp-relay.ts), each operation through the same gate with its paths.
import type { AcceptConnection, ClientChannel, RejectConnection, ServerChannel } from 'ssh2';
import type { GateClient } from './command-gate.ts';
import type { FileGate, FileOperation, FileOutcome } from './file-operation.ts';
import { relaySftp } from './sftp-relay.ts';
import type { SshSessionContext } from './session-context.ts';
import { UpstreamError } from './upstream.ts';

const SILENT: GateClient = { tell: () => undefined, onGone: () => () => undefined };

export async function serveSftp(ctx: SshSessionContext, accept: AcceptConnection<ServerChannel>, reject: RejectConnection): Promise<void> {
  const answer = await ctx.gate.pass({ kind: 'ssh.subsystem', text: 'sftp', units: [{ ssh: 'sftp' }], forwarded: [Buffer.from('sftp')] }, SILENT);
  if (!answer.allowed) return reject();
  const session = answer.cmd;
  let upstream: ClientChannel;
  try {
    const conn = await ctx.upstream();
    // The raw subsystem channel: relaySftp reads SFTP itself.
    upstream = await new Promise<ClientChannel>((resolve, fail) => conn.subsys('sftp', (err, s) => (err ? fail(err) : resolve(s))));
  } catch (e) {
    const message = e instanceof UpstreamError ? e.message : `the host refused the sftp subsystem: ${(e as Error).message}`;
    session.finish({ status: 'error', error: { code: 'upstream', message } });
    return reject();
  }
  const gate: FileGate = {
    async begin(op: FileOperation) {
      const a = await ctx.gate.pass({ kind: 'ssh.sftp', text: op.text, units: [{ ssh: 'sftp', paths: op.paths }], details: { op: op.op, ...(op.mode ? { mode: op.mode } : {}) }, forwarded: [Buffer.from(op.text)] }, SILENT);
      if (!a.allowed) return { allowed: false, reason: a.message.replace(/^gateway: /, '') };
      const cmd = a.cmd;
      return {
        allowed: true,
        end(outcome: FileOutcome) {
          const details: Record<string, unknown> = {};
          if (outcome.bytesRead !== undefined) details.bytes_read = outcome.bytesRead;
          if (outcome.bytesWritten !== undefined) details.bytes_written = outcome.bytesWritten;
          if (outcome.sha256) details.sha256 = outcome.sha256;
          if (outcome.sequential === false) details.sequential = false;
          cmd.finish(outcome.status === 'ok' ? { status: 'ok', details } : { status: 'error', error: outcome.error ?? { code: 'sftp', message: 'failed' }, details });
        },
      };
    },
  };
  const relay = relaySftp(accept(), upstream, gate, { home: ctx.home });
  await relay.done;
  session.finish({ status: 'ok' });
}
