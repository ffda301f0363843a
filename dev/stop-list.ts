/**
 * What a start-up has to undo, registered the moment a process exists — not when it is ready — so
 * that a sibling failing half-way (two servers started in parallel) or a readiness wait that times
 * out never leaves a process running. Used by the dev stack daemon, the test global setup and the
 * benchmark infrastructure.
 */

export interface StopRegistration {
  /** Stops it now (once; later calls wait for the same stop) and takes it off the list. */
  stop(): Promise<void>;
  /** Takes it off the list without stopping it (it ended by itself, e.g. a finished initdb). */
  forget(): void;
}

interface Entry {
  name: string;
  stop: () => Promise<void>;
}

export class StopList {
  private readonly entries: Entry[] = [];

  /** Registers `stop`; the returned registration's stop() runs it at most once. */
  add(name: string, stop: () => Promise<void> | void): StopRegistration {
    let stopping: Promise<void> | undefined;
    const entry: Entry = {
      name,
      stop: () => (stopping ??= Promise.resolve().then(stop)),
    };
    this.entries.push(entry);
    const forget = () => {
      const at = this.entries.indexOf(entry);
      if (at >= 0) this.entries.splice(at, 1);
    };
    return {
      stop: async () => {
        forget();
        await entry.stop();
      },
      forget,
    };
  }

  /** Names still registered, oldest first. */
  names(): string[] {
    return this.entries.map((e) => e.name);
  }

  /**
   * Stops everything still registered, newest first. Every stop runs even when one fails; failures
   * go to onError (default: rethrown together at the end). onStopping hears each name as it begins.
   */
  async stopAll(onError?: (name: string, err: unknown) => void, onStopping?: (name: string) => void): Promise<void> {
    const failures: Error[] = [];
    while (this.entries.length > 0) {
      const entry = this.entries.pop()!;
      onStopping?.(entry.name);
      try {
        await entry.stop();
      } catch (err) {
        if (onError) onError(entry.name, err);
        else
          failures.push(
            new Error(`stopping ${entry.name} failed: ${err instanceof Error ? err.message : String(err)}`),
          );
      }
    }
    if (failures.length === 1) throw failures[0]!;
    if (failures.length > 1) throw new AggregateError(failures, failures.map((f) => f.message).join('; '));
  }
}

/**
 * Starts several parts side by side. The first failure aborts the others (their readiness waits
 * watch `signal`); every start is awaited before this returns or throws, so nothing is still
 * spawning once the caller runs its StopList. Throws the first failure.
 */
export async function startSideBySide<T extends readonly unknown[]>(starts: {
  [K in keyof T]: (signal: AbortSignal) => Promise<T[K]>;
}): Promise<T> {
  const abort = new AbortController();
  const settled = await Promise.allSettled(
    starts.map((start) =>
      start(abort.signal).catch((err: unknown) => {
        if (!abort.signal.aborted) abort.abort(err);
        throw err;
      }),
    ),
  );
  const firstFailure = abort.signal.aborted ? (abort.signal.reason as unknown) : undefined;
  if (firstFailure !== undefined) throw firstFailure;
  return settled.map((s) => (s as PromiseFulfilledResult<unknown>).value) as unknown as T;
}

/** A reason to give up waiting, when `signal` was aborted because another part failed. */
export function abortedReason(signal: AbortSignal | undefined): string | undefined {
  if (!signal?.aborted) return undefined;
  const reason = signal.reason as unknown;
  return (
    `stopped because another part failed ` +
    `(${reason instanceof Error ? reason.message.split('\n')[0] : String(reason)})`
  );
}
