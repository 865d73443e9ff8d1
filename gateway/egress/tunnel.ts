// One egress connection once it is decided, recorded and dialled: the client's bytes and the
// host's relayed unread both ways, with backpressure (pipe), until either side ends. What is
// recorded at the end is its metadata: the address reached and the bytes each way (the result's
// duration_us is how long it was open); what crossed is the client's own TLS, which the gateway
// never terminates.
import type net from 'node:net';
import type { CommandRecorder, SessionRecorder } from '../core/recorder.ts';

/** How long the other side may take to close once one side closed (its last bytes still flowing). */
const CLOSE_GRACE_MS = 5000;

export class EgressTunnel {
  readonly #upstream: net.Socket;
  readonly #cmd: CommandRecorder;
  readonly #session: SessionRecorder;
  readonly #address: string;
  readonly #done: (t: EgressTunnel) => void;
  readonly #closedEarly = (): void => this.#end('the host closed the connection before the tunnel opened');
  #client: net.Socket | null = null;
  #toHost = 0;
  #toClient = 0;
  /** The host's failure (a reset), which makes the result an error. */
  #fault: string | null = null;
  #ended = false;

  constructor(upstream: net.Socket, address: string, cmd: CommandRecorder, session: SessionRecorder, done: (t: EgressTunnel) => void) {
    this.#upstream = upstream;
    this.#address = address;
    this.#cmd = cmd;
    this.#session = session;
    this.#done = done;
    upstream.on('error', (e: Error) => {
      this.#fault ??= e.message;
      this.#client?.destroy();
      upstream.destroy();
    });
    // Until relay() the host may close on its own: the tunnel then ends with what it had.
    upstream.once('close', this.#closedEarly);
  }

  /** Relays `client` (already answered 200) and the bytes it sent after its CONNECT line. */
  relay(client: net.Socket, head: Buffer): void {
    const up = this.#upstream;
    up.off('close', this.#closedEarly);
    if (this.#ended || up.destroyed) {
      client.destroy();
      return this.#end('the host closed the connection before the tunnel opened');
    }
    this.#client = client;
    client.on('data', (d: Buffer) => (this.#toHost += d.length));
    up.on('data', (d: Buffer) => (this.#toClient += d.length));
    client.on('error', () => {
      client.destroy();
      up.destroy();
    });
    if (head.length > 0) {
      this.#toHost += head.length;
      up.write(head);
    }
    // An end travels through the pipes as a half-close, so a side that is done sending still
    // receives the rest. Once one side is closed the other is ended (its queued bytes still go
    // out), and destroyed if it has not closed within the grace.
    client.pipe(up);
    up.pipe(client);
    let timer: NodeJS.Timeout | null = null;
    const closed = (): void => {
      if (client.destroyed && up.destroyed) {
        if (timer) clearTimeout(timer);
        return this.#end('closed');
      }
      client.end();
      up.end();
      timer ??= setTimeout(() => {
        client.destroy();
        up.destroy();
      }, CLOSE_GRACE_MS);
      timer.unref();
    };
    client.on('close', closed);
    up.on('close', closed);
  }

  /** Ends the tunnel now (the client left before it opened, the gateway stops). */
  close(reason: string): void {
    this.#client?.destroy();
    this.#upstream.destroy();
    this.#end(reason);
  }

  #end(reason: string): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#done(this);
    const totals = this.#session.totals;
    totals.bytes_from_client += this.#toHost;
    totals.bytes_to_client += this.#toClient;
    const details = { address: this.#address, bytes_to_host: this.#toHost, bytes_to_client: this.#toClient };
    try {
      if (this.#fault) this.#cmd.finish({ status: 'error', error: { code: 'upstream', message: `the connection to ${this.#address} failed: ${this.#fault}` }, details });
      else this.#cmd.finish({ status: 'ok', details });
      this.#session.close(reason);
    } catch {
      // The log failed or closed: nothing more can be recorded, and the tunnel is gone.
    }
  }
}
