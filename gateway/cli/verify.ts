import fs from 'node:fs';
import { operands, parseArgs, UsageError, type OptionValues } from './args.ts';
import { headline, identitySummary, IDENTITY_FIELDS, policyOrigin, VERIFY_EXIT, verifyLog, type Verification } from '../evidence/verification.ts';
import type { IdentityOptions } from '../evidence/attestation-check.ts';
import { emptyTotals, type LogTotals } from '../evidence/log-totals.ts';
import { terminalJson, terminalText } from '../evidence/terminal-text.ts';

export const help = `Usage: gateway-action verify LOG [--jwks FILE | --issuer URL] [--repository OWNER/NAME]
                             [--workflow REF] [--sha SHA] [--json] [--save-jwks FILE]

Checks a session log: its hash chain, every checkpoint signature, that it is sealed, and the
GitHub OIDC token that binds its signing key to a workflow run (signature against the issuer's
key set, issuer, audience naming the key, issue time within the log's start, as of that time).
Prints the identity and totals.

Options:
  --jwks FILE             verify the token offline against this saved key set (JWKS)
  --issuer URL            the token issuer (default https://token.actions.githubusercontent.com);
                          its key set is fetched unless --jwks is given
  --repository OWNER/NAME require the token's repository
  --workflow REF          require the token's workflow: OWNER/REPO/.github/workflows/F.yml@REF,
                          or the workflow file's path, each with or without @REF
  --sha SHA               require the token's commit (full, or a prefix of 7 or more)
  --json                  print the result as JSON
  --save-jwks FILE        write the key set the token was checked against (for offline use)

Giving --jwks, --issuer or an expectation requires the log to be attested.

Exit status:
  0  valid: chain intact, checkpoints signed, sealed, identity verified or unattested
  1  tampered: a record edited, removed, inserted, reordered, or appended after the seal
  2  usage error
  3  unreadable: missing, empty, or not a session log
  4  unsealed: everything verifies up to the last checkpoint, but there is no seal
  5  identity mismatch: the token is forged, names another key, or fails an expectation
  6  identity not checked: the issuer's key set could not be fetched (use --jwks)
`;

export async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv, { json: { type: 'boolean' }, ...IDENTITY_OPTIONS, 'save-jwks': { type: 'string' } }, 'verify');
  if (args.values.help) return void process.stdout.write(help), 0;
  const logs = operands(args);
  if (logs.length !== 1) throw new UsageError('verify: give exactly one session log file (see gateway-action verify --help)');
  const opts = identityOptions(args.values);
  for (const note of weakExpectations(opts)) process.stderr.write(`gateway-action verify: note: ${note}\n`);
  const v = await verifyLog(logs[0]!, opts);
  const saveTo = args.values['save-jwks'];
  if (saveTo && v.identity?.jwks) fs.writeFileSync(saveTo, JSON.stringify(v.identity.jwks, null, 2) + '\n');
  const code = VERIFY_EXIT[v.status];
  if (args.values.json) process.stdout.write(terminalJson(verificationJson(v), 2) + '\n');
  else (code === 0 ? process.stdout : process.stderr).write(verificationText(v));
  return code;
}

/** The options of `verify` and `report` that check the log's identity token. */
export const IDENTITY_OPTIONS = { jwks: { type: 'string' }, issuer: { type: 'string' }, repository: { type: 'string' }, workflow: { type: 'string' }, sha: { type: 'string' } } as const;

export function identityOptions(o: OptionValues<typeof IDENTITY_OPTIONS>): IdentityOptions {
  if (o.issuer !== undefined) {
    try {
      new URL(o.issuer);
    } catch {
      throw new UsageError(`--issuer: ${o.issuer} is not a URL`);
    }
  }
  return { jwksFile: o.jwks, issuer: o.issuer, expect: { repository: o.repository, workflow: o.workflow, sha: o.sha } };
}

/** Expectations that any repository could meet: said, so nobody mistakes them for a strong check. */
export function weakExpectations(o: IdentityOptions): string[] {
  const e = o.expect ?? {};
  if (e.repository) return [];
  const notes: string[] = [];
  if (e.workflow && e.workflow.startsWith('.github/')) notes.push('--workflow names a file path that any repository can have; add --repository OWNER/NAME');
  if (e.sha) notes.push('--sha matches the commit in forks too; add --repository OWNER/NAME');
  return notes;
}

