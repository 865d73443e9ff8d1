// The `when:` keys a PostgreSQL command can be matched on, registered with the policy loader
// through the adapter: `sql` (statement classes), `tables` (relation globs) and `text-matches`
// (a regular expression over the normalized statement). Each reads one statement's facts as
// the classifier produced them (ClassifiedStatement).
import type { ConditionSpec } from '../core/adapter.ts';
import type { Facts } from '../policy/engine.ts';
import { anyGlob, nameGlob, type Glob } from '../policy/glob.ts';
import { SQL_CLASSES } from './sql-classes.ts';

/** The facts of one statement, as sql-classifier.ts classifies it. */
export interface StatementUnit { classes: string[]; tables: string[]; normalized: string }

const CLASS_SET = new Set<string>(SQL_CLASSES);
const unit = (f: Facts): StatementUnit => f as StatementUnit;

export const sqlCondition: ConditionSpec = {
  key: 'sql',
  schema: { description: 'Statement classes; any of them.', type: 'array', minItems: 1, items: { type: 'string' } },
  compile(raw, fail) {
    const classes = raw as string[];
    classes.forEach((c, k) => {
      if (!CLASS_SET.has(c)) fail(`unknown SQL class "${c}" (classes: ${SQL_CLASSES.join(', ')})`, [k]);
    });
    const wanted = new Set(classes);
    return (f) => {
      for (const c of unit(f).classes) if (wanted.has(c)) return true;
      return false;
    };
  },
};

export const tablesCondition: ConditionSpec = {
  key: 'tables',
  schema: { description: 'Relation names or globs (`schema.table`, `audit.*`); any of them.', type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
  compile(raw, fail) {
    const globs = (raw as string[]).map((g, k) => {
      if (/[[\]?{}]/.test(g) || g.includes('**')) fail(`bad table glob "${g}": only * is a wildcard`, [k]);
      return tableGlob(g);
    });
    return (f) => {
      for (const t of unit(f).tables) if (anyGlob(globs, t)) return true;
      return false;
    };
  },
};

export const textMatchesCondition: ConditionSpec = {
  key: 'text-matches',
  schema: { description: 'Regular expression (JavaScript syntax) tested against the normalized statement.', type: 'string', minLength: 1 },
  compile(raw, fail) {
    let re: RegExp;
    try {
      re = new RegExp(raw as string, 'u');
    } catch (e) {
      return fail(`bad regular expression: ${(e as Error).message}`);
    }
    return (f) => re.test(unit(f).normalized);
  },
};

export const POSTGRES_CONDITIONS: readonly ConditionSpec[] = [sqlCondition, tablesCondition, textMatchesCondition];

/**
 * A table glob as rules mean it. An unqualified relation may live in any schema, so
 * `public.users` matches `users`, and a glob without a schema matches the table in every
 * schema. A statement on a whole schema (`S.*`: ALTER SCHEMA S RENAME, GRANT ... ALL TABLES IN
 * SCHEMA S) touches every table in it, so it matches any glob for a table in S.
 */
export function tableGlob(pattern: string): (table: string) => boolean {
  const whole = nameGlob(pattern);
  const firstDot = pattern.indexOf('.');
  const lastDot = pattern.lastIndexOf('.');
  // The pattern's part before its first dot (null when it has none: any schema), and after its last.
  const schema: Glob | null = firstDot >= 0 ? nameGlob(pattern.slice(0, firstDot)) : null;
  const tablePart = nameGlob(lastDot >= 0 ? pattern.slice(lastDot + 1) : pattern);
  return (table) => {
    if (whole(table)) return true;
    if (table.endsWith('.*')) return schema === null || schema(table.slice(0, -2));
    if (schema === null && table.includes('.')) return whole(table.slice(table.lastIndexOf('.') + 1));
    return !table.includes('.') && (whole(`public.${table}`) || tablePart(table));
  };
}
