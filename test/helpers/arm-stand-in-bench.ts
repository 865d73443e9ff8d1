// The benchmark's bodies from the ARM stand-in: a small resource, and N bytes of JSON streamed
// with backpressure (a resource-group list, padded to the exact size with whitespace), built from
// one cached 64 KiB block so serving a large body costs the stand-in little CPU and no memory.
import type { ServerResponse } from 'node:http';

export const BENCH_SMALL = {
  id: '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/bench',
  name: 'bench',
  type: 'Microsoft.Resources/resourceGroups',
  location: 'westeurope',
  tags: {},
  properties: { provisioningState: 'Succeeded' },
};

const HEAD = Buffer.from('{"value":[');
const TAIL = Buffer.from('{}]}');
const ITEM = Buffer.from(`${JSON.stringify({ ...BENCH_SMALL, name: 'bench-000000', id: `${BENCH_SMALL.id}-000000` })},`);
const BLOCK = Buffer.concat(Array.from({ length: Math.floor(65536 / ITEM.length) }, () => ITEM));
const MAX = 2 ** 40;

/** The last piece before TAIL: whole items, then spaces (JSON whitespace) to fill `n` bytes. */
function lastPiece(n: number): Buffer {
  const items = Math.floor(n / ITEM.length);
  return Buffer.concat([BLOCK.subarray(0, items * ITEM.length), Buffer.alloc(n - items * ITEM.length, 0x20)]);
}

/**
 * Streams a 200 with exactly `bytes` bytes of valid JSON (`{"value":[...]}`); false, having
 * written nothing, when `bytes` is not a whole number from 64 to 2^40. `chunked` leaves out
 * Content-Length, so the body goes out with chunked transfer encoding.
 */
export function benchBody(res: ServerResponse, bytes: number, chunked: boolean, headers: Record<string, string>): boolean {
  if (!Number.isInteger(bytes) || bytes < 64 || bytes > MAX) return false;
  res.writeHead(200, { ...headers, 'content-type': 'application/json; charset=utf-8', ...(chunked ? {} : { 'content-length': String(bytes) }) });
  let left = bytes - HEAD.length - TAIL.length;
  res.write(HEAD);
  const pump = (): void => {
    while (left > 0) {
      const piece = left >= BLOCK.length ? BLOCK : lastPiece(left);
      left -= piece.length;
      if (!res.write(piece) && left > 0) { res.once('drain', pump); return; }
    }
    res.end(TAIL);
  };
  res.on('close', () => { left = 0; });
  pump();
  return true;
}
