// The two records written for every command, `command` and `result`, serialized from fixed
// templates: members appear in canonical (RFC 8785) order by construction, so the hot path builds
// no intermediate record object and sorts nothing. The output is byte-identical to canonicalJson
// of the same record (test/unit/record-templates.test.ts checks every optional member), so
// `verify` and the shell recipe in docs/session-log.md read these records as any other.
// Nested values an adapter chooses (details, facts, decision, error) go through canonicalJson.
import { canonicalJson, jsonString, type CanonicalText } from '../evidence/canonical-json.ts';
import type { Outcome } from './recorder.ts';

export interface CommandMembers {
  command: string;
  decision: Record<string, unknown> | CanonicalText | undefined;
  details: Record<string, unknown> | CanonicalText | undefined;
  facts: readonly object[] | CanonicalText | undefined;
  kind: string;
  session: string;
  target: string;
  text: string;
  textBytes: number | undefined;
  textSha256: string | undefined;
  unclassified: string | undefined;
}

/** `{"command":…,"decision":…,"details":…,"facts":…,"kind":…,"prev":…,"seq":…,"session":…,
 * "target":…,"text":…,"text_bytes":…,"text_sha256":…,"time":…,"type":"command","unclassified":…}` */
export function commandRecord(m: CommandMembers, seq: number, prev: string, time: string): string {
  let out = '{"command":' + jsonString(m.command);
  if (m.decision !== undefined) out += ',"decision":' + canonicalJson(m.decision);
  if (m.details !== undefined) out += ',"details":' + canonicalJson(m.details);
  if (m.facts !== undefined) out += ',"facts":' + canonicalJson(m.facts);
  out += ',"kind":' + jsonString(m.kind) + ',"prev":"' + prev + '","seq":' + seq + ',"session":' + jsonString(m.session) + ',"target":' + jsonString(m.target) + ',"text":' + jsonString(m.text);
  if (m.textBytes !== undefined) out += ',"text_bytes":' + num(m.textBytes);
  if (m.textSha256 !== undefined) out += ',"text_sha256":' + jsonString(m.textSha256);
  out += ',"time":"' + time + '","type":"command"';
  if (m.unclassified !== undefined) out += ',"unclassified":' + jsonString(m.unclassified);
  return out + '}';
}

export interface ResponseMembers {
  bytes: number;
  sha256: string;
  columns: string[] | null;
  /** Rows; null when the sample is text or a recording. */
  sample: unknown[] | null;
  text: string | null;
  textBytes: number;
  recording: object | null;
}

export interface ResultMembers {
  command: string;
  durationUs: number;
  outcome: Outcome;
  /** Null for a command that did not run (skipped). */
  response: ResponseMembers | null;
  masked: { values: number; detectors: string[] } | null;
  /** Input the client streamed (COPY data, a request body): digest, and a text sample when it is text. */
  input: { bytes: number; sha256: string; text?: string; textBytes?: number } | null;
  session: string;
}

/** `{"command":…,"count":…,"details":…,"duration_us":…,"error":…,"input":…,"masked":…,"prev":…,
 * "reason":…,"response":…,"rule":…,"seq":…,"session":…,"status":…,"time":…,"type":"result"}` */
export function resultRecord(m: ResultMembers, seq: number, prev: string, time: string): string {
  const o = m.outcome;
  let out = '{"command":' + jsonString(m.command);
  if (o.count !== undefined) out += ',"count":' + num(o.count);
  if (o.details !== undefined) out += ',"details":' + canonicalJson(o.details);
  out += ',"duration_us":' + num(m.durationUs);
  if (o.error !== undefined) out += ',"error":' + canonicalJson(o.error);
  if (m.input) out += ',"input":{"bytes":' + num(m.input.bytes) + ',"sha256":"' + m.input.sha256 + '"' + (m.input.text !== undefined ? ',"text":' + jsonString(m.input.text) + ',"text_bytes":' + num(m.input.textBytes ?? 0) : '') + '}';
  if (m.masked) out += ',"masked":{"detectors":' + JSON.stringify(m.masked.detectors) + ',"values":' + num(m.masked.values) + '}';
  out += ',"prev":"' + prev + '"';
  if (o.reason !== undefined) out += ',"reason":' + jsonString(o.reason);
  if (m.response) out += ',"response":' + responseJson(m.response);
  if (o.rule !== undefined) out += ',"rule":' + jsonString(o.rule);
  return out + ',"seq":' + seq + ',"session":' + jsonString(m.session) + ',"status":' + jsonString(o.status) + ',"time":"' + time + '","type":"result"}';
}

/** `{"bytes":…,"columns":…,"recording":…,"sample":…,"sha256":…,"text":…,"text_bytes":…}` */
function responseJson(r: ResponseMembers): string {
  let out = '{"bytes":' + num(r.bytes);
  // An array of strings: JSON.stringify writes it exactly as canonicalJson does.
  if (r.columns) out += ',"columns":' + JSON.stringify(r.columns);
  if (r.recording) out += ',"recording":' + canonicalJson(r.recording);
  if (r.sample) out += ',"sample":' + canonicalJson(r.sample);
  out += ',"sha256":"' + r.sha256 + '"';
  if (r.text !== null) out += ',"text":' + jsonString(r.text) + ',"text_bytes":' + num(r.textBytes);
  return out + '}';
}

function num(n: number): string {
  if (!Number.isFinite(n)) throw new TypeError(`canonical JSON has no representation for ${n}`);
  // For finite numbers String writes what JSON.stringify does (-0 as "0" too).
  return String(n);
}
