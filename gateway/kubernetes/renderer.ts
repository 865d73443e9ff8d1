// How Kubernetes commands (kubernetes.request, kubernetes.exec, kubernetes.attach, upgrades and
// port-forwards) are shown by replay, the report, the job summary and the approval comment: as
// kubectl would say them (`delete deployments.apps/web -n prod`, `exec pods/web-0 -n default --
// sh -c 'env'`), with the request line exactly as it was sent. Views that get only the command's
// text read it all again from the request line.
import { fenced, type CommandView, type Renderer } from '../evidence/renderers.ts';
import type { TimelineCommand } from '../evidence/timeline.ts';
import { readRequestLine } from '../http/renderer.ts';
import { shellQuote } from './conditions.ts';
import { kubeDetails, kubeSummary } from './kube-api.ts';
import { readRequest } from './request-info.ts';

const oneLine = (s: string): string => s.replace(/\s+/g, ' ').trim();
const rec = (v: unknown): Record<string, unknown> => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
const code = (s: string): string => `\`${oneLine(s).replace(/`/g, "'")}\``;

/** `exec pods/web-0 -n default -- sh -c 'id'` or `get pods -n default`; null when the text is no request line. */
export function kubeLine(text: string): string | null {
  const line = readRequestLine(text);
  if (!line) return null;
  const target = line.url.replace(/^[a-z]+:\/\/[^/]*/i, '');
  const read = readRequest(line.method, target);
  if ('unclassified' in read) return null;
  const summary = kubeSummary(kubeDetails(read.request));
  const argv = read.request.subresource === 'exec' ? read.query.getAll('command') : [];
  return argv.length ? `${summary} -- ${argv.map((w) => (/^[\w@%+=:,./-]+$/.test(w) ? w : shellQuote(w))).join(' ')}` : summary;
}

function resultFacts(c: TimelineCommand): string[] {
  const r = c.resultDetails;
  const out: string[] = [];
  if (typeof r.status === 'number') out.push(`status ${r.status}`);
  if (typeof r.exit_code === 'number') out.push(`exit code ${r.exit_code}`);
  if (r.tty === true) out.push('tty');
  if (typeof r.content_type === 'string') out.push(r.content_type);
  return out;
}

export const kubeRenderer: Renderer = {
  kinds: 'kubernetes.',
  protocol: 'Kubernetes',
  searchLabel: 'request',
  fence: 'http',
  count: (n) => `${n} byte${n === 1 ? '' : 's'}`,
  line(c: CommandView) {
    const text = oneLine(c.text);
    const k = kubeLine(text);
    return k ? `${k} · ${text}` : text;
  },
  notes(c) {
    const k = kubeLine(c.text);
    const container = typeof c.details.container === 'string' ? [`container ${c.details.container}`] : [];
    const stderr = rec(c.resultDetails.stderr);
    return [...(k ? [`kubectl: ${k}`] : []), ...container, ...resultFacts(c), ...(typeof stderr.sample === 'string' ? [`stderr: ${oneLine(stderr.sample).slice(0, 200)}`] : [])];
  },
  meta(c) {
    return [kubeLine(c.text) ?? '', ...resultFacts(c)].filter(Boolean);
  },
  html(c, esc) {
    const k = kubeLine(c.text);
    const row = (key: string, v: string): string => `<div class="line"><span class="k">${esc(key)}:</span> <span class="mono">${esc(v)}</span></div>`;
    return `<pre class="cmd-text http">${esc(c.text)}</pre>${k ? row('kubectl', k) : ''}${resultFacts(c).map((f) => row('result', f)).join('')}`;
  },
  markdown(c) {
    const k = kubeLine(c.text);
    return `${k ? `${code(k)}\n\n` : ''}${fenced(c.text, 'http')}`;
  },
};
