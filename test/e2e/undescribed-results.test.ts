// Results the client never described: Parse, Bind (text or binary results), Execute, Sync with no
// Describe. The gateway learns the columns with a Describe of its own, sent right before the
// Execute and answered to the gateway alone, so masked columns and detector findings are masked
// in what the client receives and in the log's sample, and the client sees exactly the replies
// it asked for.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { serialize } from 'pg-protocol';
import { appCluster, policyFor, readLog, startGateway, type Cluster, type LogRecord, type RunningGateway } from '../helpers/gateway.ts';
import { RawClient, type Msg } from '../helpers/raw-pg.ts';

const MASKING = `masking:
  columns: [email, "customers.phone", "*.card_number"]
  detectors: [email, credit-card]
  apply-to: [client, log]
`;

const SECRETS = ['alice.smith@example.com', '+1 555 0100', '4111 1111 1111 1111', 'bob@example.org', '5500-0000-0000-0004'];
const QUERY = 'SELECT id, email, phone, card_number, notes FROM customers ORDER BY id';

let cluster: Cluster;
let gw: RunningGateway;

before(async () => {
  cluster = await appCluster();
  cluster.sql(`
    CREATE TABLE customers (id int PRIMARY KEY, email text, phone text, card_number text, notes text);
    INSERT INTO customers VALUES
      (1, 'alice.smith@example.com', '+1 555 0100', '4111 1111 1111 1111', 'write to bob@example.org, card 5500-0000-0000-0004'),
      (2, 'carol@example.net', '+44 20 7946 0000', NULL, 'nothing here');
    ALTER TABLE customers OWNER TO deployer;`, 'app');
  gw = startGateway(policyFor(cluster) + MASKING);
});
after(() => {
  try {
    gw?.stop();
  } finally {
    cluster?.stop();
  }
});

const names = (ms: Msg[]): string[] => ms.map((m) => m.name);

function assertNoSecret(bytes: Buffer, what: string): void {
  for (const s of SECRETS) assert.ok(!bytes.includes(s), `${what} holds ${s} in clear`);
}
/** The log keeps binary values as hex. */
function assertNoSecretInRecord(record: LogRecord, what: string): void {
  const json = JSON.stringify(record);
  for (const s of SECRETS) assert.ok(!json.includes(s) && !json.includes(Buffer.from(s).toString('hex')), `${what} holds ${s}`);
}

/** The text values of a DataRow (binary text-type values are their text too). */
const texts = (m: Msg): (string | null)[] => m.fields as (string | null)[];

for (const [format, binary] of [['text', false], ['binary', true]] as const) {
  test(`client: Parse, Bind (${format} results), Execute, Sync without Describe: values are masked`, async () => {
    const client = await RawClient.connect(gw.env, `undescribed-${format}`);
    try {
      const replies = await client.roundTrip([serialize.parse({ text: QUERY }), serialize.bind({ binary }), serialize.execute({}), serialize.sync()]);
      // The gateway's own Describe is answered to the gateway: no RowDescription reaches the client.
      assert.deepEqual(names(replies), ['parseComplete', 'bindComplete', 'dataRow', 'dataRow', 'commandComplete', 'readyForQuery']);
      const [row1, row2] = [texts(replies[2]!), texts(replies[3]!)];
      assert.deepEqual(row1.slice(1), ['a***@***.com', '****0100', '****1111', 'write to b***@***.org, card ****0004']);
      assert.deepEqual(row2.slice(1), ['c***@***.net', '****0000', null, 'nothing here']);
      if (!binary) assert.deepEqual([row1[0], row2[0]], ['1', '2']);
      else assert.deepEqual([row1[0], row2[0]].map((v) => Buffer.from(v!, 'latin1').readInt32BE(0)), [1, 2], 'a binary int4 passes as it is');
      assertNoSecret(Buffer.concat(client.received), 'what the client received');

      // A named portal executed in two parts: described once, masked in both.
      const parts = await client.roundTrip([
        serialize.parse({ name: 'q', text: QUERY }),
        serialize.bind({ statement: 'q', portal: 'p', binary }),
        serialize.execute({ portal: 'p', rows: 1 }),
        serialize.execute({ portal: 'p', rows: 1 }),
        serialize.sync(),
      ]);
      assert.deepEqual(names(parts), ['parseComplete', 'bindComplete', 'dataRow', 'portalSuspended', 'dataRow', 'portalSuspended', 'readyForQuery']);
      assert.equal(texts(parts[2]!)[1], 'a***@***.com');
      assert.equal(texts(parts[4]!)[1], 'c***@***.net');
      assertNoSecret(Buffer.concat(client.received), 'what the client received');
    } finally {
      await client.end();
    }
  });
}

test('log: the samples of undescribed results are masked, with the masked count', () => {
  const log = readLog(gw.stop());
  for (const format of ['text', 'binary']) {
    const session = log.find((r) => r.type === 'session-open' && r.client?.application_name === `undescribed-${format}`)?.session;
    assert.ok(session, `a session for ${format}`);
    const commands = log.filter((r) => r.type === 'command' && r.session === session);
    assert.equal(commands.length, 3, 'one command per Execute');
    const results = commands.map((c) => log.find((r: LogRecord) => r.type === 'result' && r.command === c.command)!);
    for (const r of results) {
      assert.ok(r.masked && r.masked.values > 0, `${format}: masked values are counted: ${JSON.stringify(r)}`);
      assertNoSecretInRecord(r, `the ${format} result record`);
    }
    const sample = JSON.stringify(results[0]!.response.sample);
    const shown = (v: string): string => (format === 'binary' ? Buffer.from(v).toString('hex') : v);
    assert.ok(sample.includes(shown('a***@***.com')) && sample.includes(shown('****1111')), `${format} sample: ${sample}`);
  }
});
