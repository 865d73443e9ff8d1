// COPY ... TO STDOUT statements read with the real parser: the table or query, the columns and
// every option, for copy-masking.ts to split the rows the server sends.
import { parser } from './pg-parser.ts';

type Node = Record<string, unknown>;

/** A COPY ... TO STDOUT: the table (null for COPY of a query), its columns if listed, the format,
 * and every option as the parser read it (copy-masking.ts interprets them). */
export interface CopyOut {
  schema: string | null;
  table: string | null;
  columns: string[] | null;
  format: 'text' | 'csv' | 'binary';
  delimiter: string;
  quote: string;
  /** `value`: the option's argument as text, true when it has none, a list for column lists (`*` for all). */
  options: { name: string; value: string | true | string[] }[];
  /** COPY (SELECT ... FROM one relation): the relation and, per output column, the column name a
   * plain column reference reads, `*` for all the relation's columns, null for anything else.
   * Absent for other queries. */
  select?: { schema: string | null; table: string; targets: (string | null)[] };
}

function optionValue(arg: unknown): string | true | string[] {
  const a = arg as { String?: { sval?: string }; Boolean?: { boolval?: boolean }; Integer?: { ival?: number }; Float?: { fval?: string }; A_Star?: object; List?: { items?: { String?: { sval?: string } }[] } } | undefined;
  if (!a) return true;
  if (a.String) return a.String.sval ?? '';
  if (a.Boolean) return a.Boolean.boolval === true ? 'true' : 'false';
  if (a.Integer) return String(a.Integer.ival ?? 0);
  if (a.Float) return String(a.Float.fval ?? '');
  if (a.A_Star) return ['*'];
  if (a.List) return (a.List.items ?? []).map((i) => i.String?.sval ?? '');
  return ['?'];
}

/** The relation and plain column references of `SELECT cols FROM one_relation ...`, if it is that. */
function simpleSelect(query: unknown): CopyOut['select'] {
  const q = (query as { SelectStmt?: Node } | undefined)?.SelectStmt;
  if (!q || q.withClause || q.op !== 'SETOP_NONE' || q.valuesLists) return undefined;
  const from = q.fromClause as { RangeVar?: Node }[] | undefined;
  const rel = from?.length === 1 ? from[0]!.RangeVar : undefined;
  if (!rel || typeof rel.relname !== 'string') return undefined;
  const alias = (rel.alias as { aliasname?: string } | undefined)?.aliasname ?? rel.relname;
  const targets = ((q.targetList as { ResTarget?: { val?: Node } }[] | undefined) ?? []).map((t) => {
    const fields = (t.ResTarget?.val as { ColumnRef?: { fields?: { String?: { sval?: string }; A_Star?: object }[] } } | undefined)?.ColumnRef?.fields;
    if (!fields) return null;
    const last = fields[fields.length - 1]!;
    if (fields.length > 2 || (fields.length === 2 && fields[0]!.String?.sval !== alias)) return null;
    if (last.A_Star) return '*';
    // A column really named "*" is not told apart from the star: masked whole.
    const name = last.String?.sval;
    return name === undefined || name === '*' ? null : name;
  });
  return { schema: typeof rel.schemaname === 'string' ? rel.schemaname : null, table: rel.relname, targets };
}

/** Every COPY ... TO STDOUT in the text, in order; throws when the text does not parse. */
export function parseCopyOut(text: string): CopyOut[] {
  const tree = parser().parseSync(text) as { stmts?: { stmt?: Node }[] };
  const out: CopyOut[] = [];
  for (const raw of tree.stmts ?? []) {
    const c = (raw.stmt as { CopyStmt?: Node } | undefined)?.CopyStmt;
    if (!c || c.is_from || c.is_program || c.filename) continue;
    const rel = c.relation as { schemaname?: string; relname?: string } | undefined;
    const options = ((c.options as Node[] | undefined) ?? []).map((o) => {
      const d = (o as { DefElem?: { defname?: string; arg?: unknown } }).DefElem;
      return { name: String(d?.defname ?? '?').toLowerCase(), value: optionValue(d?.arg) };
    });
    const opt = (name: string): string | undefined => {
      const v = options.find((o) => o.name === name)?.value;
      return typeof v === 'string' ? v : undefined;
    };
    const format = (opt('format') ?? 'text').toLowerCase();
    out.push({
      schema: rel?.schemaname ?? null,
      table: rel?.relname ?? null,
      columns: c.attlist ? (c.attlist as { String?: { sval?: string } }[]).map((a) => a.String?.sval ?? '') : null,
      format: format === 'csv' ? 'csv' : format === 'binary' ? 'binary' : 'text',
      delimiter: opt('delimiter') ?? (format === 'csv' ? ',' : '\t'),
      quote: opt('quote') ?? '"',
      options,
      ...(c.query ? { select: simpleSelect(c.query) } : {}),
    });
  }
  return out;
}
