// COPY rows split into their columns the way PostgreSQL writes them (text escapes, CSV quotes,
// other delimiters), masked fields replaced, and a row that does not split as planned masked whole.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { maskCopyRow, planCopy } from '../../gateway/postgres/copy-masking.ts';
import { Masker } from '../../gateway/masking/engine.ts';

const masker = new Masker({ columns: ['email', 'customers.card'], detectors: [], applyTo: { client: true, log: true } });
const table = { name: 'public.customers', columns: [{ name: 'id', typeOid: 23 }, { name: 'email', typeOid: 25 }, { name: 'card', typeOid: 20 }, { name: 'note', typeOid: 25 }] };
const copy = (format: 'text' | 'csv', delimiter: string, columns: string[] | null = null) => ({ schema: null, table: 'customers', columns, format, delimiter, quote: '"' });

test('text format: escapes do not split fields; NULLs stay; a non-text masked column becomes \\N', () => {
  const plan = planCopy(masker, copy('text', '\t'), table)!;
  assert.deepEqual(plan.masks, [null, 'text', 'null', null]);
  assert.deepEqual(maskCopyRow(masker, plan, '1\tann@example.com\t4111111111111111\ta\\tb\\\\\n'), { row: '1\ta***@***.com\t\\N\ta\\tb\\\\\n', masked: 2 });
  assert.equal(maskCopyRow(masker, plan, '2\t\\N\t\\N\tx\n'), null);
});

test('CSV: quoted fields with delimiters and quotes inside; custom delimiters; listed columns', () => {
  const plan = planCopy(masker, copy('csv', ','), table)!;
  assert.deepEqual(maskCopyRow(masker, plan, '1,"ann@example.com",42,"a, ""quoted"" note"\n'), { row: '1,a***@***.com,,"a, ""quoted"" note"\n', masked: 2 });
  const listed = planCopy(masker, copy('csv', ';', ['note', 'email']), table)!;
  assert.deepEqual(maskCopyRow(masker, listed, 'x;bob@example.org\n'), { row: 'x;b***@***.org\n', masked: 1 });
  assert.equal(planCopy(masker, copy('csv', ',', ['id', 'note']), table), null, 'nothing masked: no plan');
});

test('a row that does not split into the planned columns is masked whole', () => {
  const plan = planCopy(masker, copy('text', '\t'), table)!;
  assert.deepEqual(maskCopyRow(masker, plan, '1\tann@example.com\n'), { row: '\\N\t\\N\n', masked: 2 });
});
