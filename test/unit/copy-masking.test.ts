// COPY rows split into their columns the way PostgreSQL writes them, following the statement's
// options as the real parser reads them (text escapes, CSV quote and escape characters, other
// delimiters, NULL strings, headers, binary rows); masked fields replaced, every other value read
// by detectors; whatever cannot be split with certainty masked whole.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { copyOuts, maskCopyRow, planCopy, type CopyPlan } from '../../gateway/postgres/copy-masking.ts';
import { loadSqlParser } from '../../gateway/postgres/pg-parser.ts';
import { Masker } from '../../gateway/masking/engine.ts';

const masker = new Masker({ columns: ['email', 'customers.card'], detectors: ['email', 'credit-card'], applyTo: { client: true, log: true } });
const detectOnly = new Masker({ columns: [], detectors: ['email', 'credit-card'], applyTo: { client: true, log: true } });
const table = { name: 'public.customers', columns: [{ name: 'id', typeOid: 23 }, { name: 'email', typeOid: 25 }, { name: 'card', typeOid: 20 }, { name: 'note', typeOid: 25 }] };
const tables = (_schema: string | null, name: string) => (name === 'customers' ? table : undefined);

before(() => loadSqlParser());

function plan(sql: string, columns = 4, binary = false, m = masker): CopyPlan {
  return planCopy(m, copyOuts(sql)[0], columns, binary, tables);
}
function row(p: CopyPlan, s: string, m = masker): string | null {
  const r = maskCopyRow(m, p, Buffer.from(s));
  return r && r.row.toString();
}

test('text format: escapes do not split fields; NULLs stay; a non-text masked column becomes \\N; notes read by detectors', () => {
  const p = plan('COPY customers TO STDOUT');
  assert.deepEqual(p.masks, [null, 'text', 'null', null]);
  assert.equal(row(p, '1\tann@example.com\t4111111111111111\ta\\tb\\\\\n'), '1\ta***@***.com\t\\N\ta\\tb\\\\\n');
  assert.equal(row(p, '2\t\\N\t\\N\tx\n'), null);
  assert.equal(row(p, '3\t\\N\t\\N\tpaid by 4111\\t1111 1111 1111\n'), null, 'a tab is not a card separator');
  assert.equal(row(p, '3\t\\N\t\\N\tpaid by 4111 1111 1111 1111\n'), '3\t\\N\t\\N\tpaid by ****1111\n');
});

test('CSV with every quoting option: DELIMITER, QUOTE, ESCAPE as the server writes them', () => {
  // What PostgreSQL writes for COPY customers TO STDOUT (FORMAT csv, DELIMITER 'e', QUOTE 'D', ESCAPE '!'):
  // values containing e or D are quoted with D, a D inside written !D.
  const p = plan("COPY customers TO STDOUT (FORMAT csv, DELIMITER 'e', QUOTE 'D', ESCAPE '!')");
  assert.equal(row(p, '1eDann@example.comDe4111111111111111e\n'), '1eDa***@***.comDee\n');
  assert.equal(row(p, '2edan@x.ioe42eDa !Dnote with carol@example.netD\n'), '2eDd***@***.ioDeeDa !Dnote with c***@***.netD\n');
  const old = plan("COPY customers (note, email) TO STDOUT WITH CSV HEADER DELIMITER AS ';' QUOTE AS '''' NULL AS 'nil'", 2);
  assert.equal(row(old, 'note;email\n'), null, 'the header is column names');
  assert.equal(row(old, "'a; ''x''';bob@example.org\n"), "'a; ''x''';'b***@***.org'\n");
  assert.equal(row(old, 'nil;nil\n'), null);
});

test('a masked value is written back so that it parses as one field', () => {
  const p = plan("COPY customers TO STDOUT (DELIMITER '*')");
  assert.equal(row(p, '1*ann@example.com*\\N*x\n'), '1*a\\*\\*\\*@\\*\\*\\*.com*\\N*x\n');
});

