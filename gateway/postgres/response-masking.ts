// Masking of what the server sends: result rows, COPY rows, fast-path function results, and
// every text of notices, errors, notifications and parameter statuses, for the client, the
// session log, or both (policy `masking.apply-to`).
import { B, decodeDataRow, decodeNoticeFields, decodeNotification, decodeParameterStatus, encodeDataRow, encodeNoticeFields, encodeParameterStatus } from './codec/backend.ts';
import { MessageWriter } from './codec/reader.ts';
import { READ, maskTextValue, maskValue } from './value-masking.ts';
import { blindPlan, maskRow, planRow, type RowMaskPlan, type ColumnCatalog } from './row-masking.ts';
import type { Column } from './codec/backend.ts';
import { resultColumns, type Entry, type RunState } from './response-queue.ts';
import { maskCopyRow, planCopy } from './copy-masking.ts';
import type { CatalogChanges, TableColumns } from './table-names.ts';
import type { Masker } from '../masking/engine.ts';
import { MASKED_ECHO, computedColumnsMasked, quotingFields } from './computed-columns.ts';

/**
 * Notice and error fields the server fills from a fixed vocabulary or with numbers: severity (S,
 * V), SQLSTATE (C), cursor positions (P, p), and the server's source file, line and routine (F,
 * L, R). Every other field, including codes added in later versions, is read by detectors:
 * message, detail, hint, context, internal query, and the schema, table, column, data type and
 * constraint names, which a user chose and may have filled with anything.
 */
