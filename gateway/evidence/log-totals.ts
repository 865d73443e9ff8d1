// The one count of what a session log records: `verify` counts while it checks the chain, the
// report and the job summary count the same records with the same code, so no two of them can
// disagree about a command. What each number means is documented in docs/session-log.md
// ("Totals"); in short:
//   denied            never ran because of a decision: denied by a rule, or held and then not
//                     approved (by a reviewer, a timeout, the client leaving, the gateway stopping)
//   held              held for a person's approval, whatever came of it
//   approved          held, then approved (these ran)
//   denied after hold held, then denied: counted in `denied` too
//   pending           held, and no verdict in the log (a log cut short)

/** Counts of commands: for the whole run and for each target. */
export interface CommandCounts {
  commands: number;
  denied: number;
  held: number;
  approved: number;
  deniedAfterHold: number;
  pending: number;
  errors: number;
  skipped: number;
  /** Commands whose response or record had values masked, and the values masked in all. */
  maskedCommands: number;
  maskedValues: number;
}

export interface LogTotals extends CommandCounts {
  runId: string | null;
  startedAt: string | null;
  endedAt: string | null;
  records: number;
  sessions: number;
  /** Approvals by approver (`local:alice`, `github:bob`): how many each gave. */
  approvedBy: Map<string, number>;
  protocolErrors: number;
  checkpoints: number;
  targets: string[];
  /** The run-start record's `identity` member: what the runner said, not proof. */
  identity: Record<string, unknown> | null;
  /** The same counts for each target (the run-start's targets first, in their order). */
  byTarget: Map<string, CommandCounts>;
}

export function emptyCounts(): CommandCounts {
  return { commands: 0, denied: 0, held: 0, approved: 0, deniedAfterHold: 0, pending: 0, errors: 0, skipped: 0, maskedCommands: 0, maskedValues: 0 };
}

export function emptyTotals(): LogTotals {
  return {
    ...emptyCounts(), runId: null, startedAt: null, endedAt: null, records: 0, sessions: 0, approvedBy: new Map(),
    protocolErrors: 0, checkpoints: 0, targets: [], identity: null, byTarget: new Map(),
  };
}

export function copyTotals(t: LogTotals): LogTotals {
  return { ...t, approvedBy: new Map(t.approvedBy), targets: [...t.targets], byTarget: new Map([...t.byTarget].map(([k, c]) => [k, { ...c }])) };
}

/** Commands that ran without being held or denied: what is left of the commands. */
export function allowedOf(c: CommandCounts): number {
  return c.commands - c.held - (c.denied - c.deniedAfterHold);
}

/** Held and not approved: denied after the hold, or still without a verdict. */
export function notApprovedOf(c: CommandCounts): number {
  return c.deniedAfterHold + c.pending;
}

type Rec = Record<string, unknown>;
type Counter = keyof CommandCounts;

/** A held command: its target, its verdict so far, and whether it was counted as denied yet. */
interface Hold { target: string; verdict: 'pending' | 'approved' | 'denied'; deniedCounted: boolean }

/**
 * Feeds records, in log order, into `totals`. It keeps the session-to-target map and the held
 * commands still awaiting their verdict or result (a verdict and its result may come in either
 * order), nothing per allowed command: logs reach millions of records.
 */
export class TotalsTally {
  readonly totals: LogTotals;
  private readonly sessionTarget = new Map<string, string>();
  private readonly holds = new Map<string, Hold>();

  constructor(totals: LogTotals = emptyTotals()) {
    this.totals = totals;
  }

  add(r: Rec): void {
    const s = this.totals;
    s.records++;
    switch (r.type) {
      case 'run-start':
        s.runId = String(r.run ?? '');
        s.startedAt = String(r.time ?? '');
        s.identity = r.identity !== null && typeof r.identity === 'object' ? (r.identity as Rec) : null;
        s.targets = Array.isArray(r.targets) ? (r.targets as (Rec | null)[]).map((t) => String(t?.name ?? '')) : [];
        for (const t of s.targets) if (!s.byTarget.has(t)) s.byTarget.set(t, emptyCounts());
        break;
      case 'session-open':
        s.sessions++;
        this.sessionTarget.set(String(r.session ?? ''), String(r.target ?? ''));
        break;
      case 'command':
        this.count(String(r.target ?? this.sessionTarget.get(String(r.session ?? '')) ?? ''), 'commands');
        break;
      case 'approval-request': {
        const target = this.targetOf(r);
        this.holds.set(String(r.command ?? ''), { target, verdict: 'pending', deniedCounted: false });
        this.count(target, 'held');
        this.count(target, 'pending');
        break;
      }
      case 'approval':
        this.verdict(r);
        break;
      case 'result':
        this.result(r);
        break;
      case 'protocol-error':
        s.protocolErrors++;
        break;
      case 'checkpoint':
        s.checkpoints++;
        break;
      case 'run-end':
        s.endedAt = String(r.time ?? '');
        break;
    }
  }

  private verdict(r: Rec): void {
    const key = String(r.command ?? '');
    const hold = this.holds.get(key);
    const target = hold?.target ?? this.targetOf(r);
    if (hold?.verdict === 'pending') this.count(target, 'pending', -1);
    if (r.outcome === 'approved') {
      this.count(target, 'approved');
      const by = String(r.by ?? 'unknown');
      this.totals.approvedBy.set(by, (this.totals.approvedBy.get(by) ?? 0) + 1);
      this.holds.delete(key);
      return;
    }
    this.count(target, 'deniedAfterHold');
    if (!hold) return void this.count(target, 'denied');
    hold.verdict = 'denied';
    if (!hold.deniedCounted) this.count(target, 'denied');
    // Counted both ways now: the result (if it came first) or the verdict said denied.
    if (hold.deniedCounted) this.holds.delete(key);
    else hold.deniedCounted = true;
  }

  private result(r: Rec): void {
    const target = this.targetOf(r);
    if (r.status === 'error') this.count(target, 'errors');
    else if (r.status === 'skipped') this.count(target, 'skipped');
    else if (r.status === 'denied') {
      const key = String(r.command ?? '');
      const hold = this.holds.get(key);
      if (!hold) this.count(target, 'denied');
      else if (hold.deniedCounted) this.holds.delete(key);
      else {
        // The result came before the verdict: counted once, when either arrives.
        this.count(hold.target, 'denied');
        hold.deniedCounted = true;
      }
    }
    const masked = r.masked as { values?: unknown } | undefined;
    if (masked) {
      this.count(target, 'maskedCommands');
      this.count(target, 'maskedValues', typeof masked.values === 'number' ? masked.values : 0);
    }
  }

  private targetOf(r: Rec): string {
    return this.sessionTarget.get(String(r.session ?? '')) ?? '';
  }

  private count(target: string, k: Counter, n = 1): void {
    this.totals[k] += n;
    let c = this.totals.byTarget.get(target);
    if (!c) this.totals.byTarget.set(target, (c = emptyCounts()));
    c[k] += n;
  }
}
