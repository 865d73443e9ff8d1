// What the job's evidence amounts to: counts per target and decision, the commands a reviewer
// must see, and the check's state under `fail-on`. Pure over the verification and the timeline.
import type { Verification } from '../gateway/evidence/verification.ts';
import { outcomeOf, type Timeline, type TimelineCommand } from '../gateway/evidence/timeline.ts';
import type { FailOn } from './inputs.ts';

export interface TargetCounts { target: string; commands: number; allowed: number; denied: number; approved: number; unapproved: number; errors: number; masked: number }

export interface Outcome {
  targets: TargetCounts[];
  /** Denied commands and commands held for approval (approved or not), in log order. */
  attention: TimelineCommand[];
  state: 'success' | 'failure';
  description: string;
}

export function summarize(v: Verification, t: Timeline, failOn: FailOn, daemonDied: boolean, missingEvidence: string | null = null): Outcome {
  const byTarget = new Map<string, TargetCounts>();
  for (const x of t.targets) byTarget.set(x.name, { target: x.name, commands: 0, allowed: 0, denied: 0, approved: 0, unapproved: 0, errors: 0, masked: 0 });
  const attention: TimelineCommand[] = [];
  for (const s of t.sessions) {
    for (const c of s.commands) {
      const n = byTarget.get(c.target) ?? { target: c.target, commands: 0, allowed: 0, denied: 0, approved: 0, unapproved: 0, errors: 0, masked: 0 };
      byTarget.set(c.target, n);
      n.commands++;
      const out = outcomeOf(c);
      if (c.approval?.outcome === 'approved') n.approved++;
      else if (c.approval) n.unapproved++;
      else if (out === 'denied') n.denied++;
      else n.allowed++;
      if (out === 'error') n.errors++;
      if (c.masked) n.masked++;
      if (out === 'denied' || c.approval) attention.push(c);
    }
  }
  const targets = [...byTarget.values()];
  const sum = (k: keyof Omit<TargetCounts, 'target'>): number => targets.reduce((a, x) => a + x[k], 0);
  const denied = sum('denied');
  const unapproved = sum('unapproved');
  const evidenceOk = v.status === 'valid' && !daemonDied && !missingEvidence;
  const policyFails = failOn === 'denied' ? denied + unapproved > 0 : failOn === 'unapproved' ? unapproved > 0 : false;
  const state = evidenceOk && !policyFails ? 'success' : 'failure';
  const counts = `${sum('commands')} commands, ${denied} denied, ${sum('approved')} approved, ${unapproved} not approved`;
  const evidence = daemonDied ? 'the gateway did not stop cleanly: log unsealed' : v.status !== 'valid' ? `log ${v.status}` : missingEvidence ? `log verified, ${missingEvidence}` : 'log verified';
  return { targets, attention, state, description: `${counts}; ${evidence}`.slice(0, 140) };
}