test('what cannot be split with certainty is masked whole', () => {
  const nulls = '\\N\t\\N\t\\N\t\\N\n';
  assert.equal(row(plan('COPY customers TO STDOUT'), '1\tann@example.com\n'), nulls, 'too few fields');
  assert.equal(row(plan("COPY customers TO STDOUT (ENCODING 'LATIN1')"), '1\tx\t\\N\ty\n'), nulls, 'not UTF-8');
  assert.equal(row(plan("COPY customers TO STDOUT (FORMAT csv, QUOTE '\"')"), '1,"unterminated,x,y\n'), ',,,\n');
  assert.match(plan('COPY customers TO STDOUT (FORMAT csv, SOMETHING_NEW 1)').whole!, /SOMETHING_NEW|something_new/i);
  assert.equal(planCopy(masker, undefined, 4, false, tables).whole, 'the COPY statement is not known');
  assert.match(plan('COPY (SELECT id, upper(email), card, note FROM customers) TO STDOUT').masks.join(), /^,null,null,$/);
  assert.match(plan('COPY (SELECT c FROM customers c) TO STDOUT', 1).masks.join(), /^null$/, 'a whole-row reference');
  assert.deepEqual(plan('COPY (SELECT * FROM customers WHERE id > 1) TO STDOUT').masks, [null, 'text', 'null', null], '* is the table\'s columns');
  assert.deepEqual(plan('COPY (SELECT c.*, c.email FROM customers c) TO STDOUT', 5).masks, [null, 'text', 'null', null, 'text']);
  assert.match(plan('COPY (SELECT * FROM suppliers) TO STDOUT', 2).whole!, /cannot be mapped|names 1 columns/, 'a relation the catalog does not hold');
  assert.equal(plan('COPY (SELECT 1 UNION SELECT 2) TO STDOUT', 1).whole, 'the columns of COPY of a query cannot be mapped to table columns');
  assert.equal(plan('COPY (SELECT 1 UNION SELECT 2) TO STDOUT', 1, false, detectOnly).whole, null, 'detectors alone need no columns');
});

test('binary COPY: text values read by detectors, masked columns NULL, unknown types NULL', () => {
  const p = plan('COPY customers TO STDOUT (FORMAT binary)', 4, true);
  const header = Buffer.concat([Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8)]);
  const field = (b: Buffer | null): Buffer => {
    const len = Buffer.alloc(4);
    len.writeInt32BE(b ? b.length : -1);
    return Buffer.concat([len, ...(b ? [b] : [])]);
  };
  const int = (n: number, size: number): Buffer => {
    const b = Buffer.alloc(size);
    if (size === 4) b.writeInt32BE(n);
    else b.writeBigInt64BE(BigInt(n));
    return b;
  };
  const tuple = (...f: (Buffer | null)[]): Buffer => Buffer.concat([Buffer.from([0, f.length]), ...f.map(field)]);
  const first = Buffer.concat([header, tuple(int(1, 4), Buffer.from('ann@example.com'), int(4111111111111111, 8), Buffer.from('card 4111 1111 1111 1111'))]);
  const r = maskCopyRow(masker, p, first)!;
  assert.ok(r.row.equals(Buffer.concat([header, tuple(int(1, 4), Buffer.from('a***@***.com'), null, Buffer.from('card ****1111'))])));
  const query = planCopy(masker, copyOuts('COPY (SELECT id, note FROM customers) TO STDOUT (FORMAT binary)')[0], 2, true, tables);
  assert.equal(maskCopyRow(masker, query, tuple(int(7, 4), Buffer.from('ok'))), null);
  const unknown = planCopy(masker, undefined, 2, true, tables);
  assert.ok(maskCopyRow(masker, unknown, tuple(int(7, 4), Buffer.from('ok')))!.row.equals(tuple(null, null)));
  assert.ok(maskCopyRow(masker, p, Buffer.from([0, 9, 1]))!.row.equals(tuple(null, null, null, null)), 'a malformed row');
});
