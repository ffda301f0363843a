/**
 * The whole loop, with every workflow real: both sides change a shared element of a record; reconciliation opens a
 * conflict and its workflow waits; a person resolves it (the `resolve` update, ids and sides only); the writeBack
 * workflow that resolution woke sends the local value to the vendor once, with If-Match; the next reconciliation
 * finds the record in sync.
 */
import { describe, expect, it } from 'vitest';
import { resolveConflict, conflictState } from '../../client/conflict-client.js';
import { startReconcile } from '../../client/reconcile-client.js';
import { startSync, syncResult } from '../../client/sync-client.js';
import { getOutboxChange } from '../../lib/writeback/outbox-repository.js';
import type { ReconcileReport } from '../../workflows/reconcile.js';
import { storedResource, storeLocalVersion, testKeyring } from './reconcile-support.js';
import { registerSandboxTenant, sandboxAdmin, testActor, useSyncHarness } from './support.js';
import { effectsOf, settled, vendorCopy } from './write-back-support.js';

const harness = useSyncHarness({ sandbox: { size: 80 } });
const LOCAL_STATUS = 'on-hold';

async function reconcileRun(scope: { tenantId: string; integrationId: string }): Promise<ReconcileReport> {
  return (await startReconcile(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, scope)).result();
}

async function eventually<T>(probe: () => Promise<T | undefined>, what: string): Promise<T> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('reconcile → conflict → resolution → write-back', () => {
  it('writes the resolved value back to the vendor exactly once, and the next run finds the record in sync', async () => {
    const { pool } = harness;
    const { tenantId, integrationIds } = await registerSandboxTenant(pool, harness.sandbox, {
      resourceTypes: ['ServiceRequest'],
    });
    const integrationId = integrationIds[0]!;
    const target = { tenantId, integrationId };
    await pool.query(
      `INSERT INTO write_policies (tenant_id, integration_id, resource_type, policy, updated_by)
       VALUES ($1, $2, 'ServiceRequest', $3, 'test')`,
      [tenantId, integrationId, JSON.stringify({ create: false, update: true, elements: { status: 'shared' } })],
    );
    await sandboxAdmin(harness.sandbox, 'POST', '/admin/records/create', { resourceType: 'ServiceRequest', count: 2 });
    await syncResult(
      await startSync(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, { ...target, vendor: 'sandbox' }),
    );
    const first = await reconcileRun(target);
    expect(first.decisions.conflictsOpened ?? 0).toBe(0);

    // Both sides change the shared status: the vendor (a new version) and this side (a local version).
    const scope = { ...target, resourceType: 'ServiceRequest' as const };
    const keyring = await testKeyring(harness);
    const { rows } = await pool.query<{ resource_id: string }>(
      `SELECT resource_id FROM records WHERE integration_id = $1 ORDER BY resource_id LIMIT 1`,
      [integrationId],
    );
    const id = rows[0]!.resource_id;
    await sandboxAdmin(harness.sandbox, 'POST', '/admin/records/modify', { resourceType: 'ServiceRequest', ids: [id] });
    const vendorStatus = (await vendorCopy(harness, 'ServiceRequest', id)).status;
    const local = (await storedResource(pool, keyring, scope, id))!;
    expect(vendorStatus).not.toBe(local.resource.status);
    await storeLocalVersion(pool, keyring, scope, id, { ...local.resource, status: LOCAL_STATUS });

    const second = await reconcileRun(target);
    expect(second.decisions.conflictsOpened).toBe(1);
    const conflict = (
      await pool.query<{ id: string; elements: string[] }>(
        `SELECT id, elements FROM reconcile_conflicts WHERE integration_id = $1 AND status = 'open'`,
        [integrationId],
      )
    ).rows[0]!;
    expect(conflict.elements).toContain('status');
    // Its workflow waits for a person; the vendor still has its own status.
    const waiting = await eventually(async () => {
      const state = await conflictState(harness.temporal.client, conflict.id).catch(() => undefined);
      return state?.status === 'awaiting-resolution' ? state : undefined;
    }, 'the conflict workflow to wait');
    expect(waiting.status).toBe('awaiting-resolution');
    expect((await vendorCopy(harness, 'ServiceRequest', id)).status).toBe(vendorStatus);

    const outcome = await resolveConflict(
      pool,
      harness.temporal.client,
      conflict.id,
      {
        take: 'local',
        by: 'user:charge-nurse',
      },
      testActor,
    );
    expect(outcome.changeId).not.toBeNull();

    const sent = await settled(pool, outcome.changeId!);
    expect(sent.status).toBe('sent');
    expect(sent.origin).toBe('resolution');
    const atVendor = await vendorCopy(harness, 'ServiceRequest', id);
    expect(atVendor.status).toBe(LOCAL_STATUS);
    expect((atVendor.meta as { versionId: string }).versionId).toBe(sent.vendorVersionId);
    expect(await effectsOf(harness, (await getOutboxChange(pool, outcome.changeId!))!)).toBe(1);
    // The local copy is the vendor's answer again.
    expect((await storedResource(pool, keyring, scope, id))!.versionId).toBe(sent.vendorVersionId);

    const third = await reconcileRun(target);
    expect(third.decisions.conflictsOpened ?? 0).toBe(0);
    const notInSync = Object.entries(third.counts.ServiceRequest ?? {}).filter(([c, n]) => c !== 'in-sync' && n > 0);
    expect(notInSync).toEqual([]);
  });
});
