// What a forger with write access to the artifact can do: rewrite records, then recompute every
// hash and re-sign every checkpoint with a key of their own. The verifier's chain check cannot
// catch this; the OIDC token's audience (the original key's thumbprint) must.
import { createHash } from 'node:crypto';
import { canonicalJson } from '../../gateway/evidence/canonical-json.ts';
import { CheckpointSigner } from '../../gateway/evidence/checkpoint.ts';

type Rec = Record<string, unknown>;

/**
 * Re-chains and re-signs `lines` (a log's records) after `edit`, which may drop a record (null)
 * or add some (an array); returns the new lines. The new key replaces the run-start key unless
 * `keepKey` (then the checkpoints no longer verify).
 */
export function resign(lines: string[], edit: (r: Rec, i: number) => Rec | Rec[] | null = (r) => r, opts: { keepKey?: boolean; signer?: CheckpointSigner } = {}): string[] {
  const signer = opts.signer ?? new CheckpointSigner();
  const keepKey = opts.keepKey ?? false;
  const out: string[] = [];
  let prev = '0'.repeat(64);
  let run = '';
  let seq = 0;
  lines.forEach((line, i) => {
    const parsed = JSON.parse(line) as Rec;
    delete parsed.hash;
    const edited = edit(parsed, i);
    for (const r of edited === null ? [] : Array.isArray(edited) ? edited : [edited]) append(r);
  });
  return out;

  function append(r: Rec): void {
    if (r.type === 'run-start') {
      run = String(r.run);
      if (!keepKey) r.key = { alg: 'EdDSA', jwk: signer.jwk, thumbprint: signer.thumbprint };
    }
    r.seq = seq;
    r.prev = prev;
    if (r.type === 'checkpoint') {
      r.covers = seq - 1;
      r.jws = signer.sign({ run, seq: seq - 1, head: prev, seal: r.seal === true, time: String(r.time) });
    }
    const body = canonicalJson(r);
    const hash = createHash('sha256').update(body).digest('hex');
    out.push(body.slice(0, -1) + ',"hash":"' + hash + '"}');
    prev = hash;
    seq++;
  }
}
