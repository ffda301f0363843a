/** The worker process refuses to start on bad configuration or missing dependencies, and says why. */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { testConfig } from './support.js';
import { PROCESS_ENV, nodeArgsFor } from '../../workers/node-process.js';

const repoRoot = path.resolve(__dirname, '../..');

function runWorker(env: Record<string, string | undefined>): Promise<{ code: number | null; stderr: string }> {
  const full: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root' };
  for (const [k, v] of Object.entries(env)) if (v !== undefined) full[k] = v;
  const child = spawn(process.execPath, nodeArgsFor('workers/worker.ts'), {
    cwd: repoRoot,
    env: { ...full, ...PROCESS_ENV },
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr })));
}

function configEnv(): Record<string, string> {
  return Object.fromEntries(Object.entries(testConfig()).map(([k, v]) => [k, String(v)]));
}

describe('worker startup', () => {
  it('names a missing configuration field and exits 78', async () => {
    const res = await runWorker({ ...configEnv(), EHR_KEK_DIR: undefined });
    expect(res.code).toBe(78);
    expect(res.stderr).toContain('EHR_KEK_DIR');
  });

  it('says PostgreSQL is unreachable, without its password, and exits 69', async () => {
    const res = await runWorker({ ...configEnv(), DATABASE_URL: 'postgresql://postgres:hunter2@127.0.0.1:1/x' });
    expect(res.code).toBe(69);
    expect(res.stderr).toMatch(/postgres is not reachable at 127\.0\.0\.1:1/);
    expect(res.stderr).not.toContain('hunter2');
  });

  it('says Temporal is unreachable and exits 69', async () => {
    const res = await runWorker({ ...configEnv(), TEMPORAL_ADDRESS: '127.0.0.1:1' });
    expect(res.code).toBe(69);
    expect(res.stderr).toMatch(/temporal is not reachable at 127\.0\.0\.1:1/);
  });
});
