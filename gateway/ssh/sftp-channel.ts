// The sftp subsystem (sftp, and OpenSSH 9's scp): the channel itself passes the gate first
// (class `sftp`), then the gateway terminates SFTP and relays it operation by operation
// (sftp-relay.ts), each operation through the same gate with its paths.
import type { ClientChannel, ServerChannel } from 'ssh2';
import { finishChannel } from './program-channel.ts';
import { DENIED_EXIT_STATUS, FAULT_EXIT_STATUS, stderrClient } from './session-context.ts';
import { fileGate } from './file-gate.ts';
import { relaySftp } from './sftp-relay.ts';
import type { SshSessionContext } from './session-context.ts';
import { UpstreamError } from './upstream.ts';

export async function serveSftp(ctx: SshSessionContext, stream: ServerChannel): Promise<void> {
  const client = stderrClient(ctx, stream.stderr, false);
  const answer = await ctx.gate.pass({ kind: 'ssh.subsystem', text: 'sftp', units: [{ ssh: 'sftp' }], forwarded: [Buffer.from('sftp')] }, client);
  if (!answer.allowed) {
    client.tell(answer.message);
    return finishChannel(stream, answer.decision.rule === 'session-log' ? FAULT_EXIT_STATUS : DENIED_EXIT_STATUS);
  }
  const session = answer.cmd;
  let upstream: ClientChannel;
  try {
    const conn = await ctx.upstream();
    // The raw subsystem channel: relaySftp reads SFTP itself.
    upstream = await new Promise<ClientChannel>((resolve, fail) => conn.subsys('sftp', (err, s) => (err ? fail(err) : resolve(s))));
  } catch (e) {
    const message = e instanceof UpstreamError ? e.message : `the host refused the sftp subsystem: ${(e as Error).message}`;
    session.finish({ status: 'error', error: { code: 'upstream', message } });
    client.tell(`gateway: ${message}`);
    return finishChannel(stream, FAULT_EXIT_STATUS);
  }
  const gate = fileGate(ctx, 'sftp');
  const relay = relaySftp(stream, upstream, gate, { home: ctx.home });
  const end = await relay.done;
  session.finish(end.error ? { status: 'error', error: { code: 'sftp', message: end.error }, details: { ended_by: end.by } } : { status: 'ok', details: { ended_by: end.by } });
}
