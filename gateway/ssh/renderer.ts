// How SSH commands (ssh.exec, ssh.shell, ssh.scp, ssh.sftp, ssh.forward, ssh.subsystem) are
// shown by replay, the report, the job summary and the approval comment: the exec line as a
// shell line, exit statuses, stderr sizes, the bytes and digest of file transfers.
import { fenced, type Renderer } from '../evidence/renderers.ts';
import type { TimelineCommand } from '../evidence/timeline.ts';

const PROMPT: Record<string, string> = { 'ssh.exec': '$ ', 'ssh.scp': '$ ', 'ssh.shell': '', 'ssh.sftp': 'sftp> ', 'ssh.forward': '', 'ssh.subsystem': '' };

const num = (v: unknown): number | null => (typeof v === 'number' ? v : null);

function facts(c: TimelineCommand): string[] {
  const r = c.resultDetails;
  const out: string[] = [];
  if (num(r.exit_status) !== null) out.push(`exit ${r.exit_status}`);
  if (typeof r.exit_signal === 'string') out.push(`signal ${r.exit_signal}`);
  const stderr = r.stderr as { bytes?: number } | undefined;
  if (stderr?.bytes) out.push(`stderr ${stderr.bytes} bytes`);
  const moved = num(r.bytes_written) ?? num(r.bytes_read);
  if (moved !== null) out.push(`${num(r.bytes_written) !== null ? 'wrote' : 'read'} ${moved} bytes${typeof r.sha256 === 'string' ? ` sha256 ${r.sha256.slice(0, 16)}…` : ''}`);
  if (num(r.bytes_to_host) !== null) out.push(`${r.bytes_to_host} bytes to host, ${r.bytes_to_client} to client`);
  return out;
}

export const sshRenderer: Renderer = {
  kinds: 'ssh.',
  protocol: 'SSH',
  searchLabel: 'command',
  fence: 'sh',
  count: (n) => `${n} byte${n === 1 ? '' : 's'}`,
  line: (c) => `${PROMPT[c.kind ?? ''] ?? ''}${c.text.replace(/\s+/g, ' ').trim()}`,
  notes: (c) => facts(c),
  meta: (c) => [c.kind?.replace(/^ssh\./, '') ?? '', ...facts(c)].filter(Boolean),
  html: (c, esc) => `<pre class="cmd-text sh">${esc(`${PROMPT[c.kind] ?? ''}${c.text}`)}</pre>`,
  // The approval comment shows the exact text, ready to read or copy: no prompt.
  markdown: (c) => fenced(c.text, 'sh'),
};
