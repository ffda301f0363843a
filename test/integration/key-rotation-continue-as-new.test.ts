/**
 * Key rotation batch loops continue as new (a large tenant must not exceed Temporal's history limit):
 * with tiny batches and a threshold of a few batches per run, a tenant DEK rotation and a KEK rotation
 * complete across several runs with exact counts, every record still decrypts, and a parent (as breach
 * containment is) still gets `rotationSwitched` and the final run's result through its child handle.
 */
import path from 'node:path';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPayloadCodec } from '../../lib/keys/open-purpose-keys.js';
import type { Pool } from '../../lib/store/pool.js';
import { createPool } from '../../lib/store/pool.js';
import type { KeyRotationInput, KeyRotationResult } from '../../workflows/key-rotation-api.js';
import { uniqueId } from '../harness.js';
import { testLogger, useSyncHarness } from './support.js';
import { decryptTenantRecords, syncedSandboxTenant } from './stored-records.js';
import type { RotationParentInput, RotationParentResult } from './workflows/rotation-parent.js';

const harness = useSyncHarness({ sandbox: { seed: 57, size: 60 }, config: { EHR_SYNC_PAGE_SIZE: '50' } });
const parentQueue = uniqueId('tq-rotation-parent');
let stopParentWorker: (() => Promise<void>) | undefined;

beforeAll(async () => {
  // Only the test parent runs here; its keyRotation child runs on the product worker's queue.
  testLogger();
  const pool: Pool = createPool(harness.config.DATABASE_URL, 2);
  const connection = await NativeConnection.connect({ address: harness.config.TEMPORAL_ADDRESS });
  const worker = await Worker.create({
    connection,
    taskQueue: parentQueue,
    dataConverter: { payloadCodecs: [await openPayloadCodec(harness.config, { pool, actor: 'test:worker' })] },
    workflowsPath: path.resolve(__dirname, 'workflows/rotation-parent.ts'),
  });
  const running = worker.run();
  stopParentWorker = async () => {
    worker.shutdown();
    await running;
    await connection.close();
    await pool.end();
  };
});

afterAll(async () => {
  await stopParentWorker?.();
});

const base = { requestedBy: 'test:key-rotation-can', reason: 'continue-as-new test' };

/** How each run of a workflow id closed, oldest first; polls until `count` runs are visible (visibility lags). */
async function runsOf(workflowId: string, count: number): Promise<string[]> {
  const list = async (): Promise<string[]> => {
    const runs: Array<{ startTime: Date; status: string }> = [];
    for await (const w of harness.temporal.client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
      runs.push({ startTime: w.startTime, status: w.status.name });
    }
    return runs.sort((a, b) => a.startTime.getTime() - b.startTime.getTime()).map((r) => r.status);
  };
  await expect.poll(async () => (await list()).length, { timeout: 15_000, interval: 250 }).toBe(count);
  return list();
}

const detailOf = (r: KeyRotationResult, step: string) => r.steps.find((s) => s.step === step)?.detail;

describe('key rotation batch loops continue as new', () => {
  it(
    'tenant DEK, as a child: several runs, exact counts; the parent gets the switch and the result',
    { timeout: 240_000 },
    async () => {
      const { tenantId, stored } = await syncedSandboxTenant(harness);
      expect(stored).toBeGreaterThan(24); // at least 7 batches of 4: two continue-as-new at 3 batches a run
      const childWorkflowId = `key-rotation/tenant-dek/${tenantId}/${uniqueId('can')}`;
      const rotation: KeyRotationInput = {
        ...base,
        kind: 'tenant-dek',
        tenantId,
        graceSeconds: 1,
        batchSize: 4,
        maxBatchesPerRun: 3,
      };
      const input: RotationParentInput = {
        childWorkflowId,
        childTaskQueue: harness.config.TEMPORAL_TASK_QUEUE,
        rotation,
      };
      const parent = (await harness.temporal.client.workflow.execute('rotationParent', {
        taskQueue: parentQueue,
        workflowId: uniqueId('rotation-parent'),
        args: [input],
      })) as RotationParentResult;

      const { child } = parent;
      expect(child.outcome).toBe('completed');
      const batches = Math.ceil(stored / 4);
      expect(child.continuedAsNew).toBe(Math.floor((batches - 1) / 3));
      expect(child.continuedAsNew).toBeGreaterThanOrEqual(2);
      // Each step once, across every run, with the counts of all runs together.
      expect(child.steps.map((s) => s.step)).toEqual([
        'started',
        'new DEK is primary for writes',
        'records re-encrypted',
        'verified: no record left under an older key',
        'grace period over',
        'old DEK retired',
        'completed',
      ]);
      expect(detailOf(child, 'records re-encrypted')).toEqual({ count: stored });
      expect(detailOf(child, 'verified: no record left under an older key')).toMatchObject({
        records: stored,
        underOlderKeys: 0,
      });
      expect(detailOf(child, 'old DEK retired')).toMatchObject({ keyVersion: 1, destroyed: true });
      expect(parent.switched).toEqual([childWorkflowId]);
      expect(parent.switchedBeforeResult).toBe(true);

      const runs = await runsOf(childWorkflowId, child.continuedAsNew! + 1);
      expect(runs).toEqual([...Array<string>(child.continuedAsNew!).fill('CONTINUED_AS_NEW'), 'COMPLETED']);
      expect(await decryptTenantRecords(harness, tenantId)).toMatchObject({ decrypted: stored, failures: [] });
      const keys = await harness.pool.query(
        'SELECT key_version, status FROM data_keys WHERE tenant_id = $1 ORDER BY 1',
        [tenantId],
      );
      expect(keys.rows).toEqual([
        { key_version: 1, status: 'destroyed' },
        { key_version: 2, status: 'primary' },
      ]);
    },
  );

  it('KEK: the rewrap loop continues as new and counts every wrapped key once', { timeout: 240_000 }, async () => {
    await syncedSandboxTenant(harness);
    const wrapped = await harness.pool.query<{ n: string }>(
      `SELECT (SELECT count(*) FROM data_keys WHERE kek_id = 'local' AND wrapped_key IS NOT NULL)
            + (SELECT count(*) FROM purpose_keys WHERE kek_id = 'local' AND wrapped_key IS NOT NULL)
            + (SELECT count(*) FROM tenant_purpose_keys WHERE kek_id = 'local' AND wrapped_key IS NOT NULL)
            -- Batch export job keys (a job another test file left retained in this run's database).
            + (SELECT count(*) FROM export_jobs WHERE kek_id = 'local' AND wrapped_key IS NOT NULL) AS n`,
    );
    const keys = Number(wrapped.rows[0]!.n);
    const batchSize = Math.max(1, Math.ceil(keys / 6));
    const workflowId = `key-rotation/kek/global/${uniqueId('can')}`;
    const handle = await harness.temporal.client.workflow.start('keyRotation', {
      taskQueue: harness.config.TEMPORAL_TASK_QUEUE,
      workflowId,
      args: [{ ...base, kind: 'kek', graceSeconds: 1, batchSize, maxBatchesPerRun: 2 } satisfies KeyRotationInput],
    });
    const result = (await handle.result()) as KeyRotationResult;
    expect(result.outcome).toBe('completed');
    expect(detailOf(result, 'keys rewrapped')).toEqual({ moved: keys });
    expect(result.continuedAsNew).toBeGreaterThanOrEqual(2);
    expect(result.steps.filter((s) => s.step === 'keys rewrapped')).toHaveLength(1);
    expect((await runsOf(workflowId, result.continuedAsNew! + 1)).at(-1)).toBe('COMPLETED');
  });
});
