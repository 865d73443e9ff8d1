// How one HTTP body (a response, or a request's log sample) is masked as it streams: JSON bodies
// through the masking engine's JSON face (the policy's json-fields masked whole, every string
// read by the detectors), other text through its stream face (detectors). The client's copy and
// the log's copy are masked separately when `apply-to` differs, from one reading of the bytes.
//
// What a body is comes from its first bytes as much as from its content type, because either
// side may label a body as it likes: a body that starts like JSON is read as JSON whatever its
// type says (`text/plain`, none, `application/x-json`, a duplicated header); a body declared
// JSON is JSON. A body that is neither JSON nor declared text is binary: nothing can be masked in
// it, so with masking on for the client it is refused (`refusesBinary`), never passed unread; the
// log keeps only its digest.
import type { Masker } from '../masking/engine.ts';
import type { MaskedChunk } from '../masking/stream-masker.ts';

export type BodyKind = 'json' | 'text' | 'binary';

/** What a content type declares. No content type: unknown (the first bytes decide). */
export function declaredKind(contentType: string | undefined): BodyKind | null {
  if (contentType === undefined) return null;
  const t = contentType.split(';')[0]!.trim().toLowerCase();
  if (t === 'application/json' || t.endsWith('+json') || t === 'text/json' || t === 'application/x-ndjson' || t === 'application/jsonl') return 'json';
  if (t.startsWith('text/') || t.endsWith('+xml') || t === 'application/xml' || t === 'application/javascript' || t === 'application/x-www-form-urlencoded') return 'text';
  if (t === '') return null;
  return 'binary';
}

/** Whether a body's first bytes start a JSON object or array (after a BOM and white space). */
export function looksLikeJson(first: Buffer): boolean {
  let i = first[0] === 0xef && first[1] === 0xbb && first[2] === 0xbf ? 3 : 0;
  while (i < first.length && (first[i] === 0x20 || first[i] === 0x09 || first[i] === 0x0a || first[i] === 0x0d)) i++;
  return first[i] === 0x7b || first[i] === 0x5b;
}

/** What a body is: declared JSON, or starting like JSON, is JSON; then declared or unknown text; the rest binary. */
export function bodyKind(contentType: string | undefined, first: Buffer): BodyKind {
  const declared = declaredKind(contentType);
  if (declared === 'json' || looksLikeJson(first)) return 'json';
  return declared ?? (isText(first) ? 'text' : 'binary');
}

/** Text as far as the first bytes show: valid UTF-8 without NUL (a cut-off last character allowed). */
function isText(first: Buffer): boolean {
  const head = first.subarray(0, 512);
  if (head.includes(0)) return false;
  for (let cut = 0; cut < 4 && cut < head.length; cut++) {
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(head.subarray(0, head.length - cut));
      return true;
    } catch {
      // maybe a character cut at the end: try a byte shorter
    }
  }
  return head.length === 0;
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
  private readonly masksClient: boolean;
  /** The first bytes were no bytes: the whole body is empty (the relay reads until it has some). */
  private readonly empty: boolean;

  /**
   * `first`: the body's first bytes (empty for no body), which decide what it is.
   * `logOnly`: a request body, which goes to the target as the client sent it; only the log's copy is masked.
   */
  constructor(masker: Masker | null, contentType: string | undefined, first: Buffer, o: { logOnly?: boolean } = {}) {
    this.kind = bodyKind(contentType, first);
    this.empty = first.length === 0;
    const m = masker;
    this.masksClient = !!m && m.applyTo.client && !o.logOnly && (m.jsonFields.length > 0 || m.detects);
    this.client = m && m.applyTo.client && !o.logOnly ? face(m, this.kind) : null;
    this.shared = !!m && m.applyTo.client && m.applyTo.log && !o.logOnly;
    this.log = m && m.applyTo.log && !this.shared ? face(m, this.kind) : null;
  }

  /** Whether the client's copy may differ from the target's bytes (its length is then unknown). */
  get changesClientBody(): boolean {
    return this.client !== null;
  }

  /**
   * A binary body while masking applies to the client: it cannot be read, so it must not pass.
   * An empty one (HEAD, 204, 304 of a download) holds nothing to hide.
   */
  get refusesBinary(): boolean {
    return this.kind === 'binary' && this.masksClient && !this.empty;
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
