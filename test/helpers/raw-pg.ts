// A minimal raw PostgreSQL protocol client for tests that send exact message sequences (no
// Describe, binary result formats, FunctionCall): SCRAM-SHA-256 login, then whatever bytes the
// test writes; replies parsed by pg-protocol, and every byte received kept.
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import net from 'node:net';
import { parse, serialize } from 'pg-protocol';

export type Msg = { name: string; [k: string]: unknown };

export class RawClient {
  private readonly socket: net.Socket;
  private readonly inbox: Msg[] = [];
  private wake: (() => void) | null = null;
  /** Every byte the client received after login. */
  received: Buffer[] = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    void parse(socket, (m) => {
      this.inbox.push(m as unknown as Msg);
      this.wake?.();
    });
  }

  static async connect(env: Record<string, string>, applicationName = 'raw'): Promise<RawClient> {
    const socket = net.connect({ host: env.PGHOST, port: Number(env.PGPORT) });
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const c = new RawClient(socket);
    socket.write(serialize.startup({ user: env.PGUSER!, database: env.PGDATABASE!, application_name: applicationName }));
    const hmac = (key: Buffer, data: string): Buffer => createHmac('sha256', key).update(data).digest();
    const nonce = randomBytes(18).toString('base64');
    const clientFirstBare = `n=*,r=${nonce}`;
    let authMessage = '';
    for (;;) {
      const m = await c.next();
      if (m.name === 'authenticationSASL') {
        socket.write(serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', `n,,${clientFirstBare}`));
      } else if (m.name === 'authenticationSASLContinue') {
        const serverFirst = m.data as string;
        const attrs = new Map(serverFirst.split(',').map((p) => [p[0]!, p.slice(2)] as const));
        const salted = pbkdf2Sync(env.PGPASSWORD!, Buffer.from(attrs.get('s')!, 'base64'), Number(attrs.get('i')), 32, 'sha256');
        const clientKey = hmac(salted, 'Client Key');
        const storedKey = createHash('sha256').update(clientKey).digest();
        const withoutProof = `c=biws,r=${attrs.get('r')}`;
        authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
        const signature = hmac(storedKey, authMessage);
        const proof = Buffer.from(clientKey.map((b, i) => b ^ signature[i]!));
        socket.write(serialize.sendSCRAMClientFinalMessage(`${withoutProof},p=${proof.toString('base64')}`));
      } else if (m.name === 'error') {
        throw new Error(`login failed: ${String(m.message)}`);
      } else if (m.name === 'readyForQuery') {
        socket.on('data', (d: Buffer) => c.received.push(d));
        return c;
      }
    }
  }

  private async next(): Promise<Msg> {
    while (this.inbox.length === 0) {
      if (this.socket.destroyed) throw new Error('connection closed');
      await new Promise<void>((resolve, reject) => {
        const onClose = (): void => reject(new Error('connection closed'));
        this.socket.once('close', onClose);
        this.wake = () => (this.socket.off('close', onClose), resolve());
      });
      this.wake = null;
    }
    return this.inbox.shift()!;
  }

  /** Sends the messages in one write and returns every reply up to the next ReadyForQuery. */
  async roundTrip(messages: Buffer[]): Promise<Msg[]> {
    this.socket.write(Buffer.concat(messages));
    const out: Msg[] = [];
    for (;;) {
      const m = await this.next();
      out.push(m);
      if (m.name === 'readyForQuery') return out;
    }
  }

  /** Discards replies until one that matches, and returns it (for tests that let replies pile up). */
  async skipUntil(match: (m: Msg) => boolean): Promise<Msg> {
    for (;;) {
      const i = this.inbox.findIndex(match);
      if (i >= 0) return this.inbox.splice(0, i + 1)[i]!;
      this.inbox.length = 0;
      const m = await this.next();
      if (match(m)) return m;
    }
  }

  async end(): Promise<void> {
    if (this.socket.destroyed) return;
    this.socket.end(serialize.end());
    await new Promise<void>((resolve) => this.socket.once('close', () => resolve()));
  }
}

/** A FunctionCall message ('F'): function OID, text arguments, result format. */
export function functionCall(oid: number, args: string[], resultFormat: 0 | 1): Buffer {
  const parts: Buffer[] = [];
  const i32 = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeInt32BE(n);
    return b;
  };
  const i16 = (n: number): Buffer => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
  parts.push(i32(oid), i16(1), i16(0), i16(args.length));
  for (const a of args) parts.push(i32(Buffer.byteLength(a)), Buffer.from(a));
  parts.push(i16(resultFormat));
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from('F'), i32(body.length + 4), body]);
}
