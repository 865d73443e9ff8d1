// The lines of the legacy scp protocol as OpenSSH's sink reads them: `T` times and the `C`/`D`
// headers, each checked as strictly as the sink checks it (or more). Pure.

export class ScpProtocolError extends Error {}

export interface ScpTimes {
  mtime: number;
  atime: number;
}

export interface ScpEntry {
  kind: 'file' | 'directory';
  /** The directories entered and the entry's own name, outermost first (names never hold `/`, nor are `.` or `..`). */
  names: string[];
  /** False when a name was not UTF-8 (shown with replacement characters): a log cannot name it exactly. */
  exactNames: boolean;
  /** Permission bits as sent (octal 4 digits). */
  mode: number;
  /** Files: the byte count the header announces. */
  size: number;
  times?: ScpTimes;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const lenient = new TextDecoder('utf-8');

function digits(s: string, what: string): number {
  if (!/^[0-9]+$/.test(s)) throw new ScpProtocolError(`${what} is not a decimal number`);
  const n = Number(s);
  if (!Number.isSafeInteger(n)) throw new ScpProtocolError(`${what} is out of range`);
  return n;
}

/** `T<mtime> <usec> <atime> <usec>`, the body after T. */
export function parseTimes(body: Buffer): ScpTimes {
  const parts = body.toString('latin1').split(' ');
  if (parts.length !== 4) throw new ScpProtocolError('a time line without four numbers');
  const [mtime, musec, atime, ausec] = parts.map((p, i) => digits(p, ['mtime', 'mtime.usec', 'atime', 'atime.usec'][i]!)) as [number, number, number, number];
  if (musec > 999999 || ausec > 999999) throw new ScpProtocolError('a time line with microseconds above 999999');
  return { mtime, atime };
}

/** `C0644 <size> <name>` / `D0755 0 <name>`, the body after C or D, as OpenSSH's sink reads it. */
export function parseHeader(kind: 'file' | 'directory', body: Buffer, directories: ScpEntry[]): ScpEntry {
  if (body.length < 7) throw new ScpProtocolError('a header too short to hold mode, size and name');
  const modeText = body.subarray(0, 4).toString('latin1');
  if (!/^[0-7]{4}$/.test(modeText) || body[4] !== 0x20) throw new ScpProtocolError('a header whose mode is not four octal digits and a space');
  const space = body.indexOf(0x20, 5);
  if (space === -1) throw new ScpProtocolError('a header whose size is not followed by a space');
  const size = digits(body.subarray(5, space).toString('latin1'), 'the size');
  const raw = body.subarray(space + 1);
  if (raw.length === 0 || raw.includes(0x2f) || raw.includes(0) || raw.equals(Buffer.from('.')) || raw.equals(Buffer.from('..'))) {
    throw new ScpProtocolError(`an unacceptable name ${JSON.stringify(lenient.decode(raw))}`);
  }
  let name: string;
  let exact = true;
  try {
    name = utf8.decode(raw);
  } catch {
    name = lenient.decode(raw);
    exact = false;
  }
  const names = [...directories.map((d) => d.names[d.names.length - 1]!), name];
  return { kind, names, exactNames: exact && directories.every((d) => d.exactNames), mode: parseInt(modeText, 8), size: kind === 'file' ? size : 0 };
}
