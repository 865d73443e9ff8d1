// The upgrade request of `kubectl exec` / `attach` read before anything opens upstream: which
// pod subresource, the argv and stream flags exactly as the API server reads them, and the
// channel subprotocol. kubectl >= 1.30 asks for a WebSocket with `v5.channel.k8s.io` and falls
// back to SPDY when that upgrade fails; SPDY streams are not read by the gateway, so a SPDY
// upgrade is refused with a message (the caller may still pass it when a rule allows unread
// streams: the refusal carries the options it read). Pure: no sockets, no policy.

import type { IncomingHttpHeaders } from 'node:http';
import { EXEC_PROTOCOL_V4, EXEC_PROTOCOL_V5, EXEC_PROTOCOLS, type ExecProtocol } from './exec-channels.ts';

export type ExecSubresource = 'exec' | 'attach';

export type ExecOptions = {
  subresource: ExecSubresource;
  /** The `command=` values in order (exec); empty for attach. */
  argv: string[];
  /** The `container=` value; absent means the pod's default container, as the API server picks it. */
  container?: string;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
};

export type ExecUpgradeRequest = {
  method: string;
  /** The normalized request path (gateway/http/request-path.ts), without the query. */
  path: string;
  /** The raw query, without `?`. */
  query: string;
  headers: IncomingHttpHeaders;
};

export type ExecRefusal = {
  status: number;
  message: string;
  /** Set when the refusal is for SPDY alone: the options read, for a rule that allows unread streams. */
  spdy?: ExecOptions;
};

export type ExecUpgrade = ({ protocol: ExecProtocol } & ExecOptions) | { refuse: ExecRefusal };

const POD_SUBRESOURCE = /^\/api\/v1\/namespaces\/[^/]+\/pods\/[^/]+\/(exec|attach)$/;

/** Reads an exec/attach upgrade request into what the gateway decides on, or the refusal to send. */
export function readExecUpgrade(req: ExecUpgradeRequest): ExecUpgrade {
  const m = POD_SUBRESOURCE.exec(req.path);
  if (!m) return { refuse: { status: 404, message: `${req.path} is not a pod's exec or attach subresource` } };
  const options = readExecOptions(m[1] as ExecSubresource, req.query);
  if ('problem' in options) return { refuse: { status: 400, message: options.problem } };

  const upgrade = headerTokens(req.headers.upgrade).map((t) => t.toLowerCase());
  const streamVersions = headerTokens(req.headers['x-stream-protocol-version']);
  if (upgrade.some((t) => t.startsWith('spdy/')) || streamVersions.length > 0) {
    return { refuse: { status: 403, message: spdyRefusal(options.subresource, streamVersions), spdy: options } };
  }
  if (!upgrade.includes('websocket')) {
    return { refuse: { status: 400, message: `kubectl ${options.subresource} needs a WebSocket upgrade with the ${EXEC_PROTOCOL_V5} subprotocol (kubectl 1.30 or newer sends one)` } };
  }
  if (req.method.toUpperCase() !== 'GET') return { refuse: { status: 400, message: `a WebSocket upgrade is a GET request, not ${req.method}` } };
  const negotiated = negotiateExecProtocol(req.headers['sec-websocket-protocol']);
  if ('problem' in negotiated) return { refuse: { status: 400, message: negotiated.problem } };
  return { protocol: negotiated.protocol, ...options };
}

/**
 * The PodExecOptions / PodAttachOptions of a query, as the API server converts url.Values: a
 * flag is false when absent or its first value is `0` or `false` (any case) and true otherwise,
 * the container is the first value, the argv every `command=` in order. Where the server's
 * reading could differ from ours (a `;` separator, a bad escape, a single-valued parameter
 * given twice) the request is refused instead of guessed at.
 */
