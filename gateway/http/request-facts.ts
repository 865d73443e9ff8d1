// What the policy matches on for one HTTP request: its method, host, normalized path and, on
// Azure Resource Manager, the resource the path names. A request the gateway cannot read one way
// only (a method that is no token, a path that does not normalize to itself, ARM's /batch, an ARM
// path whose segments do not pair) is unclassified, never read as something harmless.
import { readArmPath, type ArmResource } from './arm-resource.ts';
import { normalizeRequestPath } from './request-path.ts';

export interface HttpUnit {
  /** Upper-cased; the gateway forwards this spelling, so the upstream runs what was decided. */
  method: string;
  /** Lower-cased, as the request named it (with a port when it had one). */
  host: string;
  /** The normalized path (request-path.ts), without the query. */
  path: string;
  /** The ARM resource the path names (ARM APIs only; absent on other APIs and on ARM paths outside resources). */
  resource?: ArmResource;
}

/**
 * Headers that make some servers run another method than the request line's (a POST that runs
 * as DELETE). The gateway refuses requests that carry any of them, so the decided method is the
 * one that runs. Lower-case, as Node names incoming headers.
 */
export const METHOD_OVERRIDE_HEADERS: readonly string[] = ['x-http-method-override', 'x-http-method', 'x-method-override'];

/** The public clouds' Azure Resource Manager hosts. */
export const ARM_HOSTS: readonly string[] = ['management.azure.com', 'management.usgovcloudapi.net', 'management.chinacloudapi.cn'];

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

// ARM serves resources under these roots (readArmPath reads them) and its cloud metadata here;
// any other path on an ARM API is unforeseen, so unclassified.
const ARM_NON_RESOURCE_PATHS = new Set(['/metadata/endpoints']);

export interface RequestUnitOptions {
  /**
   * Whether the API is Azure Resource Manager: paths are read as resource ids, /batch and
   * unpairable or unknown paths are unclassified. Default: the host is one of ARM_HOSTS (a target
   * whose URL is a stand-in or another cloud's ARM passes true).
   */
  arm?: boolean;
}

/**
 * One request's facts. `path` is the normalized path without the query (what
 * normalizeRequestPath returned); anything else is unclassified.
 */
export function requestUnit(method: string, host: string, path: string, opts: RequestUnitOptions = {}): HttpUnit | { unclassified: string } {
  if (!TOKEN.test(method)) return { unclassified: `the method ${JSON.stringify(method.slice(0, 40))} is not an HTTP token` };
  const h = host.toLowerCase();
  const normal = normalizeRequestPath(path);
  if ('problem' in normal) return { unclassified: normal.problem };
  if (normal.path !== path || normal.query !== '' || path.includes('?')) return { unclassified: 'the path is not in its normalized form' };
  const unit: HttpUnit = { method: method.toUpperCase(), host: h, path };
  const arm = opts.arm ?? ARM_HOSTS.includes(h.replace(/:443$/, ''));
  if (!arm) return unit;
  const r = readArmPath(path);
  if ('problem' in r) return { unclassified: `Azure Resource Manager path: ${r.problem}` };
  if ('notArm' in r) {
    if (ARM_NON_RESOURCE_PATHS.has(path.toLowerCase())) return unit;
    return { unclassified: 'an Azure Resource Manager path outside /subscriptions, /providers and /tenants' };
  }
  return { ...unit, resource: r.resource };
}
