/**
 * Reconciliation of an integration that reads by Bulk Data: the vendor's side is one full export (no `_since`),
 * its output files compared line by line in batches, and what the export did not list read by id — the planted
 * vendor change, deletion and creation are found exactly, and decided as the authority policy says.
 */
import { describe, expect, it } from 'vitest';
import { reconcileProgress, startReconcile } from '../../client/reconcile-client.js';
import { startSync, syncResult } from '../../client/sync-client.js';
import { reconcileReport } from '../../lib/reconcile/report.js';
import { bulkLog } from '../../sandbox/test-bulk.js';
import { activityFaults } from '../activity-faults.js';
import { registerSandboxTenant, sandboxAdmin, sandboxManifest, storedVersions, useSyncHarness } from './support.js';

// Small batches: a file is compared in several transactions (and heartbeats).
const harness = useSyncHarness({ sandbox: { size: 120 }, config: { EHR_SYNC_PAGE_SIZE: '25' } });

describe('reconcile over Bulk Data', () => {
  it('compares the export file by file and finds exactly the planted differences', async () => {
    const { tenantId, integrationIds } = await registerSandboxTenant(harness.pool, harness.sandbox, {
      resourceTypes: ['Observation', 'Condition'],
      read: { strategy: 'bulk', bulkLevel: 'system' },
    });
    const integrationId = integrationIds[0]!;
    const target = { tenantId, integrationId };
    await syncResult(
      await startSync(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, { ...target, vendor: 'sandbox' }),
    );
    const run = async () =>
      (await startReconcile(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, target)).result();
    const first = await run();
    expect(Object.keys(first.counts).sort()).toEqual(['Condition', 'Observation']);
    for (const byClass of Object.values(first.counts))
      expect(Object.entries(byClass).filter(([c, n]) => c !== 'in-sync' && n > 0)).toEqual([]);
    expect(first.decisions.unlistedFound).toBe(0);

    const obs = [...(await storedVersions(harness.pool, tenantId, integrationId, 'Observation')).keys()].sort();
    const kickoffsBefore = (await bulkLog(harness.sandbox)).kickoffs.length;
    const modified = await sandboxAdmin<{ modified: Array<{ id: string; versionId: string }> }>(
      harness.sandbox,
      'POST',
      '/admin/records/modify',
      { resourceType: 'Observation', ids: [obs[0]] },
    );
    await sandboxAdmin(harness.sandbox, 'POST', '/admin/records/delete', {
      resourceType: 'Observation',
      ids: [obs[1]],
    });
    await sandboxAdmin(harness.sandbox, 'POST', '/admin/records/create', { resourceType: 'Observation', count: 1 });

    // A file's reply is lost after it was compared: the retry counts nothing twice.
    activityFaults.loseReplyOnce.add('reconcileBulkFile');
    const handle = await startReconcile(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, target);
    const second = await handle.result();
    expect(activityFaults.loseReplyOnce.size).toBe(0);
    const nonZero = (type: string) =>
      Object.fromEntries(Object.entries(second.counts[type] ?? {}).filter(([c, n]) => c !== 'in-sync' && n > 0));
    expect(nonZero('Observation')).toEqual({ diverged: 1, 'deleted-remote': 1, 'missing-local': 1 });
    expect(nonZero('Condition')).toEqual({});
    expect(second.decisions).toMatchObject({ localUpdated: 1, storedRemote: 1, tombstoned: 1, unlistedFound: 0 });
    // One full export for the run, its files downloaded.
    const log = await bulkLog(harness.sandbox);
    const kickoffs = log.kickoffs.slice(kickoffsBefore);
    expect(kickoffs).toHaveLength(1);
    expect(kickoffs[0]!.params._since).toBeUndefined();
    // The local copies are the vendor's again.
    const live = (await sandboxManifest(harness.sandbox, 'Observation')).filter((m) => !('deleted' in m));
    const stored = await storedVersions(harness.pool, tenantId, integrationId, 'Observation');
    expect(stored).toEqual(new Map(live.map((m) => [m.id, m.versionId])));
    expect(stored.get(obs[0]!)).toBe(modified.modified[0]!.versionId);
    const report = await reconcileReport(harness.pool, second.runId);
    expect(report.readStrategy).toBe('bulk');
    expect(report.totals['missing-local']).toBe(1);
    expect(await reconcileProgress(harness.temporal.client.workflow.getHandle(second.runId))).toMatchObject({
      phase: 'done',
    });
  }, 180_000);
});
