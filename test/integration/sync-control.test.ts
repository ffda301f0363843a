/**
 * Operators steer a running sync: pause holds it after the current page, resume continues, cancel
 * stops it without advancing the checkpoint, progress is readable at any time, and a long sync
 * continues as new without losing its place.
 */
import { describe, expect, it } from 'vitest';
import {
  IntegrationIdKey,
  TenantIdKey,
  VendorKey,
  startSync,
  syncProgress,
  syncResult,
} from '../../client/sync-client.js';
import { readCheckpoints } from '../../lib/store/checkpoints.js';
import { registerSandboxTenant, sandboxManifest, storedVersions, useSyncHarness } from './support.js';

const harness = useSyncHarness({ sandbox: { size: 1000 }, config: { EHR_SYNC_PAGE_SIZE: '10' } });

describe('sync control', () => {
  it('pauses, reports progress while paused, resumes and completes', async () => {
    const { tenantId, integrationIds } = await registerSandboxTenant(harness.pool, harness.sandbox, {
      resourceTypes: ['Observation'],
    });
    const handle = await startSync(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, {
      tenantId,
      integrationId: integrationIds[0]!,
      vendor: 'sandbox',
    });
    await expect
      .poll(async () => (await syncProgress(handle)).totals.pages, { timeout: 30_000 })
      .toBeGreaterThanOrEqual(1);
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
    expect(report.totals.fetched).toBe((await sandboxManifest(harness.sandbox, 'Observation')).length);
  });

  it('cancel stops after the current page and leaves the checkpoint unadvanced', async () => {
    const { tenantId, integrationIds } = await registerSandboxTenant(harness.pool, harness.sandbox, {
      resourceTypes: ['Observation'],
    });
    const integrationId = integrationIds[0]!;
    const handle = await startSync(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, {
      tenantId,
      integrationId,
      vendor: 'sandbox',
    });
    await expect
      .poll(async () => (await syncProgress(handle)).totals.pages, { timeout: 30_000 })
      .toBeGreaterThanOrEqual(1);
    await handle.signal('cancel', { by: 'test:operator' });
    const report = await syncResult(handle);
    expect(report.outcome).toBe('cancelled');
    expect(report.totals.fetched).toBeLessThan((await sandboxManifest(harness.sandbox, 'Observation')).length);
    expect((await readCheckpoints(harness.pool, tenantId, integrationId)).size).toBe(0);
    // What was stored is exactly what the report says was fetched.
    expect((await storedVersions(harness.pool, tenantId, integrationId, 'Observation')).size).toBe(
      report.totals.fetched,
    );
  });

  it('continues as new when the history grows, without losing or repeating a page', async () => {
    const { tenantId, integrationIds } = await registerSandboxTenant(harness.pool, harness.sandbox, {
      resourceTypes: ['Patient', 'Condition'],
    });
    const integrationId = integrationIds[0]!;
    const handle = await startSync(
      harness.temporal.client,
      harness.config.TEMPORAL_TASK_QUEUE,
      { tenantId, integrationId, vendor: 'sandbox' },
      { historyEventLimit: 40 },
    );
    const report = await syncResult(handle);
    const expected =
      (await sandboxManifest(harness.sandbox, 'Patient')).length +
      (await sandboxManifest(harness.sandbox, 'Condition')).length;
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
