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
