// The channel codec of `kubectl exec` / `attach` over WebSocket (remote command protocol v4/v5),
// as client-go (tools/remotecommand/websocket.go) and the API server (util/wsstream) speak it.
// Every message is binary; its first byte names the channel and the rest is that channel's bytes:
// 0 stdin and 4 resize go from the client, 1 stdout, 2 stderr and 3 status from the server. v5
// adds the close signal [255, channel]: the sender is done writing that channel (stdin's EOF).
// Pure functions over bytes; the sockets live elsewhere. A frame this codec does not recognise is
// a problem for the caller to end the session on, never bytes passed on unread.

export const EXEC_PROTOCOL_V5 = 'v5.channel.k8s.io';
export const EXEC_PROTOCOL_V4 = 'v4.channel.k8s.io';
export type ExecProtocol = typeof EXEC_PROTOCOL_V5 | typeof EXEC_PROTOCOL_V4;
/**
 * The subprotocols the gateway accepts from a client, most preferred first. The channel.k8s.io
 * (v1), v2, v3 and base64 variants are refused: kubectl never offers them over WebSocket, v1-v3
 * carry no exit code, and the base64 ones would need a second text codec for nothing.
 */
export const EXEC_PROTOCOLS: readonly ExecProtocol[] = [EXEC_PROTOCOL_V5, EXEC_PROTOCOL_V4];

export const CHANNEL_STDIN = 0;
export const CHANNEL_STDOUT = 1;
export const CHANNEL_STDERR = 2;
export const CHANNEL_STATUS = 3;
export const CHANNEL_RESIZE = 4;
/** v5's close signal: a two-byte message [255, channel]. */
export const CLOSE_SIGNAL = 255;

export const CHANNEL_NAMES: Readonly<Record<number, string>> = { 0: 'stdin', 1: 'stdout', 2: 'stderr', 3: 'status', 4: 'resize' };

/** Which end wrote a frame: each channel is written by one end only. */
export type FrameSender = 'client' | 'server';
const WRITES: Record<FrameSender, readonly number[]> = {
  client: [CHANNEL_STDIN, CHANNEL_RESIZE],
  server: [CHANNEL_STDOUT, CHANNEL_STDERR, CHANNEL_STATUS],
};

export type DecodedFrame = { channel: number; payload: Buffer } | { close: number } | { problem: string };

/**
 * Reads one WebSocket message of an exec session (`ws` hands `(data, isBinary)`). Text messages,
 * empty messages, unknown channels, a channel the sender does not write, and a close signal
 * outside v5 are problems (client-go ends the session on the first two; the server would drop the
 * others silently, which the gateway must not record as if they were read).
 */
export function decodeFrame(data: Buffer, isBinary: boolean, protocol: ExecProtocol, from: FrameSender): DecodedFrame {
  if (!isBinary) return { problem: 'a text WebSocket message in an exec session (the channel protocol sends binary messages only)' };
  if (data.length === 0) return { problem: 'an empty WebSocket message in an exec session (it names no channel)' };
  const first = data[0]!;
  if (first === CLOSE_SIGNAL) {
    if (protocol !== EXEC_PROTOCOL_V5) return { problem: `channel 255 in a ${protocol} session (the close signal is v5 only)` };
    if (data.length !== 2) return { problem: `a close signal of ${data.length} bytes (it is [255, channel])` };
    const closed = data[1]!;
    if (!WRITES[from].includes(closed)) return { problem: `the ${from} closed channel ${closed}, which it does not write` };
    return { close: closed };
  }
  if (!WRITES[from].includes(first)) {
    const name = CHANNEL_NAMES[first];
    return { problem: name ? `the ${from} sent on the ${name} channel (${first}), which only the other end writes` : `a frame on unknown channel ${first}` };
  }
  return { channel: first, payload: data.subarray(1) };
}

/** A data frame: the channel byte, then the payload (one copy). */
export function encodeFrame(channel: number, payload: Uint8Array): Buffer {
  if (!Number.isInteger(channel) || channel < 0 || channel > 4) throw new RangeError(`not an exec channel: ${channel}`);
  const frame = Buffer.allocUnsafe(payload.length + 1);
  frame[0] = channel;
  frame.set(payload, 1);
  return frame;
}

/** v5's close signal for a channel. */
export function encodeClose(channel: number): Buffer {
  if (!Number.isInteger(channel) || channel < 0 || channel > 4) throw new RangeError(`not an exec channel: ${channel}`);
  return Buffer.from([CLOSE_SIGNAL, channel]);
}

// ---- status channel (3): a metav1.Status as JSON ----

/**
 * What kubectl makes of the status channel: `code` is its exit code (0 on Success, N for a
 * NonZeroExitCode failure, 1 with the server's message for any other failure). A problem is a
 * status kubectl reports as an "error stream protocol error" (it exits 1 too).
 */
export type ExitStatus = { code: number; message?: string; reason?: string } | { problem: string };

/**
 * Reads everything the server sent on channel 3 (client-go reads the channel to its end and
 * decodes the whole: concatenate the payloads first). Mirrors client-go's errorDecoderV4, which
 * v5 reuses; nothing at all on the channel is success, as it is to client-go.
 */
