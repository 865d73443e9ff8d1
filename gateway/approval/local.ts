// The local approver: a person on the same machine, as the same OS user, answers with
// `gateway-action approve ID` / `deny ID`, which reach the daemon over its owner-only control
// socket. Only that user can connect, so the verdict is recorded as theirs.
import os from 'node:os';
import type { Answer, ApprovalRequest, Approver, Verdict } from './broker.ts';

export class LocalApprover implements Approver {
  readonly name = 'local';
  private readonly waiting = new Map<string, { request: ApprovalRequest; answer: (a: Answer) => void }>();
  private readonly user = `local:${os.userInfo().username}`;

  instructions(req: ApprovalRequest): string {
    return `approve with \`gateway-action approve ${req.id}\`, deny with \`gateway-action deny ${req.id} --reason TEXT\``;
  }

  open(request: ApprovalRequest, answer: (a: Answer) => void): void {
    this.waiting.set(request.id, { request, answer });
  }

  settled(req: ApprovalRequest, _verdict: Verdict): void {
    this.waiting.delete(req.id);
  }

  list(): ApprovalRequest[] {
    return [...this.waiting.values()].map((w) => w.request);
  }

  /** Answers a waiting request; throws with the pending ids when there is no such request. */
  answer(id: string, outcome: 'approved' | 'denied', reason?: string): ApprovalRequest {
    const w = this.waiting.get(id);
    if (!w) throw new Error(`no request ${id} is waiting for approval${this.waiting.size ? ` (waiting: ${[...this.waiting.keys()].join(', ')})` : ''}`);
    w.answer({ outcome, by: this.user, ...(reason ? { reason } : {}) });
    return w.request;
  }
}
