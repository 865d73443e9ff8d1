// The frames of one exec or attach session, between the client's WebSocket and the API server's:
// stdin and resizes from the client (recorded: the stdin digest always; with a tty, the session
// as a terminal recording of input, output and resizes), stdout and stderr from the server
// (masked as the policy says, for the client and for the log, streaming: a secret cut across
// frames is still found), and the status channel, whose Status is the exit code. A frame the
// channel protocol does not allow ends the session: nothing unread passes.
import { createHash } from 'node:crypto';
import type { WebSocket, RawData } from 'ws';
import { MAX_TEXT_SAMPLE, TextSample, type CommandRecorder } from '../core/recorder.ts';
import type { TerminalRecording } from '../core/terminal-recording.ts';
import type { Masker } from '../masking/engine.ts';
import { idleFlush, type MaskedChunk } from '../masking/stream-masker.ts';
import { CHANNEL_STATUS, CHANNEL_STDERR, CHANNEL_STDIN, CHANNEL_RESIZE, decodeFrame, encodeClose, encodeFrame, exitStatus, resize, type ExecProtocol } from './exec-channels.ts';
import type { ExecOptions } from './exec-upgrade.ts';

/** An interactive stream's held-back tail is released after this long without output (as SSH's). */
const IDLE_FLUSH_MS = 20;
/** One side is paused while the other has this much unsent. */
const HIGH_WATER = 1 << 20;

type Feed = { push(chunk: Buffer): void; end(): void };

export class ExecStreams {
  private readonly cmd: CommandRecorder;
  private readonly masker: Masker | null;
  private readonly protocol: ExecProtocol;
  private readonly opts: ExecOptions;
  private readonly recording: TerminalRecording | null;
  private readonly stderrSample = new TextSample();
  private readonly stderrHash = createHash('sha256');
  private stderrBytes = 0;
  private status: Buffer[] = [];
  private problem: string | null = null;
  private readonly outputs = new Map<number, { client: Feed; log: Feed | null; ended: boolean }>();

  constructor(cmd: CommandRecorder, masker: Masker | null, protocol: ExecProtocol, opts: ExecOptions) {
    this.cmd = cmd;
    this.masker = masker;
    this.protocol = protocol;
    this.opts = opts;
    // kubectl sends the terminal's size as its first resize; until then, the usual default.
    this.recording = opts.tty ? cmd.startRecording({ width: 80, height: 24 }) : null;
  }

