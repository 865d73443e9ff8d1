// How egress connections (egress.connect, egress.http) are shown by replay, the report, the job
// summary and approval comments: the CONNECT line, then the wildcard entry that declared it, the
// address reached and the bytes each way (what crossed is the client's own TLS: the gateway never
// read it); how long it was open is the command's duration. A refused one shows its rule and
// reason like any denied command.
import { fenced, type CommandView, type Renderer } from '../evidence/renderers.ts';
import type { TimelineCommand } from '../evidence/timeline.ts';

const num = (v: unknown): number | null => (typeof v === 'number' ? v : null);
const oneLine = (s: string): string => s.replace(/\s+/g, ' ').trim();

/** `1.2 MB` style sizes (bytes below 1 kB). */
function size(n: number): string {
  if (n < 1000) return `${n} byte${n === 1 ? '' : 's'}`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n / 1000;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

function facts(c: TimelineCommand): string[] {
  const r = c.resultDetails;
  const out: string[] = [];
  if (typeof c.details.entry === 'string' && c.details.entry !== c.details.host) out.push(`declared as ${c.details.entry}`);
  if (typeof r.address === 'string') out.push(`reached ${r.address}`);
  const up = num(r.bytes_to_host);
  const down = num(r.bytes_to_client);
  if (up !== null && down !== null) out.push(`${size(up)} to host, ${size(down)} to client`);
  return out;
}

export const egressRenderer: Renderer = {
  kinds: 'egress.',
  protocol: 'Egress',
  searchLabel: 'host',
  fence: 'http',
  count: (n) => `${n} byte${n === 1 ? '' : 's'}`,
  line: (c: CommandView) => oneLine(c.text),
  notes: (c) => facts(c),
  meta: (c) => [c.kind === 'egress.http' ? 'plain http' : 'tunnel', ...facts(c)],
  html: (c, esc) => `<pre class="cmd-text http">${esc(c.text)}</pre>${facts(c).map((f) => `<div class="line"><span class="k">${esc(f)}</span></div>`).join('')}`,
  markdown: (c) => fenced(c.text, 'http'),
};
