// How PostgreSQL commands (pg.query, pg.function-call) are shown by replay, the report, the job
// summary and the approval comment: SQL text, bound parameters, CommandComplete tags, tables.
import { fenced, type Renderer } from '../evidence/renderers.ts';
import { valueText, type TimelineCommand } from '../evidence/timeline.ts';

const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

function tables(c: TimelineCommand): string[] {
  return [...new Set(c.facts.flatMap((f) => list(f.tables).map(String)))];
}

export const postgresRenderer: Renderer = {
  kinds: 'pg.',
  protocol: 'PostgreSQL',
  searchLabel: 'SQL',
  fence: 'sql',
  count: (n) => `${n} row${n === 1 ? '' : 's'}`,
  line: (c) => c.text.replace(/\s+/g, ' ').trim(),
  notes: () => [],
  meta(c) {
    const tags = list(c.resultDetails.tags).map(String);
    const protocol = typeof c.details.protocol === 'string' ? c.details.protocol : '';
    const t = tables(c);
    return [
      tags.length ? tags.join(', ') : '',
      t.length ? `tables: ${t.join(', ')}` : '',
      protocol && protocol !== 'simple' ? `${protocol} protocol` : '',
    ].filter(Boolean);
  },
  html(c, esc) {
    const params = list(c.details.params);
    const bound = params.length ? `<div class="line"><span class="k">params:</span> <span class="mono">${params.map((p, i) => `$${i + 1} = ${esc(valueText(p))}`).join(', ')}</span></div>` : '';
    return `<pre class="cmd-text sql">${esc(c.text)}</pre>${bound}`;
  },
  markdown: (c) => fenced(c.text, 'sql'),
};
