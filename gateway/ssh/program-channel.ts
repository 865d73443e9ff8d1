// An exec or a shell on a session channel: passed through the command gate (decided, recorded,
// held) before the host hears of it; then the host's program runs with the client's env and
// pty, stdout and stderr relayed apart (masked as the policy says), stdin passed on, window
// changes and signals passed on, and the host's exit status or signal given back exactly. A
// pty shell's output is kept as a terminal recording; an exec's as a text sample.
import type { ClientChannel, PseudoTtyInfo, ServerChannel } from 'ssh2';
import type { CommandRecorder, Outcome } from '../core/recorder.ts';
import { MAX_TEXT_SAMPLE } from '../core/recorder.ts';
import { readExecLine, type SshUnit } from './exec-facts.ts';
import { OutputRelay, TextSample } from './output-relay.ts';
import { DENIED_EXIT_STATUS, FAULT_EXIT_STATUS, stderrClient, type SshSessionContext } from './session-context.ts';
import { UpstreamError } from './upstream.ts';
import { fileGate } from './file-gate.ts';
import { parseScpCommand, relayScp, type ScpCommand } from './scp-relay.ts';

/** What the client asked of its session channel before the program starts. */
export interface SessionRequests {
  env: Record<string, string>;
  pty: PseudoTtyInfo | null;
  /** The upstream channel once started: window changes and signals go to it. */
  running: ClientChannel | null;
  /** The running shell's recording notes window changes. */
  onResize?: (cols: number, rows: number) => void;
}

export type Program = { exec: string } | { shell: true };

/** How the host's program ended: an exit status, or a signal. */
interface ExitInfo { code: number | null; signal?: string; coreDumped?: boolean; description?: string }
/** How the host said the command ended; null until it says (or if the connection was lost first). */
interface Ended { exit: ExitInfo | null }

/** Reads the exec line; a reading that fails is unclassified, never allowed by default. */
async function units(ctx: SshSessionContext, program: Program): Promise<{ units: SshUnit[] | null; unclassified: string | null; kind: string; scp?: ScpCommand }> {
  if ('shell' in program) return { units: [{ ssh: 'shell' }], unclassified: null, kind: 'ssh.shell' };
  try {
    const r = await readExecLine(program.exec, { home: ctx.home });
    if (!r.units.some((u) => u.ssh === 'scp')) return { units: r.units, unclassified: r.unclassified, kind: 'ssh.exec' };
    // A legacy scp transfer: its stream is read file by file, so the line must be exactly one
    // scp server command in words the gateway splits as the host's shell will.
    const scp = r.units.length === 1 && SIMPLE_LINE.test(program.exec) ? parseScpCommand(program.exec.trim().split(/\s+/)) : { error: 'a legacy scp line with shell syntax around it' };
    if ('error' in scp) return { units: r.units, unclassified: [r.unclassified, `${scp.error}: its transfer cannot be read`].filter(Boolean).join('; '), kind: 'ssh.scp' };
    return { units: r.units, unclassified: r.unclassified, kind: 'ssh.scp', scp };
  } catch (e) {
    return { units: null, unclassified: `the exec line could not be read: ${(e as Error).message}`, kind: 'ssh.exec' };
  }
}

/** Words with no shell syntax: split on blanks, they are what the host's shell passes on. */
const SIMPLE_LINE = /^[\w\/.,:=+@%~ -]+$/;

function describe(program: Program, req: SessionRequests): string {
  if ('exec' in program) return program.exec;
  return req.pty ? `shell (pty ${req.pty.term} ${req.pty.cols}x${req.pty.rows})` : 'shell (no pty: commands from stdin)';
}

export async function runProgram(ctx: SshSessionContext, stream: ServerChannel, req: SessionRequests, program: Program): Promise<void> {
  const terminal = req.pty !== null;
  const client = stderrClient(ctx, stream.stderr, terminal);
  const read = await units(ctx, program);
  const text = describe(program, req);
  const envNames = Object.keys(req.env);
  const details: Record<string, unknown> = {
    ...(envNames.length ? { env: envNames } : {}),
    ...(req.pty ? { pty: { term: req.pty.term, cols: req.pty.cols, rows: req.pty.rows } } : {}),
  };
  const forwarded = [Buffer.from('exec' in program ? program.exec : 'shell'), ...Object.entries(req.env).map(([k, v]) => Buffer.from(`${k}=${v}`))];
  const answer = await ctx.gate.pass({ kind: read.kind, text, units: read.units, unclassified: read.unclassified, details, forwarded }, client);
  if (!answer.allowed) {
    client.tell(answer.message);
    return finishChannel(stream, answer.decision.rule === 'session-log' ? FAULT_EXIT_STATUS : DENIED_EXIT_STATUS);
  }
  const cmd = answer.cmd;
  let channel: ClientChannel;
  // How the command ended, listened for as the channel opens: a short command's reply, output,
  // exit status and close can arrive in one read, all emitted before an awaiting caller resumes.
  const ended: Ended = { exit: null };
  try {
    const conn = await ctx.upstream();
    channel = await new Promise<ClientChannel>((resolve, reject) => {
      const pty = req.pty ? { rows: req.pty.rows, cols: req.pty.cols, height: req.pty.height, width: req.pty.width, term: req.pty.term, modes: req.pty.modes } : undefined;
      const done = (err: Error | undefined, ch: ClientChannel): void => {
        if (err) return reject(err);
        ch.on('exit', (code: number | null, signal?: string, coreDumped?: boolean, description?: string) => {
          ended.exit = { code, signal, coreDumped, description };
        });
        resolve(ch);
      };
      if ('exec' in program) conn.exec(program.exec, { env: req.env, pty }, done);
      else conn.shell(pty ?? false, { env: req.env }, done);
    });
  } catch (e) {
    const message = e instanceof UpstreamError ? e.message : `the host refused the channel: ${(e as Error).message}`;
    client.tell(`gateway: ${message}`);
    cmd.finish({ status: 'error', error: { code: 'upstream', message } });
    return finishChannel(stream, FAULT_EXIT_STATUS);
  }
  req.running = channel;
  if (read.scp) return relayLegacyScp(ctx, stream, channel, cmd, read.scp);
  await relay(ctx, stream, channel, cmd, terminal && 'shell' in program, req, ended);
}

