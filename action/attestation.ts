// `attest: true`: a Sigstore attestation (in-toto statement, signed with a Fulcio certificate for
// the job's OIDC identity and stored through GitHub's attestations API) naming the session log by
// its SHA-256, so `gh attestation verify LOG --repo OWNER/REPO` proves where the file came from.
import path from 'node:path';
import type { Verification } from '../gateway/evidence/verification.ts';
import { LOG_FORMAT } from '../gateway/evidence/log-writer.ts';
import { fileSha256 } from '../gateway/evidence/log-lines.ts';

export const SESSION_LOG_PREDICATE = 'https://github.com/org/gateway-action/session-log/v1';

export async function attestLog(file: string, v: Verification, token: string): Promise<{ id: string | null; digest: string }> {
  const digest = await fileSha256(file);
  const t = v.chain.totals;
  const { attest } = await import('@actions/attest');
  const a = await attest({
    subjects: [{ name: path.basename(file), digest: { sha256: digest } }],
    predicateType: SESSION_LOG_PREDICATE,
    predicate: {
      format: LOG_FORMAT,
      run: t.runId,
      verification: v.status,
      key_thumbprint: v.chain.signing.thumbprint,
      checkpoints: t.checkpoints,
      sessions: t.sessions,
      commands: t.commands,
      denied: t.denied,
      approved: t.approved,
    },
    token,
  });
  return { id: a.attestationID ?? null, digest };
}
