// The FIFO of client messages awaiting a response, the state of prepared statements and portals
// the responses refer to, and helpers to summarize results (see backend-tracker.ts).
import type { CommandRecorder, Value } from '../core/recorder.ts';
import { binaryValue, wireText } from '../core/recorder.ts';
import type { Column } from './codec/backend.ts';
import type { Decision } from '../policy/engine.ts';
import type { RowMaskPlan } from './row-masking.ts';
import type { CopyOut } from './copy-statements.ts';
import type { CopyPlan } from './copy-masking.ts';
import type { PreparedStatement } from './sql-classifier.ts';
import type { Change, Effect } from './statement-registry.ts';
import type { ComputedSource, StatementFacts } from './computed-columns.ts';

/** What the gateway knows of a prepared statement or portal, shared with pending entries. */
export interface Described {
  columns: Column[] | null;
  /** A Describe answered NoData: the statement returns no rows. */
  noData?: boolean;
}
/** `denied`: policy refused the statement at Parse; it does not exist upstream. */
export interface Statement extends Described {
  text: string;
  paramTypes: number[];
  /** What policy decided at Parse, repeated in the record of each Execute. */
  decision?: { action: string; rule: string };
  denied?: Decision;
  /** Its COPY ... TO STDOUT, when masking needs to know the table. */
  copyOuts?: CopyOut[];
  /** Its classes and tables, for an `EXECUTE name` of it in SQL. */
  prepared?: PreparedStatement;
  /** What running it does to statement and portal names (PREPARE, DEALLOCATE, ...), in order. */
  effects?: Effect[];
  /** Running it may create names the gateway can only learn from the server's answer. */
  mayAddNames?: boolean;
  /** What its results may be computed from, read once at Parse (with column masking). */
  facts?: StatementFacts;
}
/** `statement` null: the gateway cannot know which statement the Bind named (`unknown` says why). */
export interface Portal extends Described { statement: Statement | null; unknown?: string; params: Value[]; resultFormats: number[] }

export type Entry =
  | { kind: 'query'; cmd: CommandRecorder; run: RunState }
  | { kind: 'execute'; cmd: CommandRecorder; run: RunState; portal: Portal | null }
  /** `swallow`: the gateway sent this message itself; its answer must not reach the client. */
  | { kind: 'describe'; target: Described | null; swallow?: boolean }
  /** `changes`: what the server's confirmation applies to statement and portal names. */
  | { kind: 'parse' | 'bind' | 'close'; swallow?: boolean; changes?: Change[] }
  | { kind: 'sync' };

/** What a running command has produced so far. */
export interface RunState {
  tags: string[];
  rows: number;
  columns: Column[] | null;
  copyBinary: boolean;
  error: { severity: string; code: string; message: string } | null;
  /** Set when policy denied the command: the server ran the gateway's refusal instead. */
  denied: Decision | null;
  /** How rows of the current result are masked, and for which columns it was planned. */
  maskPlan: RowMaskPlan | null;
  maskPlanFor: Column[] | null;
  /** The COPY ... TO STDOUT statements of the command still to answer, and the current one's plan. */
  copyOuts: CopyOut[] | null;
  copyPlan: CopyPlan | null;
  /** Per statement run, what it does to names, applied at its CommandComplete (see statement-registry.ts). */
  effects: Effect[];
  completed: number;
  /** Names this command may create, unknown until it completes. */
  pendingNames: Change | null;
  /** What its results' computed columns may come from (computed-columns.ts); null: not known,
   * so with column masking every computed column is masked whole. */
  computed: ComputedSource | null;
  /** A fast-path FunctionCall's function OID (its result is masked by what the function is). */
  functionOid?: number;
}

export function newRun(): RunState {
  return { tags: [], rows: 0, columns: null, copyBinary: false, error: null, denied: null, maskPlan: null, maskPlanFor: null, copyOuts: null, copyPlan: null, effects: [], completed: 0, pendingNames: null, computed: null };
}

/** The columns of the result an entry is receiving: from its RowDescription or its Describe. */
export function resultColumns(e: Entry & { run: RunState }): Column[] | null {
  const portal = e.kind === 'execute' ? e.portal : null;
  return e.run.columns ?? portal?.columns ?? portal?.statement?.columns ?? null;
}

/** Rows affected or returned, from a CommandComplete tag such as "INSERT 0 3" or "SELECT 5". */
export function tagRows(tag: string): number | null {
  const m = /\s(\d+)$/.exec(tag);
  return m ? Number(m[1]) : null;
}

export function sampleValues(fields: (Buffer | null)[], columns: Column[] | null, resultFormats: number[] | null): Value[] {
  return fields.map((f, i) => {
    if (f === null) return null;
    const format = resultFormats && resultFormats.length > 0 ? (resultFormats.length === 1 ? resultFormats[0] : resultFormats[i]) : columns?.[i]?.format ?? 0;
    return format === 1 ? binaryValue(f) : wireText(f);
  });
}

export class ResponseQueue {
  private items: Entry[] = [];
  private head = 0;
  /** Set after an extended-protocol error until the next Sync reaches the server. */
  skippingUntilSync = false;

  get length(): number {
    return this.items.length - this.head;
  }
  peek(): Entry | undefined {
    return this.items[this.head];
  }
  push(e: Entry): void {
    this.items.push(e);
  }
  shift(): Entry | undefined {
    const e = this.items[this.head];
    if (e === undefined) return undefined;
    this.items[this.head++] = undefined as unknown as Entry;
    // Compact occasionally so a long pipeline does not grow the array forever.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return e;
  }
  /** The first Execute before the next Sync. */
  nextExecute(): (Entry & { kind: 'execute' }) | undefined {
    for (let i = this.head; i < this.items.length; i++) {
      const e = this.items[i]!;
      if (e.kind === 'sync') return undefined;
      if (e.kind === 'execute') return e;
    }
    return undefined;
  }
  /** Removes everything up to (not including) the next Sync; returns what was removed. */
  discardUntilSync(): Entry[] {
    const removed: Entry[] = [];
    for (let e = this.peek(); e && e.kind !== 'sync'; e = this.peek()) removed.push(this.shift()!);
    if (!this.peek()) this.skippingUntilSync = true;
    return removed;
  }
  drain(): Entry[] {
    const all = this.items.slice(this.head);
    this.items = [];
    this.head = 0;
    return all;
  }
}
