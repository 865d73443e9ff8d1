// A pod's port-forward that a rule allowed: its streams carry any protocol and the gateway cannot
// read them, so the upgraded connection is relayed as bytes, as an allowed SSH port forward is.
// The request was decided and recorded before this runs (the pod, the ports); what is recorded
// after is the tunnel's metadata: the API server's answer to the upgrade, and the bytes and their
// digest each way. The upgrade request goes to the API server as the gateway normalized it, with
// the cluster's credential instead of the client's token.
import { createHash } from 'node:crypto';
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import type { CommandRecorder } from '../core/recorder.ts';
import type { Upstream } from '../http/upstream.ts';

/** Request headers that end at the gateway or that the gateway sets itself. */
const DROPPED = new Set(['authorization', 'host', 'proxy-authorization', 'proxy-connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding']);

export async function relayUnreadTunnel(req: http.IncomingMessage, socket: Duplex, head: Buffer, upstream: Upstream, target: string, cmd: CommandRecorder): Promise<void> {
  const t = upstream.target;
  let auth: Record<string, string>;
  try {
    auth = await upstream.auth();
  } catch (e) {
    cmd.finish({ status: 'error', error: { code: 'credential', message: (e as Error).message } });
    socket.destroy();
    return;
  }
  const address = t.connectTo ?? { host: t.host, port: t.port };
  const up = tls.connect({ ...upstream.tls, host: address.host, port: address.port, ALPNProtocols: ['http/1.1'] });
  const lines = [`${req.method} ${target} HTTP/1.1`, `host: ${t.port === 443 ? t.host : `${t.host}:${t.port}`}`];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!;
    if (!DROPPED.has(name.toLowerCase()) && !(name.toLowerCase() in auth)) lines.push(`${name}: ${req.rawHeaders[i + 1]!.replace(/[\r\n]/g, ' ')}`);
  }
  for (const [k, v] of Object.entries(auth)) lines.push(`${k}: ${v}`);
  up.write(`${lines.join('\r\n')}\r\n\r\n`);
  if (head.length) up.write(head);
  const counts = { to_target: 0, to_client: 0 };
  const hashes = { to_target: createHash('sha256'), to_client: createHash('sha256') };
  let answer = '';
  socket.on('data', (c: Buffer) => {
    counts.to_target += c.length;
    hashes.to_target.update(c);
  });
  up.on('data', (c: Buffer) => {
    if (counts.to_client === 0) answer = c.subarray(0, c.indexOf('\r\n') >= 0 ? c.indexOf('\r\n') : Math.min(c.length, 200)).toString('latin1');
    counts.to_client += c.length;
    hashes.to_client.update(c);
  });
  socket.pipe(up);
  up.pipe(socket);
  await new Promise<void>((resolve) => {
    let open = 2;
    const done = (): void => {
      if (--open === 0) resolve();
    };
    let fault: string | null = null;
    up.once('error', (e) => {
      fault = e.message;
      socket.destroy();
    });
    socket.once('error', () => up.destroy());
    up.once('close', () => {
      socket.destroy();
      done();
    });
    socket.once('close', () => {
      up.destroy();
      done();
    });
    void (async () => {
      await new Promise((r) => up.once('close', r));
      if (fault) cmd.finish({ status: 'error', error: { code: 'upstream', message: `the tunnel to ${t.origin} failed: ${fault}` } });
    })();
  });
  const details = {
    answer,
    bytes_to_target: counts.to_target, sha256_to_target: hashes.to_target.digest('hex'),
    bytes_to_client: counts.to_client, sha256_to_client: hashes.to_client.digest('hex'),
  };
  if (/^HTTP\/1\.1 101 /.test(answer)) cmd.finish({ status: 'ok', details });
  else cmd.finish({ status: 'error', error: { code: 'upstream', message: answer ? `the API server answered ${answer}` : 'the API server sent nothing' }, details });
}
