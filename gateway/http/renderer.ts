// How HTTP requests (http.request) are shown by replay, the report, the job summary and the
// approval comment: in resources where the path names an Azure Resource Manager one
// (`DELETE Microsoft.Resources/resourceGroups rg1 (sub 00000000…)`), with the request line
// (query secrets already masked when recorded), the status, ARM's request ids and a long-running
// operation's final status. Views read only the command's text when that is all they get (the
// one-line and markdown views): the resource is read again from the request line.
import { fenced, type CommandView, type Renderer } from '../evidence/renderers.ts';
import type { TimelineCommand } from '../evidence/timeline.ts';
import { parseArmPath, type ArmResource } from './arm-resource.ts';

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const rec = (v: unknown): Record<string, unknown> => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
const oneLine = (s: string): string => s.replace(/\s+/g, ' ').trim();

interface RequestLine { method: string; url: string; path: string }

/** `METHOD URL` from the command's first line; null when the text is not a request line. */
export function readRequestLine(text: string): RequestLine | null {
  const m = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ((?:https?:\/\/|\/)\S*)/i.exec(text);
  if (!m) return null;
  const [, method, url] = m as unknown as [string, string, string];
  const p = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*([^?#]*)/i.exec(url);
  const path = p ? p[1] || '/' : url.split(/[?#]/)[0]!;
  return { method, url, path };
}

/** `Microsoft.Storage/storageAccounts sa1 listKeys`, `Microsoft.Resources/resourceGroups (list)`. */
export function resourceLabel(r: ArmResource): string {
  return `${r.type}${r.name !== undefined ? ` ${r.name}` : ' (list)'}${r.action !== undefined ? ` ${r.action}` : ''}`;
}

const short = (id: string): string => (id.length > 8 ? `${id.slice(0, 8)}…` : id);

// A resource group (or subscription) is not shown as living in itself.
const isResourceGroup = (r: ArmResource): boolean => r.types.length === 1 && r.types[0]!.toLowerCase() === 'resourcegroups';
const isSubscription = (r: ArmResource): boolean => r.type.toLowerCase() === 'microsoft.resources/subscriptions';

/** Where the resource lives, briefly: `rg app, sub 00000000…`. */
function whereLabel(r: ArmResource): string {
  const parts: string[] = [];
  if (r.resourceGroup !== undefined && !isResourceGroup(r)) parts.push(`rg ${r.resourceGroup}`);
  if (r.subscription !== undefined && !isSubscription(r)) parts.push(`sub ${short(r.subscription)}`);
  if (r.scope !== undefined && r.subscription === undefined) parts.push(`on ${r.scope}`);
  return parts.length ? ` (${parts.join(', ')})` : '';
}

/** The resource of a command: its recorded details, else its request line read again. */
function resourceOf(c: CommandView & { details?: Record<string, unknown> }): ArmResource | null {
  const recorded = rec(c.details?.resource);
  if (typeof recorded.type === 'string' && Array.isArray(recorded.types)) return recorded as unknown as ArmResource;
  const line = readRequestLine(c.text);
  return line ? parseArmPath(line.path) : null;
}

function statusFacts(c: TimelineCommand): string[] {
  const r = c.resultDetails;
  const out: string[] = [];
  if (typeof r.status === 'number') out.push(`status ${r.status}`);
  const op = rec(r.operation);
  if (str(op.status)) out.push(`operation ${op.status}`);
  if (str(r.content_type)) out.push(`${r.content_type}`);
  return out;
}

function idFacts(c: TimelineCommand): string[] {
  const r = c.resultDetails;
  return [str(r.request_id) ? `x-ms-request-id ${r.request_id}` : '', str(r.correlation_request_id) ? `x-ms-correlation-request-id ${r.correlation_request_id}` : ''].filter(Boolean);
}

function bodyFacts(c: TimelineCommand): string[] {
  // The request body's digest is the result's `input` (recorded as it streamed to the target).
  const body = Object.keys(rec(c.details.body)).length ? rec(c.details.body) : rec(c.extra?.result?.input);
  if (!Object.keys(body).length) return [];
  const bytes = typeof body.bytes === 'number' ? `${body.bytes} bytes` : '';
  const sha = str(body.sha256) ? `sha256 ${String(body.sha256).slice(0, 16)}…` : '';
  return [`request body ${[bytes, sha].filter(Boolean).join(' ') || JSON.stringify(body)}`];
}

/** Inline code that no value can break out of (names are percent-decoded and may hold anything). */
const code = (s: string): string => `\`${oneLine(s).replace(/`/g, "'")}\``;

export const httpRenderer: Renderer = {
  kinds: 'http.',
  protocol: 'HTTP',
  searchLabel: 'request',
  fence: 'http',
  count: (n) => `${n} byte${n === 1 ? '' : 's'}`,
  line(c) {
    const text = oneLine(c.text);
    const line = readRequestLine(text);
    const r = resourceOf(c);
    if (!line || !r) return text;
    return `${line.method} ${resourceLabel(r)}${whereLabel(r)} · ${line.url}`;
  },
  notes(c) {
    const r = resourceOf(c);
    const resource = r ? [`resource ${resourceLabel(r)}${whereLabel(r)}`, ...(r.scope !== undefined ? [`scope ${r.scope}`] : [])] : [];
    const op = rec(c.resultDetails.operation);
    return [...resource, ...statusFacts(c), ...idFacts(c), ...(str(op.url) ? [`operation ${op.url}`] : []), ...bodyFacts(c)];
  },
  meta(c) {
    const r = resourceOf(c);
    return [r ? resourceLabel(r) : '', ...statusFacts(c)].filter(Boolean);
  },
  html(c, esc) {
    const r = resourceOf(c);
    const row = (k: string, v: string): string => `<div class="line"><span class="k">${esc(k)}:</span> <span class="mono">${esc(v)}</span></div>`;
    const rows: string[] = [];
    if (r) {
      rows.push(row('resource', resourceLabel(r)));
      if (r.resourceGroup !== undefined) rows.push(row('resource group', r.resourceGroup));
      if (r.subscription !== undefined) rows.push(row('subscription', r.subscription));
      if (r.scope !== undefined) rows.push(row('scope', r.scope));
    }
    for (const f of [...idFacts(c), ...bodyFacts(c)]) {
      const sp = f.indexOf(' ');
      rows.push(row(f.slice(0, sp), f.slice(sp + 1)));
    }
    return `<pre class="cmd-text http">${esc(c.text)}</pre>${rows.join('')}`;
  },
  // The approval comment: what the request does in resources, then the request exactly as it
  // will be sent (query secrets masked).
  markdown(c) {
    const line = readRequestLine(c.text);
    const r = resourceOf(c);
    const head = line
      ? `${code(line.method)} ${r ? `${code(r.type)}${r.name !== undefined ? ` ${code(r.name)}` : ' (list)'}${r.action !== undefined ? ` action ${code(r.action)}` : ''}${r.resourceGroup !== undefined && !isResourceGroup(r) ? ` in resource group ${code(r.resourceGroup)}` : ''}${r.subscription !== undefined && !isSubscription(r) ? ` of subscription ${code(r.subscription)}` : ''}${r.scope !== undefined ? ` on ${code(r.scope)}` : ''}` : code(line.path)}`
      : '';
    return `${head ? `${head}\n\n` : ''}${fenced(c.text, 'http')}`;
  },
};
