// Recomputes a session log's hash chain and summarizes what it records. Pure over the file's
// text, so it runs offline on a downloaded artifact.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
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

/**
 * Verifies a log line by line in bounded memory (logs reach gigabytes). Every line must be
 * exactly the canonical form the writer produces: a line that parses to the same values but is
 * spelled differently (spaces, duplicate keys, CRLF) is tampering, so that any verifier that
 * follows docs/session-log.md, textual or JSON-based, reaches the same verdict.
 */
export class LogVerifier {
  readonly summary: VerifySummary = {
    runId: null, startedAt: null, endedAt: null, records: 0, sessions: 0, commands: 0,
    errors: 0, skipped: 0, protocolErrors: 0, targets: [], identity: null,
  };
  private prev = GENESIS_HASH;
  private index = 0;
  private sealed = false;
  private verdict: VerifyResult | null = null;

  private stop(status: VerifyStatus, problem: string): false {
    this.verdict = { status, problem, sealed: false, summary: this.summary };
    return false;
  }

  /** Feeds one complete line (without its newline); returns false once a verdict is reached. */
  line(text: string): boolean {
    if (this.verdict) return false;
    const i = this.index++;
    const where = `record ${i} (line ${i + 1})`;
    let rec: Rec;
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
      rec = parsed as Rec;
    } catch {
      if (i === 0) return this.stop('unreadable', 'line 1 is not a session log record');
      return this.stop('tampered', `${where} is not valid JSON`);
    }
    if (this.sealed) return this.stop('tampered', `${where} was appended after the seal`);
    const { hash, ...rest } = rec;
    if (i === 0 && (rest.type !== 'run-start' || rest.format !== LOG_FORMAT)) {
      return this.stop('unreadable', `line 1 is not the start of a ${LOG_FORMAT} log`);
    }
    if (rest.seq !== i) return this.stop('tampered', `${where} has sequence number ${JSON.stringify(rest.seq)}, expected ${i} (records removed, inserted or reordered)`);
    if (rest.prev !== this.prev) return this.stop('tampered', `${where} does not chain to the record before it (prev hash mismatch)`);
    let canonical: string;
    try {
      canonical = canonicalJson(rest);
    } catch (e) {
      return this.stop('tampered', `${where} cannot be canonicalized: ${(e as Error).message}`);
    }
    const computed = createHash('sha256').update(canonical).digest('hex');
    if (hash !== computed) return this.stop('tampered', `${where} has been modified (hash mismatch)`);
    if (text !== canonical.slice(0, -1) + ',"hash":"' + computed + '"}') {
      return this.stop('tampered', `${where} is not in canonical form (extra spaces, duplicate members or altered spelling)`);
    }
    this.prev = computed;
    this.summary.records++;
    tally(this.summary, rest);
    if (rest.type === 'run-end') this.sealed = true;
    return true;
  }

  /** Call at the end of the file; `torn` is the text after the last newline, if any. */
  finish(torn: string): VerifyResult {
    if (this.verdict) return this.verdict;
    if (this.index === 0 && torn === '') return { status: 'unreadable', problem: 'the file is empty', sealed: false, summary: this.summary };
    if (torn !== '') {
      const where = `record ${this.index} (line ${this.index + 1})`;
      if (this.index === 0) return { status: 'unreadable', problem: 'line 1 is not a session log record', sealed: false, summary: this.summary };
      if (this.sealed) return { status: 'tampered', problem: `${where} was appended after the seal`, sealed: false, summary: this.summary };
      return { status: 'unsealed', problem: `${where} is torn (the file ends mid-record); ${this.index} records before it verify`, sealed: false, summary: this.summary };
    }
    if (!this.sealed) {
      return { status: 'unsealed', problem: `the log has no seal (run-end record): the gateway did not stop cleanly; all ${this.summary.records} records verify`, sealed: false, summary: this.summary };
    }
    return { status: 'valid', problem: null, sealed: true, summary: this.summary };
  }
}

export function verifyLogText(text: string): VerifyResult {
  const v = new LogVerifier();
  const lines = text.split('\n');
  const torn = lines.pop()!;
  for (const l of lines) if (!v.line(l)) break;
  return v.finish(torn);
}

/** Verifies a log file, reading it in chunks. */
export async function verifyLogFile(file: string): Promise<VerifyResult> {
  const v = new LogVerifier();
  let rest = '';
  const decoder = new StringDecoder('utf8');
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) {
    const text = rest + decoder.write(chunk as Buffer);
    let start = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
      if (!v.line(text.slice(start, nl))) return v.finish('');
      start = nl + 1;
    }
    rest = text.slice(start);
  }
  return v.finish(rest + decoder.end());
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
