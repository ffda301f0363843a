/**
 * Fault injection for in-process workers, owned by the tests: the named activity fails once,
 * non-retryably, as a crashed KMS or database would after its retries (`failOnce`), or does so once it has
 * succeeded n more times (`failAfter`); or it commits and then fails its attempt retryably, as when a
 * worker dies before replying (`loseReplyOnce`). Tests
 * wrap the activities they give their Worker with `withActivityFaults`; nothing of this ships.
 */
import { ApplicationFailure } from '@temporalio/common';

export const activityFaults: { failOnce: Set<string>; failAfter: Map<string, number>; loseReplyOnce: Set<string> } = {
  failOnce: new Set(),
  failAfter: new Map(),
  loseReplyOnce: new Set(),
};

type ActivityFunctions = Record<string, (...args: never[]) => Promise<unknown>>;

export function withActivityFaults<T extends ActivityFunctions>(activities: T): T {
  const wrapped: ActivityFunctions = {};
  for (const [name, fn] of Object.entries(activities)) {
    wrapped[name] = async (...args: never[]) => {
      const after = activityFaults.failAfter.get(name);
      if (after !== undefined) {
        if (after > 0) activityFaults.failAfter.set(name, after - 1);
        else activityFaults.failAfter.delete(name);
      }
      if (activityFaults.failOnce.delete(name) || after === 0)
        throw ApplicationFailure.nonRetryable(`injected fault in ${name}`, 'TEST_INJECTED_FAULT');
      const result = await fn(...args);
      if (activityFaults.loseReplyOnce.delete(name))
        throw ApplicationFailure.retryable(`injected lost reply in ${name}`, 'TEST_INJECTED_FAULT');
      return result;
    };
  }
  return wrapped as T;
}
