// Signed checkpoints: an Ed25519 key that exists only in the daemon's memory signs, every so
// often and at the seal, the chain head. Signing is synchronous (node:crypto) so a checkpoint
// takes its place in the chain at once; the output is a standard compact JWS (alg EdDSA) that
// jose, or any JOSE library, verifies. Ed25519 is deterministic, so jose's CompactSign produces
// the same bytes (a unit test holds us to that).
import { createHash, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { canonicalJson } from './canonical-json.ts';

export interface PublicJwk { kty: 'OKP'; crv: 'Ed25519'; x: string }

/** What a checkpoint's JWS signs: the last record it covers and that record's hash. */
export interface CheckpointPayload {
  run: string;
  /** Sequence number of the last record covered (the record just before the checkpoint). */
  seq: number;
  /** Hash of that record: the chain head. */
  head: string;
  /** True for the final checkpoint: nothing may follow it. */
  seal: boolean;
  /** The checkpoint record's own `time`: signed, so even the seal's record is covered. */
  time: string;
}

export const JWS_TYPE = 'gateway-action-checkpoint';

/** The audience of the OIDC token that binds a key: it names the key and nothing else. */
export function keyAudience(thumbprint: string): string {
  return `gateway-action:jwk:${thumbprint}`;
}

/** RFC 7638 JWK SHA-256 thumbprint of an Ed25519 public key (base64url, no padding). */
export function jwkThumbprint(jwk: PublicJwk): string {
  // Required members only, in lexicographic order, no whitespace (RFC 8037 section 2).
  return createHash('sha256').update(`{"crv":"${jwk.crv}","kty":"${jwk.kty}","x":"${jwk.x}"}`).digest('base64url');
}

export function checkpointPayloadText(p: CheckpointPayload): string {
  return canonicalJson({ head: p.head, run: p.run, seal: p.seal, seq: p.seq, time: p.time });
}

export class CheckpointSigner {
  readonly jwk: PublicJwk;
  readonly thumbprint: string;
  private readonly privateKey: KeyObject;
  private readonly header: string;

  constructor() {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const x = (publicKey.export({ format: 'jwk' }) as { x: string }).x;
    this.jwk = { kty: 'OKP', crv: 'Ed25519', x };
    this.thumbprint = jwkThumbprint(this.jwk);
    this.privateKey = privateKey;
    this.header = b64(canonicalJson({ alg: 'EdDSA', kid: this.thumbprint, typ: JWS_TYPE }));
  }

  /** Compact JWS over the canonical payload. */
  sign(p: CheckpointPayload): string {
    const input = this.header + '.' + b64(checkpointPayloadText(p));
    return input + '.' + sign(null, Buffer.from(input), this.privateKey).toString('base64url');
  }
}

/** A checkpoint signature check against the log's public key, or why it fails. */
export class CheckpointVerifier {
  private readonly key: KeyObject;
  readonly thumbprint: string;

  constructor(jwk: unknown) {
    if (!isPublicJwk(jwk)) throw new Error('the run-start key is not an Ed25519 public JWK');
    this.key = createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, format: 'jwk' });
    this.thumbprint = jwkThumbprint(jwk);
  }

  /** Null when `jws` is a valid signature by this key over exactly `expected`. */
  problem(jws: unknown, expected: CheckpointPayload): string | null {
    if (typeof jws !== 'string') return 'has no JWS';
    const parts = jws.split('.');
    if (parts.length !== 3) return 'has a JWS that is not in compact form';
    const [h, p, s] = parts as [string, string, string];
    let header: unknown;
    try {
      header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'));
    } catch {
      return 'has a JWS whose header is not JSON';
    }
    if (header === null || typeof header !== 'object') return 'has a JWS whose header is not a JSON object';
    const alg = (header as { alg?: unknown }).alg;
    if (alg !== 'EdDSA') return `has a JWS with algorithm ${typeof alg === 'string' ? JSON.stringify(alg.slice(0, 40)) : typeof alg}, expected EdDSA`;
    // Node's base64url decoder skips stray characters: only the one canonical spelling counts,
    // or the seal's record could be re-spelled without the key.
    if (s.length !== 86 || Buffer.from(s, 'base64url').toString('base64url') !== s) return 'has a JWS signature that is not canonical base64url';
    if (!verify(null, Buffer.from(h + '.' + p), this.key, Buffer.from(s, 'base64url'))) {
      return 'has a signature that does not verify with the log\'s public key';
    }
    const signed = Buffer.from(p, 'base64url').toString('utf8');
    if (signed !== checkpointPayloadText(expected)) {
      return `signs ${signed.slice(0, 300)}, which is not this position in the chain (expected ${checkpointPayloadText(expected)})`;
    }
    return null;
  }
}

export function isPublicJwk(v: unknown): v is PublicJwk {
  const j = v as PublicJwk | null;
  return typeof j === 'object' && j !== null && j.kty === 'OKP' && j.crv === 'Ed25519' && typeof j.x === 'string' && /^[A-Za-z0-9_-]{43}$/.test(j.x);
}

function b64(s: string): string {
  return Buffer.from(s).toString('base64url');
}
