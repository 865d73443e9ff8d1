import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ScramClient, ScramServer, makeVerifier, md5Password } from '../../gateway/postgres/scram.ts';

test('SCRAM-SHA-256: the gateway server and client agree on the right password', () => {
  const server = new ScramServer(makeVerifier('per-run-secret'));
  const client = new ScramClient('per-run-secret');
  const serverFirst = server.first(client.first());
  const serverFinal = server.final(client.final(serverFirst));
  assert.doesNotThrow(() => client.verify(serverFinal));
});

test('SCRAM-SHA-256: a wrong password or a tampered exchange fails', () => {
  const server = new ScramServer(makeVerifier('right'));
  const client = new ScramClient('wrong');
  const serverFirst = server.first(client.first());
  assert.throws(() => server.final(client.final(serverFirst)), /password authentication failed/);

  const s2 = new ScramServer(makeVerifier('right'));
  const c2 = new ScramClient('right');
  const first = s2.first(c2.first());
  const final = c2.final(first).replace(/r=[^,]+/, 'r=forged');
  assert.throws(() => s2.final(final), /nonce mismatch/);

  const s3 = new ScramServer(makeVerifier('right'));
  assert.throws(() => s3.first('p=tls-server-end-point,,n=*,r=abc'), /channel binding/);
  assert.throws(() => s3.first('garbage'), /malformed/);

  // A server that does not know the password cannot fake its signature.
  const c4 = new ScramClient('right');
  const impostor = new ScramServer(makeVerifier('other'));
  const f4 = impostor.first(c4.first());
  c4.final(f4);
  assert.throws(() => c4.verify('v=' + Buffer.alloc(32).toString('base64')), /server signature did not verify/);
});

test('md5 password hashing matches PostgreSQL', () => {
  // 'md5' || md5(md5(password || user) || salt), computed independently with Python's hashlib.
  assert.equal(md5Password('alice', 'secret', Buffer.from([1, 2, 3, 4])), 'md598a0412b9c31436fc53776e863350083');
});
