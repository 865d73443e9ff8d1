// The SHA-256 of the bytes an SFTP transfer moved, in offset order. Pipelined reads may be
// answered out of order, and a short read is followed by a request for the rest after later
// ones: pieces ahead of the next expected offset wait in a bounded buffer until the gap fills.
// When they cannot (a gap never filled, an overlap, a start other than 0, more waiting than the
// bound allows), the transfer is not sequential: what waited is hashed in offset order and
// everything after in the order it came, and the outcome says so. Memory stays bounded.
import { createHash, type Hash } from 'node:crypto';

export interface DigestResult {
  bytes: number;
  sha256: string;
  /** The bytes formed one run from offset 0: sha256 is the digest of the file's first `bytes` bytes. */
  sequential: boolean;
}

/** How many bytes may wait for a gap before the transfer is declared not sequential. */
export const MAX_WAITING_BYTES = 8 << 20;

export class OffsetDigest {
  private readonly hash: Hash = createHash('sha256');
  private readonly maxWaiting: number;
  private next = 0;
  private bytes = 0;
  private sequential = true;
  private waiting = new Map<number, Buffer>();
  private waitingBytes = 0;

  constructor(maxWaiting = MAX_WAITING_BYTES) {
    this.maxWaiting = maxWaiting;
  }

  get total(): number {
    return this.bytes;
  }

  add(offset: number, data: Buffer): void {
    if (data.length === 0) return;
    this.bytes += data.length;
    if (!this.sequential) {
      this.hash.update(data);
      return;
    }
    if (offset === this.next) {
      this.hash.update(data);
      this.next += data.length;
      this.drain();
      return;
    }
    if (offset > this.next && !this.waiting.has(offset) && this.waitingBytes + data.length <= this.maxWaiting) {
      // A copy: the piece may be a slice of a much larger network buffer.
      this.waiting.set(offset, Buffer.from(data));
      this.waitingBytes += data.length;
      return;
    }
    this.giveUpOrder();
    this.hash.update(data);
  }

  result(): DigestResult {
    if (this.waiting.size > 0) this.giveUpOrder();
    return { bytes: this.bytes, sha256: this.hash.digest('hex'), sequential: this.sequential };
  }

  private drain(): void {
    for (let piece = this.waiting.get(this.next); piece; piece = this.waiting.get(this.next)) {
      this.waiting.delete(this.next);
      this.waitingBytes -= piece.length;
      this.hash.update(piece);
      this.next += piece.length;
    }
  }

  private giveUpOrder(): void {
    this.sequential = false;
    for (const offset of [...this.waiting.keys()].sort((a, b) => a - b)) this.hash.update(this.waiting.get(offset)!);
    this.waiting.clear();
    this.waitingBytes = 0;
  }
}
