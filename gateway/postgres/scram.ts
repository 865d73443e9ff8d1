// SCRAM-SHA-256 (RFC 5802/7677) as PostgreSQL uses it. SCRAM exists to defeat a man in the
// middle, so the gateway terminates the client's authentication itself (server side) and logs in
// upstream separately (client side).
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

const ITERATIONS = 4096;

const hmac = (key: Buffer, data: string): Buffer => createHmac('sha256', key).update(data).digest();
const sha256 = (data: Buffer): Buffer => createHash('sha256').update(data).digest();
const xor = (a: Buffer, b: Buffer): Buffer => Buffer.from(a.map((v, i) => v ^ b[i]!));

function attributes(msg: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of msg.split(',')) {
    const eq = part.indexOf('=');
    if (eq === 1) out.set(part[0]!, part.slice(2));
  }
  return out;
}

export class ScramError extends Error {}

/** Keys derived once per run from the per-run password. */
export interface ScramVerifier { salt: Buffer; iterations: number; storedKey: Buffer; serverKey: Buffer }

export function makeVerifier(password: string): ScramVerifier {
  const salt = randomBytes(16);
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, ITERATIONS, 32, 'sha256');
  return { salt, iterations: ITERATIONS, storedKey: sha256(hmac(salted, 'Client Key')), serverKey: hmac(salted, 'Server Key') };
}

/** Server side of one exchange: first(clientFirst) -> serverFirst; final(clientFinal) -> serverFinal. */
export class ScramServer {
  private readonly v: ScramVerifier;
  private clientFirstBare = '';
  private serverFirst = '';
  private nonce = '';
  private gs2 = '';
  constructor(v: ScramVerifier) {
    this.v = v;
  }
  first(clientFirst: string): string {
    const m = /^([ny](?:=[^,]*)?|p=[^,]*),([^,]*),(.*)$/.exec(clientFirst);
    if (!m) throw new ScramError('malformed SCRAM client-first-message');
    if (m[1]!.startsWith('p')) throw new ScramError('channel binding is not supported by the gateway');
    this.gs2 = `${m[1]},${m[2]},`;
    this.clientFirstBare = m[3]!;
    const cnonce = attributes(this.clientFirstBare).get('r');
    if (!cnonce) throw new ScramError('SCRAM client-first-message has no nonce');
    this.nonce = cnonce + randomBytes(18).toString('base64');
    this.serverFirst = `r=${this.nonce},s=${this.v.salt.toString('base64')},i=${this.v.iterations}`;
    return this.serverFirst;
  }
  /** Returns server-final-message, or throws when the proof is wrong. */
  final(clientFinal: string): string {
    const idx = clientFinal.lastIndexOf(',p=');
    if (idx < 0) throw new ScramError('SCRAM client-final-message has no proof');
    const withoutProof = clientFinal.slice(0, idx);
    const a = attributes(withoutProof);
    if (a.get('c') !== Buffer.from(this.gs2).toString('base64')) throw new ScramError('SCRAM channel binding data mismatch');
    if (a.get('r') !== this.nonce) throw new ScramError('SCRAM nonce mismatch');
    const proof = Buffer.from(clientFinal.slice(idx + 3), 'base64');
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    const clientSignature = hmac(this.v.storedKey, authMessage);
    if (proof.length !== clientSignature.length) throw new ScramError('password authentication failed');
    const clientKey = xor(proof, clientSignature);
    if (!timingSafeEqual(sha256(clientKey), this.v.storedKey)) throw new ScramError('password authentication failed');
    return `v=${hmac(this.v.serverKey, authMessage).toString('base64')}`;
  }
}

/** Client side, for the gateway's own upstream login. */
export class ScramClient {
  private readonly password: string;
  private readonly cnonce = randomBytes(18).toString('base64');
  private clientFirstBare = '';
  private expectedServerSignature: Buffer | null = null;
  constructor(password: string) {
    this.password = password;
  }
  first(): string {
    this.clientFirstBare = `n=*,r=${this.cnonce}`;
    return `n,,${this.clientFirstBare}`;
  }
  final(serverFirst: string): string {
    const a = attributes(serverFirst);
    const nonce = a.get('r');
    const salt = a.get('s');
    const iterations = Number(a.get('i'));
    if (!nonce || !nonce.startsWith(this.cnonce) || !salt || !Number.isInteger(iterations) || iterations < 1) {
      throw new ScramError('malformed SCRAM server-first-message from upstream');
    }
    const salted = pbkdf2Sync(this.password.normalize('NFKC'), Buffer.from(salt, 'base64'), iterations, 32, 'sha256');
    const clientKey = hmac(salted, 'Client Key');
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const proof = xor(clientKey, hmac(sha256(clientKey), authMessage));
    this.expectedServerSignature = hmac(hmac(salted, 'Server Key'), authMessage);
    return `${withoutProof},p=${proof.toString('base64')}`;
  }
  verify(serverFinal: string): void {
    const v = attributes(serverFinal).get('v');
    const got = Buffer.from(v ?? '', 'base64');
    const want = this.expectedServerSignature;
    if (!want || got.length !== want.length || !timingSafeEqual(got, want)) {
      throw new ScramError('upstream server signature did not verify: the server does not know the password');
    }
  }
}

export function md5Password(user: string, password: string, salt: Buffer): string {
  const inner = createHash('md5').update(password + user).digest('hex');
  return 'md5' + createHash('md5').update(Buffer.concat([Buffer.from(inner), salt])).digest('hex');
}
