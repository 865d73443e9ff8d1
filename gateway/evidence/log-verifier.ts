// Recomputes a session log's hash chain and checks its signed checkpoints. Pure over the file's
// text, so it runs offline on a downloaded artifact. The identity behind the signing key is
// checked separately (attestation-check.ts); verification.ts combines the two.
import { createHash } from 'node:crypto';
import { canonicalJson } from './canonical-json.ts';
import { CheckpointVerifier } from './checkpoint.ts';
import { GENESIS_HASH, LOG_FORMAT, READABLE_FORMATS } from './log-writer.ts';
import { readLogLines } from './log-lines.ts';
import { copyTotals, TotalsTally, type LogTotals } from './log-totals.ts';

export type ChainStatus = 'valid' | 'tampered' | 'unsealed' | 'unreadable';

export interface Signing {
  /** The run-start key's RFC 7638 thumbprint. */
  thumbprint: string | null;
  /** Sequence number of the last checkpoint whose signature verifies, or null if none. */
  lastCheckpoint: number | null;
  /** Records after the last checkpoint: nothing proves they were written by the gateway. */
  unsignedRecords: number;
}

export interface ChainResult {
  status: ChainStatus;
  /** What is wrong, naming the record by sequence number and line. */
  problem: string | null;
  sealed: boolean;
  signing: Signing;
  totals: LogTotals;
  /** The totals up to the last checkpoint: what the signatures vouch for. */
  signedTotals: LogTotals | null;
  /** The run-start record, for the identity check. */
  runStart: Record<string, unknown> | null;
  /** The hash of the last record that verified (the seal's, in a valid log). */
  lastHash: string;
}

type Rec = Record<string, unknown>;

const CHECKPOINT_MEMBERS = 'covers,jws,prev,seal,seq,time,type';

/**
 * Verifies a log line by line in bounded memory (logs reach gigabytes). Every line must be
 * exactly the canonical form the writer produces: a line that parses to the same values but is
 * spelled differently (spaces, duplicate keys, CRLF) is tampering, so that any verifier that
 * follows docs/session-log.md, textual or JSON-based, reaches the same verdict.
 */
export class LogVerifier {
  private readonly tally = new TotalsTally();
  readonly totals = this.tally.totals;
  private readonly signing: Signing = { thumbprint: null, lastCheckpoint: null, unsignedRecords: 0 };
  private runStart: Rec | null = null;
  private signedTotals: LogTotals | null = null;
  private keys: CheckpointVerifier | null = null;
  private prev = GENESIS_HASH;
  private prevType = '';
  private index = 0;
  private sealed = false;
  private verdict: ChainResult | null = null;

  private result(status: ChainStatus, problem: string | null): ChainResult {
    return { status, problem, sealed: status === 'valid', signing: this.signing, totals: this.totals, signedTotals: this.signedTotals, runStart: this.runStart, lastHash: this.prev };
  }

  private stop(status: ChainStatus, problem: string): false {
    this.verdict = this.result(status, problem);
    return false;
  }

  /** Feeds one complete line (without its newline); returns false once a verdict is reached. */
  line(text: string): boolean {
    if (this.verdict) return false;
    const i = this.index;
    try {
      return this.check(text);
    } catch (e) {
      // Hostile shapes (deep nesting, odd types) must end in a verdict, never a crash.
      return this.stop(i === 0 ? 'unreadable' : 'tampered', `record ${i} (line ${i + 1}) cannot be checked: ${(e as Error).message}`);
    }
  }

  /** The next line is not valid UTF-8. */
  badEncoding(): ChainResult {
    const i = this.index;
    this.verdict ??= this.result(i === 0 ? 'unreadable' : 'tampered', `record ${i} (line ${i + 1}) is not valid UTF-8`);
    return this.verdict;
  }

  /** The next line is longer than any record the writer produces. */
  tooLong(): ChainResult {
    const i = this.index;
    this.verdict ??= this.result(i === 0 ? 'unreadable' : 'tampered', `record ${i} (line ${i + 1}) is longer than any record the gateway writes`);
    return this.verdict;
  }

