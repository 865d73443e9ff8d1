// Reading a view's stored query (PostgreSQL's node-tree text) for the origin of each column:
// names that look like the format's own syntax are read as names, and anything that does not
// read as one view query gives null (the caller then masks the view's columns by dependency).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { viewColumnOrigins } from '../../gateway/postgres/view-columns.ts';

const entry = (resno: number, resname: string, table: number, column: number, junk = false): string =>
  `{TARGETENTRY :expr {VAR :varno 3 :varattno ${column} :vartype 25 :location 7} :resno ${resno} :resname ${resname} :ressortgroupref 0 :resorigtbl ${table} :resorigcol ${column} :resjunk ${junk}}`;
const query = (targets: string[], extra = ''): string =>
  `({QUERY :commandType 1 :cteList <> :rtable ({RANGETBLENTRY :eref {ALIAS :aliasname customers :colnames ("id" "a"b" "c\\)")} :relid 16386} {RANGETBLENTRY :subquery {QUERY :targetList (${entry(1, 'inner', 999, 9)})}}) ${extra}:targetList (${targets.join(' ')}) :constvalue 4 [ 16 0 0 0 ] :setOperations <>})`;

test('origins of the top-level columns only, not of subqueries; junk columns skipped', () => {
  const origins = viewColumnOrigins(query([entry(1, 'id', 16386, 1), entry(2, 'p', 16386, 3), entry(3, 'e', 0, 0), entry(4, 'sortkey', 16386, 2, true)]));
  assert.deepEqual([...origins!], [[1, { table: 16386, column: 1 }], [2, { table: 16386, column: 3 }], [3, { table: 0, column: 0 }]]);
});

test('names that look like fields, brackets or quotes are read as names', () => {
  const origins = viewColumnOrigins(query([entry(1, ':resorigtbl', 16386, 2), entry(2, 'a"b\\)\\ \\{x\\ :resorigcol\\ 1\\}', 16386, 3), entry(3, '\\"', 16386, 1)]));
  assert.deepEqual([...origins!], [[1, { table: 16386, column: 2 }], [2, { table: 16386, column: 3 }], [3, { table: 16386, column: 1 }]]);
});

test('anything else reads as unknown (null), never as a guess', () => {
  for (const bad of [
    '',
    'garbage',
    query([entry(1, 'id', 16386, 1)]).slice(0, -3), // cut short
    `(${query([entry(1, 'id', 16386, 1)]).slice(1, -1)} ${query([entry(1, 'id', 16386, 1)]).slice(1, -1)})`, // two actions
    query([entry(1, 'id', 16386, 1)]).replace(':resorigtbl 16386', ':resorigtbl x'),
    query([entry(1, 'id', 16386, 1)]).replaceAll('{TARGETENTRY', '{OTHER'),
    query([entry(1, 'id', 16386, 1)]).replaceAll(':targetList (', ':targetList <> ('),
  ]) {
    assert.equal(viewColumnOrigins(bad), null, bad.slice(0, 80));
  }
});
