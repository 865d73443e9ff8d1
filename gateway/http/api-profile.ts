// What differs between the APIs the HTTP exchange serves (an HTTPS API such as Azure Resource
// Manager; a Kubernetes API server): how a request is read into facts, how the gateway's own
// refusals are shaped so the API's clients print them, and what the API's bodies need beyond the
// policy's masking (Kubernetes: Secret values). The exchange, the relay and the core are shared.
import type { OutgoingHttpHeaders } from 'node:http';
import type { Facts } from '../policy/engine.ts';
import type { HttpResponse } from './exchange-types.ts';

export interface RequestReading {
  /** The unit of facts the policy decides, or why the request cannot be read. */
  unit: Facts | { unclassified: string };
  /** The command's details beyond the request line (ARM's resource, Kubernetes' attributes). */
  details: Record<string, unknown>;
  /** Lines the approval request shows under the request line. */
  approvalLines: string[];
}

/** A transform every byte of one body passes before any other masking; throws to refuse the body. */
export interface BodyFilter {
  push(chunk: Buffer): Buffer;
  flush(): Buffer;
  /** Values replaced so far. */
  readonly masked: number;
}

/** A request body's log sample written by the profile itself; null: unreadable (the digest alone is kept). */
export type RequestSampler = (body: Buffer, contentType: string | undefined) => { text: string; masked: number } | null;

export interface ApiProfile {
  /** The kind of command the exchange records (`http.request`). */
  commandKind: string;
  /** `path` is normalized, `query` the raw query without `?`. */
  read(method: string, host: string, path: string, query: string): RequestReading;
  /** The gateway's own answer (a refusal, an upstream fault) in the API's error shape. */
  sendError(res: HttpResponse, status: number, code: string, message: string): void;
  /** Adjusts the headers sent upstream (in place), after the gateway's own. */
  upstreamHeaders?(headers: OutgoingHttpHeaders): void;
  /** The filter a response body passes first (null: none). */
  responseFilter?(unit: Facts, query: string): BodyFilter | null;
  /** The sampler of a request body (null: the policy's masking samples it). */
  requestSampler?(unit: Facts): RequestSampler | null;
}
