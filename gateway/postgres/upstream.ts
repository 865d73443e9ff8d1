// The gateway's own connection and login to the upstream server: TLS per the target's mode, then
// cleartext, md5 or SCRAM-SHA-256, whichever the server asks for.
import net from 'node:net';
import tls from 'node:tls';
import fs from 'node:fs';
import { serialize } from 'pg-protocol';
import { ProtocolError } from './codec/framer.ts';
import { encodeStartupMessage } from './codec/startup.ts';
import { AUTH, B, decodeAuthentication, decodeBackendKeyData, decodeNotice, decodeParameterStatus } from './codec/backend.ts';
import { MessageQueue } from './message-queue.ts';
import { ScramClient, md5Password } from './scram.ts';
import { checkPeerNameLikeLibpq } from './peer-name.ts';
import type { PostgresTarget } from './target.ts';

const CONNECT_TIMEOUT_MS = 15_000;

export class UpstreamError extends Error {
  readonly sqlState: string;
  constructor(message: string, sqlState: string) {
    super(message);
    this.name = 'UpstreamError';
    this.sqlState = sqlState;
  }
}

export interface UpstreamConnection {
  socket: net.Socket;
  parameters: [string, string][];
  backendKey: { processId: number; secretKey: Buffer };
  authMethod: string;
  tls: { protocol: string | null; cipher: string } | null;
}

/** Opens a socket to the target, negotiating TLS when the target's mode asks for it. */
export async function openUpstreamSocket(target: PostgresTarget): Promise<{ socket: net.Socket; tls: UpstreamConnection['tls'] }> {
  const plain = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ host: target.host, port: target.port });
    const timer = setTimeout(() => s.destroy(new Error(`connect timeout after ${CONNECT_TIMEOUT_MS / 1000}s`)), CONNECT_TIMEOUT_MS);
    s.once('connect', () => (clearTimeout(timer), s.off('error', reject), resolve(s)));
    s.once('error', (e) => (clearTimeout(timer), reject(e)));
  }).catch((e: Error) => {
    throw new UpstreamError(`cannot connect to ${target.host}:${target.port}: ${e.message}`, '08001');
  });
  plain.setNoDelay(true);
  if (target.tls === 'disable') return { socket: plain, tls: null };

  plain.write(serialize.requestSsl());
  const answer = await new Promise<number>((resolve, reject) => {
    plain.once('data', (d: Buffer) => {
      if (d.length !== 1) reject(new UpstreamError('unexpected answer to SSLRequest from upstream', '08P01'));
      else resolve(d[0]!);
    });
    plain.once('error', reject);
    plain.once('close', () => reject(new UpstreamError('upstream closed the connection during TLS negotiation', '08006')));
  });
  if (answer !== 0x53) {
    plain.destroy();
    throw new UpstreamError(`upstream ${target.host}:${target.port} does not accept TLS, but the target requires it (tls: ${target.tls})`, '08001');
  }
  const verify = target.tls === 'verify-full';
  const secure = await new Promise<tls.TLSSocket>((resolve, reject) => {
    const s = tls.connect({
      socket: plain,
      servername: net.isIP(target.host) ? undefined : target.host,
      ca: target.caFile ? fs.readFileSync(target.caFile) : undefined,
      rejectUnauthorized: verify,
      // verify-full checks the name against the certificate as libpq does (peer-name.ts);
      // require only encrypts, as in libpq.
      checkServerIdentity: verify ? (_servername, cert) => checkPeerNameLikeLibpq(target.host, cert) : () => undefined,
    });
    s.once('secureConnect', () => (s.off('error', reject), resolve(s)));
    s.once('error', reject);
  }).catch((e: Error) => {
    plain.destroy();
    // Node suggests --use-system-ca, which does not apply: the target's ca-file decides trust.
    const reason = e.message.replace(/; if the root CA is installed locally.*$/, '');
    const hint = verify ? (target.caFile ? ` (trusted CAs: ${target.caFile})` : ' (trusted CAs: Node\'s bundled list; set ca-file for a private CA)') : '';
    throw new UpstreamError(`TLS to ${target.host}:${target.port} failed (tls: ${target.tls}): ${reason}${hint}`, '08001');
  });
  const cipher = secure.getCipher();
  return { socket: secure, tls: { protocol: secure.getProtocol(), cipher: cipher.name } };
}

/**
 * Logs in as the target's user with the given password and startup parameters. Resolves once
 * upstream is ReadyForQuery, with what the client must be told (ParameterStatus values).
 */
