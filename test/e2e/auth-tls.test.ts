// The gateway's own login upstream (cleartext, md5, SCRAM-SHA-256; TLS disable, require,
// verify-full) and the client-side authentication errors, against real PostgreSQL and real psql.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { appCluster, cli, directEnv, policyFor, psql, readLog, startGateway, tempDir, waitFor, type Cluster, type LogRecord } from '../helpers/gateway.ts';

/** Starts a gateway for policyText, runs psql through it, stops it; returns psql's result and the log. */
function throughGateway(policyText: string, upstreamPassword: string, args: string[], envOverride: Record<string, string> = {}) {
  const gw = startGateway(policyText, upstreamPassword);
  let r;
  try {
    r = psql({ ...gw.env, ...envOverride }, args);
  } finally {
    gw.stop();
  }
  return { ...r, log: readLog(gw.logPath()), env: gw.env };
}

function upstreamLogins(log: LogRecord[]): LogRecord[] {
  return log.filter((r) => r.type === 'upstream-login');
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'pipe' });
}

/** A CA (ca.crt/ca.key) in dir, named cn. */
function makeCa(dir: string, cn: string): void {
  fs.mkdirSync(dir, { recursive: true });
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', `/CN=${cn}`], dir);
}

describe('upstream authentication methods', () => {
  let cluster: Cluster;
  before(async () => {
    // TLS on, so tls: require can be tried too (a self-signed certificate: require checks none).
    const certDir = tempDir('gw-auth-tls-');
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'server.key', '-out', 'server.crt', '-days', '2', '-subj', '/CN=localhost'], certDir);
    cluster = await appCluster({
      tls: { cert: path.join(certDir, 'server.crt'), key: path.join(certDir, 'server.key') },
      hba: [
        'host all u_md5 127.0.0.1/32 md5',
        'host all u_clear 127.0.0.1/32 password',
        'host all u_scram 127.0.0.1/32 scram-sha-256',
      ],
    });
    cluster.sql(`SET password_encryption = 'md5'; CREATE ROLE u_md5 LOGIN PASSWORD 'md5-pw'`);
    cluster.sql(`CREATE ROLE u_clear LOGIN PASSWORD 'clear-pw'`);
    cluster.sql(`SET password_encryption = 'scram-sha-256'; CREATE ROLE u_scram LOGIN PASSWORD 'scram-pw'`);
    cluster.sql('GRANT CONNECT ON DATABASE app TO u_md5, u_clear, u_scram');
  });
  after(() => cluster?.stop());

  for (const [role, password, method] of [
    ['u_clear', 'clear-pw', 'password'],
    ['u_md5', 'md5-pw', 'md5'],
    ['u_scram', 'scram-pw', 'scram-sha-256'],
  ] as const) {
    test(`logs in upstream as ${role} with ${method} and records the method`, () => {
      // cleartext and md5 without a verified server need the policy's opt-in (the next tests).
      const optIn = method === 'scram-sha-256' ? '' : ', allow-cleartext: true';
      const policy = policyFor(cluster, { user: role }).replace('auth: { password-env: APP_DB_PASSWORD }', `auth: { password-env: APP_DB_PASSWORD${optIn} }`);
      const r = throughGateway(policy, password, ['-At', '-c', 'SELECT current_user, current_database()']);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout.trim(), `${role}|app`);
      assert.equal(r.env.PGUSER, role);
      const logins = upstreamLogins(r.log);
      assert.equal(logins.length, 1, JSON.stringify(logins));
      assert.equal(logins[0]!.ok, true);
      assert.equal(logins[0]!.auth, method);
      assert.equal(logins[0]!.tls, null);
    });
  }

  for (const [role, password, method, how] of [
    ['u_clear', 'clear-pw', 'cleartext', 'in cleartext'],
    ['u_md5', 'md5-pw', 'md5', 'as md5'],
  ] as const) {
    for (const tls of ['disable', 'require'] as const) {
      test(`a server asking for the password ${how} under tls: ${tls} does not get it unless the policy opts in`, () => {
        const r = throughGateway(policyFor(cluster, { user: role, tls }), password, ['-At', '-c', 'SELECT current_user']);
        assert.notEqual(r.status, 0);
        assert.match(r.stderr, new RegExp(`FATAL: {2}gateway: login to upstream "app-db" failed: upstream 127\\.0\\.0\\.1:\\d+ asks for the password ${how} over`));
        assert.match(r.stderr, method === 'cleartext' ? /anyone able to answer at that address would receive the password itself/ : /could relay the md5 answer to log in, or crack the password from it/);
        assert.match(r.stderr, /allow-cleartext: true/);
        const [login] = upstreamLogins(r.log);
        assert.equal(login!.ok, false);
        // The password never left: the server saw a connection that gave up, not a wrong password.
        assert.doesNotMatch(r.stderr, /password authentication failed/);
      });
    }
  }

  test('a wrong upstream password: the client sees FATAL naming the upstream login failure', () => {
    const r = throughGateway(policyFor(cluster), 'not-the-password', ['-c', 'SELECT 1']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /FATAL/);
    assert.match(r.stderr, /login to upstream "app-db" failed/);
    assert.match(r.stderr, /password authentication failed for user "deployer"/);
    assert.doesNotMatch(r.stderr, /not-the-password/);
    const logins = upstreamLogins(r.log);
    assert.equal(logins.length, 1, JSON.stringify(logins));
    assert.equal(logins[0]!.ok, false);
    assert.equal(logins[0]!.error.code, '28P01');
    assert.match(logins[0]!.error.message, /password authentication failed for user "deployer"/);
    assert.equal(r.log.filter((x) => x.type === 'command').length, 0);
  });

  test('a wrong client password is refused with "password authentication failed"', () => {
    const r = throughGateway(policyFor(cluster), 'deployer-pw', ['-c', 'SELECT 1'], { PGPASSWORD: 'wrong' });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /password authentication failed for user "deployer"/);
    // The gateway never went upstream for a client it did not authenticate.
    assert.equal(upstreamLogins(r.log).length, 0);
    assert.ok(r.log.some((x) => x.type === 'session-close' && /authentication failed/.test(String(x.reason))), JSON.stringify(r.log));
  });

  test("a wrong user or database is refused with a message naming the target's user and database", () => {
    const gw = startGateway(policyFor(cluster));
    try {
      const wrongUser = psql({ ...gw.env, PGUSER: 'postgres' }, ['-c', 'SELECT 1']);
      assert.notEqual(wrongUser.status, 0);
      assert.match(wrongUser.stderr, /FATAL/);
      assert.match(wrongUser.stderr, /user "deployer"/);
      assert.match(wrongUser.stderr, /database "app"/);
      assert.match(wrongUser.stderr, /"postgres"/);

      const wrongDb = psql({ ...gw.env, PGDATABASE: 'postgres' }, ['-c', 'SELECT 1']);
      assert.notEqual(wrongDb.status, 0);
      assert.match(wrongDb.stderr, /FATAL/);
      assert.match(wrongDb.stderr, /user "deployer"/);
      assert.match(wrongDb.stderr, /database "app"/);

      // The right settings still work on the same gateway.
      const ok = psql(gw.env, ['-At', '-c', 'SELECT 1']);
      assert.equal(ok.status, 0, ok.stderr);
      assert.equal(ok.stdout.trim(), '1');
    } finally {
      gw.stop();
    }
    const log = readLog(gw.logPath());
    assert.equal(upstreamLogins(log).length, 1, 'only the accepted client led to an upstream login');
  });
});

