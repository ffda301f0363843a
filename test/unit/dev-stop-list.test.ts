import { describe, expect, it } from 'vitest';
import { StopList, abortedReason, startSideBySide } from '../../dev/stop-list.js';

describe('StopList', () => {
  it('stops newest first, each once, and runs every stop even when one fails', async () => {
    const stops = new StopList();
    const order: string[] = [];
    stops.add('postgres', () => void order.push('postgres'));
    const temporal = stops.add('temporal', () => void order.push('temporal'));
    stops.add('worker', () => {
      order.push('worker');
      throw new Error('already gone');
    });
    await temporal.stop();
    await temporal.stop();
    const failures: string[] = [];
    await stops.stopAll((name, err) => failures.push(`${name}: ${(err as Error).message}`));
    expect(order).toEqual(['temporal', 'worker', 'postgres']);
    expect(failures).toEqual(['worker: already gone']);
    expect(stops.names()).toEqual([]);
  });

  it('forget() drops an entry that ended by itself', async () => {
    const stops = new StopList();
    let stopped = false;
    stops.add('initdb', () => void (stopped = true)).forget();
    await stops.stopAll();
    expect(stopped).toBe(false);
  });
});

describe('startSideBySide', () => {
  it('aborts the other starts on the first failure, waits for them to unwind, and throws that failure', async () => {
    let otherSawAbort = '';
    let otherFinished = false;
    const attempt = startSideBySide([
      async () => {
        await new Promise((r) => setTimeout(r, 20));
        throw new Error('PostgreSQL: could not start');
      },
      async (signal) => {
        while (!signal.aborted) await new Promise((r) => setTimeout(r, 5));
        otherSawAbort = abortedReason(signal) ?? '';
        await new Promise((r) => setTimeout(r, 50)); // stopping what it spawned
        otherFinished = true;
        throw new Error(otherSawAbort);
      },
    ] as const);
    await expect(attempt).rejects.toThrow('PostgreSQL: could not start');
    expect(otherFinished).toBe(true);
    expect(otherSawAbort).toBe('stopped because another part failed (PostgreSQL: could not start)');
  });

  it('returns every result when all start', async () => {
    expect(await startSideBySide([async () => 1, async () => 'two'] as const)).toEqual([1, 'two']);
  });
});
