/**
 * Deletions are data: a deleted resource's ciphertext goes with its tombstone and an audit event in one
 * transaction; an older version read again (an overlap window) stays deleted; a newer one brings it back.
 */
import { describe, expect, it } from 'vitest';
import { createKekProvider } from '../../lib/keys/kek-factory.js';
import { KeyHierarchy } from '../../lib/keys/key-hierarchy.js';
import { TenantKeyring } from '../../lib/keys/keyring.js';
import { applyDeletions, storeResources } from '../../lib/sync/store-resources.js';
import { registerSandboxTenant, storedVersions, testActor, useSyncHarness } from './support.js';

const harness = useSyncHarness({ worker: false });

function observation(id: string, versionId: string, lastUpdated: string) {
  return {
    id,
    versionId,
    lastUpdated,
    resource: {
      resourceType: 'Observation',
      id,
      meta: { versionId, lastUpdated },
      status: 'final',
      subject: { reference: 'Patient/p-tomb-1' },
      code: { text: 'synthetic' },
    },
  };
}

/** A tenant with one Observation integration, and what storing and deleting its records needs. */
async function observationStore() {
  const { tenantId, integrationIds } = await registerSandboxTenant(harness.pool, harness.sandbox, {
    resourceTypes: ['Observation'],
  });
  const integrationId = integrationIds[0]!;
  const kek = await KeyHierarchy.open({ pool: harness.pool, backend: await createKekProvider(harness.config) });
  const deps = { pool: harness.pool, keyring: new TenantKeyring({ pool: harness.pool, kek }) };
  const scope = { tenantId, integrationId, resourceType: 'Observation' as const, purpose: 'clinical-sync' as const };
  return { tenantId, integrationId, deps, scope };
}

describe('tombstones', () => {
  it('removes the ciphertext, keeps older versions out and lets a newer version back in', async () => {
    const { tenantId, integrationId, deps, scope } = await observationStore();

    await storeResources(deps, testActor, scope, [
      observation('o-1', '1', '2026-01-01T00:00:00.000Z'),
      observation('o-2', '1', '2026-01-01T00:00:00.000Z'),
    ]);
    const gone = await applyDeletions(
      deps,
      testActor,
      scope,
      [
        { resourceId: 'o-1', deletedAt: '2026-01-02T00:00:00.000Z' },
        { resourceId: 'o-never-stored', deletedAt: '2026-01-02T00:00:00.000Z' },
      ],
      'history',
    );
    expect(gone).toEqual({ removed: 1, tombstoned: 2 });
    expect([...(await storedVersions(harness.pool, tenantId, integrationId, 'Observation')).keys()]).toEqual(['o-2']);

    // The same old version, read again through an overlap window: still deleted.
    const again = await storeResources(deps, testActor, scope, [observation('o-1', '1', '2026-01-01T00:00:00.000Z')]);
    expect(again).toMatchObject({ inserted: 0, updated: 0, unchanged: 1 });
    expect((await storedVersions(harness.pool, tenantId, integrationId, 'Observation')).has('o-1')).toBe(false);

    // Re-created at the vendor after the deletion: a newer version is live again, its tombstone gone.
    const back = await storeResources(deps, testActor, scope, [observation('o-1', '3', '2026-01-03T00:00:00.000Z')]);
    expect(back).toMatchObject({ inserted: 1 });
    const { rows } = await harness.pool.query<{ resource_id: string; learned_how: string }>(
      'SELECT resource_id, learned_how FROM record_tombstones WHERE tenant_id = $1 ORDER BY resource_id',
      [tenantId],
    );
    expect(rows).toEqual([{ resource_id: 'o-never-stored', learned_how: 'history' }]);

    const audit = await harness.pool.query<{ details: Record<string, unknown> }>(
      `SELECT details FROM audit_events WHERE tenant_id = $1 AND action = 'records.deleted'`,
      [tenantId],
    );
    expect(audit.rows).toHaveLength(1);
    expect(audit.rows[0]!.details).toMatchObject({ resourceType: 'Observation', how: 'history', removed: 1 });
    expect(JSON.stringify(audit.rows[0]!.details)).not.toContain('synthetic');
  });

  it('a deletion known only by when it was learned keeps its first time: learning it again does not move it', async () => {
    const { tenantId, deps, scope } = await observationStore();
    const tombstoneTime = async () =>
      (
        await harness.pool.query<{ deleted_at: Date }>(
          'SELECT deleted_at FROM record_tombstones WHERE tenant_id = $1 AND resource_id = $2',
          [tenantId, 'o-learned'],
        )
      ).rows.map((r) => r.deleted_at.toISOString());

    const first = '2026-02-01T00:00:00.000Z';
    await applyDeletions(
      deps,
      testActor,
      scope,
      [{ resourceId: 'o-learned', deletedAt: first, learned: true }],
      'history',
    );
    const again = await applyDeletions(
      deps,
      testActor,
      scope,
      [{ resourceId: 'o-learned', deletedAt: '2026-02-05T00:00:00.000Z', learned: true }],
      'history',
    );
    expect(again.tombstoned).toBe(0);
    expect(await tombstoneTime()).toEqual([first]);

    // Re-created at the vendor after the first learning: the version is stored (the tombstone did not drift past it).
    const back = await storeResources(deps, testActor, scope, [
      observation('o-learned', '2', '2026-02-03T00:00:00.000Z'),
    ]);
    expect(back).toMatchObject({ inserted: 1 });
    expect(await tombstoneTime()).toEqual([]);

    // A deletion with its own time still moves a tombstone forward.
    await applyDeletions(
      deps,
      testActor,
      scope,
      [{ resourceId: 'o-learned', deletedAt: '2026-02-04T00:00:00.000Z' }],
      'history',
    );
    await applyDeletions(
      deps,
      testActor,
      scope,
      [{ resourceId: 'o-learned', deletedAt: '2026-02-06T00:00:00.000Z' }],
      'history',
    );
    expect(await tombstoneTime()).toEqual(['2026-02-06T00:00:00.000Z']);
  });
});
