// The start of a relayed SFTP session: the client's INIT is answered only once the gateway has
// opened the host's session itself (INIT, VERSION 3), asked where it starts (REALPATH ".": where
// relative paths resolve, so the gate judges the path the host will open) and, when offered,
// for its limits. The client is then offered the relayed extensions the host has, limits within
// what the gateway reads. These requests are the gateway's own, not the client's.
import { normalizePath } from './file-operation.ts';
import { FXP, extendedPacket, firstName, initPacket, parseHello, parseLimitsReply, realpathPacket, type Limits } from './sftp-codec.ts';
import { RELAYED_EXTENSIONS } from './sftp-operations.ts';

/** How the handshake talks to the host (the relay's plumbing). */
export interface HandshakeIo {
  /** Sends the gateway's INIT; resolves with the host's first packet (null: the session ended). */
  hello(init: Buffer): Promise<Buffer | null>;
  /** Sends one of the gateway's own requests (with `id`); resolves with its answer (null: the session ended). */
  ask(id: number, frame: Buffer): Promise<Buffer | null>;
}

export interface HostSession {
  /** Where relative paths start; null when neither the host nor the configuration says. */
  start: string | null;
  /** What the client is offered in VERSION. */
  extensions: [string, Buffer][];
  /** What the gateway answers to limits@openssh.com (offered only when set). */
  limits: Limits | null;
}

/** Ids of the gateway's own requests (sent before the client may send anything). */
const OWN_REALPATH_ID = 0xffffffff;
const OWN_LIMITS_ID = 0xfffffffe;

/**
 * Opens the host's session for a client whose INIT is `clientInit`. Resolves null if the session
 * ended meanwhile; throws an Error naming what is wrong with either side's hello.
 */
export async function openHostSession(clientInit: Buffer, io: HandshakeIo, bounds: { clientMaxPacket: number; hostMaxPacket: number; home?: string }): Promise<HostSession | null> {
  const version = hello(clientInit, "the client's INIT").version;
  if (version < 3) throw new Error(`the client speaks SFTP version ${version}; the gateway speaks version 3`);
  const answer = await io.hello(initPacket(3));
  if (!answer) return null;
  if (answer[4] !== FXP.VERSION) throw new Error(`the host answered INIT with packet type ${answer[4]}`);
  const host = hello(answer, "the host's VERSION");
  if (host.version !== 3) throw new Error(`the host speaks SFTP version ${host.version}; the gateway speaks version 3`);
  const offered = new Map(host.extensions);
  const [where, limitsAnswer] = await Promise.all([
    io.ask(OWN_REALPATH_ID, realpathPacket(OWN_REALPATH_ID, '.')),
    offered.has('limits@openssh.com') ? io.ask(OWN_LIMITS_ID, extendedPacket(OWN_LIMITS_ID, 'limits@openssh.com')) : null,
  ]);
  if (!where) return null;
  let limits: Limits | null = null;
  if (limitsAnswer) {
    try {
      limits = ownLimits(parseLimitsReply(limitsAnswer), bounds);
    } catch {
      // Not answered as OpenSSH answers: the client is not offered limits.
    }
  }
  if (!limits) offered.delete('limits@openssh.com');
  const home = bounds.home?.startsWith('/') ? normalizePath(bounds.home, '/') : null;
  return {
    start: startDirectory(where) ?? home,
    extensions: RELAYED_EXTENSIONS.filter((n) => offered.has(n)).map((n): [string, Buffer] => [n, offered.get(n)!]),
    limits,
  };
}

function hello(frame: Buffer, what: string): ReturnType<typeof parseHello> {
  try {
    return parseHello(frame);
  } catch (e) {
    throw new Error(`${what} is malformed: ${(e as Error).message}`);
  }
}

/** The REALPATH "." answer as an absolute path (null when it is not one, or not UTF-8). */
function startDirectory(answer: Buffer): string | null {
  if (answer[4] !== FXP.NAME) return null;
  try {
    const dir = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(firstName(answer));
    return dir.startsWith('/') && !dir.includes('\0') ? normalizePath(dir, '/') : null;
  } catch {
    return null;
  }
}

/**
 * The limits the client is told: the host's, within what the gateway reads (a WRITE must fit
 * the client's packet bound with its header, a READ's answer the host's). With them OpenSSH's
 * clients move 255 KiB per request instead of 32 KiB.
 */
function ownLimits(host: Limits, bounds: { clientMaxPacket: number; hostMaxPacket: number }): Limits {
  const cap = (v: number, max: number) => (v > 0 ? Math.min(v, max) : max);
  return {
    packet: cap(host.packet, bounds.clientMaxPacket),
    read: cap(host.read, bounds.hostMaxPacket - 1024),
    write: cap(host.write, bounds.clientMaxPacket - 1024),
    handles: host.handles,
  };
}
