/**
 * A tenant data key rotation does not strand what waits to be written back: once the records are re-encrypted,
 * the old DEK version is still kept while an outbox change or an open conflict is encrypted under it (both still
 * decrypt afterwards), and is destroyed once they have settled.
 */
import { describe, expect, it } from 'vitest';
import { KeyHierarchy } from '../../lib/keys/key-hierarchy.js';
import { createKekProvider } from '../../lib/keys/kek-factory.js';
import { reencryptRecordBatch } from '../../lib/keys/record-reencryption.js';
import { destroyTenantKeyVersion, rotateTenantDataKey } from '../../lib/keys/tenant-keys.js';
import { openConflictSides } from '../../lib/writeback/conflicts.js';
import { openChange } from '../../lib/writeback/outbox.js';
import { openTestConflict } from './conflict-support.js';
import { sandboxManifest, testActor, useSyncHarness } from './support.js';
import { queueUpdate, vendorCopy, writeBackTenant } from './write-back-support.js';

const harness = useSyncHarness({ sandbox: { size: 60 } });

async function firstId(type: string): Promise<string> {
  const [first] = await sandboxManifest(harness.sandbox, type);
  if (!first) throw new Error(`the sandbox holds no ${type}`);
  return first.id;
}

describe('DEK rotation and what waits to be written back', () => {
  it('keeps the old version for a pending change and an open conflict, and destroys it once they settle', async () => {
    const t = await writeBackTenant(harness, ['Patient', 'Appointment']);
    const patientId = await firstId('Patient');
    const changeId = await queueUpdate(harness, t, 'Patient', patientId, {
      telecom: [{ system: 'phone', value: '555-0100' }],
    });
    const vendor = await vendorCopy(harness, 'Appointment', await firstId('Appointment'));
    const conflict = await openTestConflict(harness, t.keyring, t, {
      local: { start: '2030-01-01T09:00:00Z' },
      vendor,
      notify: false,
    });

    const kek = await KeyHierarchy.open({ pool: harness.pool, backend: await createKekProvider(harness.config) });
    const { keyVersion, previous } = await rotateTenantDataKey({ pool: harness.pool, kek }, t.tenantId, testActor);
    expect(previous).toBe(1);
    const target = await t.keyring.dataKey(t.tenantId, keyVersion);
    const moved = await reencryptRecordBatch(
      harness.pool,
      t.keyring,
      { tenantId: t.tenantId, target, batchSize: 100 },
      testActor,
    );
    expect(moved.remaining).toBe(0);

    expect(await destroyTenantKeyVersion(harness.pool, t.tenantId, 1, testActor)).toEqual({
      changed: false,
      keptFor: 'queued vendor writes',
    });
    expect((await openChange(harness.pool, t.keyring, changeId)).kind).toBe('update');
    expect((await openConflictSides(harness.pool, t.keyring, conflict.conflictId)).local).toEqual({
      start: '2030-01-01T09:00:00Z',
    });

    // The change sent and the conflict resolved: nothing needs version 1 any more.
    await harness.pool.query(`UPDATE outbox_changes SET status = 'sent' WHERE id = $1`, [changeId]);
    expect((await destroyTenantKeyVersion(harness.pool, t.tenantId, 1, testActor)).keptFor).toBe(
      'queued vendor writes',
    );
    await harness.pool.query(`UPDATE reconcile_conflicts SET status = 'resolved' WHERE id = $1`, [conflict.conflictId]);
    expect(await destroyTenantKeyVersion(harness.pool, t.tenantId, 1, testActor)).toEqual({ changed: true });
  });
});
