/**
 * The patient strategy end to end against the sandbox: a roster from the practice's Group, each type read
 * patient by patient, exact records; a patient the vendor deleted (its read answers 410) becomes a tombstone, and
 * so does a record deleted at the vendor (learned from the type's `_history`, which this personality offers).
 */
import { describe, expect, it } from 'vitest';
import { startSync, syncResult } from '../../client/sync-client.js';
import type { ResourceType } from '../../lib/domain.js';
import { deleteRecords } from '../../sandbox/test-bulk.js';
import { registerSandboxTenant, sandboxAdmin, sandboxManifest, storedVersions, useSyncHarness } from './support.js';

const harness = useSyncHarness({ sandbox: { size: 200 }, config: { EHR_SYNC_PAGE_SIZE: '20' } });
const TYPES: ResourceType[] = ['Patient', 'Condition', 'Observation'];

async function expectExact(t: { tenantId: string; integrationId: string }, type: ResourceType): Promise<void> {
  const manifest = (await sandboxManifest(harness.sandbox, type)).filter((m) => !('deleted' in m));
  const stored = await storedVersions(harness.pool, t.tenantId, t.integrationId, type);
  expect([...stored.keys()].sort(), `${type} ids`).toEqual(manifest.map((m) => m.id).sort());
  for (const m of manifest) expect(stored.get(m.id), `${type}/${m.id}`).toBe(m.versionId);
}

describe('patient strategy', () => {
  it('reads every type patient by patient from the Group roster, and tombstones deleted patients and records', async () => {
    const { groupId } = (
      await sandboxAdmin<{ reads: { groupId: string } }>(harness.sandbox, 'GET', '/admin/read-paths')
    ).reads;
    const { tenantId, integrationIds } = await registerSandboxTenant(harness.pool, harness.sandbox, {
      resourceTypes: TYPES,
      read: { strategy: 'patient', groupId },
    });
    const t = { tenantId, integrationId: integrationIds[0]! };
    const run = async () =>
      syncResult(
        await startSync(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, { ...t, vendor: 'sandbox' }),
      );

    const first = await run();
    expect(first.outcome).toBe('completed');
    for (const type of TYPES) await expectExact(t, type);
    const searches = harness.sandbox.ledger().filter((e) => e.resource === 'Condition');
    expect(searches.length).toBeGreaterThan(1);

    await sandboxAdmin(harness.sandbox, 'POST', '/admin/records/modify', { resourceType: 'Condition', count: 3 });
    const gone = await deleteRecords(harness.sandbox, 'Patient', { count: 2 });
    const second = await run();
    expect(second.outcome).toBe('completed');
    const patient = second.types.find((x) => x.resourceType === 'Patient')!;
    expect(patient.deleted).toBe(gone.length);
    expect(second.types.find((x) => x.resourceType === 'Condition')!.updated).toBeGreaterThan(0);
    for (const type of TYPES) await expectExact(t, type);
    const { rows } = await harness.pool.query<{ resource_id: string }>(
      `SELECT resource_id FROM record_tombstones WHERE tenant_id = $1 AND learned_how = 'read-gone' ORDER BY 1`,
      [tenantId],
    );
    expect(rows.map((r) => r.resource_id)).toEqual(gone.map((g) => g.id).sort());
    // The roster never reached the workflow history, and it is gone once the run ends.
    const left = await harness.pool.query('SELECT 1 FROM sync_rosters WHERE tenant_id = $1', [tenantId]);
    expect(left.rowCount).toBe(0);

    // Records of roster patients deleted at the vendor: no per-patient search shows them, the type's `_history`
    // (which this personality offers) does; each becomes a tombstone and leaves the store.
    const conditions = await deleteRecords(harness.sandbox, 'Condition', { count: 3 });
    const observations = await deleteRecords(harness.sandbox, 'Observation', { count: 2 });
    const third = await run();
    expect(third.outcome).toBe('completed');
    expect(third.types.map((x) => [x.resourceType, x.deleted ?? 0])).toEqual([
      ['Patient', 0],
      ['Condition', conditions.length],
      ['Observation', observations.length],
    ]);
    expect(third.totals.deleted).toBe(conditions.length + observations.length);
    for (const type of TYPES) await expectExact(t, type);
    const history = await harness.pool.query<{ resource_type: string; resource_id: string }>(
      `SELECT resource_type, resource_id FROM record_tombstones WHERE tenant_id = $1 AND learned_how = 'history'`,
      [tenantId],
    );
    const key = (type: string, id: string) => `${type}/${id}`;
    expect(history.rows.map((r) => key(r.resource_type, r.resource_id)).sort()).toEqual(
      [...conditions.map((c) => key('Condition', c.id)), ...observations.map((o) => key('Observation', o.id))].sort(),
    );
  });
});
