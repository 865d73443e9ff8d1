// Decoders for the messages a client sends after startup. pg-protocol only serializes these,
// so a proxy has to parse them itself.
import { ProtocolError } from './framer.ts';
import { BodyReader } from './reader.ts';

export const F = {
  Bind: 0x42, // B
  Close: 0x43, // C
  Describe: 0x44, // D
  Execute: 0x45, // E
  FunctionCall: 0x46, // F
  Flush: 0x48, // H
  Parse: 0x50, // P
  Query: 0x51, // Q
  Sync: 0x53, // S
  Terminate: 0x58, // X
  CopyData: 0x64, // d
  CopyDone: 0x63, // c
  CopyFail: 0x66, // f
  Password: 0x70, // p (also SASLInitialResponse and SASLResponse)
} as const;

const VALID = new Set<number>(Object.values(F));
export function isFrontendType(t: number): boolean {
  return VALID.has(t);
}

export interface ParseMessage { statement: string; query: string; paramTypes: number[] }
export interface BindMessage { portal: string; statement: string; paramFormats: number[]; params: (Buffer | null)[]; resultFormats: number[] }
export interface ExecuteMessage { portal: string; maxRows: number }
export interface TargetMessage { kind: 'S' | 'P'; name: string }
export interface FunctionCallMessage { oid: number; argFormats: number[]; args: (Buffer | null)[]; resultFormat: number }

export function decodeQuery(body: Buffer): string {
  const r = new BodyReader(body, 'Query message');
  const q = r.cstring();
  r.end();
  return q;
}

export function decodeParse(body: Buffer): ParseMessage {
  const r = new BodyReader(body, 'Parse message');
  const statement = r.cstring();
  const query = r.cstring();
  const n = r.int16();
  if (n < 0) throw new ProtocolError('malformed Parse message: negative parameter count');
  const paramTypes: number[] = [];
  for (let i = 0; i < n; i++) paramTypes.push(r.int32() >>> 0);
  r.end();
  return { statement, query, paramTypes };
}

function formatCodes(r: BodyReader, what: string): number[] {
  const n = r.int16();
  if (n < 0) throw new ProtocolError(`malformed ${what}: negative format count`);
  const codes: number[] = [];
  for (let i = 0; i < n; i++) {
    const c = r.int16();
    if (c !== 0 && c !== 1) throw new ProtocolError(`malformed ${what}: invalid format code ${c}`);
    codes.push(c);
  }
  return codes;
}

function values(r: BodyReader, what: string): (Buffer | null)[] {
  const n = r.int16();
  if (n < 0) throw new ProtocolError(`malformed ${what}: negative value count`);
  const out: (Buffer | null)[] = [];
  for (let i = 0; i < n; i++) {
    const len = r.int32();
    if (len < -1) throw new ProtocolError(`malformed ${what}: invalid value length ${len}`);
    out.push(len === -1 ? null : r.bytes(len));
  }
  return out;
}

export function decodeBind(body: Buffer): BindMessage {
  const r = new BodyReader(body, 'Bind message');
  const portal = r.cstring();
  const statement = r.cstring();
  const paramFormats = formatCodes(r, 'Bind message');
  const params = values(r, 'Bind message');
  if (paramFormats.length > 1 && paramFormats.length !== params.length) {
    throw new ProtocolError(`malformed Bind message: ${paramFormats.length} parameter formats for ${params.length} parameters`);
  }
  const resultFormats = formatCodes(r, 'Bind message');
  r.end();
  return { portal, statement, paramFormats, params, resultFormats };
}

export function decodeExecute(body: Buffer): ExecuteMessage {
  const r = new BodyReader(body, 'Execute message');
  const portal = r.cstring();
  const maxRows = r.int32();
  r.end();
  return { portal, maxRows };
}

/** Describe and Close share a layout: 'S' or 'P' then a name. */
export function decodeTarget(body: Buffer, what: string): TargetMessage {
  const r = new BodyReader(body, what);
  const k = r.byte();
  if (k !== 0x53 && k !== 0x50) throw new ProtocolError(`malformed ${what}: expected 'S' or 'P'`);
  const name = r.cstring();
  r.end();
  return { kind: k === 0x53 ? 'S' : 'P', name };
}

export function decodeCopyFail(body: Buffer): string {
  const r = new BodyReader(body, 'CopyFail message');
  const m = r.cstring();
  r.end();
  return m;
}

export function decodeFunctionCall(body: Buffer): FunctionCallMessage {
  const r = new BodyReader(body, 'FunctionCall message');
  const oid = r.int32() >>> 0;
  const argFormats = formatCodes(r, 'FunctionCall message');
  const args = values(r, 'FunctionCall message');
  const resultFormat = r.int16();
  r.end();
  return { oid, argFormats, args, resultFormat };
}

export interface SASLInitialResponse { mechanism: string; data: Buffer }
export function decodeSASLInitialResponse(body: Buffer): SASLInitialResponse {
  const r = new BodyReader(body, 'SASLInitialResponse message');
  const mechanism = r.cstring();
  const len = r.int32();
  const data = len === -1 ? Buffer.alloc(0) : r.bytes(len);
  r.end();
  return { mechanism, data };
}
