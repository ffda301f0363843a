/**
 * initdb and the postmaster as child processes, run as the server's user (under root), with every
 * outcome handled: a spawn error (EACCES, ENOENT) becomes a reason, never an unhandled 'error'
 * event; an exit before ready, a timeout and an abort each reject with what happened.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { ServerUser } from './postgres-binaries.js';
import { hasExited, sleep, waitForExit } from './process.js';
import type { StopList } from './stop-list.js';

interface SpawnOptions {
  user: ServerUser | undefined;
  onOutput: (text: string) => void;
}

function spawnAs(
  binary: string,
  args: readonly string[],
  o: SpawnOptions,
): { child: ChildProcess; spawnError: () => Error | undefined } {
  let spawnError: Error | undefined;
  const child = spawn(binary, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    // English messages: the readiness line is matched, and logs read the same everywhere.
    env: { ...process.env, LC_MESSAGES: 'C' },
    ...(o.user ? { uid: o.user.uid, gid: o.user.gid } : {}),
  });
  child.on('error', (err) => (spawnError = err));
  child.stdout?.on('data', (chunk: Buffer) => o.onOutput(chunk.toString('utf8')));
  child.stderr?.on('data', (chunk: Buffer) => o.onOutput(chunk.toString('utf8')));
  return { child, spawnError: () => spawnError };
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  spawnError?: Error;
  /** Stopped because `signal` was aborted. */
  aborted: boolean;
}

/** Runs a short-lived program to its end (registered in `stops` while it runs). */
export async function runToCompletion(
  binary: string,
  args: readonly string[],
  o: SpawnOptions & { timeoutMs: number; stops?: StopList; signal?: AbortSignal },
): Promise<RunResult> {
  const { child, spawnError } = spawnAs(binary, args, o);
  const kill = async () => {
    if (!hasExited(child)) child.kill('SIGKILL');
    await waitForExit(child, 5_000);
  };
  const registration = o.stops?.add(`${binary.split('/').pop()} (pid ${child.pid ?? '?'})`, kill);
  let aborted = false;
  const onAbort = () => {
    aborted = true;
    void kill();
  };
  o.signal?.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(() => void kill(), o.timeoutMs);
  try {
    const status = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.once('close', (code, signal) => resolve({ code, signal }));
      child.once('error', () => resolve({ code: null, signal: null }));
    });
    const error = spawnError();
    return { ...status, aborted, ...(error ? { spawnError: error } : {}) };
  } finally {
    clearTimeout(timer);
    o.signal?.removeEventListener('abort', onAbort);
    registration?.forget();
  }
}

export interface ServerProcess {
  child: ChildProcess;
  /**
   * Resolves once `line` appears in the output; rejects when the process cannot start or exits, on timeout,
   * or on abortIf.
   */
  ready(line: string, o: { timeoutMs: number; abortIf?: () => string | undefined }): Promise<void>;
  /** Sends `signal`, waits `graceMs`, then SIGKILL; true when it ended within the grace period. */
  stop(signal: NodeJS.Signals, graceMs: number): Promise<boolean>;
}

/** Starts a server process; on this process's exit it is sent SIGINT if still running (a safety net for stop()). */
export function spawnServer(binary: string, args: readonly string[], o: SpawnOptions): ServerProcess {
  let seen = '';
  const { child, spawnError } = spawnAs(binary, args, {
    ...o,
    onOutput: (text) => {
      seen = (seen + text).slice(-16_000);
      o.onOutput(text);
    },
  });
  const onExit = () => {
    if (!hasExited(child)) child.kill('SIGINT');
  };
  process.on('exit', onExit);
  child.once('exit', () => process.off('exit', onExit));
  child.once('error', () => process.off('exit', onExit));

  return {
    child,
    async ready(line, w) {
      const deadline = Date.now() + w.timeoutMs;
      for (;;) {
        if (seen.includes(line)) return;
        const error = spawnError();
        if (error)
          throw new Error(`could not run ${binary}${o.user ? ` as \`${o.user.name}\`` : ''}: ${error.message}`);
        if (hasExited(child))
          throw new Error(`the server exited during start-up (${child.exitCode ?? child.signalCode})`);
        const aborted = w.abortIf?.();
        if (aborted) throw new Error(aborted);
        if (Date.now() > deadline) throw new Error(`not ready within ${Math.round(w.timeoutMs / 1000)} s`);
        await sleep(50);
      }
    },
    async stop(signal, graceMs) {
      if (hasExited(child) || spawnError() || child.pid === undefined) return true;
      child.kill(signal);
      if (await waitForExit(child, graceMs)) return true;
      child.kill('SIGKILL');
      await waitForExit(child, 5_000);
      return false;
    },
  };
}
