/** The real worker entry point (workers/worker.ts) as a child process, for crash and shutdown tests. */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../../lib/config/schema.js';
import { PROCESS_ENV, nodeArgsFor } from '../../workers/node-process.js';
import { registerLogFile } from '../security/leak-registry.js';

export interface ChildWorker {
  child: ChildProcess;
  logPath: string;
  exited: Promise<number | null>;
}

const repoRoot = path.resolve(__dirname, '../..');

/**
 * Config for files that kill child workers: a workflow's next task waits 1 s (not the SDK's 10 s) on the sticky
 * queue of the worker that ran its last one, so a workflow whose worker was SIGKILLed goes on 9 s sooner on the
 * next. Only where it waits changes: any worker still replays it from its history. (worker-crash and
 * breach-containment-crash measured no gain from it: what they wait for after the kill is a heartbeat timeout.)
 */
export const KILLED_WORKER_CONFIG = { WORKER_STICKY_QUEUE_TIMEOUT_MS: '1000' };

export async function startChildWorker(config: Config, logPath: string, readyTimeoutMs = 90_000): Promise<ChildWorker> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root' };
  for (const [k, v] of Object.entries(config)) env[k] = String(v);
  Object.assign(env, PROCESS_ENV);
  // Under vitest, the run's workflow bundle, built once (support.ts): the worker starts without bundling
  // (WORKER_WORKFLOW_BUNDLE). The benchmarks use this file too, outside vitest: their worker bundles at start.
  if (process.env.VITEST)
    env.WORKER_WORKFLOW_BUNDLE ??= await (await import('./support.js')).sharedWorkflowBundlePath();
  const child = spawn(process.execPath, nodeArgsFor('workers/worker.ts'), {
    cwd: repoRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  registerLogFile(logPath); // scanned for PHI and secrets at the end of the run
  const log = fs.createWriteStream(logPath, { flags: 'a' });
  child.stdout!.pipe(log, { end: false });
  child.stderr!.pipe(log, { end: false });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + readyTimeoutMs;
  while (Date.now() < deadline) {
    if (fs.existsSync(logPath) && fs.readFileSync(logPath, 'utf8').includes('worker started'))
      return { child, logPath, exited };
    if (child.exitCode !== null) throw new Error(`worker exited early with ${child.exitCode}; see ${logPath}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  child.kill('SIGKILL');
  throw new Error(`worker not ready after ${readyTimeoutMs} ms; see ${logPath}`);
}
