// Passing the host's exit status (or signal) on to the client's channel, as ssh2 reported it on
// the upstream channel's 'exit' event: (code) or (null, signal, coreDumped, description).
export type HostExit = unknown[] | null;

export function passHostExit(client: { exit?: (...args: never[]) => unknown; writable?: boolean }, exit: HostExit): void {
  if (!exit || typeof client.exit !== 'function' || !client.writable) return;
  try {
    if (typeof exit[0] === 'number') (client.exit as (code: number) => void)(exit[0]);
    else if (typeof exit[1] === 'string') (client.exit as (s: string, core: boolean, msg: string) => void)(exit[1], Boolean(exit[2]), String(exit[3] ?? ''));
  } catch {
    // The channel went away meanwhile.
  }
}
