/**
 * Operators steer a running sync: pause holds it after the current page, resume continues, cancel
 * stops it without advancing the checkpoint, progress is readable at any time, and a long sync
 * continues as new without losing its place.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@temporalio/client';
import type { Config } from '../../lib/config/schema.js';
import type { Pool } from '../../lib/store/pool.js';
import type { SandboxHandle } from '../../sandbox/index.js';
import { IntegrationIdKey, TenantIdKey, VendorKey, startSync, syncProgress, syncResult } from '../../client/sync-client.js';
import { readCheckpoints } from '../../lib/store/checkpoints.js';
import type { RunningWorker } from './support.js';
import { registerSandboxTenant, sandboxManifest, startInProcessWorker, startTestSandbox, storedVersions, temporalClient, testConfig, testPool } from './support.js';

let sandbox: SandboxHandle;
let pool: Pool;
let config: Config;
let worker: RunningWorker;
let temporal: { client: Client; close(): Promise<void> };

beforeAll(async () => {
  sandbox = await startTestSandbox({ size: 1000 });
  pool = testPool();
  config = testConfig({ EHR_SYNC_PAGE_SIZE: '10' });
  worker = await startInProcessWorker(config);
  temporal = await temporalClient();
});

afterAll(async () => {
  await worker?.stop();
  await temporal?.close();
  await pool?.end();
  await sandbox?.close();
});

describe('sync control', () => {
  it('pauses, reports progress while paused, resumes and completes', async () => {
    const { tenantId, integrationIds } = await registerSandboxTenant(pool, sandbox, { resourceTypes: ['Observation'] });
    const handle = await startSync(temporal.client, config.TEMPORAL_TASK_QUEUE, { tenantId, integrationId: integrationIds[0]!, vendor: 'sandbox' });
    await expect.poll(async () => (await syncProgress(handle)).totals.pages, { timeout: 30_000 }).toBeGreaterThanOrEqual(1);
    await handle.signal('pause', { by: 'test:operator' });
    await expect.poll(async () => (await syncProgress(handle)).status, { timeout: 30_000 }).toBe('paused');
    const pagesWhilePaused = (await syncProgress(handle)).totals.pages;
    await new Promise((r) => setTimeout(r, 1_500));
    const later = await syncProgress(handle);
    expect(later.totals.pages).toBe(pagesWhilePaused);
    expect(later.pausedBy).toBe('test:operator');
    await handle.signal('resume', { by: 'test:operator' });
    const report = await syncResult(handle);
    expect(report.outcome).toBe('completed');
    expect(report.totals.fetched).toBe((await sandboxManifest(sandbox, 'Observation')).length);
  });

  it('cancel stops after the current page and leaves the checkpoint unadvanced', async () => {
    const { tenantId, integrationIds } = await registerSandboxTenant(pool, sandbox, { resourceTypes: ['Observation'] });
    const integrationId = integrationIds[0]!;
    const handle = await startSync(temporal.client, config.TEMPORAL_TASK_QUEUE, { tenantId, integrationId, vendor: 'sandbox' });
    await expect.poll(async () => (await syncProgress(handle)).totals.pages, { timeout: 30_000 }).toBeGreaterThanOrEqual(1);
    await handle.signal('cancel', { by: 'test:operator' });
    const report = await syncResult(handle);
    expect(report.outcome).toBe('cancelled');
    expect(report.totals.fetched).toBeLessThan((await sandboxManifest(sandbox, 'Observation')).length);
    expect((await readCheckpoints(pool, tenantId, integrationId)).size).toBe(0);
    // What was stored is exactly what the report says was fetched.
    expect((await storedVersions(pool, tenantId, integrationId, 'Observation')).size).toBe(report.totals.fetched);
  });

  it('continues as new when the history grows, without losing or repeating a page', async () => {
    const { tenantId, integrationIds } = await registerSandboxTenant(pool, sandbox, { resourceTypes: ['Patient', 'Condition'] });
    const integrationId = integrationIds[0]!;
    const handle = await startSync(temporal.client, config.TEMPORAL_TASK_QUEUE, { tenantId, integrationId, vendor: 'sandbox' }, { historyEventLimit: 40 });
    const report = await syncResult(handle);
    const expected = (await sandboxManifest(sandbox, 'Patient')).length + (await sandboxManifest(sandbox, 'Condition')).length;
    expect(report.outcome).toBe('completed');
    expect(report.continuedAsNew).toBeGreaterThanOrEqual(2);
    expect(report.totals.fetched).toBe(expected);
    expect(report.totals.inserted).toBe(expected);
    const desc = await handle.describe();
    expect(desc.runId).not.toBe(handle.firstExecutionRunId);
    // The search attributes the Web UI filters on survive continue-as-new.
    expect(desc.typedSearchAttributes.get(TenantIdKey)).toBe(tenantId);
    expect(desc.typedSearchAttributes.get(IntegrationIdKey)).toBe(integrationId);
    expect(desc.typedSearchAttributes.get(VendorKey)).toBe('sandbox');
  });
});
