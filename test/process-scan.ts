/**
 * Counts the processes a test started, by a mark in their environment: set EHR_PROCESS_MARK before
 * starting anything and every descendant inherits it (the embedded PostgreSQL, the Temporal dev
 * server, the dev stack's daemon and its children). Reads /proc (Linux); as root it sees processes
 * of every user, as anyone else its own — the user the servers then run as.
 */
import fs from 'node:fs';
import { randomUUID } from 'node:crypto';

export const PROCESS_MARK_ENV = 'EHR_PROCESS_MARK';

export function newProcessMark(): string {
  return `mark-${randomUUID()}`;
}

export interface MarkedProcess {
  pid: number;
  command: string;
}

/** Live processes (not this one) whose environment carries EHR_PROCESS_MARK=<mark>. */
export function processesMarked(mark: string): MarkedProcess[] {
  const needle = `${PROCESS_MARK_ENV}=${mark}`;
  const found: MarkedProcess[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      const environ = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      if (!environ.includes(needle)) continue;
      const command = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
      found.push({ pid, command });
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}

/** Polls until no marked process is left; returns those still there after timeoutMs. */
export async function waitForNoneMarked(mark: string, timeoutMs: number): Promise<MarkedProcess[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = processesMarked(mark);
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((r) => setTimeout(r, 200));
  }
}