export function readExecOptions(subresource: ExecSubresource, query: string): ExecOptions | { problem: string } {
  const params = parseQuery(query);
  if ('problem' in params) return params;
  const single = (name: string): string | undefined | { problem: string } => {
    const values = params.get(name);
    if (!values) return undefined;
    if (values.length > 1) return { problem: `the ${subresource} request gives "${name}" ${values.length} times` };
    return values[0];
  };
  const flag = (name: string): boolean | { problem: string } => {
    const v = single(name);
    if (v === undefined) return false;
    if (typeof v !== 'string') return v;
    return !(v === '0' || v.toLowerCase() === 'false');
  };
  const stdin = flag('stdin');
  const stdout = flag('stdout');
  let stderr = flag('stderr');
  const tty = flag('tty');
  const container = single('container');
  for (const v of [stdin, stdout, stderr, tty, container]) if (typeof v === 'object') return v;
  if (subresource === 'attach' && params.has('command')) return { problem: 'an attach request has no command (the command= parameters would be ignored upstream)' };
  const argv = subresource === 'exec' ? (params.get('command') ?? []) : [];
  if (subresource === 'exec' && argv.length === 0) return { problem: 'the exec request names no command (command= parameters)' };
  // The kubelet drops stderr under a tty (the terminal merges it into stdout).
  if (tty === true && stderr === true) stderr = false;
  if (!stdin && !stdout && !stderr) return { problem: 'you must specify at least 1 of stdin, stdout, stderr' };
  return {
    subresource,
    argv,
    ...(typeof container === 'string' && container !== '' ? { container } : {}),
    stdin: stdin as boolean,
    stdout: stdout as boolean,
    stderr: stderr as boolean,
    tty: tty as boolean,
  };
}

/**
 * Picks the subprotocol from Sec-WebSocket-Protocol: v5, else v4. Older and base64 variants, a
 * header that does not parse, and no channel subprotocol at all are refused.
 */
export function negotiateExecProtocol(header: string | string[] | undefined): { protocol: ExecProtocol } | { problem: string } {
  const offered: string[] = [];
  for (const line of header === undefined ? [] : Array.isArray(header) ? header : [header]) {
    for (const raw of line.split(',')) {
      const token = raw.trim();
      if (!TOKEN.test(token)) return { problem: `the Sec-WebSocket-Protocol header is not a list of tokens (${JSON.stringify(line)})` };
      if (offered.includes(token)) return { problem: `the Sec-WebSocket-Protocol header offers ${token} twice` };
      offered.push(token);
    }
  }
  for (const p of EXEC_PROTOCOLS) if (offered.includes(p)) return { protocol: p };
  const why = offered.length === 0
    ? 'offers no channel subprotocol'
    : `offers only ${offered.join(', ')}, which the gateway does not read`;
  return { problem: `the WebSocket upgrade ${why}: the gateway accepts ${EXEC_PROTOCOL_V5} (kubectl 1.30 or newer) or ${EXEC_PROTOCOL_V4}` };
}

function spdyRefusal(subresource: ExecSubresource, streamVersions: string[]): string {
  const base = `kubectl ${subresource} over SPDY is refused: the gateway records ${subresource} sessions only over WebSocket (${EXEC_PROTOCOL_V5}).`;
  // kubectl >= 1.30 offers v5 on SPDY too: it is here because its WebSocket attempt failed.
  if (streamVersions.includes(EXEC_PROTOCOL_V5)) {
    return `${base} This kubectl speaks WebSocket but fell back to SPDY: its WebSocket upgrade failed (an https:// proxy-url in the kubeconfig forces SPDY; use the kubeconfig the gateway wrote, KUBECONFIG, without a proxy-url).`;
  }
  return `${base} Use kubectl 1.30 or newer, which execs over WebSocket, with the kubeconfig the gateway wrote (KUBECONFIG).`;
}

// RFC 7230 token.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

function headerTokens(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).flatMap((v) => v.split(',')).map((t) => t.trim()).filter((t) => t !== '');
}

/**
 * A query as Go's url.ParseQuery reads it: `&`-separated, `+` is a space, percent-escapes decoded,
 * a key without `=` has the empty value. Go refuses `;` and drops pairs with bad escapes (the API
 * server keeps the rest), so both are refused here rather than read differently.
 */
function parseQuery(query: string): Map<string, string[]> | { problem: string } {
  const out = new Map<string, string[]>();
  if (query.includes(';')) return { problem: 'the query has a ";" (Go servers drop such pairs)' };
  for (const pair of query.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const key = unescapeQuery(eq < 0 ? pair : pair.slice(0, eq));
    const value = unescapeQuery(eq < 0 ? '' : pair.slice(eq + 1));
    if (key === undefined || value === undefined) return { problem: `the query parameter ${JSON.stringify(pair.slice(0, 100))} has an invalid escape` };
    const values = out.get(key);
    if (values) values.push(value);
    else out.set(key, [value]);
  }
  return out;
}

function unescapeQuery(s: string): string | undefined {
  const spaced = s.replaceAll('+', ' ');
  if (/%(?![0-9A-Fa-f]{2})/.test(spaced)) return undefined;
  // Go decodes to bytes; an argv that is not UTF-8 has no one spelling in the log, so refuse it.
  try {
    return decodeURIComponent(spaced);
  } catch {
    return undefined;
  }
}
