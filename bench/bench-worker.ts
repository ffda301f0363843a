/** The benchmarks' worker: the real entry point (workers/worker.ts) as its own process, so its RSS is its own. */
import fs from 'node:fs';
import type { Config } from '../lib/config/schema.js';
import type { BenchInfra } from '../dev/ephemeral.js';
import { startChildWorker, type ChildWorker } from '../test/integration/child-worker.js';

/** A child worker process, registered for the infrastructure's stop the moment it is up. */
export async function trackedWorker(infra: BenchInfra, config: Config, logPath: string): Promise<ChildWorker> {
  const worker = await startChildWorker(config, logPath);
  infra.onStop(`worker (pid ${worker.child.pid})`, async () => {
    worker.child.kill('SIGTERM');
    await worker.exited;
  });
  return worker;
}

/**
 * Resets a process's peak RSS (VmHWM) so the next reading is the peak of what follows (Linux: writing 5 to
 * clear_refs). False where the kernel or permissions do not allow it; the peak then spans the process's life.
 */
export function resetPeakRss(pid: number): boolean {
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** Current resident set size of a process (VmRSS), in MiB. */
export function currentRssMiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1] ?? NaN) / 1024;
}

/**
 * CPU seconds (user + system) used so far by this process and its descendants, by command name; descendants that
 * exited count in their parent's (cutime, cstime), so a difference of two readings misses nothing.
 */
export function cpuSecondsByCommand(workerPid: number): Map<string, number> {
  const tick = 100; // USER_HZ on Linux
  const stats = new Map<number, { ppid: number; comm: string; seconds: number }>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const text = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const close = text.lastIndexOf(')');
      const comm = text.slice(text.indexOf('(') + 1, close);
      const fields = text.slice(close + 2).split(' ');
      // Own time plus that of reaped children (a PostgreSQL backend that exited counts in the postmaster's).
      const seconds = (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / tick;
      stats.set(Number(entry), { ppid: Number(fields[1]), comm, seconds });
    } catch {
      // The process ended meanwhile.
    }
  }
  const mine = (pid: number): boolean => {
    for (let p = pid; p > 1; p = stats.get(p)?.ppid ?? 0) if (p === process.pid) return true;
    return false;
  };
  const out = new Map<string, number>();
  for (const [pid, s] of stats) {
    if (!mine(pid)) continue;
    const name =
      pid === process.pid
        ? 'bench + sandbox'
        : pid === workerPid
          ? 'worker'
          : s.comm.startsWith('postgres')
            ? 'postgres'
            : s.comm;
    out.set(name, (out.get(name) ?? 0) + s.seconds);
  }
  return out;
}
