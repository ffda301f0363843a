/** Child-process helpers for the dev stack: spawn with logs to a file, wait, stop, pid checks. */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export function isExecutableFile(file: string): boolean {
  try {
    if (!fs.statSync(file).isFile()) return false;
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Like `which`: the first executable `name` on PATH, without spawning anything. */
export function findOnPath(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

export interface SpawnedProcess {
  child: ChildProcess;
  /** The last few kilobytes the process wrote (from the log file, or from memory when there is none). */
  outputTail(): string;
}

/**
 * Spawns `command` with stdout and stderr appended to `logFile` (created 0600, directory 0700 if
 * missing), or kept in a small in-memory buffer when no log file is given.
 */
export function spawnLogged(
  command: string,
  args: readonly string[],
  options: { logFile?: string; env?: NodeJS.ProcessEnv; cwd?: string; detached?: boolean } = {},
): SpawnedProcess {
  const { logFile } = options;
  if (logFile) {
    fs.mkdirSync(path.dirname(logFile), { recursive: true, mode: 0o700 });
    const fd = fs.openSync(logFile, 'a', 0o600);
    try {
      const child = spawn(command, args, {
        cwd: options.cwd,
        env: options.env ?? process.env,
        detached: options.detached ?? false,
        stdio: ['ignore', fd, fd],
      });
      return { child, outputTail: () => readTail(logFile) };
    } finally {
      fs.closeSync(fd);
    }
  }
  let buffer = '';
  const keep = (chunk: Buffer) => {
    buffer = (buffer + chunk.toString('utf8')).slice(-8_000);
  };
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    detached: options.detached ?? false,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return { child, outputTail: () => buffer };
}

/** Last `bytes` of a file ('' if it does not exist). */
export function readTail(file: string, bytes = 4_000): string {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const length = Math.min(size, bytes);
      const buf = Buffer.alloc(length);
      fs.readSync(fd, buf, 0, length, size - length);
      return buf.toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return '';
  }
}

export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Resolves when the child exits, or with undefined after timeoutMs (no timeout when omitted). */
export function waitForExit(child: ChildProcess, timeoutMs?: number): Promise<ExitStatus | undefined> {
  if (hasExited(child)) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => {
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            child.off('exit', onExit);
            resolve(undefined);
          }, timeoutMs);
    function onExit(code: number | null, signal: NodeJS.Signals | null) {
      if (timer) clearTimeout(timer);
      resolve({ code, signal });
    }
    child.once('exit', onExit);
  });
}

/** SIGTERM, then SIGKILL if the child is still there after graceMs. */
export async function stopChild(child: ChildProcess, graceMs = 10_000): Promise<ExitStatus | undefined> {
  if (hasExited(child)) return { code: child.exitCode, signal: child.signalCode };
  child.kill('SIGTERM');
  const status = await waitForExit(child, graceMs);
  if (status) return status;
  child.kill('SIGKILL');
  return waitForExit(child, 5_000);
}

/** Sends SIGTERM to the child when this process exits (a safety net; stop() is the normal path). */
export function terminateOnExit(child: ChildProcess): () => void {
  const onExit = () => {
    if (!hasExited(child)) child.kill('SIGTERM');
  };
  process.once('exit', onExit);
  child.once('exit', () => process.off('exit', onExit));
  return () => process.off('exit', onExit);
}

export function isPidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Polls until pid is gone; false if it is still alive after timeoutMs. */
export async function waitForPidExit(pid: number, timeoutMs: number, pollMs = 200): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isPidAlive(pid)) {
    if (Date.now() >= deadline) return false;
    await sleep(pollMs);
  }
  return true;
}