/** `scp -t`/`scp -f`: each file through the gate (scp-relay.ts); the line's command ends with the transfer. */
async function relayLegacyScp(ctx: SshSessionContext, stream: ServerChannel, channel: ClientChannel, cmd: CommandRecorder, scp: ScpCommand): Promise<void> {
  const end = await relayScp(scp, stream, channel, fileGate(ctx, 'scp'), { home: ctx.home }).done;
  const details = { by: end.by, refused: end.refused };
  cmd.finish(end.error ? { status: 'error', error: { code: 'scp', message: end.error }, details } : end.refused > 0 ? { status: 'error', error: { code: 'scp', message: `${end.refused} entries refused` }, details } : { status: 'ok', details });
}

async function relay(ctx: SshSessionContext, stream: ServerChannel, channel: ClientChannel, cmd: CommandRecorder, recordTerminal: boolean, req: SessionRequests, ended: Ended): Promise<void> {
  const masker = ctx.core.masker;
  const masked = (values: number, detectors: string[]): void => cmd.noteMasked(values, detectors);
  const recording = recordTerminal && req.pty ? cmd.startRecording({ width: req.pty.cols, height: req.pty.rows }) : null;
  if (recording) req.onResize = (cols, rows) => recording.resize(cols, rows);
  const sample = new TextSample(MAX_TEXT_SAMPLE);
  const stdout = new OutputRelay(channel, stream, masker, {
    sent: (b) => cmd.addResponse(b),
    logged: (b) => (recording ? recording.output(b) : sample.add(b)),
    masked,
  });
  const errSample = new TextSample(MAX_TEXT_SAMPLE);
  const stderr = new OutputRelay(channel.stderr, stream.stderr, masker, { logged: (b) => errSample.add(b), masked });
  // Client input: passed on with backpressure; digested (never kept: a typed password stays out of the log).
  let inputWaiting = false;
  stream.on('data', (chunk: Buffer) => {
    cmd.addInput(chunk);
    if (!channel.write(chunk) && !inputWaiting) {
      inputWaiting = true;
      stream.pause();
      channel.once('drain', () => {
        inputWaiting = false;
        stream.resume();
      });
    }
  });
  stream.on('end', () => channel.end());
  const gone = ctx.onClientGone(() => channel.close());
  await new Promise<void>((resolve) => channel.once('close', resolve));
  gone();
  const [out, err] = await Promise.all([stdout.done, stderr.done]);
  req.running = null;
  // A recording is its own sample (the result names it); an exec keeps the text.
  if (!recording && sample.bytes > 0) cmd.addSampleText(sample.text);
  const e = ended.exit;
  const details: Record<string, unknown> = { stderr: { bytes: err.bytes, sha256: err.sha256, ...(errSample.text ? { sample: errSample.text } : {}) } };
  let outcome: Outcome;
  let tellExit: () => void;
  if (e && e.code !== null && e.code !== undefined) {
    details.exit_status = e.code;
    outcome = e.code === 0 ? { status: 'ok', details } : { status: 'error', error: { code: `exit ${e.code}`, message: `exited with status ${e.code}` }, details };
    const code = e.code;
    tellExit = () => stream.exit(code);
  } else if (e && e.signal) {
    // Named as the SSH protocol names it (TERM); ssh2 hands it over as SIGTERM.
    const name = e.signal.replace(/^SIG/, '');
    details.exit_signal = name;
    outcome = { status: 'error', error: { code: `signal ${name}`, message: `killed by signal ${name}${e.coreDumped ? ' (core dumped)' : ''}` }, details };
    const signal = e.signal;
    tellExit = () => stream.exit(signal, e.coreDumped ?? false, e.description ?? '');
  } else {
    const message = 'the connection to the host was lost before the command ended';
    if (!stream.destroyed) stream.stderr.write(`gateway: ${message}\n`);
    outcome = { status: 'error', error: { code: 'upstream', message }, details };
    tellExit = () => stream.exit(FAULT_EXIT_STATUS);
  }
  void out;
  // The result is in the log before the client hears how the command ended.
  cmd.finish(outcome);
  await new Promise((written) => ctx.rec.writer.whenWritten(written));
  try {
    tellExit();
    stream.end();
  } catch {
    // The client is gone already.
  }
}

/** Ends a client channel with an exit status (the client's ssh exits with it). */
export function finishChannel(stream: ServerChannel, status: number): void {
  try {
    stream.exit(status);
    stream.end();
  } catch {
    // The client already closed the channel.
  }
}

/** Passes a window change to the running program (and the recording); before it starts, to the pty request. */
export function windowChange(req: SessionRequests, size: { cols: number; rows: number; width: number; height: number }): void {
  if (req.pty) Object.assign(req.pty, size);
  req.running?.setWindow(size.rows, size.cols, size.height, size.width);
  req.onResize?.(size.cols, size.rows);
}
