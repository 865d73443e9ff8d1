// What a session log records, counted while it is verified: the run, its targets, and totals an
// auditor reads first (sessions, commands, denied, approved and by whom, masked, errors).

export interface LogTotals {
  runId: string | null;
  startedAt: string | null;
  endedAt: string | null;
  records: number;
  sessions: number;
  commands: number;
  denied: number;
  approved: number;
  /** Approvals by approver (`local:alice`, `github:bob`): how many each gave. */
  approvedBy: Map<string, number>;
  /** Commands whose response or record had values masked, and the values masked in all. */
  maskedCommands: number;
  maskedValues: number;
  errors: number;
  skipped: number;
  protocolErrors: number;
  checkpoints: number;
  targets: string[];
  /** The run-start record's `identity` member: what the runner said, not proof. */
  identity: Record<string, unknown> | null;
}

export function emptyTotals(): LogTotals {
  return {
    runId: null, startedAt: null, endedAt: null, records: 0, sessions: 0, commands: 0, denied: 0, approved: 0,
    approvedBy: new Map(), maskedCommands: 0, maskedValues: 0, errors: 0, skipped: 0, protocolErrors: 0, checkpoints: 0,
    targets: [], identity: null,
  };
}

export function copyTotals(t: LogTotals): LogTotals {
  return { ...t, approvedBy: new Map(t.approvedBy), targets: [...t.targets] };
}

type Rec = Record<string, unknown>;

export function tally(s: LogTotals, r: Rec): void {
  s.records++;
  switch (r.type) {
    case 'run-start':
      s.runId = String(r.run ?? '');
      s.startedAt = String(r.time ?? '');
      s.identity = r.identity !== null && typeof r.identity === 'object' ? (r.identity as Rec) : null;
      s.targets = Array.isArray(r.targets) ? (r.targets as (Rec | null)[]).map((t) => String(t?.name ?? '')) : [];
      break;
    case 'session-open':
      s.sessions++;
      break;
    case 'command':
      s.commands++;
      break;
    case 'approval':
      if (r.outcome === 'approved') {
        s.approved++;
        const by = String(r.by ?? 'unknown');
        s.approvedBy.set(by, (s.approvedBy.get(by) ?? 0) + 1);
      }
      break;
    case 'result': {
      if (r.status === 'error') s.errors++;
      else if (r.status === 'skipped') s.skipped++;
      else if (r.status === 'denied') s.denied++;
      const masked = r.masked as { values?: unknown } | undefined;
      if (masked) {
        s.maskedCommands++;
        s.maskedValues += typeof masked.values === 'number' ? masked.values : 0;
      }
      break;
    }
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
