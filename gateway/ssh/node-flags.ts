// The Node flags the daemon starts with when the policy has an SSH target (the adapter's
// nodeFlags). Measured with bench/ssh.ts; docs/ssh.md, "Throughput", has the figures.
import { spawnSync } from 'node:child_process';

/**
 * The shell parser (tree-sitter, WebAssembly) always loads. Without this flag V8 tiers its hot
 * functions up in the background after the first few exec lines: about a second of CPU and a
 * 300-500 MB compiler zone, landing on whatever transfer runs then. The baseline compiler reads
 * an exec line in well under a millisecond all the same.
 */
export const BASELINE_WASM_FLAG = '--liftoff-only';

/**
 * ssh2 allocates about four buffers of 32 KiB per packet it relays (a socket read, a decryption,
 * a packet, an encryption), all garbage at once. By default V8 13 adds such external memory to
 * the old generation's growth ("historic behavior", says V8's heap.h, chromium:42203776), so a
 * stream starts a full collection for every 64 MB or so of buffers: a third of the gateway's CPU
 * while streaming, while the young collections that would free them hardly ever come (the
 * JavaScript heap barely grows). With this flag external memory counts within the global limit
 * and young collections free it: half the CPU per byte in bench/ssh.ts. A Node whose V8 does not
 * know the flag (Node 20 does not) refuses to start with it, so it is given only where this Node
 * accepts it.
 */
export const EXTERNAL_MEMORY_FLAG = '--external-memory-accounted-in-global-limit';

let externalMemoryFlag: boolean | undefined;

/** Whether this Node starts with the flag (asked once: a process that exits at once). */
function accepted(flag: string): boolean {
  return spawnSync(process.execPath, [flag, '-e', ''], { stdio: 'ignore', timeout: 10_000 }).status === 0;
}

export function sshNodeFlags(): string[] {
  externalMemoryFlag ??= accepted(EXTERNAL_MEMORY_FLAG);
  return [BASELINE_WASM_FLAG, ...(externalMemoryFlag ? [EXTERNAL_MEMORY_FLAG] : [])];
}
