// Where a declared egress name leads. The gateway resolves names itself (a confined command has
// no DNS), and an answer is not trusted to point anywhere: a name that resolves to this machine
// (loopback: the gateway's own listeners, a database on the runner), to a link-local address (the
// cloud's metadata endpoint at 169.254.169.254 hands out the VM's credentials) or to Azure's
// platform address is refused, since whoever controls a declared domain's DNS (or a wildcard's
// subdomains) would otherwise turn egress into a way back into the runner. Such an address is
// reached only when an entry names it as an IP address. Private ranges (10/8, 192.168/16, fc00::/7)
// stay reachable by name: a self-hosted runner's registry may live there.
import { BlockList, isIPv4 } from 'node:net';
import { promises as dns } from 'node:dns';
import os from 'node:os';

const RANGES: [reason: string, cidrs: [string, number][]][] = [
  ['a loopback address', [['127.0.0.0', 8], ['::1', 128]]],
  ['an unspecified address', [['0.0.0.0', 8], ['::', 128]]],
  ['a link-local address (where cloud metadata endpoints live)', [['169.254.0.0', 16], ['fe80::', 10]]],
  ['a multicast or reserved address', [['224.0.0.0', 3], ['ff00::', 8]]],
  // ::a.b.c.d (the deprecated IPv4-compatible form): whatever it embeds, it is not a public host.
  ['an IPv4-compatible IPv6 address', [['::', 96]]],
  ['an Azure platform address (the wire server)', [['168.63.129.16', 32]]],
  ['a cloud metadata address', [['fd00:ec2::254', 128]]],
];

const LISTS = RANGES.map(([reason, cidrs]) => {
  const list = new BlockList();
  for (const [net, prefix] of cidrs) list.addSubnet(net, prefix, isIPv4(net) ? 'ipv4' : 'ipv6');
  return { reason, list };
});

/**
 * Why a name must not lead to this address (`a loopback address`), or null. IPv4-mapped IPv6
 * addresses (::ffff:127.0.0.1) are read as the IPv4 address they carry.
 */
export function specialAddress(address: string): string | null {
  const family = isIPv4(address) ? 'ipv4' : 'ipv6';
  const listed = LISTS.find(({ list }) => list.check(address, family))?.reason ?? null;
  if (listed) return listed;
  // The runner's own interfaces (eth0, docker0): a name must not lead to this machine's services any more than to loopback.
  const own = address.replace(/^::ffff:/i, '').toLowerCase();
  return ownAddresses().has(own) ? 'an address of this machine' : null;
}

/** This machine's interface addresses, read again at most once a minute (an interface may come up). */
let own: { at: number; set: Set<string> } | null = null;
function ownAddresses(): Set<string> {
  if (own && Date.now() - own.at < 60_000) return own.set;
  const set = new Set<string>();
  for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) set.add(a.address.toLowerCase());
  own = { at: Date.now(), set };
  return set;
}

export type Lookup = (host: string) => Promise<string[]>;

/** Every address the system resolver gives for a name, in its order. */
export const systemLookup: Lookup = async (host) => (await dns.lookup(host, { all: true, verbatim: true })).map((a) => a.address);

export type Resolution =
  | { addresses: string[] }
  /** The name leads somewhere a name must not (a policy refusal). */
  | { refused: string }
  /** The name does not resolve (an upstream failure). */
  | { error: string };

/**
 * The addresses to connect to for a declared name. Every answer is checked: one special address
 * among them refuses the name (a name with one foot on loopback is not a public host).
 */
export async function resolveName(host: string, lookup: Lookup = systemLookup): Promise<Resolution> {
  let addresses: string[];
  try {
    addresses = await lookup(host);
  } catch (e) {
    return { error: `${host} does not resolve (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` };
  }
  if (addresses.length === 0) return { error: `${host} resolves to no address` };
  for (const a of addresses) {
    const why = specialAddress(a);
    if (why) return { refused: `${host} resolves to ${a}, ${why}: a name never leads there (declare the address itself to reach it)` };
  }
  return { addresses };
}
