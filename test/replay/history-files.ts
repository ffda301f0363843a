/**
 * What the history recorders share: throwaway infrastructure with a worker, and the last step —
 * check a recorded history for the sandbox's synthetic identifiers (refusing to write one that
 * leaks) and write it as JSON under histories/.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { WorkflowHandle } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import type { Config } from '../../lib/config/schema.js';
import { loadConfig } from '../../lib/config/schema.js';
import type { BenchInfra } from '../../dev/ephemeral.js';
import { benchInfraEnv, startBenchInfra } from '../../dev/ephemeral.js';
import { incidentTaskQueue } from '../../lib/domain.js';
import type { Pool } from '../../lib/store/pool.js';
import { createPool } from '../../lib/store/pool.js';
import { startSandbox } from '../../sandbox/index.js';
import { buildWorkerDeps } from '../../workers/build-deps.js';
import { createWorkerActivities } from '../../workers/worker-activities.js';
import { withActivityFaults } from '../activity-faults.js';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { temporal } from '@temporalio/proto';
import type { SandboxHandle } from '../../sandbox/index.js';
import { findLeaks, historyText } from '../security/leak-scan.js';

const outDir = path.join(__dirname, 'histories');

export async function sandboxIdentifiers(sandbox: SandboxHandle): Promise<string[]> {
  const res = await fetch(`${sandbox.url}/admin/identifiers`, { headers: { 'x-sandbox-admin': sandbox.adminToken } });
  return ((await res.json()) as { strings: string[] }).strings;
}

export async function writeHistory(
  name: string,
  handle: WorkflowHandle,
  identifiers: readonly string[],
): Promise<void> {
  const history = await handle.fetchHistory();
  const leaks = findLeaks(historyText(history), [...identifiers]);
  if (leaks.length > 0) throw new Error(`history ${name} contains ${leaks.length} synthetic identifiers; not written`);
  fs.writeFileSync(
    path.join(outDir, `${name}.json`),
    `${historyToJSON(temporal.api.history.v1.History.create(history))}\n`,
  );
  process.stdout.write(`wrote ${name}.json (${history.events?.length} events)\n`);
}

export interface RecordingStack {
  infra: BenchInfra;
  sandbox: SandboxHandle;
  pool: Pool;
  config: Config;
  client: Client;
  /** Throwaway infrastructure torn down in reverse order. */
  close(): Promise<void>;
}

/**
 * Throwaway infrastructure for a recorder: Temporal dev server, PostgreSQL, a sandbox, and a worker
 * (no payload codec, so histories are stored as plain JSON) polling `taskQueue` and its incident queue.
 */
export async function startRecordingStack(opts: {
  taskQueue: string;
  sandboxSeed: number;
  sandboxSize: number;
  /** Configuration the worker runs with beyond the defaults (e.g. short timers). */
  env?: Record<string, string>;
}): Promise<RecordingStack> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const infra = await startBenchInfra((line) => process.stdout.write(`${line}\n`));
  const sandbox = await startSandbox({ seed: opts.sandboxSeed, size: opts.sandboxSize });
  const pool = createPool(infra.databaseUrl, 4);
  const config = loadConfig({
    ...benchInfraEnv(infra),
    TEMPORAL_TASK_QUEUE: opts.taskQueue,
    EHR_SYNC_PAGE_SIZE: '25',
    LOG_LEVEL: 'warn',
    ...opts.env,
  });
  const deps = await buildWorkerDeps(config);
  const nativeConnection = await NativeConnection.connect({ address: infra.temporalAddress });
  const options = {
    connection: nativeConnection,
    workflowsPath: require.resolve('../../workflows/index.ts'),
    activities: withActivityFaults(createWorkerActivities(deps)),
  };
  const workers = [
    await Worker.create({ ...options, taskQueue: opts.taskQueue }),
    await Worker.create({ ...options, taskQueue: incidentTaskQueue(opts.taskQueue) }),
  ];
  const running = Promise.all(workers.map((w) => w.run()));
  const connection = await Connection.connect({ address: infra.temporalAddress });
  return {
    infra,
    sandbox,
    pool,
    config,
    client: new Client({ connection }),
    async close() {
      for (const w of workers) w.shutdown();
      await running;
      await nativeConnection.close();
      await connection.close();
      await deps.close();
      await pool.end();
      await sandbox.close();
      await infra.stop();
    },
  };
}

/** Runs a recorder's main, printing a failure and exiting 1. */
export function runRecorder(main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    process.stderr.write(`recording failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