  private check(text: string): boolean {
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
    // A first line without the chain's members is some other file; with them, an edit is tampering.
    if (i === 0 && (typeof hash !== 'string' || rest.seq === undefined || rest.prev === undefined)) {
      return this.stop('unreadable', 'line 1 is not the start of a gateway-action session log');
    }
    if (rest.seq !== i) return this.stop('tampered', `${where} has sequence number ${typeof rest.seq === 'number' ? rest.seq : typeof rest.seq}, expected ${i} (records removed, inserted or reordered)`);
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
    if (i === 0) {
      if (rest.type !== 'run-start' || typeof rest.format !== 'string' || !rest.format.startsWith('gateway-action/session-log@')) {
        return this.stop('unreadable', 'line 1 is not the start of a gateway-action session log');
      }
      if (!READABLE_FORMATS.includes(rest.format)) return this.stop('unreadable', `the log's format is ${rest.format}; this verifier reads ${READABLE_FORMATS.join(', ')} (${LOG_FORMAT} is the newest)`);
      if (!this.readKey(rest)) return false;
    }
    if (rest.type === 'checkpoint' && !this.checkpoint(rest, i, where)) return false;
    this.prev = computed;
    this.prevType = String(rest.type);
    this.tally.add(rest);
    if (rest.type !== 'checkpoint') this.signing.unsignedRecords++;
    else this.signedTotals = copyTotals(this.totals);
    return true;
  }

  private readKey(runStart: Rec): boolean {
    const key = runStart.key as { jwk?: unknown; thumbprint?: unknown } | undefined;
    try {
      this.keys = new CheckpointVerifier(key?.jwk);
    } catch (e) {
      return this.stop('tampered', `record 0 (line 1): ${(e as Error).message}`);
    }
    if (key!.thumbprint !== this.keys.thumbprint) return this.stop('tampered', 'record 0 (line 1): the key thumbprint does not match the key');
    this.signing.thumbprint = this.keys.thumbprint;
    this.runStart = runStart;
    return true;
  }

  private checkpoint(rec: Rec, i: number, where: string): boolean {
    // Every member of a checkpoint is signed or derived from what is: nothing else may ride on it.
    const members = Object.keys(rec).sort().join(',');
    if (members !== CHECKPOINT_MEMBERS) return this.stop('tampered', `${where}, a checkpoint, has the members ${members.slice(0, 200)}, expected ${CHECKPOINT_MEMBERS}`);
    if (typeof rec.seal !== 'boolean') return this.stop('tampered', `${where}, a checkpoint, has a seal that is not true or false`);
    const seal = rec.seal;
    if (rec.covers !== i - 1) return this.stop('tampered', `${where}, a checkpoint, does not cover record ${i - 1}`);
    const problem = this.keys!.problem(rec.jws, { run: String(this.runStart!.run), seq: i - 1, head: this.prev, seal, time: String(rec.time) });
    if (problem) return this.stop('tampered', `${where}, a checkpoint, ${problem}`);
    if (seal && this.prevType !== 'run-end') return this.stop('tampered', `${where} is a seal that does not follow the run-end record`);
    this.signing.lastCheckpoint = i;
    this.signing.unsignedRecords = 0;
    this.sealed = seal;
    return true;
  }

  /** Call at the end of the file; `torn` is the text after the last newline, if any. */
  finish(torn: string): ChainResult {
    if (this.verdict) return this.verdict;
    if (this.index === 0 && torn === '') return this.result('unreadable', 'the file is empty');
    const s = this.signing;
    const tail = s.lastCheckpoint === null
      ? `no checkpoint was signed, so none of its ${this.totals.records} records is signed`
      : `the last signed checkpoint is record ${s.lastCheckpoint}; the ${s.unsignedRecords} records after it are unsigned`;
    if (torn !== '') {
      const where = `record ${this.index} (line ${this.index + 1})`;
      if (this.index === 0) return this.result('unreadable', 'line 1 is not a session log record');
      if (this.sealed) return this.result('tampered', `${where} was appended after the seal`);
      return this.result('unsealed', `${where} is torn (the file ends mid-record); ${tail}`);
    }
    if (!this.sealed) {
      return this.result('unsealed', `the log has no seal: the gateway did not stop cleanly, or the log was cut short; ${tail}`);
    }
    return this.result('valid', null);
  }
}

export function verifyChainText(text: string): ChainResult {
  const v = new LogVerifier();
  const lines = text.split('\n');
  const torn = lines.pop()!;
  for (const l of lines) if (!v.line(l)) break;
  return v.finish(torn);
}

/** Verifies a log file's chain in bounded memory (see log-lines.ts). */
export async function verifyChainFile(file: string): Promise<ChainResult> {
  const v = new LogVerifier();
  for await (const l of readLogLines(file)) {
    if (l.kind === 'not-utf8') return v.badEncoding();
    if (l.kind === 'too-long') return v.tooLong();
    if (l.kind === 'torn') return v.finish(l.text);
    if (!v.line(l.text)) break;
  }
  return v.finish('');
}
