/**
 * The end-of-run leak scan sees every Temporal server and log a test run starts: no test file starts
 * a Temporal server behind its back. A server other than the run's own goes through
 * test/security/scanned-temporal.ts (registered, histories preserved before it stops); a test that
 * brings a dev stack up registers its server and keeps its logs; the global setups register theirs
 * and run in the order the scan depends on.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { filesUnder } from './leak-scan.js';

const testRoot = path.resolve(__dirname, '..');
const repoRoot = path.resolve(testRoot, '..');
const rel = (file: string) => path.relative(repoRoot, file);
/** Recorder scripts run by hand (never part of a test run) may start what they like. */
const RECORDERS = /^test\/replay\/record-[a-z-]+\.ts$/;
const sources = filesUnder(testRoot)
  .filter((f) => f.endsWith('.ts') && !RECORDERS.test(rel(f)))
  .map((file) => ({ file: rel(file), text: fs.readFileSync(file, 'utf8') }));

const STARTS_TEMPORAL = /\bstartTemporalDevServer\s*\(|\bTestWorkflowEnvironment\b|['"]start-dev['"]/;
const STARTS_DEV_STACK = /['"]dev['"]\s*,\s*['"]up['"]/;
/** Where a Temporal server may be started: the run's own, and the scanned wrapper. */
const ALLOWED = new Set([
  'test/global-setup.ts',
  'test/security/scanned-temporal.ts',
  'test/security/leak-scan-coverage.test.ts',
]);

/**
 * Tests whose `dev up` starts no Temporal server, so there is nothing to scan: it fails before one answers
 * (a fake Temporal CLI), or finds a stand-in stack (a stack.json whose daemon is a `sleep`) already running.
 */
const NEVER_UP = new Set(['test/integration/start-failure-cleanup.test.ts', 'test/unit/dev-stack-report.test.ts']);

describe('leak-scan coverage', () => {
  it('reads the test sources (the check below has something to check)', () => {
    expect(sources.length).toBeGreaterThan(50);
    expect(sources.some((s) => s.file === 'test/ui/web-ui.test.ts')).toBe(true);
  });

  it('no test starts a Temporal server except through the scanned wrapper', () => {
    const offenders = sources.filter((s) => !ALLOWED.has(s.file) && STARTS_TEMPORAL.test(s.text)).map((s) => s.file);
    expect(offenders, 'use startScannedTemporalDevServer (test/security/scanned-temporal.ts)').toEqual([]);
  });

  it('a test that brings a dev stack up registers its Temporal server and keeps its logs', () => {
    const stacks = sources.filter(
      (s) =>
        s.file !== 'test/security/leak-scan-coverage.test.ts' && !NEVER_UP.has(s.file) && STARTS_DEV_STACK.test(s.text),
    );
    expect(stacks.map((s) => s.file)).toContain('test/unit/dev-stack.test.ts');
    for (const { file, text } of stacks) {
      expect(text, file).toMatch(/\bscanTemporalServer\s*\(/);
      expect(text, file).toMatch(/\.preserve\s*\(\s*\)/);
      expect(text, file).toMatch(/\bpreserveLogFiles\s*\(/);
    }
  });

  it('the global setup registers its Temporal server and logs; the registry exists before it and the scan runs before it stops', () => {
    const setup = sources.find((s) => s.file === 'test/global-setup.ts')!.text;
    expect(setup).toMatch(/\bregisterTemporalServer\s*\(/);
    expect((setup.match(/\bregisterLogFile\s*\(/g) ?? []).length).toBeGreaterThanOrEqual(2);
    const config = fs.readFileSync(path.join(repoRoot, 'vitest.config.ts'), 'utf8');
    const order = /globalSetup:\s*\[([^\]]*)\]/
      .exec(config)?.[1]
      ?.match(/'[^']+'/g)
      ?.map((s) => s.slice(1, -1));
    expect(order?.[0]).toBe('test/leak-scan-verdict.ts'); // creates the registry first, fails the run last
    expect(order?.at(-1)).toBe('test/leak-scan-setup.ts'); // scans first on teardown, while servers are up
    expect(order).toContain('test/global-setup.ts');
  });
});
