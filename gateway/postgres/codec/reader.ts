// Cursor over a message body; every read is bounds-checked so a malformed message is a
// ProtocolError, never an exception from Buffer internals.
import { ProtocolError } from './framer.ts';

export class BodyReader {
  private pos = 0;
  private readonly buf: Buffer;
  private readonly what: string;
  constructor(buf: Buffer, what: string) {
    this.buf = buf;
    this.what = what;
  }
  get remaining(): number {
    return this.buf.length - this.pos;
  }
  private need(n: number): void {
    if (n < 0 || this.pos + n > this.buf.length) throw new ProtocolError(`malformed ${this.what}: truncated`);
  }
  byte(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }
  int16(): number {
    this.need(2);
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  int32(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  bytes(n: number): Buffer {
    this.need(n);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  cstring(): string {
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) throw new ProtocolError(`malformed ${this.what}: unterminated string`);
    const v = this.buf.toString('utf8', this.pos, end);
    this.pos = end + 1;
    return v;
  }
  rest(): Buffer {
    const v = this.buf.subarray(this.pos);
    this.pos = this.buf.length;
    return v;
  }
  end(): void {
    if (this.pos !== this.buf.length) throw new ProtocolError(`malformed ${this.what}: ${this.buf.length - this.pos} unexpected trailing bytes`);
  }
}

/** Builds one typed message: type byte, int32 length, body. */
export class MessageWriter {
  private parts: Buffer[] = [];
  private length = 0;
  byte(v: number): this {
    return this.push(Buffer.from([v]));
  }
  int16(v: number): this {
    const b = Buffer.alloc(2);
    b.writeInt16BE(v);
    return this.push(b);
  }
  int32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32BE(v);
    return this.push(b);
  }
  cstring(s: string): this {
    return this.push(Buffer.from(s + '\0', 'utf8'));
  }
  bytes(b: Buffer): this {
    return this.push(b);
  }
  private push(b: Buffer): this {
    this.parts.push(b);
    this.length += b.length;
    return this;
  }
  /** A typed message; with type null, an untyped one (startup-phase packets). */
  finish(type: number | null): Buffer {
    const headerLen = type === null ? 4 : 5;
    const out = Buffer.alloc(headerLen + this.length);
    let pos = 0;
    if (type !== null) out[pos++] = type;
    out.writeInt32BE(this.length + 4, pos);
    pos += 4;
    for (const p of this.parts) {
      p.copy(out, pos);
      pos += p.length;
    }
    return out;
  }
}