export async function loginUpstream(target: PostgresTarget, password: string, params: Map<string, string>): Promise<UpstreamConnection> {
  const { socket, tls: tlsInfo } = await openUpstreamSocket(target);
  const q = new MessageQueue(socket, `upstream ${target.name}`);
  try {
    socket.write(encodeStartupMessage([['user', target.user], ['database', target.database], ...params]));

    let authMethod = 'trust';
    let scram: ScramClient | null = null;
    const parameters: [string, string][] = [];
    let backendKey: UpstreamConnection['backendKey'] | null = null;
    for (;;) {
      const m = await q.next(CONNECT_TIMEOUT_MS, 'login response');
      if (m.type === B.ErrorResponse) {
        const e = decodeNotice(m.body);
        throw new UpstreamError(e.message, e.code);
      } else if (m.type === B.Authentication) {
        const a = decodeAuthentication(m.body);
        if (a.code === AUTH.Ok) continue;
        if (a.code === AUTH.CleartextPassword) {
          refuseUnsafePasswordAuth(target, 'cleartext');
          authMethod = 'password';
          socket.write(serialize.password(password));
        } else if (a.code === AUTH.MD5Password && 'salt' in a) {
          refuseUnsafePasswordAuth(target, 'md5');
          authMethod = 'md5';
          socket.write(serialize.password(md5Password(target.user, password, a.salt)));
        } else if (a.code === AUTH.SASL && 'mechanisms' in a) {
          if (!a.mechanisms.includes('SCRAM-SHA-256')) {
            throw new UpstreamError(`upstream offers SASL mechanisms ${a.mechanisms.join(', ')}; the gateway supports SCRAM-SHA-256`, '28000');
          }
          authMethod = 'scram-sha-256';
          scram = new ScramClient(password);
          socket.write(serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', scram.first()));
        } else if (a.code === AUTH.SASLContinue && 'data' in a && scram) {
          socket.write(serialize.sendSCRAMClientFinalMessage(scram.final(a.data)));
        } else if (a.code === AUTH.SASLFinal && 'data' in a && scram) {
          scram.verify(a.data);
        } else {
          throw new UpstreamError(`upstream requested authentication method ${a.code}, which the gateway does not support`, '28000');
        }
      } else if (m.type === B.ParameterStatus) {
        parameters.push(decodeParameterStatus(m.body));
      } else if (m.type === B.BackendKeyData) {
        backendKey = decodeBackendKeyData(m.body);
      } else if (m.type === B.NoticeResponse || m.type === B.NegotiateProtocolVersion) {
        continue;
      } else if (m.type === B.ReadyForQuery) {
        q.detach();
        if (!backendKey) throw new UpstreamError('upstream sent no BackendKeyData', '08P01');
        return { socket, parameters, backendKey, authMethod, tls: tlsInfo };
      } else {
        throw new ProtocolError(`unexpected message type ${m.type} from upstream during login`);
      }
    }
  } catch (e) {
    socket.destroy();
    if (e instanceof UpstreamError) throw e;
    const err = e as Error & { sqlState?: string };
    throw new UpstreamError(err.message, err.sqlState ?? '08006');
  }
}

/**
 * A server that asks for the password in cleartext or as md5, over a connection whose server is
 * not authenticated (tls: disable or require), gets it only when the policy says so: whoever
 * answers at the address would receive the password itself, or an md5 answer it can relay to the
 * real server or crack offline. SCRAM never hands over either, and under verify-full the
 * certificate proves the server. An Entra token (auth: azure) is sent as Azure asks, in
 * cleartext, never without TLS (the policy refuses tls: disable for it).
 */
function refuseUnsafePasswordAuth(target: PostgresTarget, method: 'cleartext' | 'md5'): void {
  if (target.tls === 'verify-full' || target.auth.kind === 'azure' || target.auth.allowCleartext) return;
  const channel = target.tls === 'disable' ? 'an unencrypted connection (tls: disable)' : 'a connection whose server certificate is not checked (tls: require)';
  const risk = method === 'cleartext'
    ? 'anyone able to answer at that address would receive the password itself'
    : 'anyone able to answer at that address could relay the md5 answer to log in, or crack the password from it';
  throw new UpstreamError(
    `upstream ${target.host}:${target.port} asks for the password ${method === 'cleartext' ? 'in cleartext' : 'as md5'} over ${channel}: ${risk}, so the gateway does not send it. Use tls: verify-full, or scram-sha-256 on the server, or accept the risk with auth: { password-env: ${target.auth.passwordEnv}, allow-cleartext: true }`,
    '28000',
  );
}

/** Asks upstream to cancel whatever the given backend is running. */
export async function sendUpstreamCancel(target: PostgresTarget, key: { processId: number; secretKey: Buffer }): Promise<void> {
  const { socket } = await openUpstreamSocket(target);
  const packet = Buffer.alloc(12 + key.secretKey.length);
  packet.writeInt32BE(packet.length, 0);
  packet.writeInt32BE(80877102, 4);
  packet.writeInt32BE(key.processId, 8);
  key.secretKey.copy(packet, 12);
  await new Promise<void>((resolve) => {
    socket.end(packet, () => resolve());
    socket.once('error', () => resolve());
  });
  socket.destroy();
}
