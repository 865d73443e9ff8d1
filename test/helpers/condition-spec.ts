// Compiling an adapter's `when:` condition outside the policy loader, as unit tests do: `fail`
// throws what the loader would turn into a line-numbered error (its message and where in the
// condition's value), so a test can check both.
import type { ConditionSpec } from '../../gateway/core/adapter.ts';

export class ConditionFailure extends Error {
  readonly at: (string | number)[];
  constructor(message: string, at: (string | number)[]) {
    super(message);
    this.at = at;
  }
}

export function compileCondition(c: ConditionSpec, raw: unknown): ReturnType<ConditionSpec['compile']> {
  return c.compile(raw, (message, at = []) => {
    throw new ConditionFailure(message, at);
  });
}
