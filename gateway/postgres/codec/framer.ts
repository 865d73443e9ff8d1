// Incremental framing of typed PostgreSQL messages (1 type byte + int32 length including itself).
// Pure: bytes in, message boundaries out. Bodies are assembled only for the types the caller asks
// for, so a multi-GB result streams through with no buffering beyond one small header.

export class ProtocolError extends Error {
  readonly sqlState: string;
  constructor(message: string, sqlState = '08P01') {
    super(message);
    this.name = 'ProtocolError';
    this.sqlState = sqlState;
  }
}

export interface FramedMessage {
  type: number;
  /** The body (without type and length) when collected, else null. */
  body: Buffer | null;
  /** Offset in the current chunk where the message starts, or -1 when it began in an earlier chunk. */
  start: number;
  /** Offset in the current chunk just past the message's last byte. */
  end: number;
  /** The whole message (type, length, body) when it was assembled across chunks and collected. */
  assembled: Buffer | null;
}

export interface FramerOptions {
  /** Whether to assemble the body of a message of this type (decided when its header arrives). */
  collect: (type: number) => boolean;
  /** Largest body that may be collected; larger ones are a protocol error. */
  maxCollectedBody: number;
  /** Rejects unknown message types as soon as their header arrives. */
  isValidType?: (type: number) => boolean;
  /** Who sent the bytes, for error messages. */
  peer: string;
}

/** The server never sends and accepts nothing larger than 1 GB. */
export const MAX_MESSAGE_LENGTH = 0x3fffffff;

export class MessageFramer {
  private readonly opts: FramerOptions;
  private readonly header = Buffer.alloc(5);
  private headerHave = 0;
  private type = 0;
  private bodyRemaining = 0;
  private inBody = false;
  private collecting = false;
  private parts: Buffer[] = [];
  private partsLength = 0;
  private headerCopy: Buffer | null = null;
  private pendingStart = -1;
  private headerStart = -1;

  constructor(opts: FramerOptions) {
    this.opts = opts;
  }

  /**
   * After push: null when no partial message is pending, else the offset in the last chunk where
   * the pending message began (-1 when it began in an earlier chunk).
   */
  get partialStart(): number | null {
    if (this.headerHave > 0) return this.headerStart;
    return this.inBody ? this.pendingStart : null;
  }

  /** The type of the partial message pending, or null. */
  get partialType(): number | null {
    if (this.headerHave > 0) return this.header[0]!;
    return this.inBody ? this.type : null;
  }

  /** True when no partial message is pending. */
  get idle(): boolean {
    return this.headerHave === 0 && !this.inBody;
  }

  push(chunk: Buffer, onMessage: (m: FramedMessage) => void): void {
    // Offsets of a message still in progress refer to an earlier chunk from now on.
    this.pendingStart = -1;
    this.headerStart = -1;
    let pos = 0;
    const len = chunk.length;
    while (pos < len) {
      if (!this.inBody) {
        const msgStart = this.headerHave === 0 ? pos : -1;
        if (this.headerHave === 0 && len - pos >= 5) {
          this.type = chunk[pos]!;
          this.startBody(chunk.readInt32BE(pos + 1));
          pos += 5;
        } else {
          if (this.headerHave === 0) this.headerStart = pos;
          else this.headerStart = -1;
          const take = Math.min(5 - this.headerHave, len - pos);
          chunk.copy(this.header, this.headerHave, pos, pos + take);
          this.headerHave += take;
          pos += take;
          if (this.headerHave < 5) return;
          this.type = this.header[0]!;
          this.startBody(this.header.readInt32BE(1));
        }
        this.headerHave = 0;
        if (this.bodyRemaining === 0) {
          onMessage({
            type: this.type,
            body: this.collecting ? EMPTY : null,
            start: msgStart,
            end: pos,
            assembled: msgStart < 0 && this.collecting ? Buffer.from(this.header) : null,
          });
          continue;
        }
        // A body fully inside this chunk needs no copy.
        if (msgStart >= 0 && len - pos >= this.bodyRemaining) {
          const end = pos + this.bodyRemaining;
          const body = this.collecting ? chunk.subarray(pos, end) : null;
          this.bodyRemaining = 0;
          this.inBody = false;
          pos = end;
          onMessage({ type: this.type, body, start: msgStart, end, assembled: null });
          continue;
        }
        this.inBody = true;
        if (this.collecting) this.headerCopy = Buffer.from(msgStart >= 0 ? chunk.subarray(msgStart, msgStart + 5) : this.header);
        this.pendingStart = msgStart;
      }
      const take = Math.min(this.bodyRemaining, len - pos);
      if (this.collecting) {
        this.parts.push(chunk.subarray(pos, pos + take));
        this.partsLength += take;
      }
      pos += take;
      this.bodyRemaining -= take;
      if (this.bodyRemaining > 0) return;
      this.inBody = false;
      let body: Buffer | null = null;
      let assembled: Buffer | null = null;
      if (this.collecting) {
        // Copy: the parts may reference chunks the caller has already forwarded and reused.
        assembled = Buffer.concat([this.headerCopy!, ...this.parts], 5 + this.partsLength);
        body = assembled.subarray(5);
        this.parts = [];
        this.partsLength = 0;
        this.headerCopy = null;
      }
      onMessage({ type: this.type, body, start: this.pendingStart, end: pos, assembled });
    }
  }

  private startBody(length: number): void {
    const t = this.type;
    if (this.opts.isValidType && !this.opts.isValidType(t)) {
      throw new ProtocolError(`invalid message type 0x${t.toString(16).padStart(2, '0')} from ${this.opts.peer}`);
    }
    if (length < 4 || length > MAX_MESSAGE_LENGTH) {
      throw new ProtocolError(`invalid message length ${length} for message type ${describeType(t)} from ${this.opts.peer}`);
    }
    this.bodyRemaining = length - 4;
    this.collecting = this.opts.collect(t);
    if (this.collecting && this.bodyRemaining > this.opts.maxCollectedBody) {
      throw new ProtocolError(
        `message type ${describeType(t)} from ${this.opts.peer} is ${this.bodyRemaining} bytes, over the limit of ${this.opts.maxCollectedBody}`,
        '54000',
      );
    }
  }
}

const EMPTY = Buffer.alloc(0);

export function describeType(t: number): string {
  return t >= 0x20 && t < 0x7f ? `'${String.fromCharCode(t)}'` : `0x${t.toString(16).padStart(2, '0')}`;
}
