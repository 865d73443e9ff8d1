// One open file or directory of an SFTP session: the gateway's own handle for it, the host's
// handle behind it, the digests of the bytes read and written through it, and its command's
// end, called once with the whole outcome (at CLOSE, or when the session ends first).
import type { FileOperation, FileOutcome, GateAnswer } from './file-operation.ts';
import { OffsetDigest } from './sftp-digest.ts';
import { FX, statusName } from './sftp-codec.ts';

type End = Extract<GateAnswer, { allowed: true }>['end'];

/** Calls a command's end; an end that throws must not take the relay down (the core reports its own faults). */
export function safeEnd(end: End, outcome: FileOutcome): void {
  try {
    end(outcome);
  } catch {
    // The recorder failed on its side; nothing the relay can add.
  }
}

export function statusOutcome(status: { code: number; message: string }): FileOutcome {
  return status.code === FX.OK ? { status: 'ok' } : { status: 'error', error: { code: statusName(status.code), message: status.message } };
}

export class OpenHandle {
  /** The handle the client holds. */
  readonly own: Buffer;
  /** The handle the host gave. */
  readonly host: Buffer;
  readonly directory: boolean;
  readonly mode: FileOperation['mode'];
  readonly read = new OffsetDigest();
  readonly written = new OffsetDigest();
  private end: End | null;
  private firstError: { code: string; message: string } | null = null;

  constructor(own: Buffer, host: Buffer, directory: boolean, mode: FileOperation['mode'], end: End) {
    this.own = own;
    this.host = host;
    this.directory = directory;
    this.mode = mode;
    this.end = end;
  }

  /** A READ or WRITE the host refused (end of file is not an error). */
  noteStatus(status: { code: number; message: string }): void {
    if (status.code === FX.OK || status.code === FX.EOF || this.firstError) return;
    this.firstError = { code: statusName(status.code), message: status.message };
  }

  /** Ends the open's command: `closed` is the CLOSE's status, or the reason the session ended first. */
  finish(closed: { code: number; message: string } | { lost: string }): void {
    const end = this.end;
    if (!end) return;
    this.end = null;
    const closeError = 'lost' in closed ? { code: 'connection-lost', message: closed.lost } : closed.code === FX.OK ? null : { code: statusName(closed.code), message: closed.message };
    const error = closeError ?? this.firstError;
    const outcome: FileOutcome = error ? { status: 'error', error } : { status: 'ok' };
    if (!this.directory) Object.assign(outcome, this.transferred());
    safeEnd(end, outcome);
  }

  private transferred(): Partial<FileOutcome> {
    const reads = this.mode !== 'write' || this.read.total > 0;
    const writes = this.mode !== 'read' || this.written.total > 0;
    const out: Partial<FileOutcome> = {};
    let sequential = true;
    if (writes) {
      const w = this.written.result();
      out.bytesWritten = w.bytes;
      out.sha256 = w.sha256;
      sequential &&= w.sequential;
    }
    if (reads) {
      const r = this.read.result();
      out.bytesRead = r.bytes;
      if (writes) out.readSha256 = r.sha256;
      else out.sha256 = r.sha256;
      sequential &&= r.sequential;
    }
    out.sequential = sequential;
    return out;
  }
}
