// The job summary: who ran it, whether the evidence verifies, what each target saw, every denied
// and approval-held command with its rule, and where the artifact is.
import * as core from '@actions/core';
import { headline, identitySummary, IDENTITY_FIELDS, policyOrigin, type Verification } from '../gateway/evidence/verification.ts';
import { argvLine, outcomeOf } from '../gateway/evidence/timeline.ts';
import { esc, safeUrl } from '../gateway/evidence/html-text.ts';
import { unknownTypesText } from '../gateway/evidence/report-html.ts';
import { rendererSet, type Renderer } from '../gateway/evidence/renderers.ts';
import { RENDERERS } from '../gateway/adapters.ts';
import type { Outcome } from './outcome.ts';

export interface SummaryContext { artifactName: string | null; artifactUrl: string | null; artifactError: string | null; daemonDied: string | null; statusContext: string; statusSha: string | null; attestation: string | null }

const code = (s: string): string => `<code>${esc(s)}</code>`;
const oneLine = (s: string): string => (s.length > 200 ? s.slice(0, 197) + '…' : s).replace(/\s+/g, ' ');

export async function writeSummary(v: Verification, o: Outcome, ctx: SummaryContext, list: readonly Renderer[] = RENDERERS): Promise<void> {
  const s = core.summary;
  const renderers = rendererSet(list);
  s.addHeading('gateway-action: session evidence', 2);
  s.addRaw(`<p><strong>${v.status === 'valid' && !ctx.daemonDied ? '✅' : '❌'} ${esc(headline(v))}</strong></p>`, true);
  if (ctx.daemonDied) s.addRaw(`<p>❌ <strong>The gateway daemon died during the job</strong>: ${esc(ctx.daemonDied)}. Its log is kept as written, up to its last signed checkpoint.</p>`, true);
  const id = identitySummary(v);
  const rows = IDENTITY_FIELDS.filter(([k]) => id.claims[k] !== undefined).map(([k, label]) => [label, code(id.claims[k]!)]);
  rows.push(['signing key', code(v.chain.signing.thumbprint ?? '(none)')]);
  rows.push(['identity', esc(id.status === 'verified' ? `verified (OIDC token signed by ${id.issuer})` : id.status)]);
  const policy = policyOrigin(v);
  if (policy) rows.push(['policy', esc(policy)]);
  s.addTable([[{ data: 'run', header: true }, { data: esc(v.chain.totals.runId ?? '?'), header: true }], ...rows]);
  s.addHeading('Targets', 3);
  s.addTable([
    ['target', 'commands', 'allowed', 'denied', 'held', 'approved', 'not approved', 'errors', 'masked'].map((h) => ({ data: h, header: true })),
    ...o.targets.map((t) => [code(t.target), ...[t.commands, t.allowed, t.denied, t.held, t.approved, t.unapproved, t.errors, t.masked].map(String)]),
  ]);
  s.addRaw('<p><sub>denied: never ran (by a rule, or held and then not approved); held: waited for a person, then approved or not approved (denied, timed out, or no verdict in the log).</sub></p>', true);
  if (o.attention.length > 0) {
    s.addHeading('Denied and approval-held commands', 3);
    s.addTable([
      ['command', 'target', 'decision', 'rule', 'outcome', 'approval', renderers.searchLabel(o.attention.map((c) => c.kind))].map((h) => ({ data: h, header: true })),
      ...o.attention.map((c) => {
        const a = c.approval;
        const approval = a
          ? `${esc(a.outcome)}${a.by ? ` by ${esc(a.by)}` : ''}${a.waitedMs !== null ? ` after ${Math.round(a.waitedMs / 1000)} s` : ''}${a.reason ? `: ${esc(a.reason)}` : ''}${safeUrl(a.url) ? ` (<a href="${esc(a.url!)}">request</a>)` : ''}`
          : '';
        return [code(c.id), code(c.target), esc(c.decision), c.rule ? code(c.rule) : '', esc(outcomeOf(c)), approval, code(oneLine(renderers.for(c.kind).line(c)))];
      }),
    ]);
  }
  if (o.confined.length > 0) {
    s.addHeading('Confined commands', 3);
    s.addTable([
      ['command', 'ran as', 'ended', 'sessions it opened'].map((h) => ({ data: h, header: true })),
      ...o.confined.map((c) => [
        code(oneLine(argvLine(c.argv))),
        code(c.user),
        esc(c.error ? `failed: ${c.error}` : c.signal ? `by ${c.signal}` : c.exitCode !== null ? `exit ${c.exitCode}` : 'not ended in the log'),
        c.sessions.length ? c.sessions.map(code).join(' ') : esc(`${c.connections} connection(s)`),
      ]),
    ]);
    s.addRaw('<p><sub>Confined: its own network namespace where the gateway was the only way out, another user, no token variables (docs/confinement.md).</sub></p>', true);
  }
  if (o.unknownTypes.size) s.addRaw(`<p>⚠️ The log holds ${esc(unknownTypesText(o.unknownTypes))}: the report shows them as recorded.</p>`, true);
  const t = v.chain.totals;
  if (t.approvedBy.size > 0) s.addRaw(`<p>Approved by: ${[...t.approvedBy].map(([who, n]) => `${esc(who)} (${n})`).join(', ')}</p>`, true);
  const artifact = ctx.artifactError
    ? `❌ the artifact could not be uploaded: ${esc(ctx.artifactError)}`
    : ctx.artifactName ? `Artifact ${ctx.artifactUrl ? `<a href="${esc(ctx.artifactUrl)}">${code(ctx.artifactName)}</a>` : code(ctx.artifactName)}: the session log, the HTML report and the OIDC issuer's key set. Check it offline with ${code('gateway-action verify LOG --jwks jwks.json')}.` : '';
  if (artifact) s.addRaw(`<p>${artifact}</p>`, true);
  if (ctx.attestation) s.addRaw(`<p>Sigstore attestation of the log: ${code(ctx.attestation)}; check it with ${code('gh attestation verify LOG --repo OWNER/REPO')}.</p>`, true);
  s.addRaw(`<p>Commit status ${code(ctx.statusContext)}: <strong>${o.state}</strong> (${esc(o.description)})${ctx.statusSha ? ` on ${code(ctx.statusSha.slice(0, 12))}` : ''}.</p>`, true);
  await s.write();
}
