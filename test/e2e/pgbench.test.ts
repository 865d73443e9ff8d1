// pgbench through the gateway: initialization (DDL, COPY FROM STDIN, VACUUM) and concurrent
// select-only load in simple and prepared modes, with every transaction's query in the log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { readLog, useClusterAndGateway } from '../helpers/gateway.ts';

const fixture = useClusterAndGateway();

const pgbench = (args: string[]) =>
  spawnSync(path.join(fixture.cluster().binDir, 'pgbench'), args, { encoding: 'utf8', env: { ...process.env, ...fixture.gw().env }, timeout: 120_000 });

test('pgbench initializes and runs through the gateway; the log holds every query', () => {
  const cluster = fixture.cluster();
  const gw = fixture.gw();
  const init = pgbench(['-i', '-s', '2']);
  assert.equal(init.status, 0, init.stderr);
  assert.equal(cluster.sql('SELECT count(*) FROM pgbench_accounts', 'app').trim(), '200000');

  for (const mode of ['simple', 'prepared']) {
    const r = pgbench(['-S', '-n', '-M', mode, '-c', '4', '-j', '2', '-t', '250']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /number of transactions actually processed: 1000\/1000/);
    assert.match(r.stdout, /number of failed transactions: 0/);
  }
  const log = gw.stop();
  const records = readLog(log);
  const selects = records.filter((r) => r.type === 'command' && /SELECT abalance FROM pgbench_accounts WHERE aid = /.test(r.text));
  assert.equal(selects.filter((r) => r.details.protocol === 'simple').length, 1000);
  const prepared = selects.filter((r) => r.details.protocol === 'extended');
  assert.equal(prepared.length, 1000);
  assert.ok(prepared.every((r) => Array.isArray(r.details.params) && r.details.params.length === 1 && /^\d+$/.test(r.details.params[0])), 'each execution records its aid parameter');
  const copy = records.find((r) => r.type === 'command' && /^copy pgbench_accounts/i.test(r.text));
  assert.ok(copy, 'the COPY FROM STDIN of initialization is recorded');
  const copyResult = records.find((r) => r.type === 'result' && r.command === copy.command);
  assert.equal(copyResult?.status, 'ok');
  assert.ok(copyResult.input.bytes > 1_000_000, 'the COPY data the client streamed is counted');
  const results = new Map(records.filter((r) => r.type === 'result').map((r) => [r.command, r]));
  for (const s of selects) assert.equal(results.get(s.command)?.status, 'ok');
});
