// A legacy scp transfer (`scp -O`) in an exec channel whose line the session has already let
// through (`scp -t TARGET` / `scp -f SOURCE...`): the channel's bytes go through ScpTransfer,
// which holds each file and directory header until the FileGate has decided on its paths. A
// refused entry never reaches the other side; the sending side gets `scp: PATH: REASON` as the
// receiving side's error (OpenSSH's scp prints it, skips that entry and exits non-zero at the
// end), and a receiving client gets the same line. The rest of the transfer goes on. Each allowed
// entry is one command; a file's outcome carries its bytes and their SHA-256.
//
// Bytes go on as they come, the protocol only holds what it must; each side is paused while the
// other's channel pushes back and both while the gate decides. The host's stderr and exit status
// are passed on. A stream that is not scp ends the channel: the client is told on stderr, the
// exit status is 1.
import { passHostExit } from './exit-status.ts';
import type { Duplex, Readable, Writable } from 'node:stream';
import type { FileGate, FileOutcome, GateAnswer } from './file-operation.ts';
import { shownPath } from './file-operation.ts';
import { describeEntry, entryPaths, shownWhere, type ScpCommand } from './scp-command.ts';
import { ScpProtocolError, ScpTransfer, type ScpEntry, type ScpOut } from './scp-stream.ts';

export { parseScpCommand, type ScpCommand } from './scp-command.ts';

export interface ScpRelayOptions {
  /** The login's home: relative paths and `~` resolve against it. */
  home: string;
}

export interface ScpRelayEnd {
  by: 'client' | 'host' | 'gateway';
  /** Why the gateway ended it (a stream that is not scp). */
  error?: string;
  /** Entries the gate refused. */
  refused: number;
}

type Channel = Duplex & { stderr?: Readable | Writable; exit?: (...args: never[]) => unknown };
type End = Extract<GateAnswer, { allowed: true }>['end'];

export function relayScp(cmd: ScpCommand, client: Duplex, upstream: Duplex, gate: FileGate, opts: ScpRelayOptions): { done: Promise<ScpRelayEnd> } {
  const relay = new ScpRelay(cmd, client as Channel, upstream as Channel, gate, opts);
  return { done: relay.done };
}

class ScpRelay {
  readonly done: Promise<ScpRelayEnd>;
  private resolveDone!: (end: ScpRelayEnd) => void;
  private readonly cmd: ScpCommand;
  private readonly client: Channel;
  private readonly upstream: Channel;
  private readonly source: Channel;
  private readonly sink: Channel;
  private readonly gate: FileGate;
  private readonly home: string;
  private readonly transfer: ScpTransfer;
  private readonly abort = new AbortController();
  private outs: ScpOut[] = [];
  private draining = false;
  /** Who is paused, and why: `flow` for the other side's backpressure. */
  private readonly paused = new Map<Channel, Set<'flow' | 'decision'>>();
  private readonly ends = new Map<ScpEntry, End>();
  private refused = 0;
  private ending: ScpRelayEnd | null = null;
  private clientEnded = false;
  private hostExit: unknown[] | null = null;

  constructor(cmd: ScpCommand, client: Channel, upstream: Channel, gate: FileGate, opts: ScpRelayOptions) {
    this.cmd = cmd;
    this.client = client;
    this.upstream = upstream;
    this.gate = gate;
    this.home = opts.home;
    this.source = cmd.direction === 'upload' ? client : upstream;
    this.sink = cmd.direction === 'upload' ? upstream : client;
    this.transfer = new ScpTransfer({ recursive: cmd.recursive });
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    this.paused.set(client, new Set());
    this.paused.set(upstream, new Set());

    this.source.on('data', (chunk: Buffer) => this.take(() => this.transfer.fromSource(chunk)));
    this.sink.on('data', (chunk: Buffer) => this.take(() => this.transfer.fromSink(chunk)));
    for (const [from, to] of [[this.source, this.sink], [this.sink, this.source]] as const) from.on('drain', () => this.resume(to, 'flow'));
    // End of input travels on: the receiving scp finishes when its input ends.
    client.on('end', () => upstream.end());
    client.on('close', () => {
      this.clientEnded = true;
      this.finish({ by: 'client', refused: this.refused });
    });
    client.on('error', () => this.finish({ by: 'client', refused: this.refused }));
    upstream.on('exit', (...args: unknown[]) => (this.hostExit = args));
    upstream.on('close', () => this.finish({ by: 'host', refused: this.refused }));
    upstream.on('error', () => this.finish({ by: 'host', refused: this.refused }));
    const hostErr = upstream.stderr;
    const clientErr = client.stderr;
    if (hostErr && 'on' in hostErr && clientErr && 'write' in clientErr) {
      (hostErr as Readable).on('data', (d: Buffer) => (clientErr as Writable).write(d));
    }
  }

