// The approval broker on its own: the first verdict wins, a timeout denies, a stop denies what
// waits and what is asked afterwards, and every approver hears how each request ended.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApprovalBroker, formatDuration, type Answer, type ApprovalRequest, type Approver, type Verdict } from '../../gateway/approval/broker.ts';

class ScriptedApprover implements Approver {
  readonly name: string;
  readonly answers = new Map<string, (a: Answer) => void>();
  readonly ended: [string, Verdict["outcome"], string][] = [];
  constructor(name: string) {
    this.name = name;
  }
  instructions(req: ApprovalRequest): string {
    return `${this.name}: answer ${req.id}`;
  }
  open(req: ApprovalRequest, answer: (a: Answer) => void): void {
    this.answers.set(req.id, answer);
  }
  settled(req: ApprovalRequest, v: Verdict): void {
    this.ended.push([req.id, v.outcome, v.via]);
  }
}

const fields = { session: 's1', command: 's1.1', target: 'db', text: 'DROP TABLE t', rule: 'r', reason: 'why' };

test('the first verdict wins; later answers change nothing; every approver hears the end', async () => {
  const a = new ScriptedApprover('a');
  const b = new ScriptedApprover('b');
  const broker = new ApprovalBroker({ runId: 'run1', timeoutMs: 60_000, approvers: [a, b] });
  const p = broker.request(fields);
  assert.match(p.request.id, /^[a-z2-9]{8}$/);
  assert.equal(broker.instructions(p.request), `a: answer ${p.request.id}; b: answer ${p.request.id}`);
  assert.deepEqual(broker.pending().map((r) => r.id), [p.request.id]);
  b.answers.get(p.request.id)!({ outcome: 'approved', by: 'bob' });
  a.answers.get(p.request.id)!({ outcome: 'denied', by: 'alice' });
  const v = await p.verdict;
  assert.deepEqual([v.outcome, v.by, v.via], ['approved', 'bob', 'b']);
  assert.deepEqual(a.ended, [[p.request.id, 'approved', 'b']]);
  assert.deepEqual(broker.pending(), []);
});

test('no answer in time: denied by timeout', async () => {
  const broker = new ApprovalBroker({ runId: 'run1', timeoutMs: 50, approvers: [new ScriptedApprover('a')] });
  const v = await broker.request(fields).verdict;
  assert.deepEqual([v.outcome, v.by, v.reason], ['denied', 'timeout', 'no verdict within 50ms']);
});

test('a stop denies what waits and whatever is asked afterwards', async () => {
  const broker = new ApprovalBroker({ runId: 'run1', timeoutMs: 60_000, approvers: [new ScriptedApprover('a')] });
  const waiting = broker.request(fields);
  broker.withdrawAll('the gateway is stopping');
  const late = broker.request(fields);
  for (const v of [await waiting.verdict, await late.verdict]) assert.deepEqual([v.outcome, v.via, v.reason], ['denied', 'gateway', 'the gateway is stopping']);
});

test('durations print as written in policies', () => {
  assert.deepEqual([formatDuration(900_000), formatDuration(3_600_000), formatDuration(90_000), formatDuration(1500)], ['15m', '1h', '90s', '1500ms']);
});
