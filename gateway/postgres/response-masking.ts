// Masking of what the server sends: result rows, COPY rows and the texts of notices and errors,
// for the client, the session log, or both (policy `masking.apply-to`).
import { B, decodeDataRow, decodeNoticeFields, decodeNotification, encodeDataRow, encodeNoticeFields } from './codec/backend.ts';
import { MessageWriter } from './codec/reader.ts';
import { blindPlan, maskRow, planRow, type RowMaskPlan, type ColumnCatalog } from './row-masking.ts';
import type { Column } from './codec/backend.ts';
import { resultColumns, type Entry, type RunState } from './response-queue.ts';
import { maskCopyRow, planCopy } from './copy-masking.ts';
import type { CatalogChanges, TableColumns } from './table-names.ts';
import type { Masker } from '../masking/engine.ts';

/** Notice and error fields that may echo values: message, detail, hint, context, query. */
const ECHOING_FIELDS = new Set(['M', 'D', 'H', 'W', 'q']);

export interface MaskedMessage {
  /** The whole message the client receives instead, when masking applies to the client. */
  client?: Buffer;
  /** The body the log records instead, when masking applies to the log. */
  log?: Buffer;
}

export class ResponseMasking {
  private readonly masker: Masker;
  private readonly catalog: ColumnCatalog;
  /** Told of completed commands, so the catalog is read again after DDL (table-names.ts). */
  readonly catalogChanges: CatalogChanges | null;
  private readonly client: boolean;
  private readonly log: boolean;

  private readonly tableByName: (schema: string | null, table: string) => TableColumns | undefined;

  constructor(masker: Masker, catalog: ColumnCatalog, tableByName: (schema: string | null, table: string) => TableColumns | undefined = () => undefined, catalogChanges: CatalogChanges | null = null) {
    this.masker = masker;
    this.tableByName = tableByName;
    this.catalog = catalog;
    this.catalogChanges = catalogChanges;
    this.client = masker.applyTo.client;
    this.log = masker.applyTo.log;
  }

  /** Message types whose bodies masking reads (and, for the client, may rewrite). */
  /** Whether COPY statements need their table named (some columns are masked by name). */
  get masksCopyColumns(): boolean {
    return this.masker.masksColumns;
  }

  /** A COPY ... TO STDOUT began: plan its columns from the statement's table. */
  startCopy(run: RunState): void {
    const copy = run.copyOuts?.shift();
    run.copyPlan = copy && copy.table !== null ? planCopy(this.masker, copy, this.tableByName(copy.schema, copy.table)) : null;
  }

  /** Whether a message of this type, answering `head`, may be rewritten for the client. */
  rewrites(type: number, head: Entry | undefined): boolean {
    if (!this.client) return false;
    if (type === B.DataRow || type === B.CopyData) {
      const run = head && (head.kind === 'query' || head.kind === 'execute') ? head.run : null;
      if (!run) return false;
      if (type === B.CopyData) return !run.copyBinary;
      // Rows of a result whose plan masks nothing pass as they come; a result not planned yet
      // (its first row) may need masking.
      const cols = resultColumns(head as Entry & { run: RunState });
      return run.maskPlanFor !== cols || run.maskPlan === null || run.maskPlan.active;
    }
    return type === B.NoticeResponse || type === B.ErrorResponse || type === B.NotificationResponse;
  }

  message(type: number, body: Buffer, head: Entry | undefined): MaskedMessage | null {
    switch (type) {
      case B.DataRow:
        return this.dataRow(body, head);
      case B.CopyData:
        return this.copyData(type, body, head);
      case B.NoticeResponse:
      case B.ErrorResponse:
        return this.notice(type, body, head);
      case B.NotificationResponse:
        return this.notification(body);
      default:
        return null;
    }
  }

