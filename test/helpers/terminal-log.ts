// A session log holding terminal recordings, written by the real log writer, signer and
// recorder (as an SSH shell's would be): one shell whose output has colors, a resize, and what
// must not reach an auditor's terminal or break out of the report (an OSC 52 clipboard write, a
// title, a terminal report request, concealed text, `</script>`); an exec with no recording;
// and a shell whose session never finished (cut short, no result).
import { SessionLogWriter, LOG_FORMAT } from '../../gateway/evidence/log-writer.ts';
import { CheckpointSigner } from '../../gateway/evidence/checkpoint.ts';
import { Recorder } from '../../gateway/core/recorder.ts';

/** The clipboard write inside the recording: its payload is base64 of "rm -rf ~\n". */
export const OSC52 = '\x1b]52;c;cm0gLXJmIH4K\x07';
/** Text that would end a <script> element or open an HTML comment if embedded unescaped. */
export const BREAKOUT = '</script><script>window.__pwned=1</script><!--';

export interface TerminalLog { log: string; shell: string; exec: string; cut: string }

export function writeTerminalLog(dir: string, name = 'terminal.jsonl'): TerminalLog {
  const writer = SessionLogWriter.create(dir, name);
  const signer = new CheckpointSigner();
  writer.signWith('r-term', signer, { everyRecords: 5, everyMs: 0 });
  writer.append('run-start', {
    format: LOG_FORMAT, run: 'r-term', identity: { kind: 'local', user: 'u', host: 'h' }, attestation: 'unattested',
    targets: [{ name: 'web-vm', kind: 'ssh', host: '127.0.0.1', port: 2222 }],
    key: { alg: 'EdDSA', jwk: signer.jwk, thumbprint: signer.thumbprint },
  });
  const recorder = new Recorder(writer, { sampleRows: 5 });
  const ssh = recorder.openSession('web-vm', 'ssh', { client: { user: 'deploy' } });
  const shell = ssh.beginCommand({ kind: 'ssh.shell', text: '(interactive shell)', decision: { action: 'allow', rule: 'default' }, facts: [{ ssh: 'shell' }] });
  const rec = shell.startRecording({ width: 80, height: 24 });
  rec.output('deploy@web:~$ ');
  // A person's pause before typing: the events after it are at least 40 ms later.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 40);
  rec.input('uptime\r');
  rec.output(`uptime\r\n\x1b[32m 12:00:01 up 3 days\x1b[0m\r\n${OSC52}\x1b]0;pwned title\x07\x1b[6n`);
  rec.resize(100, 30);
  // Two chunks, as a longer session writes them: a log cut inside the second still has the first.
  rec.flush();
  rec.output('\x1b[1;31mred alert\x1b[0m and \x1b[8mhidden\x1b[0m text\r\n');
  rec.output(`echo '${BREAKOUT}'\r\n${BREAKOUT}\r\ndeploy@web:~$ `);
  rec.input('exit\r');
  rec.output('logout\r\n');
  shell.finish({ status: 'ok', count: 0 });
  const exec = ssh.beginCommand({ kind: 'ssh.exec', text: 'true', decision: { action: 'allow', rule: 'default' }, facts: [{ ssh: 'exec' }] });
  exec.finish({ status: 'ok', count: 0 });
  ssh.close('client closed');
  const dying = recorder.openSession('web-vm', 'ssh', { client: { user: 'deploy' } });
  const cut = dying.beginCommand({ kind: 'ssh.shell', text: '(interactive shell)', decision: { action: 'allow', rule: 'default' }, facts: [{ ssh: 'shell' }] });
  const cutRec = cut.startRecording({ width: 80, height: 24 });
  cutRec.output('deploy@web:~$ tail -f /var/log/syslog\r\nstill running when the session died\r\n');
  cutRec.flush();
  // The session is never closed and the command never finishes: what a killed daemon leaves.
  writer.close('run-end', { run: 'r-term' });
  return { log: writer.path, shell: shell.id, exec: exec.id, cut: cut.id };
}