export function verificationJson(v: Verification): Record<string, unknown> {
  const t = v.chain.totals;
  const id = identitySummary(v);
  return {
    file: v.file,
    status: v.status,
    exit_code: VERIFY_EXIT[v.status],
    problem: v.problem,
    sealed: v.chain.sealed,
    chain: { status: v.chain.status, problem: v.chain.problem },
    signing: { key_thumbprint: v.chain.signing.thumbprint, checkpoints: t.checkpoints, last_checkpoint: v.chain.signing.lastCheckpoint, unsigned_records: v.chain.signing.unsignedRecords },
    // Only what the token proves goes in `claims`; what the log says of itself stays apart.
    identity: {
      status: id.status,
      issuer: id.issuer,
      problem: v.identity?.problem ?? null,
      claims: id.status === 'verified' ? id.claims : null,
      recorded: v.chain.totals.identity,
    },
    run: { id: t.runId, started_at: t.startedAt, ended_at: t.endedAt, targets: t.targets, policy: v.chain.runStart?.policy ?? null },
    totals: totalsJson(t),
    // An unsealed log's totals include records no signature covers; these are the signed ones.
    ...(v.chain.sealed ? {} : { signed_totals: totalsJson(v.chain.signedTotals ?? emptyTotals()) }),
  };
}

function totalsJson(t: LogTotals): Record<string, unknown> {
  return {
    records: t.records, sessions: t.sessions, commands: t.commands, denied: t.denied, approved: t.approved,
    held: t.held, denied_after_hold: t.deniedAfterHold, pending: t.pending,
    approved_by: Object.fromEntries(t.approvedBy), masked_commands: t.maskedCommands, masked_values: t.maskedValues,
    errors: t.errors, skipped: t.skipped, protocol_errors: t.protocolErrors,
  };
}

export function verificationText(v: Verification): string {
  const t = v.chain.totals;
  const lines = [`session log: ${v.file}`, `status:      ${headline(v)}`];
  if (v.status !== 'valid' && v.chain.problem && v.chain.problem !== v.problem) lines.push(`             also: ${v.chain.problem}`);
  // Each line escaped whole: the file name, problems, claims and targets come from the log.
  if (!t.runId) return lines.map(terminalText).join('\n') + '\n';
  lines.push(`signing key: Ed25519, thumbprint ${v.chain.signing.thumbprint ?? '(none)'}`);
  const id = identitySummary(v);
  if (id.status === 'verified') {
    lines.push(`identity:    verified (token signed by ${id.issuer})`);
    for (const [k, label] of IDENTITY_FIELDS) if (id.claims[k] !== undefined) lines.push(`  ${(label + ':').padEnd(18)} ${id.claims[k]}`);
  } else if (id.claims.kind === 'local') {
    lines.push(`identity:    unattested: local user ${id.claims.user ?? '?'} on ${id.claims.host ?? '?'} (nothing proves who wrote this log)`);
  } else {
    lines.push(`identity:    NOT VERIFIED (${id.status}); the log claims:`);
    for (const [k, label] of IDENTITY_FIELDS) if (id.claims[k] !== undefined) lines.push(`  ${(label + ':').padEnd(18)} ${id.claims[k]}`);
  }
  lines.push(`run:         ${t.runId}, ${t.startedAt ?? '?'} to ${t.endedAt ?? '(not sealed)'}`);
  const policy = policyOrigin(v);
  if (policy) lines.push(`policy:      ${policy}`);
  lines.push(`targets:     ${t.targets.join(', ') || '(none)'}`);
  lines.push(`records:     ${t.records} (${t.checkpoints} checkpoint${t.checkpoints === 1 ? "" : "s"})`);
  const signed = v.chain.sealed ? t : (v.chain.signedTotals ?? emptyTotals());
  const unsigned = (k: 'sessions' | 'commands' | 'denied' | 'held' | 'approved' | 'maskedCommands' | 'errors'): string => (t[k] > signed[k] ? `, ${t[k] - signed[k]} of them after the last checkpoint (unsigned)` : '');
  lines.push(`sessions:    ${t.sessions}${unsigned('sessions')}`);
  lines.push(`commands:    ${t.commands}${unsigned('commands')}`);
  lines.push(`  denied:    ${t.denied}${t.deniedAfterHold ? ` (${t.deniedAfterHold} after a hold)` : ''}${unsigned('denied')}`);
  if (t.held) lines.push(`  held:      ${t.held} (${t.approved} approved, ${t.deniedAfterHold} denied${t.pending ? `, ${t.pending} pending` : ''})${unsigned('held')}`);
  const by = [...t.approvedBy].map(([who, n]) => `${who}${n > 1 ? ` ×${n}` : ''}`).join(', ');
  lines.push(`  approved:  ${t.approved}${by ? ` (by ${by})` : ''}${unsigned('approved')}`);
  lines.push(`  masked:    ${t.maskedCommands}${t.maskedValues ? ` (${t.maskedValues} values)` : ''}${unsigned('maskedCommands')}`);
  lines.push(`  errors:    ${t.errors}${unsigned('errors')}`);
  if (t.skipped) lines.push(`  skipped:   ${t.skipped}`);
  if (t.protocolErrors) lines.push(`protocol errors: ${t.protocolErrors}`);
  return lines.map(terminalText).join('\n') + '\n';
}
