/**
 * Write-back end to end, gateway → outbox → vendor: a tenant synced from the sandbox, a scheduling system's PUT on
 * the gateway (the local version stored, the change queued, the writeBack workflow signalled), the change sent to
 * the sandbox with If-Match on the synced version, and the vendor's answer stored as the record again — so the
 * gateway then serves the vendor's version.
 */
import { describe, expect, it } from 'vitest';
import { access, outboxOf, readBack, temporalWriter } from './gateway-write-support.js';
import { syncedSandboxTenant } from './stored-records.js';
import { sandboxManifest, storedVersions, useSyncHarness } from './support.js';
import { effectsOf, settled, vendorCopy, writesLedger } from './write-back-support.js';

const harness = useSyncHarness({ sandbox: { size: 60 } });
const { deps, write, open } = temporalWriter(harness);

describe('gateway → outbox → vendor', () => {
  it('a PUT on the gateway reaches the vendor with If-Match, once, and the vendor version becomes the record', async () => {
    await open();
    const { tenantId, integrationIds } = await syncedSandboxTenant(harness, ['Patient', 'Appointment']);
    const integrationId = integrationIds[0]!;
    const id = (await sandboxManifest(harness.sandbox, 'Appointment'))[0]!.id;
    const scheduler = access(tenantId, 'scheduling-sync', 'system/Appointment.cruds');
    const before = (await readBack(deps(), scheduler, `Appointment/${id}`)).body as Record<string, unknown>;
    const status = before.status === 'cancelled' ? 'noshow' : 'cancelled';

    const res = await write(scheduler, 'PUT', `Appointment/${id}`, { ...before, status });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const [queued] = await outboxOf(harness.pool, tenantId, id);
    const change = await settled(harness.pool, queued!.id);
    expect(change).toMatchObject({ status: 'sent', vendorStatus: 200, vendorVersionId: '2' });

    expect(await vendorCopy(harness, 'Appointment', id)).toMatchObject({ status, meta: { versionId: '2' } });
    const row = (await writesLedger(harness)).ledger.find((r) => r.key === change.idempotencyKey);
    expect(row).toMatchObject({ method: 'PUT', ifMatch: 'W/"1"', effects: 1 });
    expect(await effectsOf(harness, change)).toBe(1);
    expect((await storedVersions(harness.pool, tenantId, integrationId, 'Appointment')).get(id)).toBe('2');
    const after = await readBack(deps(), scheduler, `Appointment/${id}`);
    expect(after.headers.etag).toBe('W/"2"');
    expect(after.body).toMatchObject({ status });
  });
});
