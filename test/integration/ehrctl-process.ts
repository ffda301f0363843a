/**
 * Runs `ehrctl` as a real process, as an operator would, with exactly the environment given (plus
 * PATH and HOME). Asynchronous, because the sandbox and worker a test uses live in the test's process.
 * Its stderr is registered for the end-of-run scan for PHI and secrets.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { recordErrorOutput } from '../security/leak-registry.js';

const repoRoot = path.resolve(__dirname, '../..');

export interface EhrctlResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runEhrctl(args: string[], env: Record<string, string | undefined>): Promise<EhrctlResult> {
  const merged: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root' };
  for (const [k, v] of Object.entries(env)) if (v !== undefined) merged[k] = v;
  const child = spawn(process.execPath, [path.join(repoRoot, 'bin/ehrctl.js'), ...args], {
    cwd: repoRoot,
    env: merged,
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  return new Promise((resolve) =>
    child.on('close', (code) => {
      recordErrorOutput(`ehrctl-${args[0] ?? ''}`, stderr);
      resolve({ code, stdout, stderr });
    }),
  );
}
