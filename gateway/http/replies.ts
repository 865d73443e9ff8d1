// What the gateway itself answers an HTTP client: Azure Resource Manager's error shape
// (`{"error":{"code","message"}}`), which az, Terraform and the Azure SDKs print as they print
// ARM's own errors, so a refusal reads the same in every tool.
import type { HttpResponse } from './exchange-types.ts';

export function sendError(res: HttpResponse, status: number, code: string, message: string): void {
  if (res.headersSent) {
    // Too late for a status: the body is cut off, which every client reports as an error.
    res.destroy();
    return;
  }
  const body = JSON.stringify({ error: { code, message } });
  try {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'x-gateway-refusal': code });
    res.end(body);
  } catch {
    res.destroy();
  }
}

/** Refusal codes, one per reason the gateway answers instead of the target. */
export const REFUSAL = {
  denied: 'GatewayPolicyDenied',
  /** A request without the per-run credential the gateway handed out. */
  unauthorized: 'GatewayUnauthorized',
  log: 'GatewaySessionLogUnavailable',
  unreadable: 'GatewayUnreadableRequest',
  upstream: 'GatewayUpstreamError',
  /** A response masking cannot read (compressed, binary) while masking is on. */
  encoding: 'GatewayUnmaskableBody',
} as const;
