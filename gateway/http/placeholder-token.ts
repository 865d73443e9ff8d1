// Placeholder access tokens: what the gateway's managed-identity endpoint (identity-endpoint.ts)
// hands to `az`, Terraform and the Azure SDKs instead of a real Entra token.
//
// A placeholder is a JWT signed with HS256 under a key made at random for this run and held only
// in the gateway's memory, so nothing else can mint or verify one, and none outlives the run. It
// carries the identity's non-secret ids (tid, oid, appid) because tools decode the token they are
// handed without verifying it: `az login --identity` reads `tid` to pick the tenant, Terraform's
// azurerm provider reads `oid` and `tid`. It is worthless anywhere but at the gateway: the gateway
// replaces any Authorization header it receives with the target's real credential, so a
// placeholder never reaches Azure, and Azure would reject it if it did (wrong issuer, no
// Microsoft signature). A real Entra token is never minted or returned here.
//
// Signing and checking are synchronous (node:crypto's HMAC) so that the proxy can check a
// bearer on the hot path without a promise per request; the format is plain RFC 7519 (the unit
// test verifies these tokens with jose, and checks jose-signed ones).
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';

export const PLACEHOLDER_ISSUER = 'gateway-action';
const DEFAULT_SUFFIX = '/.default';
const MAX_TOKEN_CHARS = 8192;
const MAX_LIFETIME_S = 24 * 3600;
const SEGMENT = /^[A-Za-z0-9_-]+$/;

/** Non-secret identity claims copied into placeholders for tools that decode them. */
export interface IdentityClaims {
  /** Tenant id. */
  tid?: string;
  /** Object id of the identity's service principal. */
  oid?: string;
  /** Application (client) id. */
  appid?: string;
}

export interface PlaceholderCheck {
  /** The scope the placeholder was minted for, e.g. `https://management.azure.com/.default`. */
  scope: string;
}

export interface PlaceholderTokensOptions {
  /** The clock in seconds since the epoch; tests pass a fixed one. Default: the system clock. */
  now?: () => number;
}

const HEADER = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));

export class PlaceholderTokens {
  readonly #key: Buffer;
  readonly #now: () => number;

  constructor(options: PlaceholderTokensOptions = {}) {
    this.#key = randomBytes(32);
    this.#now = options.now ?? (() => Math.floor(Date.now() / 1000));
  }

  /**
   * A placeholder for `scope` (a `.default` scope: `https://management.azure.com/.default`, or
   * `<app id GUID>/.default`), valid for `lifetimeS` seconds. `aud` is the scope's resource.
   */
  mint(scope: string, claims: IdentityClaims, lifetimeS: number): string {
    if (!scope.endsWith(DEFAULT_SUFFIX) || scope.length === DEFAULT_SUFFIX.length) {
      throw new Error(`placeholder scope must be a resource's .default scope, got ${JSON.stringify(scope)}`);
    }
    if (!Number.isInteger(lifetimeS) || lifetimeS <= 0 || lifetimeS > MAX_LIFETIME_S) {
      throw new Error(`placeholder lifetime must be 1..${MAX_LIFETIME_S} seconds, got ${lifetimeS}`);
    }
    const now = this.#now();
    const payload: Record<string, string | number> = {
      iss: PLACEHOLDER_ISSUER,
      aud: scope.slice(0, -DEFAULT_SUFFIX.length),
      iat: now,
      nbf: now,
      exp: now + lifetimeS,
      jti: randomUUID(),
      idtyp: 'app',
    };
    for (const name of ['tid', 'oid', 'appid'] as const) {
      const value = claims[name];
      if (value !== undefined && value !== '') payload[name] = value;
    }
    if (claims.oid) payload.sub = claims.oid;
    const signingInput = `${HEADER}.${b64url(JSON.stringify(payload))}`;
    return `${signingInput}.${this.#sign(signingInput).toString('base64url')}`;
  }

  /** The placeholder's scope when `token` was minted by this instance and has not expired; else null. */
  check(token: string): PlaceholderCheck | null {
    if (typeof token !== 'string' || token.length > MAX_TOKEN_CHARS) return null;
    const parts = token.split('.');
    if (parts.length !== 3 || !parts.every((p) => SEGMENT.test(p))) return null;
    const [header, body, signature] = parts as [string, string, string];
    const expected = this.#sign(`${header}.${body}`);
    const given = Buffer.from(signature, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
    // The signature proves this run minted the token; the header and claims are still checked
    // so that a change of format here can never turn into accepting something unforeseen.
    const head = parseJson(header);
    if (!head || head.alg !== 'HS256') return null;
    const claims = parseJson(body);
    if (!claims || claims.iss !== PLACEHOLDER_ISSUER || typeof claims.aud !== 'string' || claims.aud === '') return null;
    if (typeof claims.exp !== 'number' || typeof claims.nbf !== 'number') return null;
    const now = this.#now();
    if (now >= claims.exp || now < claims.nbf) return null;
    return { scope: claims.aud + DEFAULT_SUFFIX };
  }

  #sign(signingInput: string): Buffer {
    return createHmac('sha256', this.#key).update(signingInput).digest();
  }
}

function b64url(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}

function parseJson(segment: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
