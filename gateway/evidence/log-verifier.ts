// Recomputes a session log's hash chain and summarizes what it records. Pure over the file's
// text, so it runs offline on a downloaded artifact.
import { createHash } from 'node:crypto';
import { canonicalJson } from './canonical-json.ts';
import { GENESIS_HASH, LOG_FORMAT } from './log-writer.ts';

export type VerifyStatus = 'valid' | 'tampered' | 'unsealed' | 'unreadable';

/** Exit codes of `gateway-action verify`, documented in docs/session-log.md. */
export const VERIFY_EXIT: Record<VerifyStatus, number> = { valid: 0, tampered: 1, unreadable: 3, unsealed: 4 };

export interface VerifySummary {
  runId: string | null;
  startedAt: string | null;
  endedAt: string | null;
  records: number;
  sessions: number;
  commands: number;
  errors: number;
  skipped: number;
  protocolErrors: number;
  targets: string[];
  identity: Record<string, unknown> | null;
}

export interface VerifyResult {
  status: VerifyStatus;
  /** What is wrong, naming the record by sequence number and line. */
  problem: string | null;
  sealed: boolean;
  summary: VerifySummary;
}

type Rec = Record<string, unknown>;

export function verifyLogText(text: string): VerifyResult {
  const summary: VerifySummary = {
    runId: null, startedAt: null, endedAt: null, records: 0, sessions: 0, commands: 0,
    errors: 0, skipped: 0, protocolErrors: 0, targets: [], identity: null,
  };
  const result = (status: VerifyStatus, problem: string | null, sealed = false): VerifyResult => ({ status, problem, sealed, summary });

  if (text.length === 0) return result('unreadable', 'the file is empty');
  const lines = text.split('\n');
  const torn = lines[lines.length - 1] !== '';
  if (!torn) lines.pop();

  let prev = GENESIS_HASH;
  let sealed = false;
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const where = `record ${i} (line ${lineNo})`;
    const isLast = i === lines.length - 1;
    let rec: Rec;
    try {
      const parsed: unknown = JSON.parse(lines[i]!);
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
      rec = parsed as Rec;
    } catch {
      if (i === 0) return result('unreadable', `line 1 is not a session log record`);
      if (isLast && torn) return result('unsealed', `${where} is torn (the file ends mid-record); ${i} records before it verify`);
      return result('tampered', `${where} is not valid JSON`);
    }
    if (sealed) return result('tampered', `${where} was appended after the seal`);
    const { hash, ...rest } = rec;
    if (i === 0 && (rest.type !== 'run-start' || rest.format !== LOG_FORMAT)) {
      return result('unreadable', `line 1 is not the start of a ${LOG_FORMAT} log`);
    }
    if (rest.seq !== i) return result('tampered', `${where} has sequence number ${JSON.stringify(rest.seq)}, expected ${i} (records removed, inserted or reordered)`);
    if (rest.prev !== prev) return result('tampered', `${where} does not chain to the record before it (prev hash mismatch)`);
    let canonical: string;
    try {
      canonical = canonicalJson(rest);
    } catch (e) {
      return result('tampered', `${where} cannot be canonicalized: ${(e as Error).message}`);
    }
    const computed = createHash('sha256').update(canonical).digest('hex');
    if (hash !== computed) return result('tampered', `${where} has been modified (hash mismatch)`);
    prev = computed;
    summary.records++;
    tally(summary, rest);
    if (rest.type === 'run-end') sealed = true;
    if (isLast && torn) return result('tampered', `${where} is complete but has no line terminator`);
  }
  if (!sealed) return result('unsealed', `the log has no seal (run-end record): the gateway did not stop cleanly; all ${summary.records} records verify`);
  return result('valid', null, true);
}

function tally(s: VerifySummary, r: Rec): void {
  switch (r.type) {
    case 'run-start':
      s.runId = String(r.run ?? '');
      s.startedAt = String(r.time ?? '');
      s.identity = (r.identity as Rec) ?? null;
      s.targets = Array.isArray(r.targets) ? (r.targets as Rec[]).map((t) => String(t.name)) : [];
      break;
    case 'session-open':
      s.sessions++;
      break;
    case 'command':
      s.commands++;
      break;
    case 'result':
      if (r.status === 'error') s.errors++;
      if (r.status === 'skipped') s.skipped++;
      break;
    case 'protocol-error':
      s.protocolErrors++;
      break;
    case 'run-end':
      s.endedAt = String(r.time ?? '');
      break;
  }
}
