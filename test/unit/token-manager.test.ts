import { describe, expect, it } from 'vitest';
import { TokenManager } from '../../lib/vendors/token-manager.js';

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A requester issuing tok-1, tok-2, … and counting calls per integration. */
function counter(expiresInSeconds = 300) {
  const calls: string[] = [];
  const requester = (integrationId: string) => {
    calls.push(integrationId);
    return Promise.resolve({ accessToken: `tok-${calls.length}`, expiresInSeconds, scope: 'system/Patient.rs' });
  };
  return { calls, requester };
}

describe('TokenManager', () => {
  it('caches a token per integration', async () => {
    const { calls, requester } = counter();
    const tm = new TokenManager(requester);
    expect(await tm.accessToken('a')).toBe('tok-1');
    expect(await tm.accessToken('a')).toBe('tok-1');
    expect(await tm.accessToken('b')).toBe('tok-2');
    expect(await tm.accessToken('b')).toBe('tok-2');
    expect(calls).toEqual(['a', 'b']);
  });

  it('refreshes ahead of expiry, measured from when the request started', async () => {
    let now = 1_000_000;
    const { calls, requester } = counter(300);
    const tm = new TokenManager(requester, 60_000, () => now);
    expect(await tm.accessToken('a')).toBe('tok-1');
    now += 239_999; // 60 s + 1 ms before expiry: still fresh
    expect(await tm.accessToken('a')).toBe('tok-1');
    now += 1; // exactly 60 s before expiry: refreshed
    expect(await tm.accessToken('a')).toBe('tok-2');
    expect(calls).toHaveLength(2);
    now += 239_999;
    expect(await tm.accessToken('a')).toBe('tok-2');
    now += 100_000; // long past expiry
    expect(await tm.accessToken('a')).toBe('tok-3');
  });

  it('sends one request for concurrent callers (single flight)', async () => {
    const pending = deferred<{ accessToken: string; expiresInSeconds: number; scope: string }>();
    let requests = 0;
    const tm = new TokenManager(() => {
      requests++;
      return pending.promise;
    });
    const all = Promise.all(Array.from({ length: 10 }, () => tm.accessToken('a')));
    expect(requests).toBe(1);
    pending.resolve({ accessToken: 'shared', expiresInSeconds: 300, scope: '' });
    expect(await all).toEqual(Array(10).fill('shared'));
    expect(requests).toBe(1);
    expect(await tm.accessToken('a')).toBe('shared');
    expect(requests).toBe(1);
  });

  it('does not single-flight across integrations', async () => {
    const { calls, requester } = counter();
    const tm = new TokenManager(requester);
    const tokens = await Promise.all([
      tm.accessToken('a'),
      tm.accessToken('b'),
      tm.accessToken('a'),
      tm.accessToken('b'),
    ]);
    expect(calls.sort()).toEqual(['a', 'b']);
    expect(new Set(tokens).size).toBe(2);
  });

  it('shares a failure with concurrent callers, caches nothing, and tries again next time', async () => {
    let requests = 0;
    const tm = new TokenManager(async () => {
      requests++;
      if (requests === 1) throw new Error('token endpoint down');
      return { accessToken: 'recovered', expiresInSeconds: 300, scope: '' };
    });
    const results = await Promise.allSettled([tm.accessToken('a'), tm.accessToken('a'), tm.accessToken('a')]);
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    expect(requests).toBe(1);
    expect(await tm.accessToken('a')).toBe('recovered');
    expect(requests).toBe(2);
  });

  it('invalidate drops only the refused token', async () => {
    const { calls, requester } = counter();
    const tm = new TokenManager(requester);
    expect(await tm.accessToken('a')).toBe('tok-1');
    expect(await tm.accessToken('b')).toBe('tok-2');
    // A stale refusal of a token that is no longer cached changes nothing.
    tm.invalidate('a', 'tok-0');
    tm.invalidate('a', 'tok-2');
    expect(await tm.accessToken('a')).toBe('tok-1');
    expect(calls).toHaveLength(2);
    tm.invalidate('a', 'tok-1');
    expect(await tm.accessToken('a')).toBe('tok-3');
    expect(await tm.accessToken('b')).toBe('tok-2');
    // Two callers both refused with tok-1: the second invalidation must not drop tok-3.
    tm.invalidate('a', 'tok-1');
    expect(await tm.accessToken('a')).toBe('tok-3');
    expect(calls).toEqual(['a', 'b', 'a']);
  });

  it('forget drops the integration token', async () => {
    const { calls, requester } = counter();
    const tm = new TokenManager(requester);
    await tm.accessToken('a');
    tm.forget('a');
    expect(await tm.accessToken('a')).toBe('tok-2');
    expect(calls).toHaveLength(2);
  });

  it('refreshes a long-lived (1 h) token at 80 % of its lifetime, before the 60 s margin', async () => {
    let now = 0;
    let issued = 0;
    const tm = new TokenManager(
      async () => ({ accessToken: `tok-${++issued}`, expiresInSeconds: 3600, scope: 's' }),
      60_000,
      () => now,
    );
    expect(await tm.accessToken('i')).toBe('tok-1');
    now = 2_880_000 - 1; // just under 80 % of an hour: still fresh
    expect(await tm.accessToken('i')).toBe('tok-1');
    now = 2_880_000; // 80 %: refreshed, long before 60 s before expiry
    expect(await tm.accessToken('i')).toBe('tok-2');
  });

  it('caches a short-lived (60 s) token for back-to-back calls', async () => {
    const { calls, requester } = counter(60);
    const tm = new TokenManager(requester, 60_000, () => 5_000_000);
    await tm.accessToken('a');
    await tm.accessToken('a');
    expect(calls).toHaveLength(1);
  });

  it('forget during an in-flight refresh keeps the old token out of the cache', async () => {
    const first = deferred<{ accessToken: string; expiresInSeconds: number; scope: string }>();
    let requests = 0;
    const tm = new TokenManager(() => {
      requests++;
      return requests === 1
        ? first.promise
        : Promise.resolve({ accessToken: 'after-forget', expiresInSeconds: 300, scope: '' });
    });
    const inflight = tm.accessToken('a');
    tm.forget('a');
    first.resolve({ accessToken: 'before-forget', expiresInSeconds: 300, scope: '' });
    await inflight.catch(() => undefined);
    expect(await tm.accessToken('a')).toBe('after-forget');
  });
});