  private take(read: () => ScpOut[]): void {
    if (this.ending) return;
    try {
      this.outs.push(...read());
    } catch (e) {
      if (e instanceof ScpProtocolError) return this.fail(e.message);
      throw e;
    }
    void this.drain();
  }

  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.outs.length > 0 && !this.ending) {
        const out = this.outs.shift()!;
        if ('toSink' in out) this.send(this.sink, this.source, out.toSink);
        else if ('toSource' in out) this.send(this.source, this.sink, out.toSource);
        else await this.onEvent(out.event);
      }
    } catch (e) {
      this.fail(e instanceof ScpProtocolError ? e.message : `internal error: ${(e as Error).message}`);
    } finally {
      this.draining = false;
    }
  }

  private send(to: Channel, producer: Channel, bytes: Buffer): void {
    if (!to.write(bytes)) this.pause(producer, 'flow');
  }

  private pause(s: Channel, why: 'flow' | 'decision'): void {
    const reasons = this.paused.get(s)!;
    if (reasons.size === 0) s.pause();
    reasons.add(why);
  }

  private resume(s: Channel, why: 'flow' | 'decision'): void {
    const reasons = this.paused.get(s)!;
    if (!reasons.delete(why) || reasons.size > 0 || this.ending) return;
    s.resume();
  }

  private async onEvent(event: Extract<ScpOut, { event: unknown }>['event']): Promise<void> {
    switch (event.type) {
      case 'entry':
        return this.decide(event.entry, event.forwarded);
      case 'entry-end': {
        const end = this.ends.get(event.entry);
        if (!end) return;
        this.ends.delete(event.entry);
        const outcome: FileOutcome = event.error === undefined ? { status: 'ok' } : { status: 'error', error: { code: 'scp', message: event.error } };
        if (event.entry.kind === 'file') {
          Object.assign(outcome, this.cmd.direction === 'upload' ? { bytesWritten: event.bytes } : { bytesRead: event.bytes }, { sha256: event.sha256, sequential: true });
        }
        return callEnd(end, outcome);
      }
      case 'source-error':
        return;
    }
  }

  /** A header: the gate decides on the entry's paths while both sides wait. */
  private async decide(entry: ScpEntry, forwarded: Buffer[]): Promise<void> {
    const where = entry.exactNames ? entryPaths(this.cmd, entry.names, this.home) : { error: `a name that is not UTF-8 (${JSON.stringify(entry.names.join('/'))}) cannot be named in the log` };
    let answer: GateAnswer;
    if ('error' in where) {
      answer = { allowed: false, reason: where.error };
      try {
        this.gate.refusedHere?.(`scp ${this.cmd.direction}${entry.kind === 'directory' ? ' directory' : ''} ${JSON.stringify(entry.names.join('/'))}`, where.error);
      } catch {
        // The record is the session's to keep; its failure does not change the refusal.
      }
    } else {
      this.pause(this.client, 'decision');
      this.pause(this.upstream, 'decision');
      try {
        answer = await this.gate.begin(describeEntry(this.cmd, entry, where.paths, forwarded), this.abort.signal);
      } catch (e) {
        answer = { allowed: false, reason: `the gateway could not decide: ${(e as Error).message}` };
      } finally {
        this.resume(this.client, 'decision');
        this.resume(this.upstream, 'decision');
      }
    }
    if (this.ending) {
      if (answer.allowed) callEnd(answer.end, { status: 'error', error: { code: 'connection-lost', message: 'the channel ended before the entry was sent' } });
      return;
    }
    if (answer.allowed) {
      this.ends.set(entry, answer.end);
      this.outs.unshift(...this.transfer.allow());
      return;
    }
    this.refused++;
    const named = 'paths' in where ? shownWhere(this.cmd, where.paths) : shownPath(entry.names.join('/'));
    const line = `scp: ${named}: ${answer.reason.replace(/\s+/g, ' ')}`;
    const outs = this.transfer.refuse(line);
    // A receiving client hears it too (OpenSSH's sink prints an error line and goes on).
    if (this.cmd.direction === 'download') outs.push({ toSink: Buffer.from(`\x01${line}\n`) });
    this.outs.unshift(...outs);
  }

  private fail(message: string): void {
    if (this.ending) return;
    const clientErr = this.client.stderr;
    if (clientErr && 'write' in clientErr && !this.clientEnded) (clientErr as Writable).write(`gateway: the scp transfer stopped: ${message}\n`);
    this.hostExit = [1];
    this.finish({ by: 'gateway', error: message, refused: this.refused });
  }

  /** Ends what is still open (as lost), passes the host's exit status on and ends both channels. */
  private finish(why: ScpRelayEnd): void {
    if (this.ending) return;
    this.ending = why;
    this.abort.abort();
    for (const end of this.ends.values()) callEnd(end, { status: 'error', error: { code: 'connection-lost', message: `the transfer ended before this entry was complete (${why.by === 'gateway' ? why.error : `the ${why.by} ended the channel`})` } });
    this.ends.clear();
    this.outs = [];
    for (const s of [this.client, this.upstream]) if (this.paused.get(s)!.size > 0) s.resume();
    this.upstream.end();
    if (!this.clientEnded) {
      this.clientEnded = true;
      passHostExit(this.client, this.hostExit);
      this.client.end();
    }
    this.resolveDone(why);
  }
}

function callEnd(end: End, outcome: FileOutcome): void {
  try {
    end(outcome);
  } catch {
    // The recorder failed on its side; nothing the relay can add.
  }
}