describe('upstream TLS', () => {
  let cluster: Cluster;
  let dir: string;
  let caFile: string;
  let otherCaFile: string;

  before(async () => {
    dir = tempDir('gw-tls-');
    makeCa(dir, 'gateway test CA');
    makeCa(path.join(dir, 'other'), 'some other CA');
    caFile = path.join(dir, 'ca.crt');
    otherCaFile = path.join(dir, 'other', 'ca.crt');
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost'], dir);
    fs.writeFileSync(path.join(dir, 'server.ext'), 'subjectAltName = IP:127.0.0.1, DNS:localhost\nbasicConstraints = CA:FALSE\nextendedKeyUsage = serverAuth\n');
    openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'server.ext'], dir);
    cluster = await appCluster({
      tls: { cert: path.join(dir, 'server.crt'), key: path.join(dir, 'server.key') },
      hba: ['hostssl all deployer 127.0.0.1/32 scram-sha-256', 'hostnossl all deployer 127.0.0.1/32 reject'],
    });
  });
  after(() => {
    cluster?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('verify-full with ca-file works, and the upstream login records the TLS protocol', () => {
    const r = throughGateway(policyFor(cluster, { tls: 'verify-full', 'ca-file': caFile }), 'deployer-pw', ['-At', '-c', 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 't', 'the upstream connection is encrypted');
    const [login] = upstreamLogins(r.log);
    assert.equal(login!.ok, true);
    assert.equal(login!.auth, 'scram-sha-256');
    assert.match(String(login!.tls?.protocol), /^TLSv1\.[23]$/);
    assert.equal(typeof login!.tls?.cipher, 'string');
  });

  test('verify-full with host localhost checks the name against the DNS SAN', () => {
    const r = throughGateway(policyFor(cluster, { host: 'localhost', tls: 'verify-full', 'ca-file': caFile }), 'deployer-pw', ['-At', '-c', 'SELECT current_user']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'deployer');
    const [login] = upstreamLogins(r.log);
    assert.equal(login!.ok, true);
    assert.match(String(login!.tls?.protocol), /^TLSv1\.[23]$/);
  });

  test('require encrypts without a ca-file', () => {
    const r = throughGateway(policyFor(cluster, { tls: 'require' }), 'deployer-pw', ['-At', '-c', 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 't');
    const [login] = upstreamLogins(r.log);
    assert.equal(login!.ok, true);
    assert.match(String(login!.tls?.protocol), /^TLSv1\.[23]$/);
  });

  test("disable is refused by the server, and the client sees the server's rejection", () => {
    const r = throughGateway(policyFor(cluster, { tls: 'disable' }), 'deployer-pw', ['-c', 'SELECT 1']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /FATAL/);
    assert.match(r.stderr, /login to upstream "app-db" failed/);
    assert.match(r.stderr, /pg_hba\.conf rejects connection/);
    assert.match(r.stderr, /no encryption/);
    const [login] = upstreamLogins(r.log);
    assert.equal(login!.ok, false);
  });

  test('verify-full against a different CA fails with a TLS verification error', () => {
    const r = throughGateway(policyFor(cluster, { tls: 'verify-full', 'ca-file': otherCaFile }), 'deployer-pw', ['-c', 'SELECT 1']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /FATAL/);
    assert.match(r.stderr, /login to upstream "app-db" failed/);
    assert.match(r.stderr, /TLS/);
    // About verification itself, not just the mode's name echoed back.
    assert.match(r.stderr.replaceAll('verify-full', ''), /verif/i);
    assert.match(r.stderr, /certificate/i);
    const [login] = upstreamLogins(r.log);
    assert.equal(login!.ok, false);
    assert.match(login!.error.message, /certificate/i);
  });

  test("verify-full without a ca-file does not trust the cluster's private CA", () => {
    const r = throughGateway(policyFor(cluster, { tls: 'verify-full' }), 'deployer-pw', ['-c', 'SELECT 1']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /TLS/);
    assert.match(r.stderr, /certificate/i);
  });

  test('a relative ca-file resolves against the policy file, not the working directory', () => {
    const conf = path.join(dir, 'conf');
    fs.mkdirSync(path.join(conf, 'certs'), { recursive: true });
    fs.copyFileSync(caFile, path.join(conf, 'certs', 'ca.crt'));
    const policy = path.join(conf, 'gateway.yml');
    fs.writeFileSync(policy, policyFor(cluster, { tls: 'verify-full', 'ca-file': 'certs/ca.crt' }));
    const cwd = tempDir('gw-cwd-');
    const logDir = path.join(cwd, 'logs');
    const r = cli(['run', '--policy', policy, '--log-dir', logDir, '--', 'psql', '-X', '-At', '-c', 'SELECT current_user'], {
      cwd,
      env: { ...process.env, APP_DB_PASSWORD: 'deployer-pw' },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'deployer');
    const logPath = /session log: (.+)$/m.exec(r.stderr)?.[1];
    assert.ok(logPath, r.stderr);
    const [login] = upstreamLogins(readLog(logPath));
    assert.equal(login!.ok, true);
    assert.match(String(login!.tls?.protocol), /^TLSv1\.[23]$/);
    fs.rmSync(cwd, { recursive: true, force: true });
  });
});

/** The fingerprint of the certificate the server presents now (after SSLRequest, without verifying it). */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const plain = net.connect({ host: '127.0.0.1', port }, () => plain.write(Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])));
    plain.once('error', reject);
    plain.once('data', () => {
      const s = tls.connect({ socket: plain, rejectUnauthorized: false }, () => {
        const fp = s.getPeerCertificate().fingerprint256;
        s.destroy();
        resolve(fp);
      });
      s.once('error', reject);
    });
  });
}

