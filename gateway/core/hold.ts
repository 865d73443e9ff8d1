// A command held for approval: the request, what the waiting client is told (a NOTICE at once
// and progress NOTICEs while it waits, which also keep idle-timeouts of clients and proxies
// from firing), and the decision that replaces the approve once the verdict is in.
import { encodeNoticeResponse } from './codec/backend.ts';
import { formatDuration, type ApprovalBroker, type PendingApproval, type Verdict } from '../approval/broker.ts';
import type { CommandRecorder, SessionRecorder } from '../core/recorder.ts';
import type { Decision } from '../policy/engine.ts';

/** What the session does with the held message once the verdict is in. */
export interface HoldPlan {
  decision: Decision;
  cmd: CommandRecorder;
  text: string;
  /** Called once approved, before the held message itself goes to the server. */
  approved(): void;
  /** Messages for the server once denied: a refusal raising `sqlState`. */
  denied(d: Decision, sqlState: string): Buffer[];
}

export const MAX_PROGRESS_INTERVAL_MS = 30_000;

export class HeldCommand {
  readonly plan: HoldPlan;
  readonly pending: PendingApproval;
  private readonly timer: NodeJS.Timeout;
  private readonly startedAt = Date.now();

  constructor(plan: HoldPlan, broker: ApprovalBroker, rec: SessionRecorder, notify: (notice: Buffer) => void) {
    this.plan = plan;
    const d = plan.decision;
    this.pending = broker.request({ session: rec.id, command: plan.cmd.id, target: rec.target, text: plan.text, rule: d.rule, reason: d.reason });
    const req = this.pending.request;
    try {
      rec.event('approval-request', { command: plan.cmd.id, id: req.id, rule: d.rule, reason: d.reason, expires_at: req.expiresAt });
    } catch (e) {
      // A request the log does not show must not stay answerable.
      this.pending.withdraw('gateway', 'the session log failed');
      throw e;
    }
    const timeout = formatDuration(broker.timeoutMs);
    notify(encodeNoticeResponse({
      severity: 'NOTICE',
      code: '00000',
      message: `gateway: waiting for approval: rule "${d.rule}" holds this command as request ${req.id} (denied if there is no verdict within ${timeout})`,
      hint: broker.instructions(req),
    }));
    // Progress at least every 30 s, more often for short timeouts so the client sees some.
    const every = Math.max(1000, Math.min(MAX_PROGRESS_INTERVAL_MS, Math.floor(broker.timeoutMs / 4)));
    this.timer = setInterval(() => {
      const left = Math.max(0, Date.parse(req.expiresAt) - Date.now());
      notify(encodeNoticeResponse({ severity: 'NOTICE', code: '00000', message: `gateway: still waiting for approval of request ${req.id} (${formatDuration(Math.ceil(left / 1000) * 1000)} left): ${broker.instructions(req)}` }));
    }, every);
  }

  get id(): string {
    return this.pending.request.id;
  }

  /** Records the verdict; returns the refusal the server gets instead, or null once approved. */
  settle(v: Verdict, rec: SessionRecorder): Buffer[] | null {
    this.record(v, rec);
    const req = this.pending.request;
    if (v.outcome === 'approved') {
      this.plan.approved();
      return null;
    }
    const d = this.plan.decision;
    const why = v.via === 'timeout' ? `request ${req.id} timed out: ${v.reason}`
      : v.via === 'client' ? `request ${req.id} was cancelled by the client`
      : v.via === 'gateway' ? `request ${req.id} was withdrawn: ${v.reason}`
      : `request ${req.id} was denied by ${v.by}${v.reason ? `: ${v.reason}` : ''}`;
    const denied: Decision = { action: 'deny', rule: d.rule, reason: why, matched: d.matched };
    return this.plan.denied(denied, v.via === 'client' ? '57014' : '42501');
  }

  /** The session ended while waiting: withdraw, and record the verdict and the command's end. */
  abort(by: 'client' | 'gateway', reason: string, rec: SessionRecorder): void {
    this.pending.withdraw(by, reason);
    const v: Verdict = { outcome: 'denied', by, via: by, at: new Date().toISOString(), reason };
    this.record(v, rec);
    this.plan.cmd.finish({ status: 'denied', rule: this.plan.decision.rule, reason });
  }

  private record(v: Verdict, rec: SessionRecorder): void {
    clearInterval(this.timer);
    const req = this.pending.request;
    rec.event('approval', {
      command: this.plan.cmd.id,
      id: req.id,
      outcome: v.outcome,
      by: v.by,
      via: v.via,
      at: v.at,
      waited_ms: Date.now() - this.startedAt,
      ...(v.reason ? { reason: v.reason } : {}),
    });
    if (v.outcome === 'approved') rec.totals.approved++;
  }
}
