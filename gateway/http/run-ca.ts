// The per-run certificate authority of the forward proxy: generated when the gateway starts, it
// issues a leaf certificate for each host a target names, so a step's tools (az, Terraform, curl,
// Node, Python) that reach Azure through HTTPS_PROXY talk TLS with the gateway, which then decides,
// records and masks what they send. Its private key is a non-extractable WebCrypto key: it signs
// leaves in this process and is never exported, written or logged.
//
// Strict clients shape the certificates. Python 3.13 (az >= 2.77) sets VERIFY_X509_STRICT, which
// rejects a CA without critical basicConstraints, keyUsage keyCertSign and the subject/authority
// key identifiers, and a leaf without its SAN or authority key identifier; Go and curl check the
// SAN (never the CN) and extendedKeyUsage serverAuth. ECDSA P-256 keys are accepted by every one
// of them (OpenSSL, Go's crypto/tls, Node, Python, .NET, Java) and cost a millisecond to generate.
import 'reflect-metadata'; // tsyringe, inside @peculiar/x509, needs the polyfill before it loads
import * as x509 from '@peculiar/x509';
import { isIP } from 'node:net';
import { webcrypto, randomBytes } from 'node:crypto';
import tls from 'node:tls';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export interface LeafCertificate {
  /** The leaf's certificate alone (the server sends it; clients hold the CA). */
  certPem: string;
  /** PKCS#8 private key of the leaf, kept in memory for the TLS server. */
  keyPem: string;
  context: tls.SecureContext;
}

export interface RunCa {
  /** The CA certificate: NODE_EXTRA_CA_CERTS, and appended to the system roots for the bundle. */
  certPem: string;
  /** The leaf for a host (DNS name or IP literal), issued on first use and cached. */
  leafFor(host: string): Promise<LeafCertificate>;
  secureContextFor(host: string): Promise<tls.SecureContext>;
}

const EC: webcrypto.EcKeyGenParams & webcrypto.EcdsaParams = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
/** Clients whose clock is a little behind the runner's still accept the certificates. */
const BACKDATE_MS = 5 * 60_000;
const LIFETIME_MS = 24 * 3600_000;
/** X.520's upper bound for commonName; a longer host lives in the SAN only. */
const CN_MAX = 64;

/** A positive 127-bit serial number (RFC 5280: at most 20 octets, positive, unpredictable). */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return bytes.toString('hex');
}

/** The form certificates and comparisons use: lower case, no trailing dot, IPv6 without brackets. */
export function canonicalHost(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h.endsWith('.') && !isIP(h)) h = h.slice(0, -1);
  return h;
}

export async function createRunCa(runLabel: string): Promise<RunCa> {
  const notBefore = new Date(Date.now() - BACKDATE_MS);
  const notAfter = new Date(notBefore.getTime() + BACKDATE_MS + LIFETIME_MS);
  // extractable false: WebCrypto refuses to export the CA's private key, whoever asks.
  const caKeys = await webcrypto.subtle.generateKey(EC, false, ['sign', 'verify']) as webcrypto.CryptoKeyPair;
  const caName: Record<string, string[]>[] = [{ O: ['gateway-action'] }, { CN: [`gateway-action run CA ${runLabel}`.slice(0, CN_MAX)] }];
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: caName,
    notBefore,
    notAfter,
    signingAlgorithm: EC,
    keys: caKeys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const caKeyId = await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey);

  async function issue(host: string): Promise<LeafCertificate> {
    const keys = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']) as webcrypto.CryptoKeyPair;
    const ip = isIP(host) !== 0;
    const subject: Record<string, string[]>[] = [{ O: ['gateway-action'] }];
    if (host.length <= CN_MAX) subject.push({ CN: [host] });
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serialNumber(),
      subject,
      issuer: ca.subject,
      notBefore,
      notAfter,
      signingAlgorithm: EC,
      publicKey: keys.publicKey,
      signingKey: caKeys.privateKey,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension([{ type: ip ? 'ip' : 'dns', value: host }]),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        caKeyId,
      ],
    });
    const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
    const keyPem = x509.PemConverter.encode(pkcs8, 'PRIVATE KEY');
    const certPem = cert.toString('pem');
    return { certPem, keyPem, context: tls.createSecureContext({ key: keyPem, cert: certPem }) };
  }

  // The promise is cached, so concurrent first uses of a host share one issuance.
  const leaves = new Map<string, Promise<LeafCertificate>>();
  const leafFor = (host: string): Promise<LeafCertificate> => {
    const h = canonicalHost(host);
    if (h === '') return Promise.reject(new Error('run CA: a leaf needs a host name or IP address'));
    let leaf = leaves.get(h);
    if (!leaf) {
      leaf = issue(h);
      leaves.set(h, leaf);
      leaf.catch(() => leaves.delete(h));
    }
    return leaf;
  };

  return {
    certPem: ca.toString('pem') + '\n',
    leafFor,
    secureContextFor: async (host) => (await leafFor(host)).context,
  };
}
