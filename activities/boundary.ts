import { toApplicationFailure } from '../lib/errors/index.js';

/**
 * The activity boundary: every activity's errors leave as an ApplicationFailure whose type is the
 * error's stable code and whose retryability comes from its class (lib/errors), so a malformed
 * vendor page stops at once while a 503 is retried after its Retry-After.
 */
export function atActivityBoundary<T extends Record<string, (...args: never[]) => Promise<unknown>>>(activities: T): T {
  const wrapped: Record<string, (...args: never[]) => Promise<unknown>> = {};
  for (const [name, fn] of Object.entries(activities)) {
    wrapped[name] = async (...args: never[]) => {
      try {
        return await fn(...args);
      } catch (err) {
        throw toApplicationFailure(err);
      }
    };
  }
  return wrapped as T;
}
