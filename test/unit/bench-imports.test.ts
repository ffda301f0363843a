/**
 * The benchmarks run outside vitest (`npm run bench:*`) and share the child-worker helper with the tests: what they
 * import must load in a plain Node process. A test helper that pulls in vitest there broke every bench once.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { NODE_ARGS } from '../../workers/node-process.js';

const repoRoot = path.resolve(__dirname, '../..');

describe('what the benchmarks import', () => {
  it.each(['bench/bench-worker.ts', 'bench/bulk-floor.ts'])('%s loads outside vitest', (file) => {
    const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root' };
    const res = spawnSync(process.execPath, [...NODE_ARGS, '-e', `require(${JSON.stringify(`./${file}`)})`], {
      cwd: repoRoot,
      env,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(res.stderr).not.toMatch(/Vitest cannot be imported/);
    expect(res.status, res.stderr).toBe(0);
  });
});
