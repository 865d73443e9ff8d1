// Every command of a stream-shaped protocol (an SSH exec line, a shell, an sftp operation, a
// forward; an HTTP request) passes here before anything of it reaches the target: decided by the
// one policy engine on its units of facts, recorded, written to the log, held for approval if a
// rule says so. Only an `allowed` answer lets the caller forward; everything else has been
// recorded as denied already. (PostgreSQL pipelines its messages and gates them in its session.)
import type { CoreServices } from './adapter.ts';
import { HeldCommand, type HoldPlan } from './hold.ts';
import type { CommandRecorder, SessionRecorder } from './recorder.ts';
import { decide, decisionRecord, strictest, type Decision, type Facts } from '../policy/engine.ts';

export interface GateRequest {
  /** The command's kind: ssh.exec, ssh.shell, ssh.sftp, ssh.scp, ssh.forward, http.request, ... */
  kind: string;
  /** What a person reads and approves. */
  text: string;
  /** The units the policy decides; null when nothing could be read. */
  units: Facts[] | null;
  /** Why part of the command cannot be known statically (decided as unclassified, strictest wins). */
  unclassified?: string | null;
  details?: Record<string, unknown>;
  /** What the approval request shows, when more than `text` (an HTTP body's summary); masked by the caller. */
  approvalText?: string;
  /** Every byte that goes to the host once approved (the approval request's digest binds them). */
  forwarded: readonly Buffer[];
  /**
   * A command the default allow is not enough for (an SSH port forward): a rule must allow it;
   * otherwise it is denied by the rule named here, with `what` in the reason.
   */
  needsAllowRule?: { rule: string; what: string };
}

export type GateAnswer =
  | { allowed: true; cmd: CommandRecorder }
  | { allowed: false; cmd: CommandRecorder | null; decision: Decision; message: string };

/** How the session tells its client while a command waits, and learns that it went away. */
export interface GateClient {
  tell(line: string): void;
  /** Registers a callback for the client leaving; returns how to unregister it. */
  onGone(cb: () => void): () => void;
}

export class CommandGate {
  private readonly core: CoreServices;
  private readonly rec: SessionRecorder;
  private readonly target: string;
  /** The adapter kind whose conditions read the units (`ssh`, `http`). */
  private readonly adapterKind: string;

  constructor(core: CoreServices, rec: SessionRecorder, target: string, adapterKind: string) {
    this.core = core;
    this.rec = rec;
    this.target = target;
    this.adapterKind = adapterKind;
  }

  decision(req: Pick<GateRequest, 'units' | 'unclassified' | 'needsAllowRule'>): Decision | null {
    const policy = this.core.policy;
    const needs = req.needsAllowRule;
    if (!policy) {
      if (!needs) return null;
      return { action: 'deny', rule: needs.rule, reason: `${needs.what} is denied unless a rule allows it (the policy has no rules)`, matched: [] };
    }
    const facts = { kind: this.adapterKind, target: this.target };
    let d = decide(policy.rules, { ...facts, units: req.units, unclassifiedReason: req.unclassified ?? undefined }, policy.claims);
    if (req.units && req.unclassified) d = strictest(d, decide(policy.rules, { ...facts, units: null, unclassifiedReason: req.unclassified }, policy.claims));
    if (needs && d.action === 'allow' && (d.rule === 'default' || d.rule === 'unclassified')) {
      d = { action: 'deny', rule: needs.rule, reason: `${needs.what} is denied unless a rule allows it (${d.reason})`, matched: d.matched };
    }
    return d;
  }

  /** Shown in the log and the approval request: detectors' findings masked when masking applies to the log. */
  shown(text: string): string {
    const m = this.core.masker;
    return m?.applyTo.log ? (m.maskText(text)?.text ?? text) : text;
  }

  async pass(req: GateRequest, client: GateClient): Promise<GateAnswer> {
    const d = this.decision(req);
    return this.passDecided(req, d, client);
  }

  /** As pass, with a decision made by the caller (a refusal the gateway makes on its own). */
  async passDecided(req: GateRequest, d: Decision | null, client: GateClient): Promise<GateAnswer> {
    const text = this.shown(req.text);
    let cmd: CommandRecorder;
    try {
      cmd = this.rec.beginCommand({
        kind: req.kind,
        text,
        ...(req.units ? { facts: req.units } : {}),
        ...(req.details ? { details: req.details } : {}),
        ...(d ? { decision: decisionRecord(d) } : {}),
        ...(req.unclassified ? { unclassified: req.unclassified } : {}),
      });
    } catch (e) {
      return this.logFailed(e);
    }
    const failure = await new Promise<Error | null>((resolve) => this.rec.writer.whenWritten((err) => resolve(err ?? null)));
    if (failure) return this.logFailed(failure, cmd);
    if (!d || d.action === 'allow') return { allowed: true, cmd };
    if (d.action === 'deny') return this.refuse(cmd, d);
    const broker = this.core.approvals;
    if (!broker) return this.refuse(cmd, { ...d, action: 'deny', reason: `${d.reason}; no approver is configured` });
    const verdict = await new Promise<Decision | null>((resolve) => {
      const plan: HoldPlan<Decision> = { decision: d, cmd, text: req.approvalText ?? text, approved: () => undefined, denied: (refusal) => refusal };
      let held: HeldCommand<Decision>;
      try {
        held = new HeldCommand(plan, req.forwarded, broker, this.rec, (message, hint) => client.tell(hint ? `${message}\n${hint}` : message));
      } catch (e) {
        return resolve({ action: 'deny', rule: d.rule, reason: `approval could not be requested: ${(e as Error).message}`, matched: d.matched });
      }
      const off = client.onGone(() => {
        held.abort('client', 'the client disconnected while waiting', this.rec);
        resolve({ action: 'deny', rule: d.rule, reason: 'the client disconnected while waiting', matched: d.matched });
      });
      void held.pending.verdict.then((v) => {
        off();
        if (cmd.finished) return;
        try {
          resolve(held.settle(v, this.rec));
        } catch (e) {
          resolve({ action: 'deny', rule: d.rule, reason: `the verdict could not be recorded: ${(e as Error).message}`, matched: d.matched });
        }
      });
    });
    if (!verdict) return { allowed: true, cmd };
    return this.refuse(cmd, verdict);
  }

  private refuse(cmd: CommandRecorder, d: Decision): GateAnswer {
    if (!cmd.finished) cmd.finish({ status: 'denied', rule: d.rule, reason: d.reason });
    return { allowed: false, cmd, decision: d, message: `gateway: denied by rule "${d.rule}": ${d.reason}` };
  }

  private logFailed(e: unknown, cmd: CommandRecorder | null = null): GateAnswer {
    const reason = `the session log cannot be written (${(e as Error).message}); nothing was sent`;
    return { allowed: false, cmd, decision: { action: 'deny', rule: 'session-log', reason, matched: [] }, message: `gateway: ${reason}` };
  }
}
