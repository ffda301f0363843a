/**
 * First vitest global setup, so its teardown runs LAST: fails the run with the end-of-run leak
 * scan's verdict (test/leak-scan-setup.ts) only after test/global-setup.ts has stopped Temporal and
 * PostgreSQL — a teardown that throws stops the teardowns after it, which would orphan the servers.
 */
import { takeLeakScanVerdict } from './leak-scan-setup.js';

export default function setup(): () => void {
  return () => {
    const verdict = takeLeakScanVerdict();
    if (verdict) throw verdict;
  };
}
