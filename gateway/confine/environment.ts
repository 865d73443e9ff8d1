// The environment a confined command gets: the caller's, without what mints tokens or uploads
// artifacts on GitHub (a confined step must not reach Azure or GitHub on its own), without the
// upstream secrets the gateway was started with, with the connection environment's files moved
// where the confined user can read them, a HOME of its own, and the gateway's forward proxy as
// its only way to the declared egress. Pure: the caller supplies every input.

/** Variables that let a process act as the job on GitHub: never inside. */
export const TOKEN_VARIABLES: readonly string[] = [
  'ACTIONS_ID_TOKEN_REQUEST_URL', 'ACTIONS_ID_TOKEN_REQUEST_TOKEN', 'ACTIONS_RUNTIME_TOKEN', 'ACTIONS_RUNTIME_URL',
  'ACTIONS_RESULTS_URL', 'ACTIONS_CACHE_URL', 'GITHUB_TOKEN', 'GH_TOKEN', 'GATEWAY_GITHUB_TOKEN',
];

export interface ConfinedEnvInput {
  /** The caller's environment. */
  env: NodeJS.ProcessEnv;
  /** The gateway's connection environment (PG*, GATEWAY_*, KUBECONFIG, proxy and CA variables). */
  connection: Record<string, string>;
  /** Upstream secret variables the gateway was started with (never inside). */
  secretNames: readonly string[];
  /** Paths in the connection environment to rewrite (the state directory to the confined copy). */
  rewrite: { from: string; to: string } | null;
  home: string;
  user: string;
}

export function confinedEnvironment(i: ConfinedEnvInput): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(i.env)) {
    if (v === undefined || TOKEN_VARIABLES.includes(k) || i.secretNames.includes(k)) continue;
    out[k] = v;
  }
  for (const [k, v] of Object.entries(i.connection)) out[k] = i.rewrite ? v.split(i.rewrite.from).join(i.rewrite.to) : v;
  out.HOME = i.home;
  out.USER = i.user;
  out.LOGNAME = i.user;
  // Inside, every host but the gateway's is unreachable: local names go direct, the rest through the proxy.
  if (out.HTTPS_PROXY || out.https_proxy) out.NO_PROXY = out.no_proxy = ['127.0.0.1', 'localhost', '::1'].join(',');
  return out;
}
