// AES-GCM keys of an ssh2 connection held as KeyObjects. Without its native addon (dist/ has
// none), ssh2 makes a node:crypto cipher for every AES-GCM packet, each time from the key as a
// Buffer. Node 24 tells a Buffer key from a KeyObject or a CryptoKey by trying those first: two
// TypeErrors thrown and caught, each capturing a stack trace, for every packet both ways; about
// half the cost of the packet's encryption, and a tenth of the gateway's CPU in a bulk transfer.
// Given the same key as a KeyObject, node:crypto takes it at once.
//
// ssh2 has no option for this; its key exchange installs a new cipher and decipher each time and
// then emits 'handshake' (first exchange and every rekey), so on that event the two keys are
// swapped for KeyObjects of the same bytes. Only ssh2 1.x's node:crypto AES-GCM classes keep
// these fields (_encKey, _decipherKey) as Buffers; anything else (the native addon's classes,
// AES-CTR, a later ssh2) is left as it is, so this can only make ssh2 faster, never change what
// it sends. test/unit/ssh-cipher-keys.test.ts checks that it still applies to the installed ssh2.
import { createSecretKey } from 'node:crypto';
import type { EventEmitter } from 'node:events';

/** The per-packet key fields of ssh2's node:crypto AES-GCM cipher and decipher. */
const KEY_FIELDS = [['_cipher', '_encKey'], ['_decipher', '_decipherKey']] as const;

type Fields = Record<string, unknown>;

/** Swaps the connection's current AES-GCM keys for KeyObjects; returns how many it swapped. */
export function keysAsKeyObjects(conn: object): number {
  const protocol = (conn as { _protocol?: Fields })._protocol;
  let swapped = 0;
  for (const [side, field] of KEY_FIELDS) {
    const holder = protocol?.[side] as Fields | undefined;
    const key = holder?.[field];
    if (Buffer.isBuffer(key)) {
      holder![field] = createSecretKey(key);
      swapped++;
    }
  }
  return swapped;
}

/** For an ssh2 Client or a server-side Connection: after every key exchange, its keys as KeyObjects. */
export function holdKeysAsKeyObjects(conn: EventEmitter): void {
  conn.on('handshake', () => keysAsKeyObjects(conn));
}
