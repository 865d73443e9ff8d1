// The verify-full name check, as libpq's (fe-secure-openssl.c, fe-secure-common.c): which name of
// a certificate is compared with the host, and how. test/e2e/auth-tls.test.ts checks the same
// rules against psql on real certificates.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PeerCertificate } from 'node:tls';
import { checkPeerNameLikeLibpq, parseSubjectAltName } from '../../gateway/postgres/peer-name.ts';

const cert = (cn: string | string[] | undefined, san?: string): PeerCertificate => ({ subject: cn === undefined ? {} : { CN: cn }, subjectaltname: san } as unknown as PeerCertificate);
const ok = (host: string, c: PeerCertificate): boolean => checkPeerNameLikeLibpq(host, c) === undefined;

test("Node's subjectaltname string is read, quoted values included; what cannot be read fails closed", () => {
  assert.deepEqual(parseSubjectAltName('DNS:a.example, IP Address:127.0.0.1'), [{ type: 'DNS', value: 'a.example' }, { type: 'IP Address', value: '127.0.0.1' }]);
  assert.deepEqual(parseSubjectAltName('DNS:"a, b", DNS:c'), [{ type: 'DNS', value: 'a, b' }, { type: 'DNS', value: 'c' }]);
  assert.deepEqual(parseSubjectAltName(undefined), []);
  assert.equal(parseSubjectAltName('DNS:"unterminated'), null);
  assert.match(String(checkPeerNameLikeLibpq('a', cert('a', 'DNS:"x'))), /cannot be read/);
});

test('an IP host: IP SANs as addresses; the CN when no IP SAN is present, even beside DNS SANs', () => {
  assert.ok(ok('127.0.0.1', cert('127.0.0.1')));
  assert.ok(ok('127.0.0.1', cert('127.0.0.1', 'DNS:localhost')));
  assert.ok(!ok('127.0.0.1', cert('127.0.0.1', 'IP Address:127.0.0.2')));
  assert.ok(ok('127.0.0.1', cert('x', 'IP Address:127.0.0.2, IP Address:127.0.0.1')));
  assert.ok(ok('::1', cert('x', 'IP Address:0:0:0:0:0:0:0:1')));
  assert.ok(!ok('127.0.0.1', cert('127.0.0.2')));
  assert.ok(!ok('127.0.0.1', cert(undefined)));
});

test('a DNS host: DNS SANs, the CN only when no DNS SAN is present; ASCII case ignored; *. matches one label', () => {
  assert.ok(ok('db.example.com', cert('DB.EXAMPLE.COM')));
  assert.ok(ok('db.example.com', cert('x', 'DNS:*.example.com')));
  assert.ok(!ok('a.db.example.com', cert('x', 'DNS:*.example.com')));
  assert.ok(!ok('example.com', cert('*.example.com')));
  assert.ok(!ok('db.example.com', cert('db.example.com', 'DNS:other.example.com')));
  assert.ok(ok('db.example.com', cert('db.example.com', 'IP Address:10.0.0.1')));
  assert.ok(ok('db.example.com', cert(['db.example.com', 'other'])), 'the first CN');
  assert.ok(!ok('db.example.com', cert(['other', 'db.example.com'])));
  assert.match(String(checkPeerNameLikeLibpq('h', cert('a', 'DNS:b, DNS:c'))), /server certificate for "b" \(and 1 other name\) does not match host name "h"/);
});
