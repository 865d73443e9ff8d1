// pods/exec over WebSocket for the Kubernetes API stand-in, speaking the remote-command channel
// protocol the API server speaks (k8s.io/apimachinery/pkg/util/remotecommand, wsstream):
//   every binary message starts with a channel byte: 0 stdin, 1 stdout, 2 stderr, 3 error/status
//   (a metav1.Status JSON once the command ends), 4 resize ({"Width","Height"} JSON);
//   v5.channel.k8s.io adds the close message [255, channel] (the client closing stdin).
// The command itself runs in-process (kube-api-exec-commands.ts). Output waits while the socket
// has a lot queued, and stdin is paused meanwhile, so `cat` of 100 MB keeps memory flat.
import type { WebSocket } from 'ws';
import { runCommand, type CommandIo, type TerminalSize } from './kube-api-exec-commands.ts';

export const EXEC_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'] as const;

export interface ExecRecord {
  namespace: string;
  pod: string;
  container: string;
  /** argv from the repeated `command=` query parameters. */
  command: string[];
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
  /** The negotiated subprotocol. */
  protocol: string;
  stdinBytes: number;
  stdoutBytes: number;
  /** Whether the client closed stdin with a v5 close frame. */
  stdinClosed: boolean;
  resizes: TerminalSize[];
  /** null until the command ends (or when the client left first). */
  exitCode: number | null;
}

const HIGH_WATER = 4 << 20;

/** The status-channel message for an exit code, as the kubelet writes it. */
export function exitStatus(command: string[], code: number): Record<string, unknown> {
  if (code === 0) return { metadata: {}, status: 'Success' };
  return {
    metadata: {}, status: 'Failure',
    message: `command terminated with non-zero exit code: error executing command [${command.join(' ')}], exit code ${code}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(code) }] },
  };
}

export function serveExec(ws: WebSocket, rec: ExecRecord): void {
  let gone = false;
  let markGone: () => void = () => undefined;
  const gonePromise = new Promise<void>((r) => { markGone = r; });
  let stdinHandler: ((chunk: Buffer) => Promise<void> | void) | undefined;
  let stdinEnd: (() => void) | undefined;
  const stdinQueue: Buffer[] = [];
  let stdinEnded = false;
  let size: TerminalSize | undefined;
  const resizeListeners = new Set<(s: TerminalSize) => void>();

  const endStdin = (): void => {
    if (stdinEnded) return;
    stdinEnded = true;
    stdinEnd?.();
  };
  const onClientGone = (): void => {
    if (gone) return;
    gone = true;
    endStdin();
    markGone();
  };
  ws.on('close', onClientGone);
  ws.on('error', onClientGone);

  const send = (channel: number, data: Buffer | string): Promise<void> => {
    if (gone) return Promise.resolve();
    const body = typeof data === 'string' ? Buffer.from(data) : data;
    const frame = Buffer.allocUnsafe(body.length + 1);
    frame[0] = channel;
    body.copy(frame, 1);
    return new Promise((resolve) => {
      ws.send(frame, { binary: true }, () => resolve());
      // Resolve at once unless a lot is queued: then the writer waits for the socket to drain.
      if (ws.bufferedAmount < HIGH_WATER) resolve();
    });
  };

  // Stdin is handed over one chunk at a time; the socket is paused while a chunk is being
  // written out, so a fast sender cannot pile up memory here.
  let pumping = false;
  const pump = async (): Promise<void> => {
    if (pumping || !stdinHandler) return;
    pumping = true;
    while (stdinQueue.length > 0 && stdinHandler) {
      const chunk = stdinQueue.shift()!;
      ws.pause();
      try { await stdinHandler(chunk); } finally { if (!gone) ws.resume(); }
    }
    pumping = false;
    if (stdinEnded && stdinQueue.length === 0) stdinEnd?.();
  };

  ws.on('message', (raw: Buffer, isBinary: boolean) => {
    if (!isBinary || raw.length === 0) return;
    const channel = raw[0];
    const body = raw.subarray(1);
    if (channel === 0) {
      rec.stdinBytes += body.length;
      if (stdinEnded) return;
      // With a TTY, ^D is end of input (the terminal line discipline's EOF): what came before it
      // is read, the rest dropped. Without one, stdin ends only with a v5 close frame.
      const eof = rec.tty ? body.indexOf(4) : -1;
      if (eof >= 0) {
        if (eof > 0) stdinQueue.push(Buffer.from(body.subarray(0, eof)));
        stdinEnded = true;
      } else {
        stdinQueue.push(Buffer.from(body));
      }
      void pump();
    } else if (channel === 4) {
      try {
        const s = JSON.parse(body.toString('utf8')) as TerminalSize;
        if (Number.isInteger(s.Width) && Number.isInteger(s.Height)) {
          size = { Width: s.Width, Height: s.Height };
          rec.resizes.push(size);
          for (const l of resizeListeners) l(size);
        }
      } catch { /* a malformed resize is ignored, as the kubelet's decoder drops it */ }
    } else if (channel === 255 && rec.protocol === 'v5.channel.k8s.io' && body[0] === 0) {
      rec.stdinClosed = true;
      stdinEnded = true;
      void pump();
    }
  });

  const io: CommandIo = {
    tty: rec.tty,
    pod: rec.pod,
    stdout: async (d) => {
      const b = typeof d === 'string' ? Buffer.from(d) : d;
      rec.stdoutBytes += b.length;
      if (rec.stdout) await send(1, b);
    },
    // With a TTY there is no separate stderr: it goes to the terminal (stdout).
    stderr: async (d) => { if (rec.tty) await send(1, d); else if (rec.stderr) await send(2, d); },
    readStdin: (onChunk) => new Promise<void>((resolve) => {
      if (!rec.stdin) { resolve(); return; }
      stdinHandler = onChunk;
      stdinEnd = () => { if (!pumping && stdinQueue.length === 0) { stdinHandler = undefined; resolve(); } };
      void pump();
      if (stdinEnded && stdinQueue.length === 0) stdinEnd();
    }),
    size: () => size,
    onResize: (l) => { resizeListeners.add(l); return () => resizeListeners.delete(l); },
    gone: gonePromise,
  };

  void (async () => {
    let code: number;
    try { code = await runCommand(rec.command, io); } catch { code = 1; }
    if (gone) return;
    rec.exitCode = code;
    await send(3, JSON.stringify(exitStatus(rec.command, code)));
    ws.close(1000);
  })();
}
