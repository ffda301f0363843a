/**
 * Ends `npm test` with the suites that did not run and how to get them (test/suites-not-run.ts
 * records them), and fails the run under CI=true. A reporter rather than a global teardown: it
 * prints after the summary, and no teardown's failure can keep the list from being printed.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Reporter, Vitest } from 'vitest/node';

/** Set for the whole run: one JSON file per suite that did not run. */
export const NOT_RUN_DIR_ENV = 'EHR_NOT_RUN_DIR';

export interface NotRunRecord {
  suite: string;
  file: string;
  missing: string;
  fix: string;
}

export function isCi(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.CI === 'true' || env.CI === '1';
}

export default class NotRunReporter implements Reporter {
  private dir: string | undefined;
  private vitest: Vitest | undefined;

  onInit(vitest: Vitest): void {
    this.vitest = vitest;
    // Set before any test worker starts, so every worker inherits it.
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ehr-not-run-'));
    process.env[NOT_RUN_DIR_ENV] = this.dir;
  }

  onFinished(): void {
    if (!this.dir) return;
    const records = readRecords(this.dir);
    fs.rmSync(this.dir, { recursive: true, force: true });
    this.dir = undefined;
    if (records.length === 0) return;
    const ci = isCi();
    const lines = [
      '',
      `Suites not run (${records.length}):`,
      ...records.flatMap((r) => [`  - ${r.suite} (${r.file}): ${r.missing}`, `      get it: ${r.fix}`]),
      ci
        ? 'FAILED: under CI=true every suite must run (.ci/run installs what they need).'
        : 'They were skipped: this run proves less than a full one. Under CI=true this is a failure.',
      '',
    ];
    const log = (line: string) => (this.vitest ? this.vitest.logger.log(line) : console.log(line));
    for (const line of lines) log(line);
    if (ci) process.exitCode = 1;
  }
}

function readRecords(dir: string): NotRunRecord[] {
  const seen = new Set<string>();
  const records: NotRunRecord[] = [];
  for (const name of fs.readdirSync(dir).sort()) {
    const record = JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')) as NotRunRecord;
    const key = `${record.file}\0${record.suite}`;
    if (!seen.has(key)) records.push(record);
    seen.add(key);
  }
  return records;
}
