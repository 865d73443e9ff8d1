// An Execute of a portal the gateway cannot know (a SQL cursor) under `unclassified: approve`:
// it is held at Execute, recorded as unclassified with the approve decision, and once approved
// runs with the gateway's own Describe before it (masking is on), so its rows are masked.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { serialize } from 'pg-protocol';
import { appCluster, cli, policyFor, readLog, startGateway, tempDir, waitFor, type Cluster, type RunningGateway } from '../helpers/gateway.ts';
import { RawClient } from '../helpers/raw-pg.ts';

process.env.GATEWAY_ACTION_RUNTIME_DIR = path.join(tempDir('gw-unknown-'), 'run');

const POLICY = `
default: allow
unclassified: approve
approvals: { timeout: 10m }
masking:
  columns: [email]
  apply-to: [client, log]
`;

let cluster: Cluster;
let gw: RunningGateway;

before(async () => {
  cluster = await appCluster();
  cluster.sql("CREATE TABLE people (id int, email text); INSERT INTO people VALUES (1, 'alice.smith@example.com'); ALTER TABLE people OWNER TO deployer", 'app');
  gw = startGateway(policyFor(cluster) + POLICY);
});
after(() => {
  try {
    gw?.stop();
  } finally {
    cluster?.stop();
  }
});

test('an Execute of a SQL cursor is held as unclassified, and runs masked once approved', async () => {
  const client = await RawClient.connect(gw.env, 'unknown-approve');
  try {
    await client.roundTrip([serialize.query('BEGIN')]);
    await client.roundTrip([serialize.query('DECLARE c CURSOR FOR SELECT id, email FROM people')]);
    const done = client.roundTrip([serialize.execute({ portal: 'c' }), serialize.sync()]);
    const id = (await waitFor(() => /holds this command as request ([a-z0-9]{8})/.exec(Buffer.concat(client.received).toString('latin1')), 'the approval NOTICE'))![1]!;
    const ok = cli(['approve', id]);
    assert.equal(ok.status, 0, ok.stderr);
    const replies = await done;
    assert.deepEqual(replies.map((m) => m.name).filter((n) => n !== 'notice'), ['dataRow', 'commandComplete', 'readyForQuery'], 'no RowDescription of the gateway\'s Describe reaches the client');
    assert.deepEqual(replies.find((m) => m.name === 'dataRow')!.fields, ['1', 'a***@***.com']);
    assert.ok(!Buffer.concat(client.received).includes('alice.smith@example.com'));
    await client.roundTrip([serialize.query('COMMIT')]);
  } finally {
    await client.end();
  }
  const log = readLog(gw.stop());
  const session = log.find((r) => r.type === 'session-open' && r.client?.application_name === 'unknown-approve')!.session;
  const cmd = log.find((r) => r.type === 'command' && r.session === session && r.details?.portal === 'c')!;
  assert.match(cmd.text, /^-- unknown statement \(portal "c"\)/);
  assert.match(cmd.unclassified, /portal "c"/);
  assert.equal(cmd.decision.action, 'approve');
  assert.equal(cmd.decision.rule, 'unclassified');
  assert.equal(log.find((r) => r.type === 'approval' && r.command === cmd.command)?.outcome, 'approved');
  const result = log.find((r) => r.type === 'result' && r.command === cmd.command)!;
  assert.equal(result.status, 'ok');
  assert.equal(result.count, 1);
  assert.deepEqual(result.response.sample, [['1', 'a***@***.com']]);
});
