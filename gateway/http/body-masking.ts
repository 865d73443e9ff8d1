// How one HTTP body (a response, or a request's log sample) is masked as it streams: JSON bodies
// through the masking engine's JSON face (the policy's json-fields masked whole, every string
// read by the detectors), other text through its stream face (detectors), binary bodies not at
// all (the log keeps their digest only). The client's copy and the log's copy are masked
// separately when `apply-to` differs, from one reading of the bytes.
import type { Masker } from '../masking/engine.ts';
import type { MaskedChunk } from '../masking/stream-masker.ts';

export type BodyKind = 'json' | 'text' | 'binary';

/** What a content type holds, for masking and sampling. No content type: read as text (it may be anything). */
export function bodyKind(contentType: string | undefined): BodyKind {
  if (contentType === undefined) return 'text';
  const t = contentType.split(';')[0]!.trim().toLowerCase();
  if (t === 'application/json' || t.endsWith('+json') || t === 'text/json' || t === 'application/x-ndjson' || t === 'application/jsonl') return 'json';
  if (t.startsWith('text/') || t.endsWith('+xml') || t === 'application/xml' || t === 'application/javascript' || t === 'application/x-www-form-urlencoded' || t === '') return 'text';
  return 'binary';
}

interface Face { push(chunk: Buffer): MaskedChunk; flush(): MaskedChunk }

function face(masker: Masker, kind: BodyKind): Face | null {
  if (kind === 'json') return masker.jsonFields.length > 0 || masker.detects ? masker.json(masker.jsonFields) : null;
  if (kind === 'text') return masker.detects ? masker.stream() : null;
  return null;
}

export interface MaskedPiece {
  /** What the client receives. */
  client: Buffer;
  /** What the log's sample reads (masked when masking applies to the log); null for binary bodies. */
  log: Buffer | null;
  /** Masking that fired on the client's copy or, when only the log is masked, the log's. */
  values: number;
  detectors: string[];
}

export class BodyMasking {
  readonly kind: BodyKind;
  private readonly client: Face | null;
  private readonly log: Face | null;
  /** The log's copy is the client's masked copy (masking applies to both). */
  private readonly shared: boolean;

  /** `logOnly`: a request body, which goes to the target as the client sent it; only the log's copy is masked. */
  constructor(masker: Masker | null, contentType: string | undefined, o: { logOnly?: boolean } = {}) {
    this.kind = bodyKind(contentType);
    const m = masker;
    this.client = m && m.applyTo.client && !o.logOnly ? face(m, this.kind) : null;
    this.shared = !!m && m.applyTo.client && m.applyTo.log && !o.logOnly;
    this.log = m && m.applyTo.log && !this.shared ? face(m, this.kind) : null;
  }

  /** Whether the client's copy may differ from the target's bytes (its length is then unknown). */
  get changesClientBody(): boolean {
    return this.client !== null;
  }

  push(chunk: Buffer): MaskedPiece {
    return this.piece(chunk, (f) => f.push(chunk));
  }

  flush(): MaskedPiece {
    return this.piece(Buffer.alloc(0), (f) => f.flush());
  }

  private piece(raw: Buffer, step: (f: Face) => MaskedChunk): MaskedPiece {
    const c = this.client ? step(this.client) : null;
    const client = c ? c.bytes : raw;
    if (this.kind === 'binary') return { client, log: null, values: 0, detectors: [] };
    if (this.shared || !this.log) {
      return { client, log: this.shared ? client : raw, values: c?.values ?? 0, detectors: c?.detectors ?? [] };
    }
    const l = step(this.log);
    return { client, log: l.bytes, values: c ? c.values : l.values, detectors: c ? c.detectors : l.detectors };
  }
}
