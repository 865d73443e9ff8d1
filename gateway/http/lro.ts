// Azure Resource Manager's long-running operations: a 201/202 names where to poll
// (`Azure-AsyncOperation`, `Location`, `Operation-Location`). Through the reverse proxy those URLs
// are rewritten to come back through the gateway; every poll is an ordinary request (recorded and
// decided), and once a poll shows the operation ended, an `operation` record ties its final
// status (Succeeded, Failed, Canceled) to the command that started it.

export const LRO_HEADERS = ['azure-asyncoperation', 'location', 'operation-location'] as const;
export type OperationStatus = 'Succeeded' | 'Failed' | 'Canceled';

interface Pending {
  command: string;
  /** Which header named the URL: the poll's answer is read by its contract. */
  header: (typeof LRO_HEADERS)[number];
}

/** Operations started through one target, by the path and query clients poll. */
export class OperationTracker {
  private readonly pending = new Map<string, Pending>();
  /** Bounded: a client that never polls must not grow the daemon. */
  private static readonly MAX = 10_000;

  /**
   * Remembers the poll URLs a response named, for the command that started the operation, and
   * returns the headers rewritten for the client: same-origin URLs point at `gatewayOrigin`
   * (null: the forward proxy, where the client reaches the target's own URL through the gateway
   * anyway). `Azure-AsyncOperation` and `Operation-Location` start an operation on any 2xx (a PUT
   * still provisioning answers 200 or 201), `Location` on 201 and 202; a same-origin `Location`
   * of a redirect is rewritten (so the client follows it through the gateway) but starts nothing.
   * `operation` says whether this answer started one.
   */
  started(command: string, targetOrigin: string, status: number, headers: Record<string, string | string[] | undefined>, gatewayOrigin: string | null): { headers: Record<string, string>; operation: boolean } {
    const rewritten: Record<string, string> = {};
    let operation = false;
    for (const h of LRO_HEADERS) {
      const v = headers[h];
      if (typeof v !== 'string') continue;
      let url: URL;
      try {
        url = new URL(v, targetOrigin);
      } catch {
        continue;
      }
      if (url.origin !== targetOrigin) continue;
      const starts = h === 'location' ? status === 201 || status === 202 : status >= 200 && status < 300;
      const redirect = h === 'location' && status >= 300 && status < 400;
      if (!starts && !redirect) continue;
      if (starts) {
        if (this.pending.size >= OperationTracker.MAX) this.pending.delete(this.pending.keys().next().value!);
        this.pending.set(key(url.pathname + url.search), { command, header: h });
        operation = true;
      }
      if (gatewayOrigin) rewritten[h] = gatewayOrigin + url.pathname + url.search;
    }
    return { headers: rewritten, operation };
  }

  /** The operation a request polls, if it polls one. */
  polled(pathAndQuery: string): Pending | undefined {
    return this.pending.get(key(pathAndQuery));
  }

  /**
   * Reads a poll's answer by its header's contract; returns the final status once the operation
   * ended (and forgets it), or null while it runs or when the answer says nothing readable.
   */
  ended(pathAndQuery: string, p: Pending, status: number, body: string | null): OperationStatus | null {
    const done = finalStatus(p.header, status, body);
    if (done) this.pending.delete(key(pathAndQuery));
    return done;
  }
}

/** Paths compare without case (ARM's are case-insensitive); the query stays as written. */
function key(pathAndQuery: string): string {
  const q = pathAndQuery.indexOf('?');
  return q < 0 ? pathAndQuery.toLowerCase() : pathAndQuery.slice(0, q).toLowerCase() + pathAndQuery.slice(q);
}

/**
 * Azure-AsyncOperation (and Operation-Location) polls answer 200 with `{"status": ...}`:
 * InProgress (or any other non-terminal word) until Succeeded, Failed or Canceled. Location polls
 * answer 202 while running, then the final result: 200/201/204 succeeded, an error status failed.
 */
export function finalStatus(header: Pending['header'], status: number, body: string | null): OperationStatus | null {
  if (header === 'location') {
    if (status === 202) return null;
    return status >= 200 && status < 300 ? 'Succeeded' : status >= 400 ? 'Failed' : null;
  }
  if (status >= 400) return null;
  if (body === null) return null;
  let s: unknown;
  try {
    s = (JSON.parse(body) as { status?: unknown }).status;
  } catch {
    return null;
  }
  if (typeof s !== 'string') return null;
  const lower = s.toLowerCase();
  return lower === 'succeeded' ? 'Succeeded' : lower === 'failed' ? 'Failed' : lower === 'canceled' || lower === 'cancelled' ? 'Canceled' : null;
}
