/**
 * `npm test` ends with the suites that did not run and how to get them, and under CI=true such a
 * suite fails the run. Runs vitest itself, with the project's config (reporters included) narrowed
 * to a fixture whose suite needs a tool no machine has.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const repoRoot = path.resolve(__dirname, '../..');

function vitest(ci: boolean): Promise<{ code: number; output: string }> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    EHR_TEST_INFRA: 'none',
    EHR_LEAK_SCAN: 'off',
    FORCE_COLOR: '0',
    NO_COLOR: '1',
  };
  for (const name of Object.keys(env)) if (name.startsWith('VITEST') || name === 'EHR_NOT_RUN_DIR') delete env[name];
  delete env.CI;
  if (ci) env.CI = 'true';
  const args = [
    path.join(repoRoot, 'node_modules', 'vitest', 'vitest.mjs'),
    'run',
    '--config',
    'test/fixtures/not-run/vitest.config.ts',
  ];
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd: repoRoot, env, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: stdout + stderr });
    });
  });
}

describe('suites that cannot run', () => {
  it('are listed at the end of the run with how to get what they need; the run passes outside CI', async () => {
    const run = await vitest(false);
    expect(run.output).toContain(
      'Suites not run (1):\n  - suite needing the frobnicator (test/fixtures/not-run/needs-a-tool.fixture.ts): ' +
        '/usr/bin/frobnicate is not installed\n      get it: apt-get install -y frobnicator',
    );
    expect(run.output).toMatch(/Tests {2}1 passed \| 1 skipped/);
    // The list comes after vitest's own summary, where a reader looks last.
    expect(run.output.lastIndexOf('Suites not run')).toBeGreaterThan(run.output.lastIndexOf('Tests  '));
    expect(run.code).toBe(0);
  }, 150_000);

  it('fail the run under CI=true, naming what is missing', async () => {
    const run = await vitest(true);
    expect(run.output).toMatch(
      /cannot run under CI=true: \/usr\/bin\/frobnicate is not installed \(fix: apt-get install -y frobnicator\)/,
    );
    expect(run.output).toMatch(/Suites not run \(1\):/);
    expect(run.output).toMatch(/FAILED: under CI=true every suite must run/);
    expect(run.code).toBe(1);
  }, 150_000);
});
