/**
 * Suites that need something outside npm (Debian's chromium, python3 for moto) declare it here. When
 * it is missing: outside CI the suite is skipped and recorded, and test/not-run-reporter.ts lists it
 * with how to get it at the end of `npm test`; under CI=true the suite fails, naming what is missing
 * (a suite that cannot run there is a hole in the evidence, not a pass).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'vitest';
import { NOT_RUN_DIR_ENV, isCi, type NotRunRecord } from './not-run-reporter.js';

export interface Requirement {
  /** Why the suite cannot run, e.g. "/usr/bin/chromium is not installed"; undefined when it can. */
  missing: string | undefined;
  /** How to get it, e.g. "apt-get install -y chromium". */
  fix: string;
}

/**
 * `describe(name, fn)` when every requirement is met. Otherwise outside CI a skipped suite (recorded
 * for the end-of-run list), and under CI=true a suite whose one test fails with what is missing.
 * `file` is the calling test file (`__filename`).
 */
export function describeWhenAvailable(
  file: string,
  name: string,
  requirements: readonly Requirement[],
  fn: () => void,
): void {
  const unmet = requirements.filter((r): r is Requirement & { missing: string } => r.missing !== undefined);
  if (unmet.length === 0) {
    describe(name, fn);
    return;
  }
  const missing = unmet.map((r) => r.missing).join('; ');
  const fix = unmet.map((r) => r.fix).join('; ');
  recordNotRun({ suite: name, file: path.relative(path.resolve(__dirname, '..'), file), missing, fix });
  if (isCi()) {
    describe(name, () => {
      it('has what it needs to run', () => {
        throw new Error(`cannot run under CI=true: ${missing} (fix: ${fix})`);
      });
    });
  } else {
    console.log(`[not run] ${name}: ${missing} (fix: ${fix})`);
    describe.skip(name, fn);
  }
}

function recordNotRun(record: NotRunRecord): void {
  const dir = process.env[NOT_RUN_DIR_ENV];
  if (!dir) return; // run without the reporter: the console line above is all there is
  const file = path.join(dir, `${Date.now()}-${process.pid}-${Math.random().toString(36).slice(2)}.json`);
  fs.writeFileSync(file, JSON.stringify(record));
}