  /** Relays until both WebSockets are closed, then writes the command's result. */
  async relay(client: WebSocket, upstream: WebSocket): Promise<void> {
    for (const ch of [1, 2]) this.outputs.set(ch, this.output(ch, client, upstream));
    const closed = (ws: WebSocket): Promise<{ code: number; reason: string }> =>
      new Promise((resolve) => ws.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() })));
    const clientClosed = closed(client);
    const upstreamClosed = closed(upstream);
    client.on('error', () => client.terminate());
    upstream.on('error', () => upstream.terminate());
    const stop = (why: string): void => {
      this.problem ??= why;
      client.terminate();
      upstream.terminate();
    };
    client.on('message', (data: RawData, isBinary: boolean) => {
      const f = decodeFrame(asBuffer(data), isBinary, this.protocol, 'client');
      if ('problem' in f) return stop(`the client broke the channel protocol: ${f.problem}`);
      if ('close' in f) return void upstream.send(encodeClose(f.close));
      if (f.channel === CHANNEL_STDIN) {
        this.cmd.addInput(f.payload);
        if (this.recording) this.recording.input(this.masker?.applyTo.log ? this.logText(f.payload) : f.payload);
      } else if (f.channel === CHANNEL_RESIZE) {
        const size = resize(f.payload);
        if ('problem' in size) return stop(`the client sent a resize that does not parse: ${size.problem}`);
        this.recording?.resize(size.width, size.height);
      }
      this.send(upstream, encodeFrame(f.channel, f.payload), client);
    });
    upstream.on('message', (data: RawData, isBinary: boolean) => {
      const f = decodeFrame(asBuffer(data), isBinary, this.protocol, 'server');
      if ('problem' in f) return stop(`the API server broke the channel protocol: ${f.problem}`);
      if ('close' in f) {
        this.endOutput(f.close);
        return void this.send(client, encodeClose(f.close), upstream);
      }
      if (f.channel === CHANNEL_STATUS) {
        // Output held back for masking goes out before the status that ends the session.
        this.endOutput(1);
        this.endOutput(2);
        this.status.push(Buffer.from(f.payload));
        return void this.send(client, encodeFrame(f.channel, f.payload), upstream);
      }
      // The payload is a view of a message ws allocated for this frame alone: no copy is needed.
      const out = this.outputs.get(f.channel)!;
      out.client.push(f.payload);
      out.log?.push(f.payload);
    });
    // Either side closing closes the other, with its code when it is one a peer may send.
    void clientClosed.then(() => upstream.close());
    void upstreamClosed.then(({ code, reason }) => {
      this.endOutput(1);
      this.endOutput(2);
      client.close(code >= 1000 && code <= 4999 && code !== 1005 && code !== 1006 ? code : 1000, reason);
      setTimeout(() => client.terminate(), 5000).unref();
    });
    await Promise.all([clientClosed, upstreamClosed]);
    this.finish();
  }

  /** A payload as the log may keep it (masked when masking applies to the log). */
  private logText(b: Buffer): string {
    const text = b.toString('utf8');
    return this.masker?.applyTo.log ? (this.masker.maskText(text)?.text ?? text) : text;
  }

  /** Sends with backpressure: the other side is paused while this one has too much unsent. */
  private send(to: WebSocket, frame: Buffer, from: WebSocket): void {
    if (to.readyState !== 1) return;
    to.send(frame, () => {
      if (from.isPaused && to.bufferedAmount < HIGH_WATER / 4) from.resume();
    });
    if (to.bufferedAmount > HIGH_WATER && !from.isPaused) from.pause();
  }

  /** stdout (1) or stderr (2): masked for the client and the log as the policy applies it. */
  private output(channel: number, client: WebSocket, upstream: WebSocket): { client: Feed; log: Feed | null; ended: boolean } {
    const m = this.masker;
    const note = (r: MaskedChunk): void => {
      if (r.values > 0 || r.detectors.length > 0) this.cmd.noteMasked(r.values, r.detectors);
    };
    const toClient = (b: Buffer): void => {
      if (!b.length) return;
      this.cmd.addResponse(b);
      this.send(client, encodeFrame(channel, b), upstream);
    };
    const toLog = (b: Buffer): void => {
      if (!b.length) return;
      if (channel === CHANNEL_STDERR) {
        this.stderrBytes += b.length;
        this.stderrHash.update(b);
        if (this.recording) this.recording.output(b);
        else this.stderrSample.addBytes(b);
      } else if (this.recording) this.recording.output(b);
      else this.cmd.responseSample.addBytes(b);
    };
    if (m?.applyTo.client) {
      const shared = m.applyTo.log;
      const c = idleFlush(m.stream(), IDLE_FLUSH_MS, (r) => {
        note(r);
        toClient(r.bytes);
        if (shared) toLog(r.bytes);
      });
      const l = shared ? null : { push: toLog, end: () => undefined };
      return { client: c, log: l, ended: false };
    }
    const log = m?.applyTo.log ? idleFlush(m.stream(), IDLE_FLUSH_MS, (r) => {
      note(r);
      toLog(r.bytes);
    }) : { push: toLog, end: () => undefined };
    return { client: { push: toClient, end: () => undefined }, log, ended: false };
  }

  private endOutput(channel: number): void {
    const o = this.outputs.get(channel);
    if (!o || o.ended) return;
    o.ended = true;
    o.client.end();
    o.log?.end();
  }

  private finish(): void {
    this.cmd.responseSample.end();
    this.stderrSample.end();
    const status = exitStatus(Buffer.concat(this.status));
    const stderr = this.stderrBytes ? { stderr: { bytes: this.stderrBytes, sha256: this.stderrHash.digest('hex'), ...(this.stderrSample.text ? { sample: this.stderrSample.text.slice(0, MAX_TEXT_SAMPLE) } : {}) } } : {};
    const details = { ...stderr, protocol: this.protocol, ...(this.opts.tty ? { tty: true } : {}) };
    if (this.problem) return this.cmd.finish({ status: 'error', error: { code: 'protocol', message: this.problem }, details });
    if (this.status.length === 0) {
      return this.cmd.finish({ status: 'error', error: { code: 'no-status', message: 'the session ended without an exit status' }, details });
    }
    if ('problem' in status) return this.cmd.finish({ status: 'error', error: { code: 'status', message: status.problem }, details });
    const exit = { exit_code: status.code };
    if (status.code === 0) return this.cmd.finish({ status: 'ok', details: { ...exit, ...details } });
    this.cmd.finish({ status: 'error', error: { code: String(status.code), message: status.message ?? `exit code ${status.code}` }, details: { ...exit, ...details } });
  }
}

function asBuffer(data: RawData): Buffer {
  return Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
}
