// Node allocates a fresh 64 KiB buffer for every socket read, and V8 frees them only once its
// external-memory accounting has grown by about 64 MB. A gateway streaming gigabytes would see
// its RSS climb by that much before the first collection; a young-generation collection every
// few MB streamed keeps the footprint flat, at well under a millisecond each.
import v8 from 'node:v8';
import vm from 'node:vm';

const RECLAIM_EVERY_BYTES = 4 * 1024 * 1024;

type Gc = (options: { type: 'minor' }) => void;
let gc: Gc | null | undefined;
let streamed = 0;

function collector(): Gc | null {
  if (gc === undefined) {
    try {
      v8.setFlagsFromString('--expose-gc');
      gc = vm.runInNewContext('gc') as Gc;
    } catch {
      gc = null;
    }
  }
  return gc;
}

/** Counts bytes that passed through in transient read buffers. */
export function noteStreamed(bytes: number): void {
  streamed += bytes;
  if (streamed >= RECLAIM_EVERY_BYTES) {
    streamed = 0;
    collector()?.({ type: 'minor' });
  }
}
