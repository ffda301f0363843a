/**
 * First vitest global setup. Its setup creates the run's leak registry before any other global
 * setup runs (so test/global-setup.ts can register its Temporal server and log files). Its teardown
 * runs LAST: it fails the run with the end-of-run leak scan's verdict (test/leak-scan-setup.ts) only
 * after test/global-setup.ts has stopped Temporal and PostgreSQL — a teardown that throws stops the
 * teardowns after it, which would orphan the servers.
 */
import { createRunLeakRegistry, takeLeakScanVerdict } from './leak-scan-setup.js';

export default function setup(): () => void {
  createRunLeakRegistry();
  return () => {
    const verdict = takeLeakScanVerdict();
    if (verdict) throw verdict;
  };
}
