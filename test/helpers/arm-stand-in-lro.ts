// Long-running operations of the ARM stand-in (test/helpers/arm-stand-in.ts), as ARM documents
// them (https://learn.microsoft.com/azure/azure-resource-manager/management/async-operations):
// the first answer is 201/202 with `Azure-AsyncOperation` (poll: 200 `{"status": "InProgress" |
// "Succeeded" | "Failed" | "Canceled"}`) and `Location` (202 while running, then the final answer)
// and `Retry-After`. Every poll of either URL advances the operation: it reports InProgress the
// configured number of times, then its outcome, and keeps reporting the outcome after that.
import { randomUUID } from 'node:crypto';

export type LroOutcome = 'Succeeded' | 'Failed' | 'Canceled';

export interface ArmReply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export class ArmError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

interface Operation {
  id: string;
  /** The subscription the operation URLs live under. */
  subscription: string;
  /** What the operation does ("delete resource group 'x'"), for the error message when it fails. */
  what: string;
  inProgressLeft: number;
  outcome: LroOutcome;
  startTime: string;
  endTime?: string;
  /** The resource's final state (Location's 200 body); undefined for a delete (an empty 200). */
  result?: () => unknown;
  settle: (outcome: LroOutcome) => void;
  settled: boolean;
}

export interface StartedOperation {
  /** The headers of the first answer (Azure-AsyncOperation, Location, Retry-After). */
  headers: Record<string, string>;
}

export interface OperationStart {
  subscription: string;
  what: string;
  inProgressPolls: number;
  outcome: LroOutcome;
  /** Where the operation URLs point: 'https://host[:port]'. */
  baseUrl: string;
  apiVersion: string;
  /**
   * The resource provider whose operation URLs these are: undefined gives the Resources
   * provider's (`/subscriptions/{s}/providers/Microsoft.Resources/operations/{id}` and
   * `/subscriptions/{s}/operationresults/{id}`), a namespace and location give the
   * regional shape the Network provider uses.
   */
  provider?: { namespace: string; location: string };
  result?: () => unknown;
  /** Called once, when the outcome is first reported. */
  settle: (outcome: LroOutcome) => void;
}

export class Operations {
  private readonly byId = new Map<string, Operation>();

  start(s: OperationStart): StartedOperation {
    const id = randomUUID();
    this.byId.set(id, {
      id, subscription: s.subscription, what: s.what, inProgressLeft: s.inProgressPolls, outcome: s.outcome,
      startTime: new Date().toISOString(), result: s.result, settle: s.settle, settled: false,
    });
    const q = `?api-version=${encodeURIComponent(s.apiVersion)}`;
    const sub = `${s.baseUrl}/subscriptions/${s.subscription}`;
    const [asyncUrl, locationUrl] = s.provider
      ? [`${sub}/providers/${s.provider.namespace}/locations/${s.provider.location}/operations/${id}${q}`,
        `${sub}/providers/${s.provider.namespace}/locations/${s.provider.location}/operationResults/${id}${q}`]
      : [`${sub}/providers/Microsoft.Resources/operations/${id}${q}`, `${sub}/operationresults/${id}${q}`];
    return { headers: { 'azure-asyncoperation': asyncUrl, location: locationUrl, 'retry-after': '0' } };
  }

  /**
   * A poll of an operation URL (segments of the path), or undefined when the path is not one:
   * `.../operations/{id}` answers the Azure-AsyncOperation status, `.../operationresults/{id}`
   * answers as the Location URL.
   */
  poll(segments: string[], requestUrl: string): ArmReply | undefined {
    const kind = segments.at(-2)?.toLowerCase();
    if (segments.length < 4 || segments[0]!.toLowerCase() !== 'subscriptions' || (kind !== 'operations' && kind !== 'operationresults')) return undefined;
    const op = this.byId.get(segments.at(-1)!);
    if (!op || op.subscription.toLowerCase() !== segments[1]!.toLowerCase()) return undefined;
    const running = op.inProgressLeft > 0;
    if (running) op.inProgressLeft--;
    else if (!op.settled) {
      op.settled = true;
      op.endTime = new Date().toISOString();
      op.settle(op.outcome);
    }
    const error = op.outcome === 'Failed'
      ? { code: 'OperationFailed', message: `The operation to ${op.what} failed (the stand-in was told to fail it).` }
      : { code: 'OperationCanceled', message: `The operation to ${op.what} was canceled.` };
    if (kind === 'operations') {
      if (running) return { status: 200, headers: { 'retry-after': '0' }, body: { id: op.id, name: op.id, status: 'InProgress', startTime: op.startTime } };
      return {
        status: 200,
        body: { id: op.id, name: op.id, status: op.outcome, startTime: op.startTime, endTime: op.endTime, ...(op.outcome === 'Succeeded' ? {} : { error }) },
      };
    }
    if (running) return { status: 202, headers: { location: requestUrl, 'retry-after': '0' } };
    if (op.outcome !== 'Succeeded') throw new ArmError(409, error.code, error.message);
    return op.result ? { status: 200, body: op.result() } : { status: 200 };
  }
}
