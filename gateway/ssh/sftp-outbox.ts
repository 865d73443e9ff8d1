// Frames for one stream, written together once per event-loop turn. SFTP frames do not fit SSH
// packets: a 32 KiB READ's answer is 32 KiB and 13 bytes, one full packet and a tiny one, and a
// burst of 64 READs would be 64 tiny packets; each packet costs a cipher set-up at both ends.
// Written together, what one turn produced fills whole packets (n frames in about n+1 packets).
// Bounded: more than FLUSH_AT waiting is written at once.
import type { Writable } from 'node:stream';

const FLUSH_AT = 1024 * 1024;

export class Outbox {
  private readonly stream: Writable;
  private readonly onFull: () => void;
  private frames: Buffer[] = [];
  private bytes = 0;
  private scheduled = false;

  /** `onFull`: the stream pushed back (its write returned false). */
  constructor(stream: Writable, onFull: () => void) {
    this.stream = stream;
    this.onFull = onFull;
  }

  add(frame: Buffer): void {
    this.frames.push(frame);
    this.bytes += frame.length;
    if (this.bytes >= FLUSH_AT) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.flush();
      });
    }
  }

  /** Writes what waits now (a handshake step the other side must see before it can answer). */
  flush(): void {
    if (this.frames.length === 0) return;
    const out = this.frames.length === 1 ? this.frames[0]! : Buffer.concat(this.frames, this.bytes);
    this.frames = [];
    this.bytes = 0;
    if (this.stream.writable && !this.stream.write(out)) this.onFull();
  }

  /** Drops what waits (the session ended: requests not yet sent are not to be sent). */
  drop(): void {
    this.frames = [];
    this.bytes = 0;
  }
}
