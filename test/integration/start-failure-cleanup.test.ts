/**
 * A start-up in which one part fails leaves no process running: the test run's global setup, the
 * benchmarks' infrastructure and `ehrctl dev up` each start PostgreSQL and Temporal side by side;
 * here one of the two fails while the other is still coming up, and every process they started is
 * counted afterwards (by a mark in the environment they inherit, test/process-scan.ts).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startBenchInfra } from '../../dev/ephemeral.js';
import { randomFreePort } from '../../dev/ports.js';
import setup from '../global-setup.js';
import { PROCESS_MARK_ENV, newProcessMark, processesMarked, waitForNoneMarked } from '../process-scan.js';
import { preserveLogFiles } from '../security/scanned-temporal.js';

const repoRoot = path.resolve(__dirname, '../..');
const FAKE_TEMPORAL = path.join(repoRoot, 'test', 'fixtures', 'fake-temporal', 'temporal');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ehr-start-failure-'));
fs.chmodSync(tmp, 0o755);
const project = { provide: () => undefined } as unknown as TestProject;

const savedEnv = { ...process.env };
afterEach(() => {
  for (const name of Object.keys(process.env)) if (!(name in savedEnv)) delete process.env[name];
  Object.assign(process.env, savedEnv);
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Marks every process started from here on; returns the mark. */
function markProcesses(): string {
  const mark = newProcessMark();
  process.env[PROCESS_MARK_ENV] = mark;
  delete process.env.EHR_TEST_INFRA; // the global setup below must start its servers
  return mark;
}

/** Nothing marked may be running, now or a few seconds later (a late spawn would show up then). */
async function expectNothingLeft(mark: string): Promise<void> {
  expect(await waitForNoneMarked(mark, 10_000)).toEqual([]);
  await new Promise((r) => setTimeout(r, 3_000));
  expect(processesMarked(mark)).toEqual([]);
}

describe('the test run global setup', () => {
  it('stops the Temporal dev server it spawned when PostgreSQL fails before Temporal is ready', async () => {
    const mark = markProcesses();
    // nothing listens
    process.env.DATABASE_URL = `postgresql://nobody:nothing@127.0.0.1:${await randomFreePort()}/none`;
    delete process.env.TEMPORAL_ADDRESS;
    process.env.TEMPORAL_CLI = FAKE_TEMPORAL;
    process.env.FAKE_TEMPORAL_FAIL_AFTER_MS = '120000'; // a dev server that hangs without answering
    await expect(setup(project)).rejects.toThrow(/ECONNREFUSED/);
    await expectNothingLeft(mark);
  }, 120_000);

  it('stops the embedded PostgreSQL it spawned when the Temporal dev server fails', async () => {
    const mark = markProcesses();
    delete process.env.DATABASE_URL;
    delete process.env.TEMPORAL_ADDRESS;
    process.env.TEMPORAL_CLI = FAKE_TEMPORAL;
    await expect(setup(project)).rejects.toThrow(/fake temporal: this dev server never starts/);
    await expectNothingLeft(mark);
  }, 120_000);
});

describe('the benchmarks infrastructure', () => {
  it('stops PostgreSQL and removes its temporary directory when the Temporal dev server fails', async () => {
    const mark = markProcesses();
    const benchTmp = fs.mkdtempSync(path.join(tmp, 'bench-'));
    fs.chmodSync(benchTmp, 0o755);
    process.env.TMPDIR = benchTmp; // startBenchInfra's temporary directory goes here
    process.env.TEMPORAL_CLI = FAKE_TEMPORAL;
    await expect(startBenchInfra()).rejects.toThrow(/fake temporal: this dev server never starts/);
    await expectNothingLeft(mark);
    expect(fs.readdirSync(benchTmp)).toEqual([]);
  }, 120_000);
});

describe('ehrctl dev up', () => {
  it('prints why it failed, and stops every process of the stack, the daemon included', async () => {
    const mark = markProcesses();
    const dataDir = path.join(tmp, 'dev-data');
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      EHR_DEV_DATA_DIR: dataDir,
      TEMPORAL_CLI: FAKE_TEMPORAL,
      EHR_SANDBOX_SIZE: '50',
    };
    for (const name of ['TEMPORAL_ADDRESS', 'DATABASE_URL', 'EHR_KEK_DIR', 'EHR_SECRETS_DIR']) delete env[name];
    const up = await new Promise<{ code: number; output: string }>((resolve) => {
      execFile(
        process.execPath,
        [path.join(repoRoot, 'bin', 'ehrctl.js'), 'dev', 'up'],
        { env, cwd: repoRoot, timeout: 300_000 },
        (err, stdout, stderr) => {
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: stdout + stderr });
        },
      );
    });
    // The stack never had a Temporal server to scan, but its logs are part of the end-of-run leak scan.
    const logDir = path.join(dataDir, 'logs');
    preserveLogFiles(
      fs.existsSync(logDir) ? fs.readdirSync(logDir).map((f) => path.join(logDir, f)) : [],
      'start-failure',
    );
    expect(up.code, up.output).toBe(1);
    expect(up.output).toMatch(/fake temporal: this dev server never starts/);
    expect(up.output).toMatch(/fix: the output above says why it did not start; TEMPORAL_CLI=<path> picks another/);
    expect(up.output).toMatch(/the daemon exited before the stack was ready/);
    await expectNothingLeft(mark);
    expect(fs.existsSync(path.join(dataDir, 'stack.lock'))).toBe(false);
  }, 320_000);
});
