// The per-run CA satisfies strict verifiers: OpenSSL's -x509_strict with the sslserver purpose,
// Python's ssl with VERIFY_X509_STRICT (the default from Python 3.13, which az >= 2.77 runs on),
// and curl; a leaf names its host only, so curl refuses it for another host. The bundle holds the
// system roots, then the run's CA.
// Needs: openssl, curl, python3 (any 3.x: the test sets VERIFY_X509_STRICT itself).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { createRunCa, canonicalHost, type RunCa } from '../../gateway/http/run-ca.ts';
import { caBundle, SYSTEM_ROOTS_FILE } from '../../gateway/http/ca-bundle.ts';

const run = promisify(execFile);
let ca: RunCa;
let dir: string;
const servers: https.Server[] = [];

before(async () => {
  ca = await createRunCa('unit-test run 7');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'run-ca-'));
  fs.writeFileSync(path.join(dir, 'ca.pem'), ca.certPem);
});
after(() => {
  for (const s of servers) s.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** An HTTPS server on 127.0.0.1 presenting the run CA's leaf for `host`. */
async function serve(host: string): Promise<number> {
  const leaf = await ca.leafFor(host);
  const server = https.createServer({ key: leaf.keyPem, cert: leaf.certPem }, (_req, res) => res.end('served\n'));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function writeLeaf(host: string): Promise<string> {
  const file = path.join(dir, `${host.replace(/[^a-z0-9.]/gi, '_')}.pem`);
  fs.writeFileSync(file, (await ca.leafFor(host)).certPem);
  return file;
}

test('the CA: critical basicConstraints CA:true pathlen 0, critical keyCertSign+cRLSign, both key ids, 24 h from a few minutes ago', async () => {
  const { stdout } = await run('openssl', ['x509', '-noout', '-text', '-in', path.join(dir, 'ca.pem')]);
  assert.match(stdout, /Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
  assert.match(stdout, /Key Usage: critical\s+Certificate Sign, CRL Sign/);
  const ski = /Subject Key Identifier:\s+([0-9A-F:]+)/.exec(stdout)?.[1];
  const aki = /Authority Key Identifier:\s+(?:keyid:)?([0-9A-F:]+)/.exec(stdout)?.[1];
  assert.ok(ski && aki, 'both key identifiers are present');
  assert.equal(aki, ski, 'self-signed: the authority key id is its own');
  assert.match(stdout, /Subject: O = gateway-action, CN = gateway-action run CA unit-test run 7/);
  assert.match(stdout, /ASN1 OID: prime256v1/);
  const cert = new X509Certificate(ca.certPem);
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  assert.ok(from < Date.now() && Date.now() - from < 10 * 60_000, `valid from a few minutes ago (${cert.validFrom})`);
  assert.ok(to - Date.now() > 23 * 3600_000 && to - Date.now() <= 24 * 3600_000 + 60_000, `valid 24 h ahead (${cert.validTo})`);
  assert.ok(cert.ca);
  assert.doesNotMatch(ca.certPem, /PRIVATE KEY/);
});

test('leaves: SAN dNSName or iPAddress, serverAuth, digitalSignature, key ids, validity within the CA', async () => {
  const caCert = new X509Certificate(ca.certPem);
  const caSki = /Subject Key Identifier:\s+([0-9A-F:]+)/.exec((await run('openssl', ['x509', '-noout', '-text', '-in', path.join(dir, 'ca.pem')])).stdout)![1];
  for (const [host, san] of [['management.azure.com', 'DNS:management.azure.com'], ['10.0.0.4', 'IP Address:10.0.0.4'], ['::1', 'IP Address:0:0:0:0:0:0:0:1']] as const) {
    const file = await writeLeaf(host);
    const { stdout } = await run('openssl', ['x509', '-noout', '-text', '-in', file]);
    assert.match(stdout, new RegExp(`Subject Alternative Name: \\n\\s+${san.replace(/\./g, '\\.')}\\n`), host);
    assert.match(stdout, /Basic Constraints: critical\s+CA:FALSE/);
    assert.match(stdout, /Key Usage: critical\s+Digital Signature\n/);
    assert.match(stdout, /Extended Key Usage: \n\s+TLS Web Server Authentication\n/);
    assert.match(stdout, /Subject Key Identifier:/);
    assert.equal(/Authority Key Identifier:\s+(?:keyid:)?([0-9A-F:]+)/.exec(stdout)?.[1], caSki, 'AKI names the CA');
    const leaf = new X509Certificate((await ca.leafFor(host)).certPem);
    assert.ok(leaf.checkIssued(caCert) && leaf.verify(caCert.publicKey));
    assert.ok(Date.parse(leaf.validFrom) >= Date.parse(caCert.validFrom) && Date.parse(leaf.validTo) <= Date.parse(caCert.validTo));
  }
});

test('openssl verify -x509_strict -purpose sslserver accepts the leaves, with host and IP checks', async () => {
  const caFile = path.join(dir, 'ca.pem');
  const name = await writeLeaf('api.internal.example');
  const ip = await writeLeaf('127.0.0.1');
  await run('openssl', ['verify', '-x509_strict', '-purpose', 'sslserver', '-verify_hostname', 'api.internal.example', '-CAfile', caFile, name]);
  await run('openssl', ['verify', '-x509_strict', '-purpose', 'sslserver', '-verify_ip', '127.0.0.1', '-CAfile', caFile, ip]);
  await assert.rejects(run('openssl', ['verify', '-x509_strict', '-verify_hostname', 'management.azure.com', '-CAfile', caFile, name]),
    /hostname mismatch/);
});

test('leaves are cached per canonical host; a concurrent first use issues one', async () => {
  const [a, b] = await Promise.all([ca.leafFor('Cache.Example.'), ca.leafFor('cache.example')]);
  assert.equal(a, b);
  assert.equal(await ca.secureContextFor('CACHE.example'), a.context);
  assert.equal(canonicalHost('[::1]'), '::1');
  assert.equal(canonicalHost('Management.Azure.COM.'), 'management.azure.com');
  await assert.rejects(ca.leafFor(''), /needs a host name or IP address/);
});

test('python ssl with VERIFY_X509_STRICT accepts a TLS server presenting the leaf', async () => {
  const port = await serve('management.azure.com');
  // Python connects to 127.0.0.1 but checks the certificate against the name it was given.
  const script = `
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
ctx.verify_flags |= ssl.VERIFY_X509_STRICT
with socket.create_connection(("127.0.0.1", int(sys.argv[2]))) as raw:
    with ctx.wrap_socket(raw, server_hostname="management.azure.com") as s:
        s.sendall(b"GET / HTTP/1.1\\r\\nHost: management.azure.com\\r\\nConnection: close\\r\\n\\r\\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
print(ssl.OPENSSL_VERSION, bool(ctx.verify_flags & ssl.VERIFY_X509_STRICT), data.split(b"\\r\\n")[0].decode())
`;
  const { stdout } = await run('python3', ['-c', script, path.join(dir, 'ca.pem'), String(port)]);
  assert.match(stdout, /True HTTP\/1\.1 200 OK/);
  // The same strict context refuses the leaf under another name.
  await assert.rejects(run('python3', ['-c', script.replace('server_hostname="management.azure.com"', 'server_hostname="other.example"'), path.join(dir, 'ca.pem'), String(port)]),
    /CERTIFICATE_VERIFY_FAILED|doesn't match|mismatch/);
});

test('curl accepts the leaf for its host and refuses a leaf for another host', async () => {
  const good = await serve('management.azure.com');
  const { stdout } = await run('curl', ['-sS', '--cacert', path.join(dir, 'ca.pem'), '--resolve', `management.azure.com:${good}:127.0.0.1`,
    `https://management.azure.com:${good}/`]);
  assert.equal(stdout, 'served\n');
  const other = await serve('api.internal.example');
  await assert.rejects(run('curl', ['-sS', '--cacert', path.join(dir, 'ca.pem'), '--resolve', `management.azure.com:${other}:127.0.0.1`,
    `https://management.azure.com:${other}/`]), (e: { code: number; stderr: string }) => e.code === 60 && /no alternative certificate subject name matches|does not match/.test(e.stderr));
  // An IP literal leaf: curl checks iPAddress SANs.
  const ip = await serve('127.0.0.1');
  assert.equal((await run('curl', ['-sS', '--cacert', path.join(dir, 'ca.pem'), `https://127.0.0.1:${ip}/`])).stdout, 'served\n');
});

test('the bundle: system roots, then the run CA; Node roots when the system file is missing', async () => {
  const bundle = caBundle(ca.certPem);
  if (fs.existsSync(SYSTEM_ROOTS_FILE)) assert.ok(bundle.startsWith(fs.readFileSync(SYSTEM_ROOTS_FILE, 'utf8')));
  assert.ok(bundle.endsWith(ca.certPem));
  const fallback = caBundle(ca.certPem.trimEnd(), path.join(dir, 'no-such-roots.crt'));
  assert.ok(fallback.startsWith(tls.rootCertificates[0]!));
  assert.ok(fallback.endsWith(`${ca.certPem.trimEnd()}\n`));
  assert.equal(fallback.match(/-----BEGIN CERTIFICATE-----/g)!.length, tls.rootCertificates.length + 1);
  // curl with only the bundle as its roots accepts the leaf.
  const file = path.join(dir, 'bundle.pem');
  fs.writeFileSync(file, bundle);
  const port = await serve('api.internal.example');
  const { stdout } = await run('curl', ['-sS', '--resolve', `api.internal.example:${port}:127.0.0.1`, `https://api.internal.example:${port}/`],
    { env: { ...process.env, CURL_CA_BUNDLE: file } });
  assert.equal(stdout, 'served\n');
});
