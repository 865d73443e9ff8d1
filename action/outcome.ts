// What the job's evidence amounts to: counts per target and decision, the commands a reviewer
// must see, and the check's state under `fail-on`. The counts are the log's totals as `verify`
// and the report count them (gateway/evidence/log-totals.ts), never a count of their own.
import type { Verification } from '../gateway/evidence/verification.ts';
import { outcomeOf, type Timeline, type TimelineCommand, type TimelineConfined } from '../gateway/evidence/timeline.ts';
import { allowedOf, emptyCounts, notApprovedOf, type CommandCounts } from '../gateway/evidence/log-totals.ts';
import type { FailOn } from './inputs.ts';

export interface TargetCounts {
  target: string;
  commands: number;
  /** Ran without a hold and without a denial. */
  allowed: number;
  /** Never ran: denied by a rule, or held and then not approved. */
  denied: number;
  held: number;
  approved: number;
  /** Held and not approved: denied after the hold, or no verdict in the log (counted in `denied` when denied). */
  unapproved: number;
  errors: number;
  masked: number;
}

export interface Outcome {
  targets: TargetCounts[];
  /** Denied commands and commands held for approval (approved or not), in log order. */
  attention: TimelineCommand[];
  state: 'success' | 'failure';
  description: string;
  /** Records of types this version does not know, by type (shown in the report as recorded). */
  unknownTypes: Map<string, number>;
  /** Commands that ran confined (gateway-action exec --confine). */
  confined: TimelineConfined[];
}

function targetCounts(target: string, c: CommandCounts): TargetCounts {
  return { target, commands: c.commands, allowed: allowedOf(c), denied: c.denied, held: c.held, approved: c.approved, unapproved: notApprovedOf(c), errors: c.errors, masked: c.maskedCommands };
}

export function summarize(v: Verification, t: Timeline, failOn: FailOn, daemonDied: boolean, missingEvidence: string | null = null): Outcome {
  // Every record as read (the same count as verify's; the verdict says whether to trust it).
  const totals = t.totals;
  // A result no session names counts under no target: listed only if it holds commands.
  const names = [...new Set([...t.targets.map((x) => x.name), ...totals.byTarget.keys()])].filter((n) => n !== '' || (totals.byTarget.get('')?.commands ?? 0) > 0);
  const targets = names.map((n) => targetCounts(n, totals.byTarget.get(n) ?? emptyCounts()));
  const attention = t.sessions.flatMap((s) => s.commands).filter((c) => outcomeOf(c) === 'denied' || c.approval !== null);
  const unapproved = notApprovedOf(totals);
  const evidenceOk = v.status === 'valid' && !daemonDied && !missingEvidence;
  // fail-on: denied fails on any command that did not run as asked (denied, or held without a
  // verdict); unapproved only on held commands that were not approved.
  const policyFails = failOn === 'denied' ? totals.denied + totals.pending > 0 : failOn === 'unapproved' ? unapproved > 0 : false;
  const state = evidenceOk && !policyFails ? 'success' : 'failure';
  const counts = `${totals.commands} commands, ${totals.denied} denied, ${totals.approved} approved, ${unapproved} not approved`;
  const evidence = daemonDied ? 'the gateway did not stop cleanly: log unsealed' : v.status !== 'valid' ? `log ${v.status}` : missingEvidence ? `log verified, ${missingEvidence}` : 'log verified';
  return { targets, attention, state, description: `${counts}; ${evidence}`.slice(0, 140), unknownTypes: t.unknownTypes, confined: t.confined };
}
