// Server-to-client messages: encoders for the ones the gateway synthesizes (pg-protocol only
// serializes client messages) and decoders for the few it inspects on the hot path.
import { BodyReader, MessageWriter } from './reader.ts';

export const B = {
  Authentication: 0x52, // R
  BackendKeyData: 0x4b, // K
  BindComplete: 0x32, // 2
  CloseComplete: 0x33, // 3
  CommandComplete: 0x43, // C
  CopyData: 0x64, // d
  CopyDone: 0x63, // c
  CopyInResponse: 0x47, // G
  CopyOutResponse: 0x48, // H
  CopyBothResponse: 0x57, // W
  DataRow: 0x44, // D
  EmptyQueryResponse: 0x49, // I
  ErrorResponse: 0x45, // E
  FunctionCallResponse: 0x56, // V
  NegotiateProtocolVersion: 0x76, // v
  NoData: 0x6e, // n
  NoticeResponse: 0x4e, // N
  NotificationResponse: 0x41, // A
  ParameterDescription: 0x74, // t
  ParameterStatus: 0x53, // S
  ParseComplete: 0x31, // 1
  PortalSuspended: 0x73, // s
  ReadyForQuery: 0x5a, // Z
  RowDescription: 0x54, // T
} as const;

export const AUTH = { Ok: 0, CleartextPassword: 3, MD5Password: 5, SASL: 10, SASLContinue: 11, SASLFinal: 12 } as const;

/** Fields of ErrorResponse and NoticeResponse, by their one-letter codes. */
export interface NoticeFields {
  severity: string; // S (localized) and V (never localized) carry the same value here
  code: string; // C
  message: string; // M
  detail?: string; // D
  hint?: string; // H
}

function noticeBody(f: NoticeFields): MessageWriter {
  const w = new MessageWriter();
  w.byte(0x53).cstring(f.severity).byte(0x56).cstring(f.severity);
  w.byte(0x43).cstring(f.code).byte(0x4d).cstring(f.message);
  if (f.detail) w.byte(0x44).cstring(f.detail);
  if (f.hint) w.byte(0x48).cstring(f.hint);
  return w.byte(0);
}

export function encodeErrorResponse(f: NoticeFields): Buffer {
  return noticeBody(f).finish(B.ErrorResponse);
}
export function encodeNoticeResponse(f: NoticeFields): Buffer {
  return noticeBody(f).finish(B.NoticeResponse);
}
export function encodeAuthentication(code: number, data?: Buffer): Buffer {
  const w = new MessageWriter().int32(code);
  if (data) w.bytes(data);
  return w.finish(B.Authentication);
}
export function encodeAuthenticationSASL(mechanisms: string[]): Buffer {
  const w = new MessageWriter().int32(AUTH.SASL);
  for (const m of mechanisms) w.cstring(m);
  return w.byte(0).finish(B.Authentication);
}
export function encodeParameterStatus(name: string, value: string): Buffer {
  return new MessageWriter().cstring(name).cstring(value).finish(B.ParameterStatus);
}
export function encodeBackendKeyData(processId: number, secretKey: number): Buffer {
  return new MessageWriter().int32(processId).int32(secretKey).finish(B.BackendKeyData);
}
export function encodeReadyForQuery(status: 'I' | 'T' | 'E'): Buffer {
  return new MessageWriter().byte(status.charCodeAt(0)).finish(B.ReadyForQuery);
}
export function encodeNegotiateProtocolVersion(newestMinor: number, unrecognized: string[]): Buffer {
  const w = new MessageWriter().int32(newestMinor).int32(unrecognized.length);
  for (const o of unrecognized) w.cstring(o);
  return w.finish(B.NegotiateProtocolVersion);
}

export function decodeNotice(body: Buffer): NoticeFields {
  const r = new BodyReader(body, 'ErrorResponse/NoticeResponse');
  const fields = new Map<string, string>();
  for (;;) {
    const code = r.byte();
    if (code === 0) break;
    fields.set(String.fromCharCode(code), r.cstring());
  }
  return {
    severity: fields.get('V') ?? fields.get('S') ?? 'ERROR',
    code: fields.get('C') ?? 'XX000',
    message: fields.get('M') ?? '',
    detail: fields.get('D'),
    hint: fields.get('H'),
  };
}

export function decodeCommandComplete(body: Buffer): string {
  const end = body.indexOf(0);
  return body.toString('utf8', 0, end < 0 ? body.length : end);
}

