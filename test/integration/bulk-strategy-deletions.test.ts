/**
 * The bulk strategy learns deletions from each type's `_history` (the `sandbox` personality offers history-type),
 * run by the nightly sync after its export: an export whose manifest has no `deleted[]` (as HAPI's never has) still
 * tombstones what the vendor deleted, and a deletion told by both `deleted[]` and history is removed and counted once.
 */
import { describe, expect, it } from 'vitest';
import { startSync, syncResult } from '../../client/sync-client.js';
import type { ResourceType } from '../../lib/domain.js';
import type { BulkBehaviourPatch } from '../../sandbox/bulk-behaviour.js';
import { bulkLog, deleteRecords, setBulkBehaviour } from '../../sandbox/test-bulk.js';
import { checkpointsOf, tombstonesOf } from './bulk-support.js';
import { registerSandboxTenant, sandboxAdmin, sandboxManifest, storedVersions, useSyncHarness } from './support.js';

const TYPES: ResourceType[] = ['Patient', 'Condition', 'Observation'];
// Small history pages: a type's deletions span several, so a run can continue as new between them.
const harness = useSyncHarness({ sandbox: { size: 150 }, config: { EHR_SYNC_PAGE_SIZE: '2' } });

type Ids = { tenantId: string; integrationId: string };

async function bulkTenant(behaviour: BulkBehaviourPatch): Promise<Ids> {
  await setBulkBehaviour(harness.sandbox, null);
  await sandboxAdmin(harness.sandbox, 'DELETE', '/admin/bulk/log');
  await setBulkBehaviour(harness.sandbox, { retryAfterSeconds: 1, ...behaviour });
  // No overlap: each type's history window starts exactly at its checkpoint as the run planned it, so a window
  // started from the checkpoint the export has just moved would miss every deletion below.
  const { tenantId, integrationIds } = await registerSandboxTenant(harness.pool, harness.sandbox, {
    resourceTypes: TYPES,
    read: { strategy: 'bulk', bulkLevel: 'system', overlapSeconds: 0 },
  });
  return { tenantId, integrationId: integrationIds[0]! };
}

async function sync(ids: Ids, options: { historyEventLimit?: number } = {}) {
  return syncResult(
    await startSync(
      harness.temporal.client,
      harness.config.TEMPORAL_TASK_QUEUE,
      { ...ids, vendor: 'sandbox' },
      options,
    ),
  );
}

/** Every type: stored ids and versions are exactly the sandbox's records not deleted. */
async function expectExact(ids: Ids): Promise<void> {
  for (const type of TYPES) {
    const manifest = (await sandboxManifest(harness.sandbox, type)).filter((m) => !('deleted' in m));
    const stored = await storedVersions(harness.pool, ids.tenantId, ids.integrationId, type);
    expect(stored, type).toEqual(new Map(manifest.map((m) => [m.id, m.versionId])));
  }
}

const deletedByType = (report: Awaited<ReturnType<typeof sync>>) =>
  report.types.map((t) => [t.resourceType, t.deleted ?? 0]);

