// SFTP's framing: a uint32 length, then that many bytes (the type, the fields). Pure.

/** A byte stream that is not SFTP at all (a length out of bounds); the session ends. */
export class SftpProtocolError extends Error {}

/**
 * Splits a byte stream into whole packets, each passed on with its 4-byte length: a slice of
 * the chunk when it lies inside one, a copy when it spans several. A length of 0 or above
 * `maxLength` is not SFTP: SftpProtocolError.
 */
export class SftpFramer {
  private readonly maxLength: number;
  private header = Buffer.alloc(4);
  private headerHave = 0;
  private body: Buffer | null = null;
  private bodyHave = 0;

  constructor(maxLength: number) {
    this.maxLength = maxLength;
  }

  get idle(): boolean {
    return this.headerHave === 0 && this.body === null;
  }

  push(chunk: Buffer, onPacket: (frame: Buffer) => void): void {
    let p = 0;
    while (p < chunk.length) {
      if (this.body === null) {
        if (this.headerHave === 0 && chunk.length - p >= 4) {
          const len = this.checkedLength(chunk.readUInt32BE(p));
          if (chunk.length - p >= 4 + len) {
            onPacket(chunk.subarray(p, p + 4 + len));
            p += 4 + len;
            continue;
          }
          this.startBody(len);
          chunk.copy(this.body!, 0, p, chunk.length);
          this.bodyHave = chunk.length - p;
          return;
        }
        const n = Math.min(4 - this.headerHave, chunk.length - p);
        chunk.copy(this.header, this.headerHave, p, p + n);
        this.headerHave += n;
        p += n;
        if (this.headerHave < 4) return;
        this.startBody(this.checkedLength(this.header.readUInt32BE(0)));
        this.header.copy(this.body!, 0);
        this.bodyHave = 4;
        this.headerHave = 0;
      }
      const body = this.body!;
      const n = Math.min(body.length - this.bodyHave, chunk.length - p);
      chunk.copy(body, this.bodyHave, p, p + n);
      this.bodyHave += n;
      p += n;
      if (this.bodyHave === body.length) {
        this.body = null;
        this.bodyHave = 0;
        onPacket(body);
      }
    }
  }

  private checkedLength(len: number): number {
    if (len === 0 || len > this.maxLength) throw new SftpProtocolError(`packet length ${len} is outside 1..${this.maxLength}`);
    return len;
  }

  private startBody(len: number): void {
    this.body = Buffer.allocUnsafe(4 + len);
  }
}