  private dataRow(body: Buffer, head: Entry | undefined): MaskedMessage | null {
    if (!head || (head.kind !== 'query' && head.kind !== 'execute')) return null;
    const run = head.run;
    const portal = head.kind === 'execute' ? head.portal : null;
    const cols = resultColumns(head);
    if (run.maskPlanFor !== cols || run.maskPlan === null) {
      // Only described statements are planned once for many executions; a simple query's
      // columns are new each time, and caching them would only churn the WeakMap.
      run.maskPlan = this.plan(cols, portal ? portal.resultFormats : null, run.columns === null);
      run.maskPlanFor = cols;
    }
    const plan = run.maskPlan;
    if (plan && !plan.active) return null;
    // No column names known (a result never described): detectors read every value as text.
    const masked = maskRow(this.masker, plan ?? blindPlan(body.readInt16BE(0), portal ? portal.resultFormats : null), decodeDataRow(body));
    if (!masked) return null;
    head.cmd.noteMasked(masked.columns, masked.detectors);
    const message = encodeDataRow(masked.fields);
    return this.output(message);
  }

  /** Plans once per described statement (prepared statements execute many times). */
  private readonly plans = new WeakMap<Column[], { formats: string; plan: RowMaskPlan | null }>();

  private plan(cols: Column[] | null, resultFormats: number[] | null, reusable: boolean): RowMaskPlan | null {
    if (!cols) return null;
    if (!reusable) return planRow(this.masker, cols, resultFormats, this.catalog);
    // A catalog read or change since the plan was made (a view redefined) plans again.
    const formats = `${resultFormats ? resultFormats.join(',') : ''}@${this.catalog.generation}`;
    const cached = this.plans.get(cols);
    if (cached && cached.formats === formats) return cached.plan;
    const plan = planRow(this.masker, cols, resultFormats, this.catalog);
    if (plan?.complete) this.plans.set(cols, { formats, plan });
    return plan;
  }

  /** What the client receives instead and what the log records instead, per `apply-to`. */
  private output(message: Buffer): MaskedMessage {
    return { ...(this.client ? { client: message } : {}), ...(this.log ? { log: message.subarray(5) } : {}) };
  }

  private copyData(type: number, body: Buffer, head: Entry | undefined): MaskedMessage | null {
    if (!head || (head.kind !== 'query' && head.kind !== 'execute') || head.run.copyBinary) return null;
    let row = body.toString('utf8');
    let columns = 0;
    if (head.run.copyPlan) {
      const c = maskCopyRow(this.masker, head.run.copyPlan, row);
      if (c) {
        row = c.row;
        columns = c.masked;
      }
    }
    const r = this.masker.maskText(row);
    if (!r && columns === 0) return null;
    head.cmd.noteMasked(columns, r?.detectors ?? []);
    const message = frame(type, Buffer.from(r?.text ?? row));
    return this.output(message);
  }

  /** NOTIFY payloads (the channel is a name, not a value). */
  private notification(body: Buffer): MaskedMessage | null {
    const n = decodeNotification(body);
    const r = this.masker.maskText(n.payload);
    if (!r) return null;
    const message = new MessageWriter().int32(n.processId).cstring(n.channel).cstring(r.text).finish(B.NotificationResponse);
    return this.output(message);
  }

  private notice(type: number, body: Buffer, head: Entry | undefined): MaskedMessage | null {
    let changed = false;
    const fired: string[] = [];
    const fields = decodeNoticeFields(body).map(([code, value]): [string, string] => {
      if (!ECHOING_FIELDS.has(code)) return [code, value];
      const r = this.masker.maskText(value);
      if (!r) return [code, value];
      changed = true;
      fired.push(...r.detectors);
      return [code, r.text];
    });
    if (!changed) return null;
    if (head && (head.kind === 'query' || head.kind === 'execute')) head.cmd.noteMasked(0, [...new Set(fired)]);
    const message = encodeNoticeFields(type, fields);
    return this.output(message);
  }
}

function frame(type: number, body: Buffer): Buffer {
  return new MessageWriter().bytes(body).finish(type);
}