describe('verify-full checks the server name as libpq does', () => {
  let cluster: Cluster;
  let dir: string;
  const caFile = (): string => path.join(dir, 'ca.crt');

  /** Issues a server certificate with this subject and SAN (none: no extension), serves it, and waits until the server does. */
  async function serve(cn: string, san: string | null): Promise<void> {
    issue(cn, san);
    for (const f of ['server.crt', 'server.key']) {
      fs.copyFileSync(path.join(dir, f), path.join(cluster.dataDir, f));
      if (process.getuid?.() === 0) execFileSync('chown', ['postgres:postgres', path.join(cluster.dataDir, f)]);
      fs.chmodSync(path.join(cluster.dataDir, f), 0o600);
    }
    cluster.sql('SELECT pg_reload_conf()');
    const want = new X509Certificate(fs.readFileSync(path.join(dir, 'server.crt'))).fingerprint256;
    await waitFor(async () => (await servedFingerprint(cluster.port)) === want, 'the server to present the new certificate');
  }

  function issue(cn: string, san: string | null): void {
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', `/CN=${cn}`], dir);
    fs.writeFileSync(path.join(dir, 'server.ext'), `${san ? `subjectAltName = ${san}\n` : ''}basicConstraints = CA:FALSE\nextendedKeyUsage = serverAuth\n`);
    openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'server.ext'], dir);
  }

  before(async () => {
    dir = tempDir('gw-tls-names-');
    makeCa(dir, 'gateway names CA');
    issue('localhost', 'DNS:localhost');
    cluster = await appCluster({
      tls: { cert: path.join(dir, 'server.crt'), key: path.join(dir, 'server.key') },
      hba: ['hostssl all deployer 127.0.0.1/32 scram-sha-256', 'hostnossl all deployer 127.0.0.1/32 reject', 'hostssl all u_clear 127.0.0.1/32 password'],
    });
    cluster.sql(`CREATE ROLE u_clear LOGIN PASSWORD 'clear-pw'; GRANT CONNECT ON DATABASE app TO u_clear`);
  });
  after(() => {
    cluster?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  // [subject CN, subjectAltName, host the target names, whether libpq accepts]
  const cases: [string, string | null, string, boolean][] = [
    ['127.0.0.1', null, '127.0.0.1', true], // the issue's case: an IP address in the CN, no SAN
    ['127.0.0.2', null, '127.0.0.1', false],
    ['127.0.0.1', 'IP:127.0.0.2', '127.0.0.1', false], // an IP SAN present: the CN is not consulted
    ['127.0.0.1', 'DNS:localhost', '127.0.0.1', true], // DNS SANs only: libpq still reads the CN for an address
    ['localhost', 'IP:127.0.0.1', 'localhost', true], // and the CN for a name when only IP SANs are present
    ['LOCALHOST', null, 'localhost', true],
    ['*.localhost', null, 'localhost', false],
    ['other', 'DNS:*.localdomain, DNS:localhost', 'localhost', true],
  ];
  for (const [cn, san, host, accepted] of cases) {
    test(`CN=${cn}${san ? `, SAN ${san}` : ', no SAN'}, host ${host}: ${accepted ? 'accepted' : 'refused'}, as by psql with sslmode=verify-full`, async () => {
      await serve(cn, san);
      const direct = psql({ ...directEnv(cluster), PGHOST: host, PGSSLMODE: 'verify-full', PGSSLROOTCERT: caFile() }, ['-At', '-c', 'SELECT 1']);
      assert.equal(direct.status === 0, accepted, `libpq itself: ${direct.stderr}`);
      const r = throughGateway(policyFor(cluster, { host, tls: 'verify-full', 'ca-file': caFile() }), 'deployer-pw', ['-At', '-c', 'SELECT current_user']);
      assert.equal(r.status === 0, accepted, r.stderr);
      if (accepted) assert.equal(r.stdout.trim(), 'deployer');
      else assert.match(r.stderr, new RegExp(`server certificate for "[^"]+".* does not match host name "${host}"`));
    });
  }

  test('under verify-full a server that asks for the password in cleartext gets it: the certificate proved the server', async () => {
    await serve('127.0.0.1', null);
    const r = throughGateway(policyFor(cluster, { user: 'u_clear', tls: 'verify-full', 'ca-file': caFile() }), 'clear-pw', ['-At', '-c', 'SELECT current_user']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'u_clear');
    assert.equal(upstreamLogins(r.log)[0]!.auth, 'password');
  });
});
