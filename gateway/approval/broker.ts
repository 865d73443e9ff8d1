// Held commands become approval requests. Approvers (the local control socket now, PR comments
// later) see every request and may answer it; the first verdict wins. A request nobody answers
// in time is denied, and so is every request still open when its client leaves or the gateway
// stops: a command is never left waiting for an answer that can no longer come.
import { createHash, randomInt } from 'node:crypto';

export interface ApprovalRequest {
  /** Short and unambiguous to type: lower-case letters and digits without look-alikes. */
  id: string;
  run: string;
  session: string;
  command: string;
  target: string;
  /** The command as it will run (masked per the policy's masking rules). */
  text: string;
  /** The record kind of the command (`pg.query`, `ssh.exec`), for how the request is shown. */
  kind?: string;
  rule: string;
  reason: string;
  requestedAt: string;
  expiresAt: string;
  /**
   * SHA-256 of `text` and of every byte that goes to the target once approved (an HTTP body,
   * a statement's parameters): the id is derived from it (with the run) when the broker is bound.
   */
  digest: string;
}

export interface Verdict {
  outcome: 'approved' | 'denied';
  /** Who decided: `local:<user>`, a GitHub login, `timeout`, `client`, `gateway`. */
  by: string;
  /** Which approver (or mechanism) delivered the verdict. */
  via: string;
  at: string;
  reason?: string;
}

export type Answer = Pick<Verdict, 'outcome' | 'by' | 'reason'>;

export interface Approver {
  readonly name: string;
  /** How a person answers this request through this approver, for the waiting client. */
  instructions(req: ApprovalRequest): string;
  /** A new request; `answer` may be called at any time until `settled`. */
  open(req: ApprovalRequest, answer: (a: Answer) => void): void;
  /** The request is settled (by any approver, timeout or cancellation): stop asking. */
  settled(req: ApprovalRequest, verdict: Verdict): void;
}

export interface PendingApproval {
  request: ApprovalRequest;
  verdict: Promise<Verdict>;
  /** Settles the request as denied (client left, statement cancelled, gateway stopping). */
  withdraw(by: string, reason: string): void;
}

const ID_ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';

export class ApprovalBroker {
  readonly timeoutMs: number;
  private readonly runId: string;
  private readonly approvers: Approver[];
  private readonly open = new Map<string, { request: ApprovalRequest; settle: (v: Verdict) => void }>();
  /** Set once the gateway stops: what is asked from then on is denied at once. */
  private closedReason: string | null = null;
  /** What ids are bound to (repository, workflow run and attempt), or null for random ids. */
  private readonly binding: string | null;
  private counter = 0;

  constructor(opts: { runId: string; timeoutMs: number; approvers: Approver[]; binding?: string }) {
    this.runId = opts.runId;
    this.timeoutMs = opts.timeoutMs;
    this.approvers = opts.approvers;
    this.binding = opts.binding ?? null;
  }

  request(fields: Omit<ApprovalRequest, 'id' | 'run' | 'requestedAt' | 'expiresAt' | 'digest'>, forwarded: readonly Buffer[] = []): PendingApproval {
    const now = Date.now();
    const digest = requestDigest(fields.text, forwarded);
    const request: ApprovalRequest = {
      id: this.newId(digest),
      run: this.runId,
      ...fields,
      requestedAt: new Date(now).toISOString(),
      expiresAt: new Date(now + this.timeoutMs).toISOString(),
      digest,
    };
    let settle!: (v: Verdict) => void;
    const verdict = new Promise<Verdict>((resolve) => {
      let done = false;
      const timer = setTimeout(
        () => settle({ outcome: 'denied', by: 'timeout', via: 'timeout', at: new Date().toISOString(), reason: `no verdict within ${formatDuration(this.timeoutMs)}` }),
        this.timeoutMs,
      );
      settle = (v) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.open.delete(request.id);
        for (const a of this.approvers) a.settled(request, v);
        resolve(v);
      };
    });
    this.open.set(request.id, { request, settle });
    for (const a of this.approvers) {
      a.open(request, (ans) => settle({ ...ans, via: a.name, at: new Date().toISOString() }));
    }
    if (this.closedReason !== null) settle({ outcome: 'denied', by: 'gateway', via: 'gateway', at: new Date().toISOString(), reason: this.closedReason });
    return { request, verdict, withdraw: (by, reason) => settle({ outcome: 'denied', by, via: by, at: new Date().toISOString(), reason }) };
  }

  /** How to answer a request, one line per approver. */
  instructions(req: ApprovalRequest): string {
    return this.approvers.map((a) => a.instructions(req)).join('; ');
  }

  pending(): ApprovalRequest[] {
    return [...this.open.values()].map((o) => o.request);
  }

  /** Denies everything waiting, and everything asked from now on (the gateway is stopping). */
  withdrawAll(reason: string): void {
    this.closedReason = reason;
    for (const o of [...this.open.values()]) o.settle({ outcome: 'denied', by: 'gateway', via: 'gateway', at: new Date().toISOString(), reason });
  }

  /**
   * Bound ids are derived from the workflow run and attempt, this gateway run, the command's
   * digest and a counter: an approval naming one cannot be replayed for another command, run or
   * attempt. Otherwise ids are random.
   */
  private newId(digest: string): string {
    for (;;) {
      let id = '';
      if (this.binding !== null) {
        const h = createHash('sha256').update(`${this.binding}\n${this.runId}\n${digest}\n${this.counter++}`).digest();
        for (let i = 0; i < 10; i++) id += ID_ALPHABET[h[i]! % ID_ALPHABET.length];
      } else {
        for (let i = 0; i < 8; i++) id += ID_ALPHABET[randomInt(ID_ALPHABET.length)];
      }
      if (!this.open.has(id)) return id;
    }
  }
}

/**
 * The text and the forwarded bytes, each length-prefixed so no two different pairs hash alike:
 * an approval of one body can never stand for another body under the same displayed text.
 */
export function requestDigest(text: string, forwarded: readonly Buffer[]): string {
  const h = createHash('sha256');
  const part = (b: Buffer): void => {
    const n = Buffer.alloc(8);
    n.writeBigUInt64BE(BigInt(b.length));
    h.update(n).update(b);
  };
  part(Buffer.from(text, 'utf8'));
  for (const b of forwarded) part(b);
  return h.digest('hex');
}

export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
