// The CA bundle a step's tools read through REQUESTS_CA_BUNDLE (Python requests, az), SSL_CERT_FILE
// (Go, OpenSSL) and CURL_CA_BUNDLE: each of those replaces the trust roots rather than adding to
// them, so the bundle holds the system roots followed by the run's CA, and the step can still
// reach hosts the gateway does not serve (NO_PROXY) with their public certificates. Node's
// NODE_EXTRA_CA_CERTS adds to Node's own roots: it gets the run's CA alone.
import fs from 'node:fs';
import tls from 'node:tls';

/** Debian and Ubuntu (GitHub's runners) keep the system roots here, as update-ca-certificates writes them. */
export const SYSTEM_ROOTS_FILE = '/etc/ssl/certs/ca-certificates.crt';

function systemRoots(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    // No system file (macOS, Alpine without ca-certificates): the Mozilla roots Node carries.
    return tls.rootCertificates.join('\n');
  }
}

/** The system roots, then the run's CA, each PEM block starting on its own line. */
export function caBundle(runCaPem: string, systemRootsFile: string = SYSTEM_ROOTS_FILE): string {
  const roots = systemRoots(systemRootsFile);
  const sep = roots === '' || roots.endsWith('\n') ? '' : '\n';
  const ca = runCaPem.endsWith('\n') ? runCaPem : `${runCaPem}\n`;
  return `${roots}${sep}${ca}`;
}
