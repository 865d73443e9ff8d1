// Port forwarding through the gateway: `ssh -L` (direct-tcpip channels the client opens) and
// `ssh -R` (tcpip-forward requests; the host's incoming connections come back as channels).
// Class `port-forward`: denied unless a rule allows it, since what crosses a tunnel is bytes the
// gateway cannot read (a database session tunnelled past the PostgreSQL gateway, say). Each
// tunnel is recorded with its host and port, and its byte counts when it ends.
import type { AcceptConnection, Client, ClientChannel, Connection, RejectConnection, ServerChannel, TcpipRequestInfo } from 'ssh2';
import type { CommandRecorder } from '../core/recorder.ts';
import type { GateClient } from '../core/command-gate.ts';
import type { SshSessionContext } from './session-context.ts';

/** Port forwards need a rule that allows them: the default allow is not enough. */
const PORT_FORWARD = { rule: 'port-forward', what: 'port forwarding' };
const SILENT: GateClient = { tell: () => undefined, onGone: () => () => undefined };

/** How long a tunnel's other side may take to close after one side closed (its last bytes still flowing). */
const CLOSE_GRACE_MS = 5000;

/** Pipes a tunnel both ways with backpressure; finishes the command with the byte counts. */
function tunnel(a: ServerChannel | ClientChannel, b: ServerChannel | ClientChannel, cmd: CommandRecorder): void {
  let toHost = 0;
  let toClient = 0;
  a.on('data', (d: Buffer) => (toHost += d.length));
  b.on('data', (d: Buffer) => (toClient += d.length));
  // EOF travels through the pipes; a side that closes lets the other finish sending first.
  a.pipe(b);
  b.pipe(a);
  let closed = 0;
  let timer: NodeJS.Timeout | null = null;
  const close = (): void => {
    closed++;
    if (closed === 1) {
      a.end();
      b.end();
      timer = setTimeout(() => {
        a.destroy();
        b.destroy();
      }, CLOSE_GRACE_MS);
      return;
    }
    if (closed > 2) return;
    if (timer) clearTimeout(timer);
    cmd.finish({ status: 'ok', details: { bytes_to_host: toHost, bytes_to_client: toClient } });
  };
  a.once('close', close);
  b.once('close', close);
  const fail = (): void => {
    a.destroy();
    b.destroy();
  };
  a.on('error', fail);
  b.on('error', fail);
}

export async function directTcpip(ctx: SshSessionContext, accept: AcceptConnection<ServerChannel>, reject: RejectConnection, info: TcpipRequestInfo): Promise<void> {
  const answer = await ctx.gate.pass({
    kind: 'ssh.forward',
    text: `local forward to ${info.destIP}:${info.destPort}`,
    units: [{ ssh: 'port-forward' }],
    needsAllowRule: PORT_FORWARD,
    details: { direction: 'local', host: info.destIP, port: info.destPort, from: `${info.srcIP}:${info.srcPort}` },
    forwarded: [Buffer.from(`${info.destIP}:${info.destPort}`)],
  }, SILENT);
  if (!answer.allowed) return reject();
  const cmd = answer.cmd;
  try {
    const conn = await ctx.upstream();
    const up = await new Promise<ClientChannel>((resolve, fail) => conn.forwardOut(info.srcIP, info.srcPort, info.destIP, info.destPort, (err, ch) => (err ? fail(err) : resolve(ch))));
    tunnel(accept(), up, cmd);
  } catch (e) {
    cmd.finish({ status: 'error', error: { code: 'upstream', message: `the host did not open the tunnel: ${(e as Error).message}` } });
    reject();
  }
}

/**
 * The remote forwards of one upstream connection, by the port the host bound: the command that
 * allowed each and the address the client asked for (its ssh matches connections back by it).
 */
const bound = new WeakMap<Client, Map<number, { cmd: CommandRecorder; bindAddr: string }>>();

export async function remoteForward(ctx: SshSessionContext, client: Connection, accept: ((port?: number) => void) | undefined, reject: (() => void) | undefined, info: { bindAddr: string; bindPort: number }): Promise<void> {
  const answer = await ctx.gate.pass({
    kind: 'ssh.forward',
    text: `remote forward from ${info.bindAddr}:${info.bindPort}`,
    units: [{ ssh: 'port-forward' }],
    needsAllowRule: PORT_FORWARD,
    details: { direction: 'remote', bind: `${info.bindAddr}:${info.bindPort}` },
    forwarded: [Buffer.from(`${info.bindAddr}:${info.bindPort}`)],
  }, SILENT);
  if (!answer.allowed) return reject?.();
  const cmd = answer.cmd;
  try {
    const conn = await ctx.upstream();
    const port = await new Promise<number>((resolve, fail) => conn.forwardIn(info.bindAddr, info.bindPort, (err, p) => (err ? fail(err) : resolve(p))));
    let forwards = bound.get(conn);
    if (!forwards) {
      forwards = new Map();
      bound.set(conn, forwards);
      const all = forwards;
      conn.on('tcp connection', (details, acceptUp, rejectUp) => {
        const forward = all.get(details.destPort);
        if (!forward) return rejectUp();
        void incoming(ctx, client, forward.bindAddr, details, acceptUp, rejectUp).catch(() => rejectUp());
      });
    }
    forwards.set(port, { cmd, bindAddr: info.bindAddr });
    ctx.onClientGone(() => cmd.finish({ status: 'ok', details: { ended: 'client closed' } }));
    accept?.(port);
  } catch (e) {
    cmd.finish({ status: 'error', error: { code: 'upstream', message: `the host refused the forward: ${(e as Error).message}` } });
    reject?.();
  }
}

/** A connection the host accepted on a remote forward: recorded, then handed to the client. */
async function incoming(ctx: SshSessionContext, client: Connection, bindAddr: string, d: TcpipRequestInfo, acceptUp: () => ClientChannel, rejectUp: () => void): Promise<void> {
  const answer = await ctx.gate.passDecided({
    kind: 'ssh.forward',
    text: `remote forward connection ${d.srcIP}:${d.srcPort} -> ${d.destIP}:${d.destPort}`,
    units: [{ ssh: 'port-forward' }],
    details: { direction: 'remote-connection', bind: `${d.destIP}:${d.destPort}`, from: `${d.srcIP}:${d.srcPort}` },
    forwarded: [],
  }, null, SILENT);
  if (!answer.allowed) return rejectUp();
  client.forwardOut(bindAddr, d.destPort, d.srcIP, d.srcPort, (err, ch) => {
    if (err) {
      answer.cmd.finish({ status: 'error', error: { code: 'client', message: `the client refused the connection: ${err.message}` } });
      return rejectUp();
    }
    tunnel(ch as unknown as ServerChannel, acceptUp(), answer.cmd);
  });
}

export async function cancelRemoteForward(ctx: SshSessionContext, accept: (() => void) | undefined, reject: (() => void) | undefined, info: { bindAddr: string; bindPort: number }): Promise<void> {
  try {
    const conn = await ctx.upstream();
    await new Promise<void>((resolve, fail) => conn.unforwardIn(info.bindAddr, info.bindPort, (err) => (err ? fail(err) : resolve())));
    const forward = bound.get(conn)?.get(info.bindPort);
    bound.get(conn)?.delete(info.bindPort);
    forward?.cmd.finish({ status: 'ok' });
    accept?.();
  } catch {
    reject?.();
  }
}