const FIXED_FIELDS = new Set(['S', 'V', 'C', 'P', 'p', 'F', 'L', 'R']);

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

  /** Whether runs must say what their computed columns may come from (column masking). */
  get masksComputed(): boolean {
    return this.masker.masksColumns && this.catalog.computed !== undefined;
  }

  /** Whether COPY statements must be read for their table and options (any masking). */
  get masksCopyColumns(): boolean {
    return this.masker.enabled;
  }

  /** A COPY ... TO STDOUT began (its CopyOutResponse): plan how its rows are split and masked. */
  startCopy(run: RunState, copyOutResponse: Buffer): void {
    const copy = run.copyOuts?.shift();
    const binary = copyOutResponse[0] === 1;
    const columns = copyOutResponse.length >= 3 ? copyOutResponse.readInt16BE(1) : 0;
    run.copyPlan = planCopy(this.masker, copy, columns, binary, this.tableByName);
  }

  /** Whether a message of this type, answering `head`, may be rewritten for the client. */
  rewrites(type: number, head: Entry | undefined): boolean {
    if (!this.client) return false;
    if (type === B.DataRow || type === B.CopyData) {
      const run = head && (head.kind === 'query' || head.kind === 'execute') ? head.run : null;
      if (!run) return false;
      if (type === B.CopyData) return true;
      // Rows of a result whose plan masks nothing pass as they come; a result not planned yet
      // (its first row) may need masking.
      const cols = resultColumns(head as Entry & { run: RunState });
      return run.maskPlanFor !== cols || run.maskPlan === null || run.maskPlan.active;
    }
    return type === B.NoticeResponse || type === B.ErrorResponse || type === B.NotificationResponse || type === B.ParameterStatus || type === B.FunctionCallResponse;
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
      case B.ParameterStatus:
        return this.parameterStatus(body);
      case B.FunctionCallResponse:
        return this.functionResult(body, head);
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
      const computed = this.masksComputed && computedColumnsMasked(run.computed, this.catalog.computed!);
      run.maskPlan = this.plan(cols, portal ? portal.resultFormats : null, computed);
      run.maskPlanFor = cols;
    }
    const plan = run.maskPlan;
    if (plan && !plan.active) return null;
    // No columns known (a result never described): see blindPlan.
    const masked = maskRow(this.masker, plan ?? blindPlan(this.masker, body.readInt16BE(0), portal ? portal.resultFormats : null), decodeDataRow(body));
    if (!masked) return null;
    head.cmd.noteMasked(masked.columns, masked.detectors);
    const message = encodeDataRow(masked.fields);
    return this.output(message);
  }

  /**
   * Plans once per set of columns: a described statement's (prepared statements execute many
   * times), and a simple query's, whose columns the tracker reuses while the same RowDescription
   * comes back (BackendTracker.describedBy).
   */
  private readonly plans = new WeakMap<Column[], { formats: string; generation: number; computed: boolean; plan: RowMaskPlan | null }>();

  private plan(cols: Column[] | null, resultFormats: number[] | null, computed: boolean): RowMaskPlan | null {
    if (!cols) return null;
    // A catalog read or change since the plan was made (a view redefined) plans again.
    const formats = resultFormats ? resultFormats.join(',') : '';
    const generation = this.catalog.generation;
    const cached = this.plans.get(cols);
    if (cached && cached.formats === formats && cached.generation === generation && cached.computed === computed) return cached.plan;
    const plan = planRow(this.masker, cols, resultFormats, this.catalog, computed);
    if (plan?.complete) this.plans.set(cols, { formats, generation, computed, plan });
    return plan;
  }

  /** What the client receives instead and what the log records instead, per `apply-to`. */
  private output(message: Buffer): MaskedMessage {
    const out: MaskedMessage = {};
    if (this.client) out.client = message;
    if (this.log) out.log = message.subarray(5);
    return out;
  }

  private copyData(type: number, body: Buffer, head: Entry | undefined): MaskedMessage | null {
    if (!head || (head.kind !== 'query' && head.kind !== 'execute')) return null;
    // COPY data with no CopyOutResponse seen (cannot happen with a server that follows the
    // protocol): read as text by the detectors.
    const plan = head.run.copyPlan;
    const c = plan ? maskCopyRow(this.masker, plan, body) : null;
    const r = plan ? null : this.masker.maskText(body.toString('utf8'));
    if (!c && !r) return null;
    head.cmd.noteMasked(c?.masked ?? 0, c?.detectors ?? r!.detectors);
    return this.output(frame(type, c ? c.row : Buffer.from(r!.text)));
  }

  /**
   * Whether an error's DETAIL may print values of masked columns, which detectors cannot
   * recognise (a phone number): constraint violations print the failing row or key of their
   * table whole. With columns masked by name, the DETAIL of a notice that names a table is
   * masked whole unless the catalog holds that table with no masked column (a table it does not
   * hold yet may be anything), and so is the DETAIL of a violation that names no table.
   */
  private detailShowsRows(fields: [string, string][]): boolean {
    if (!this.masker.masksColumns) return false;
    const field = (code: string): string | undefined => fields.find(([c]) => c === code)?.[1];
    const table = field('t');
    if (table !== undefined) {
      const known = this.tableByName(field('s') ?? null, table);
      if (!known) return true;
      if (!known.columns.some((c) => c.masked)) return false;
      // A key of columns none of which is masked ("Key (email)=(...) already exists"): the
      // values are theirs, read by detectors. Anything else (a failing row, a key on an
      // expression or a masked column) is masked whole.
      const keyColumns = keyColumnsOf(field('D') ?? '');
      return keyColumns === null || !keyColumns.every((name) => known.columns.some((c) => c.name === name && !c.masked));
    }
    return ROW_ECHO_CLASSES.has((field('C') ?? '').slice(0, 2));
  }

  /** NOTIFY payloads (the channel is a name, not a value). */
  private notification(body: Buffer): MaskedMessage | null {
    const n = decodeNotification(body);
    const r = this.masker.maskText(n.payload);
    if (!r) return null;
    const message = new MessageWriter().int32(n.processId).cstring(n.channel).cstring(r.text).finish(B.NotificationResponse);
    return this.output(message);
  }

  /** A setting's value as the server reports it (`set_config('application_name', email, false)`
   * echoes a value a query chose). */
  private parameterStatus(body: Buffer): MaskedMessage | null {
    const [name, value] = decodeParameterStatus(body);
    const r = this.masker.maskText(value);
    return r && this.output(encodeParameterStatus(name, r.text));
  }

  /** A fast-path FunctionCall's result: its type is not known here and it may be text or binary,
   * so its bytes are read as bytes (as bytea is), and what detectors find masked in place. */
  private functionResult(body: Buffer, head: Entry | undefined): MaskedMessage | null {
    const len = body.length >= 4 ? body.readInt32BE(0) : -1;
    if (len <= 0 || 4 + len > body.length) return null;
    const run = head && (head.kind === 'query' || head.kind === 'execute') ? head.run : null;
    if (this.masker.masksColumns && !(run?.functionOid !== undefined && LARGE_OBJECT_FUNCTIONS.has(run.functionOid))) {
      // A function called by OID may compute from a masked column (a user function reading the
      // table, table_to_xml, query_to_xml): with columns masked, its result is masked whole
      // (NULL), but for libpq's large-object calls, whose results are a large object's bytes.
      if (head && (head.kind === 'query' || head.kind === 'execute')) head.cmd.noteMasked(1, []);
      return this.output(new MessageWriter().int32(-1).finish(B.FunctionCallResponse));
    }
    // A text-format result of a bytea function (loread) is `\x` and hex: its bytes are read.
    const result = body.subarray(4, 4 + len);
    const r = maskValue(this.masker, /^\\x(?:[0-9a-fA-F]{2})*$/.test(result.toString('latin1')) ? READ.byteaText : READ.byteaBinary, result);
    if (!r) return null;
    if (head && (head.kind === 'query' || head.kind === 'execute')) head.cmd.noteMasked(0, r.detectors);
    const value = r.value!;
    return this.output(new MessageWriter().int32(value.length).bytes(value).finish(B.FunctionCallResponse));
  }

  private notice(type: number, body: Buffer, head: Entry | undefined): MaskedMessage | null {
    let changed = false;
    let maskedDetail = 0;
    const fired: string[] = [];
    const decoded = decodeNoticeFields(body);
    const detailWhole = this.detailShowsRows(decoded);
    // Raised by a statement that could compute from a masked column: texts that may quote a value
    // it computed are masked whole (computed-columns.ts).
    const run = head && (head.kind === 'query' || head.kind === 'execute') ? head.run : null;
    const quoting = run !== null && this.masksComputed ? quotingFields(decoded) : null;
    const echoes = quoting !== null && quoting.size > 0 && computedColumnsMasked(run!.computed, this.catalog.computed!);
    const fields = decoded.map(([code, value]): [string, string] => {
      if (code === 'D' && detailWhole) {
        changed = true;
        maskedDetail = 1;
        return [code, MASKED_DETAIL];
      }
      if (echoes && quoting!.has(code)) {
        changed = true;
        maskedDetail = 1;
        return [code, MASKED_ECHO];
      }
      if (FIXED_FIELDS.has(code)) return [code, value];
      const r = maskTextValue(this.masker, value);
      if (!r) return [code, value];
      changed = true;
      fired.push(...r.detectors);
      return [code, r.text];
    });
    if (!changed) return null;
    if (head && (head.kind === 'query' || head.kind === 'execute')) head.cmd.noteMasked(maskedDetail, [...new Set(fired)]);
    const message = encodeNoticeFields(type, fields);
    return this.output(message);
  }
}