describe('bulk strategy deletions from type history', () => {
  it('an export with no deleted[]: records deleted at the vendor become tombstones, learned from history', async () => {
    const ids = await bulkTenant({ deleted: 'never' });
    const first = await sync(ids);
    expect(first.outcome).toBe('completed');
    expect(first.totals.deleted ?? 0).toBe(0);
    await expectExact(ids);
    const planned = await checkpointsOf(harness.pool, ids.tenantId, ids.integrationId);
    expect(planned.size).toBe(TYPES.length);

    const conditions = await deleteRecords(harness.sandbox, 'Condition', { count: 1 });
    const observations = await deleteRecords(harness.sandbox, 'Observation', { count: 3 });
    const second = await sync(ids);
    expect(second.outcome).toBe('completed');
    // The second export was incremental (`_since`) and its manifest listed no deletion.
    const kickoffs = (await bulkLog(harness.sandbox)).kickoffs;
    expect(kickoffs).toHaveLength(2);
    expect(kickoffs[1]!.params._since).toBeDefined();
    expect(deletedByType(second)).toEqual([
      ['Patient', 0],
      ['Condition', conditions.length],
      ['Observation', observations.length],
    ]);
    expect(second.totals.deleted).toBe(conditions.length + observations.length);
    expect(second.types.every((t) => t.done)).toBe(true);
    const key = (type: string, id: string) => `${type}/${id}`;
    expect(
      (await tombstonesOf(harness.pool, ids.tenantId, ids.integrationId)).map((t) => [key(t.type, t.id), t.how]),
    ).toEqual(
      [...conditions.map((c) => key('Condition', c.id)), ...observations.map((o) => key('Observation', o.id))]
        .sort()
        .map((k) => [k, 'history']),
    );
    await expectExact(ids);
    // The export moved every checkpoint past the deletions; the history window started where the run planned it.
    const moved = await checkpointsOf(harness.pool, ids.tenantId, ids.integrationId);
    for (const type of TYPES)
      expect(Date.parse(moved.get(type)!), type).toBeGreaterThan(Date.parse(planned.get(type)!));
  });

  it('a run continued as new while reading history does not export again, and misses no deletion', async () => {
    const ids = await bulkTenant({ deleted: 'never' });
    expect((await sync(ids)).outcome).toBe('completed');
    const observations = await deleteRecords(harness.sandbox, 'Observation', { count: 5 });
    // The export alone outgrows this limit: the run continues as new after each history page or two.
    const second = await sync(ids, { historyEventLimit: 20 });
    expect(second.outcome).toBe('completed');
    expect(second.continuedAsNew).toBeGreaterThan(0);
    expect((await bulkLog(harness.sandbox)).kickoffs).toHaveLength(2);
    // The export's counts survived the carried state (the second export read only what changed: nothing).
    expect(second.types.map((t) => [t.resourceType, t.pages, t.fetched, t.deleted ?? 0])).toEqual([
      ['Patient', 0, 0, 0],
      ['Condition', 0, 0, 0],
      ['Observation', 0, 0, observations.length],
    ]);
    expect((await tombstonesOf(harness.pool, ids.tenantId, ids.integrationId)).map((t) => t.id).sort()).toEqual(
      observations.map((o) => o.id).sort(),
    );
    await expectExact(ids);
  });

  it('a history pass that fails keeps its type at the old checkpoint: the next run still reads the deletions', async () => {
    const ids = await bulkTenant({ deleted: 'never' });
    expect((await sync(ids)).outcome).toBe('completed');
    const planned = await checkpointsOf(harness.pool, ids.tenantId, ids.integrationId);
    const observations = await deleteRecords(harness.sandbox, 'Observation', { count: 2 });
    // The vendor refuses the Observation history outright (a 400 is not retried): the run fails after its export.
    await sandboxAdmin(harness.sandbox, 'POST', '/admin/faults', {
      kind: 'status',
      status: 400,
      resourceType: 'Observation',
      history: true,
    });
    await expect(sync(ids)).rejects.toThrow();
    const afterFailure = await checkpointsOf(harness.pool, ids.tenantId, ids.integrationId);
    // Patient's and Condition's histories were read before: their checkpoints moved. Observation's stayed.
    expect(afterFailure.get('Observation')).toBe(planned.get('Observation'));
    for (const type of ['Patient', 'Condition'])
      expect(Date.parse(afterFailure.get(type)!), type).toBeGreaterThan(Date.parse(planned.get(type)!));
    expect(await tombstonesOf(harness.pool, ids.tenantId, ids.integrationId)).toEqual([]);

    const third = await sync(ids);
    expect(third.outcome).toBe('completed');
    expect((await tombstonesOf(harness.pool, ids.tenantId, ids.integrationId)).map((t) => t.id).sort()).toEqual(
      observations.map((o) => o.id).sort(),
    );
    await expectExact(ids);
    const moved = await checkpointsOf(harness.pool, ids.tenantId, ids.integrationId);
    expect(Date.parse(moved.get('Observation')!)).toBeGreaterThan(Date.parse(planned.get('Observation')!));
  });

  it('a deletion that deleted[] and history both tell is removed and counted once', async () => {
    const ids = await bulkTenant({ deleted: 'since-only' });
    expect((await sync(ids)).outcome).toBe('completed');
    const observations = await deleteRecords(harness.sandbox, 'Observation', { count: 2 });
    const second = await sync(ids);
    expect(second.outcome).toBe('completed');
    expect(deletedByType(second)).toEqual([
      ['Patient', 0],
      ['Condition', 0],
      ['Observation', observations.length],
    ]);
    expect(second.totals.deleted).toBe(observations.length);
    const tombstones = await tombstonesOf(harness.pool, ids.tenantId, ids.integrationId);
    expect(tombstones.map((t) => t.id).sort()).toEqual(observations.map((o) => o.id).sort());
    // deleted[] was applied first (the export), history found nothing left to remove.
    expect(new Set(tombstones.map((t) => t.how))).toEqual(new Set(['bulk-deleted']));
    await expectExact(ids);
  });
});
