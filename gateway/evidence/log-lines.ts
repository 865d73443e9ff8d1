// A session log's lines, read in chunks and split on bytes (a newline never occurs inside a
// UTF-8 sequence), so logs of gigabytes pass through bounded memory. Lines that are not UTF-8
// are reported as such: a lenient decoder would map different bytes to the same U+FFFD.
import { createHash } from 'node:crypto';
import fs from 'node:fs';

export type LogLine =
  | { kind: 'line'; text: string }
  | { kind: 'not-utf8' }
  | { kind: 'too-long' }
  /** The text after the last newline (a crash's torn record), decoded leniently. */
  | { kind: 'torn'; text: string };

/** No record the writer produces comes near this; a longer line is not from it. */
export const MAX_LINE_BYTES = 256 * 1024 * 1024;

const fatalUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Yields every complete line, then the torn tail if the file does not end with a newline. */
export async function* readLogLines(file: string): AsyncGenerator<LogLine> {
  let carry: Buffer | null = null;
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) {
    const buf: Buffer = carry ? Buffer.concat([carry, chunk as Buffer]) : (chunk as Buffer);
    let start = 0;
    for (let nl = buf.indexOf(10); nl >= 0; nl = buf.indexOf(10, start)) {
      const text = strictUtf8(buf, start, nl);
      yield text === null ? { kind: 'not-utf8' } : { kind: 'line', text };
      start = nl + 1;
    }
    carry = start < buf.length ? buf.subarray(start) : null;
    if (carry && carry.length > MAX_LINE_BYTES) {
      yield { kind: 'too-long' };
      return;
    }
  }
  if (carry) yield { kind: 'torn', text: carry.toString('utf8') };
}

function strictUtf8(buf: Buffer, start: number, end: number): string | null {
  const s = buf.toString('utf8', start, end);
  if (!s.includes('\ufffd')) return s;
  try {
    return fatalUtf8.decode(buf.subarray(start, end));
  } catch {
    return null;
  }
}

/** SHA-256 (hex) of a file's bytes, streamed. */
export async function fileSha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
