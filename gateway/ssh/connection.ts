// One client connection to the SSH listener: the per-run key checked, the session recorded,
// the upstream connection opened once the client has logged in, and each channel the client
// opens dispatched: session channels (exec, shell, sftp, other subsystems), port forwards,
// and the requests that are always refused (agent and X11 forwarding).
import type { Client, Connection, ParsedKey, Session, ServerChannel } from 'ssh2';
import type { CoreServices } from '../core/adapter.ts';
import { CommandGate } from '../core/command-gate.ts';
import { runProgram, finishChannel, windowChange, type SessionRequests } from './program-channel.ts';
import { DENIED_EXIT_STATUS, defaultHome, stderrClient, type SshSessionContext } from './session-context.ts';
import { connectUpstream, type UpstreamLogin } from './upstream.ts';
import { serveSftp } from './sftp-channel.ts';
import { directTcpip, remoteForward, cancelRemoteForward } from './forwarding.ts';
import type { SshTarget } from './target.ts';

/** An unauthenticated client is dropped after this long (a slow-loris gets no session). */
export const LOGIN_DEADLINE_MS = 20_000;

export interface ConnectionOptions {
  target: SshTarget;
  core: CoreServices;
  login: UpstreamLogin;
  /** The per-run client key's public part: the only key that logs in. */
  clientKey: ParsedKey;
  address: { ip: string; port: number };
}

export function serveConnection(client: Connection, opts: ConnectionOptions): void {
  const { target, core } = opts;
  const deadline = setTimeout(() => client.end(), LOGIN_DEADLINE_MS);
  // Garbage, a protocol error, or a client that vanishes ends this connection only.
  client.on('error', () => client.end());
  let username = '';
  client.on('authentication', (auth) => {
    username = auth.username;
    if (auth.method !== 'publickey') return auth.reject(['publickey']);
    const key = opts.clientKey;
    if (auth.key.algo !== key.type || !auth.key.data.equals(key.getPublicSSH())) return auth.reject(['publickey']);
    // Without a signature the client only asks whether the key would do.
    if (!auth.signature) return auth.accept();
    if (key.verify(auth.blob!, auth.signature, auth.hashAlgo) !== true) return auth.reject(['publickey']);
    auth.accept();
  });
  client.once('ready', () => {
    clearTimeout(deadline);
    let rec: ReturnType<CoreServices['recorder']['openSession']>;
    try {
      rec = core.recorder.openSession(target.name, 'ssh', { client: { address: opts.address.ip, port: opts.address.port, user: username } });
    } catch {
      // The log failed: nothing may reach the host.
      return void client.end();
    }
    const goneCallbacks = new Set<() => void>();
    // Channels whose program is still running: the connection outlives the host by as long as they need.
    const running = new Set<object>();
    let upstreamGone = false;
    // A turn later: the channels' last bytes (stderr, exit status) are written in the turn's one
    // writev (socket-writes.ts), which ending the connection at once would cut off.
    const endSoon = (): void => void setTimeout(() => client.end(), 50);
    const track = <T>(work: Promise<T>): Promise<T> => {
      const token = {};
      running.add(token);
      return work.finally(() => {
        running.delete(token);
        if (upstreamGone && running.size === 0) endSoon();
      });
    };
    let upstream: Promise<Client> | null = null;
    let upstreamConn: Client | null = null;
    const ctx: SshSessionContext = {
      target,
      core,
      rec,
      gate: new CommandGate(core, rec, target.name, 'ssh'),
      home: defaultHome(target.user),
      upstream: () => {
        upstream ??= connectUpstream(target, opts.login).then((c) => {
          upstreamConn = c;
          c.on('error', () => undefined);
          // The host dropped: every channel ends (each telling its client why, with its own
          // status), then the client connection.
          c.once('close', () => {
            upstreamGone = true;
            if (running.size === 0) endSoon();
          });
          return c;
        });
        return upstream;
      },
      onClientGone: (cb) => {
        goneCallbacks.add(cb);
        return () => goneCallbacks.delete(cb);
      },
    };
    // Opened now, so the first command does not wait for the login; a failure is told per channel.
    ctx.upstream().catch(() => undefined);
    client.once('close', () => {
      for (const cb of [...goneCallbacks]) cb();
      (upstreamConn as Client | null)?.end();
      rec.close('client closed');
    });
    client.on('session', (accept) => serveSession(ctx, accept(), track));
    client.on('tcpip', (accept, reject, info) => void directTcpip(ctx, accept, reject, info).catch(() => reject()));
    client.on('request', (accept, reject, name, info) => {
      if (name === 'tcpip-forward') return void remoteForward(ctx, client, accept as ((port?: number) => void) | undefined, reject, info as { bindAddr: string; bindPort: number }).catch(() => reject?.());
      if (name === 'cancel-tcpip-forward') return void cancelRemoteForward(ctx, accept, reject, info as { bindAddr: string; bindPort: number }).catch(() => reject?.());
      reject?.();
    });
    client.on('openssh.streamlocal', (_accept, reject) => reject());
  });
}