export function exitStatus(statusJson: Buffer): ExitStatus {
  if (statusJson.length === 0) return { code: 0 };
  const text = statusJson.toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    return { problem: `error stream protocol error: ${(e as Error).message} in ${JSON.stringify(text.slice(0, 200))}` };
  }
  const status = goStruct(parsed, STATUS_FIELDS);
  if ('problem' in status) return { problem: `error stream protocol error: ${status.problem}` };
  const s = status.fields;
  if (s.status === 'Success') return { code: 0 };
  if (s.status !== 'Failure') return { problem: 'error stream protocol error: unknown error' };
  if (s.reason !== 'NonZeroExitCode') return { code: 1, message: String(s.message ?? ''), ...(s.reason ? { reason: String(s.reason) } : {}) };
  if (s.details === undefined) return { problem: 'error stream protocol error: details must be set' };
  const details = goStruct(s.details, DETAILS_FIELDS);
  if ('problem' in details) return { problem: `error stream protocol error: ${details.problem}` };
  const causes = (details.fields.causes ?? []) as unknown[];
  for (const raw of causes) {
    const cause = goStruct(raw, CAUSE_FIELDS);
    if ('problem' in cause) return { problem: `error stream protocol error: ${cause.problem}` };
    if (cause.fields.reason !== 'ExitCode') continue;
    const value = String(cause.fields.message ?? '');
    // strconv.ParseUint(value, 10, 8): decimal digits only, 0..255.
    if (!/^[0-9]+$/.test(value) || Number(value) > 255) return { problem: `error stream protocol error: invalid exit code value ${JSON.stringify(value)}` };
    const code = Number(value);
    return { code, message: `command terminated with exit code ${code}`, reason: 'NonZeroExitCode' };
  }
  return { problem: 'error stream protocol error: no ExitCode cause given' };
}

type FieldType = 'string' | 'object' | 'array' | 'integer';
const STATUS_FIELDS: Record<string, FieldType> = {
  kind: 'string', apiversion: 'string', metadata: 'object', status: 'string', message: 'string', reason: 'string', details: 'object', code: 'integer',
};
const DETAILS_FIELDS: Record<string, FieldType> = {
  name: 'string', group: 'string', kind: 'string', uid: 'string', causes: 'array', retryafterseconds: 'integer',
};
const CAUSE_FIELDS: Record<string, FieldType> = { reason: 'string', message: 'string', field: 'string' };

/**
 * An object read as Go's encoding/json fills a struct: field names match case-insensitively,
 * null leaves a field unset, unknown fields are ignored, a wrong type fails the whole decode.
 * Two keys that fold to the same field are refused (Go keeps the later; JSON.parse loses the order).
 */
function goStruct(value: unknown, fields: Record<string, FieldType>): { fields: Record<string, unknown> } | { problem: string } {
  if (value === null) return { fields: {} };
  if (typeof value !== 'object' || Array.isArray(value)) return { problem: 'expected a JSON object' };
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const name = key.toLowerCase();
    const type = fields[name];
    if (!type) continue;
    if (name in out) return { problem: `field "${name}" given twice` };
    if (v === null) continue;
    const ok = type === 'string' ? typeof v === 'string'
      : type === 'integer' ? Number.isInteger(v) && Math.abs(v as number) <= 2 ** 31
      : type === 'array' ? Array.isArray(v)
      : typeof v === 'object' && !Array.isArray(v);
    if (!ok) return { problem: `field "${key}" is not a JSON ${type}` };
    out[name] = v;
  }
  return { fields: out };
}

/**
 * The status a kubelet writes when a command ends (for stand-ins and tests): Success for 0, a
 * NonZeroExitCode failure carrying the ExitCode cause otherwise.
 */
export function exitStatusJson(code: number): Buffer {
  if (!Number.isInteger(code) || code < 0 || code > 255) throw new RangeError(`not an exit code: ${code}`);
  if (code === 0) return Buffer.from(JSON.stringify({ metadata: {}, status: 'Success' }));
  return Buffer.from(JSON.stringify({
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: exit status ${code}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(code) }] },
  }));
}

/** A failure status kubectl prints as `error: <message>` (exit 1): how the gateway ends a session it stops. */
export function failureStatusJson(message: string, reason = 'Forbidden', code = 403): Buffer {
  return Buffer.from(JSON.stringify({ metadata: {}, status: 'Failure', message, reason, code }));
}

// ---- resize channel (4): {"Width":W,"Height":H} ----

export type TerminalSize = { width: number; height: number };

/**
 * One resize frame: client-go writes each size as its own JSON object (json.Encoder, so with a
 * trailing newline). The server decodes into uint16 Width/Height, names case-insensitive, unknown
 * fields ignored; anything else ends its resize stream, so it is a problem here.
 */
export function resize(payload: Buffer): TerminalSize | { problem: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload.toString('utf8'));
  } catch {
    return { problem: 'a resize frame that is not one JSON object' };
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return { problem: 'a resize frame that is not a JSON object' };
  const size: TerminalSize = { width: 0, height: 0 };
  const seen = new Set<string>();
  for (const [key, v] of Object.entries(parsed)) {
    const name = key.toLowerCase();
    if (name !== 'width' && name !== 'height') continue;
    if (seen.has(name)) return { problem: `a resize frame with "${name}" twice` };
    seen.add(name);
    if (v === null) continue;
    if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > 65535) return { problem: `a resize frame whose ${name} is not a number from 0 to 65535` };
    size[name] = v as number;
  }
  return size;
}

/** A resize payload as client-go writes it. */
export function encodeResize(size: TerminalSize): Buffer {
  return Buffer.from(JSON.stringify({ Width: size.width, Height: size.height }) + '\n');
}
