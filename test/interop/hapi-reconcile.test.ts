/**
 * Reconciliation against HAPI FHIR JPA (a server this project did not write), every workflow real: after a sync,
 * someone edits records at HAPI and this side edits one too; the run finds exactly those differences and decides
 * them by authority — an EHR-owned edit updates the local copy, an edit of the organisation's status is written back
 * to HAPI (If-Match on HAPI's version), both sides moving a shared `start` opens a conflict that a person resolves
 * for the local side (written back), a deletion becomes a tombstone, a new record is stored — and the next run finds
 * everything in sync with HAPI.
 */
import { beforeAll, expect, it } from 'vitest';
import { resolveConflict } from '../../client/conflict-client.js';
import { startReconcile } from '../../client/reconcile-client.js';
import { defaultWritePolicy } from '../../lib/writeback/authority.js';
import type { ReconcileReport } from '../../workflows/reconcile.js';
import { storedResource, storeLocalVersion, testKeyring } from '../integration/reconcile-support.js';
import { testActor } from '../integration/support.js';
import { settled } from '../integration/write-back-support.js';
import { describeWhenAvailable } from '../suites-not-run.js';
import { fhirJson, type FhirResource } from './hapi-fhir.js';
import { javaAndMaven } from './hapi-requirement.js';
import { type Ids, registerHapi, runSync, useHapiSync } from './hapi-sync-support.js';

describeWhenAvailable(__filename, 'reconciliation against HAPI FHIR JPA', [javaAndMaven], () => {
  const h = useHapiSync();
  let ids: Ids;
  const at = (path: string) => `${h.hapi.baseUrl}/${path}`;
  const read = (id: string) => fhirJson<FhirResource>(at(`Appointment/${id}`), { fresh: true });
  const appointment = (n: number) =>
    fhirJson<FhirResource>(at('Appointment'), {
      method: 'POST',
      body: {
        resourceType: 'Appointment',
        status: 'booked',
        description: `Synthetic follow-up ${n}`,
        start: `2027-01-0${n}T09:00:00Z`,
        end: `2027-01-0${n}T09:30:00Z`,
        participant: [{ actor: { display: `Synthetic Room ${n}` }, status: 'accepted' }],
      },
    });
  const editAtHapi = async (copy: FhirResource, elements: Record<string, unknown>) => {
    const { meta: _meta, ...rest } = await read(copy.id!);
    await fhirJson(at(`Appointment/${copy.id}`), { method: 'PUT', body: { ...rest, ...elements } });
  };
  const reconcileRun = async (): Promise<ReconcileReport> =>
    (await startReconcile(h.harness.temporal.client, h.harness.config.TEMPORAL_TASK_QUEUE, ids)).result();
  const notInSync = (report: ReconcileReport) =>
    Object.fromEntries(Object.entries(report.counts.Appointment ?? {}).filter(([c, n]) => c !== 'in-sync' && n > 0));

  beforeAll(async () => {
    ids = await registerHapi(h, { types: ['Appointment'] });
    await h.harness.pool.query(
      `INSERT INTO write_policies (tenant_id, integration_id, resource_type, policy, updated_by)
       VALUES ($1, $2, 'Appointment', $3, 'test')`,
      [ids.tenantId, ids.integrationId, JSON.stringify(defaultWritePolicy('Appointment'))],
    );
  }, 900_000);

  it('finds exactly what changed at HAPI and here, decides by authority, writes back, and ends in sync', async () => {
    const ehrEdited = await appointment(1);
    const statusEdited = await appointment(2);
    const bothMoved = await appointment(3);
    const deleted = await appointment(4);
    await runSync(h, ids, true);
    const first = await reconcileRun();
    expect(notInSync(first)).toEqual({});
    expect(first.counts.Appointment?.['in-sync']).toBe(4);

    const keyring = await testKeyring(h.harness);
    const scope = { ...ids, resourceType: 'Appointment' as const };
    await editAtHapi(ehrEdited, { description: 'Synthetic follow-up, room changed' });
    await editAtHapi(statusEdited, { status: 'arrived' });
    await editAtHapi(bothMoved, { start: '2027-01-03T11:00:00Z', end: '2027-01-03T11:30:00Z' });
    const local = (await storedResource(h.harness.pool, keyring, scope, bothMoved.id!))!;
    await storeLocalVersion(h.harness.pool, keyring, scope, bothMoved.id!, {
      ...local.resource,
      start: '2027-01-03T10:45:00Z',
    });
    await fhirJson(at(`Appointment/${deleted.id}`), { method: 'DELETE' });
    const added = await appointment(5);

    const second = await reconcileRun();
    expect(notInSync(second)).toEqual({ diverged: 3, 'deleted-remote': 1, 'missing-local': 1 });
    expect(second.decisions).toMatchObject({ writeBacksQueued: 1, conflictsOpened: 1, tombstoned: 1, storedRemote: 1 });
    // The EHR's edit is the local copy now; the new record is stored.
    const ehrLocal = (await storedResource(h.harness.pool, keyring, scope, ehrEdited.id!))!;
    expect(ehrLocal.resource.description).toBe('Synthetic follow-up, room changed');
    expect(await storedResource(h.harness.pool, keyring, scope, added.id!)).toBeDefined();

    // The organisation owns the status: its value goes back to HAPI, with If-Match on HAPI's version.
    const queued = await h.harness.pool.query<{ id: string }>(
      `SELECT id FROM outbox_changes WHERE integration_id = $1 AND origin = 'reconcile'`,
      [ids.integrationId],
    );
    expect(queued.rows).toHaveLength(1);
    expect(await settled(h.harness.pool, queued.rows[0]!.id)).toMatchObject({ status: 'sent', vendorVersionId: '3' });
    expect(await read(statusEdited.id!)).toMatchObject({ status: 'booked', meta: { versionId: '3' } });

    // Both sides moved the shared start: a person takes the local side, and it is written back.
    const conflict = await h.harness.pool.query<{ id: string; elements: string[] }>(
      `SELECT id, elements FROM reconcile_conflicts WHERE integration_id = $1 AND status = 'open'`,
      [ids.integrationId],
    );
    expect(conflict.rows[0]!.elements).toContain('start');
    const outcome = await resolveConflict(
      h.harness.pool,
      h.harness.temporal.client,
      conflict.rows[0]!.id,
      { take: 'local', by: 'user:scheduler' },
      testActor,
    );
    expect(await settled(h.harness.pool, outcome.changeId!)).toMatchObject({ status: 'sent' });
    expect((await read(bothMoved.id!)).start).toBe('2027-01-03T10:45:00Z');

    const third = await reconcileRun();
    expect(notInSync(third)).toEqual({});
    expect(third.counts.Appointment?.['in-sync']).toBe(4);
  });
});