export function decodeReadyForQuery(body: Buffer): 'I' | 'T' | 'E' {
  const s = String.fromCharCode(body[0] ?? 0x49);
  return s === 'T' || s === 'E' ? s : 'I';
}

/** `tableOid` (and `attnum`) are 0 for a column no table column stands behind (an expression). */
export interface Column { name: string; tableOid: number; attnum: number; typeOid: number; format: number }
export function decodeRowDescription(body: Buffer): Column[] {
  const r = new BodyReader(body, 'RowDescription');
  const n = r.int16();
  const cols: Column[] = [];
  for (let i = 0; i < n; i++) {
    const name = r.cstring();
    const tableOid = r.int32() >>> 0;
    const attnum = r.int16();
    const typeOid = r.int32() >>> 0;
    r.int16(); // type size
    r.int32(); // type modifier
    const format = r.int16();
    cols.push({ name, tableOid, attnum, typeOid, format });
  }
  return cols;
}

export function decodeDataRow(body: Buffer): (Buffer | null)[] {
  const r = new BodyReader(body, 'DataRow');
  const n = r.int16();
  const out: (Buffer | null)[] = [];
  for (let i = 0; i < n; i++) {
    const len = r.int32();
    out.push(len < 0 ? null : r.bytes(len));
  }
  return out;
}

export function encodeDataRow(fields: (Buffer | null)[]): Buffer {
  let size = 7;
  for (const f of fields) size += 4 + (f ? f.length : 0);
  const out = Buffer.allocUnsafe(size);
  out[0] = B.DataRow;
  out.writeInt32BE(size - 1, 1);
  out.writeInt16BE(fields.length, 5);
  let pos = 7;
  for (const f of fields) {
    if (f === null) {
      out.writeInt32BE(-1, pos);
      pos += 4;
    } else {
      out.writeInt32BE(f.length, pos);
      f.copy(out, pos + 4);
      pos += 4 + f.length;
    }
  }
  return out;
}

/** Every field of an ErrorResponse or NoticeResponse, in order, by one-letter code. */
export function decodeNoticeFields(body: Buffer): [string, string][] {
  const r = new BodyReader(body, 'ErrorResponse/NoticeResponse');
  const fields: [string, string][] = [];
  for (;;) {
    const code = r.byte();
    if (code === 0) return fields;
    fields.push([String.fromCharCode(code), r.cstring()]);
  }
}

export function encodeNoticeFields(type: number, fields: [string, string][]): Buffer {
  const w = new MessageWriter();
  for (const [code, value] of fields) w.byte(code.charCodeAt(0)).cstring(value);
  return w.byte(0).finish(type);
}

export function decodeNotification(body: Buffer): { processId: number; channel: string; payload: string } {
  const r = new BodyReader(body, 'NotificationResponse');
  return { processId: r.int32(), channel: r.cstring(), payload: r.cstring() };
}

export function decodeParameterStatus(body: Buffer): [string, string] {
  const r = new BodyReader(body, 'ParameterStatus');
  return [r.cstring(), r.cstring()];
}

export function decodeBackendKeyData(body: Buffer): { processId: number; secretKey: Buffer } {
  const r = new BodyReader(body, 'BackendKeyData');
  return { processId: r.int32(), secretKey: Buffer.from(r.rest()) };
}

export type AuthRequest =
  | { code: typeof AUTH.Ok }
  | { code: typeof AUTH.CleartextPassword }
  | { code: typeof AUTH.MD5Password; salt: Buffer }
  | { code: typeof AUTH.SASL; mechanisms: string[] }
  | { code: typeof AUTH.SASLContinue | typeof AUTH.SASLFinal; data: string }
  | { code: number };

export function decodeAuthentication(body: Buffer): AuthRequest {
  const r = new BodyReader(body, 'Authentication message');
  const code = r.int32();
  switch (code) {
    case AUTH.MD5Password:
      return { code, salt: Buffer.from(r.bytes(4)) };
    case AUTH.SASL: {
      const mechanisms: string[] = [];
      for (;;) {
        const m = r.cstring();
        if (!m) break;
        mechanisms.push(m);
      }
      return { code, mechanisms };
    }
    case AUTH.SASLContinue:
    case AUTH.SASLFinal:
      return { code, data: r.rest().toString('utf8') };
    default:
      return { code };
  }
}