function serveSession(ctx: SshSessionContext, session: Session, track: <T>(work: Promise<T>) => Promise<T>): void {
  const req: SessionRequests = { env: {}, pty: null, running: null };
  let started = false;
  session.on('env', (accept, reject, info) => {
    if (started) return reject?.();
    req.env[info.key] = info.val;
    accept?.();
  });
  session.on('pty', (accept, reject, info) => {
    if (started) return reject?.();
    req.pty = { ...info };
    accept?.();
  });
  session.on('window-change', (accept, _reject, info) => {
    windowChange(req, info);
    accept?.();
  });
  session.on('signal', (accept, reject, info) => {
    if (!req.running) return reject?.();
    req.running.signal(info.name);
    accept?.();
  });
  const start = (accept: () => ServerChannel, run: (stream: ServerChannel) => Promise<void>): void => {
    if (started) return;
    started = true;
    const stream = accept();
    stream.on('error', () => undefined);
    track(run(stream)).catch((e) => {
      stderrClient(ctx, stream.stderr, req.pty !== null).tell(`gateway: ${(e as Error).message}`);
      finishChannel(stream, 255);
    });
  };
  session.on('exec', (accept, reject, info) => {
    if (started) return reject?.();
    start(accept, (stream) => runProgram(ctx, stream, req, { exec: info.command }));
  });
  session.on('shell', (accept, reject) => {
    if (started) return reject?.();
    start(accept, (stream) => runProgram(ctx, stream, req, { shell: true }));
  });
  // sftp arrives as a plain subsystem (no 'sftp' listener): relaySftp reads the raw channel.
  session.on('subsystem', (accept, reject, info) => {
    if (started) return reject?.();
    // Accepted at once, like exec: OpenSSH sends the channel's first bytes (sftp's INIT) without
    // waiting for the reply, and ssh2 drops data for a session channel not yet accepted.
    if (info.name === 'sftp') return start(accept, (stream) => serveSftp(ctx, stream));
    start(accept, async (stream) => {
      const answer = await ctx.gate.passDecided({ kind: 'ssh.subsystem', text: `subsystem ${info.name}`, units: null, forwarded: [] },
        { action: 'deny', rule: 'gateway', reason: `the ${info.name} subsystem is not supported (only sftp is)`, matched: [] }, stderrClient(ctx, stream.stderr, false));
      if (!answer.allowed) stream.stderr.write(`${answer.message}\n`);
      finishChannel(stream, DENIED_EXIT_STATUS);
    });
  });
  // Forwarding the client's agent or X11 display to a host is never done: recorded and refused.
  const refused = (what: 'agent-forward' | 'x11', text: string) => (_accept: unknown, reject: (() => void) | undefined) => {
    void ctx.gate.passDecided({ kind: 'ssh.forward', text, units: [{ ssh: what }], forwarded: [] },
      { action: 'deny', rule: 'gateway', reason: `${what === 'x11' ? 'X11' : 'agent'} forwarding is always refused`, matched: [] },
      { tell: () => undefined, onGone: () => () => undefined });
    reject?.();
  };
  session.on('auth-agent', refused('agent-forward', 'agent forwarding'));
  session.on('x11', refused('x11', 'X11 forwarding'));
}