/** libpq's fast-path large-object functions (lo_create, lo_open, lo_close, loread, lowrite,
 * lo_lseek, lo_creat, lo_tell, lo_unlink, lo_truncate and their 64-bit forms): built-in OIDs. */
const LARGE_OBJECT_FUNCTIONS = new Set([715, 952, 953, 954, 955, 956, 957, 958, 964, 1004, 3170, 3171, 3172]);

const MASKED_DETAIL = '[masked: it may show values of masked columns]';

/** SQLSTATE classes whose DETAIL echoes stored values: integrity constraint violations (23:
 * "Failing row contains (...)", "Key (phone)=(...)") and WITH CHECK OPTION violations (44, which
 * name no table). */
const ROW_ECHO_CLASSES = new Set(['23', '44']);

/** The column names of a DETAIL that starts `Key (a, b)=(`, as the server prints them (quoted
 * only when they need it); null for any other DETAIL or a name that is not a plain one. */
function keyColumnsOf(detail: string): string[] | null {
  const m = /^Key \((.*?)\)=\(/.exec(detail);
  if (!m) return null;
  const names = m[1]!.split(', ').map((n) => (/^[a-z_][a-z0-9_$]*$/.test(n) ? n : /^"(?:[^"]|"")+"$/.test(n) ? n.slice(1, -1).replace(/""/g, '"') : null));
  return names.every((n) => n !== null) ? (names as string[]) : null;
}

function frame(type: number, body: Buffer): Buffer {
  return new MessageWriter().bytes(body).finish(type);
}
