/**
 * Creates and JSON Patch through the gateway (issue 13 item 1), over real PostgreSQL: a create gets a local id in
 * the tenant's only integration, or in the one X-Ehr-Integration names, and is queued whole (without id and meta);
 * a PATCH is applied to what the consumer sees and then decided like a PUT. Refusals store nothing.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { TenantKeyring } from '../../lib/keys/keyring.js';
import { openChange } from '../../lib/writeback/outbox.js';
import { openKeyring } from './gateway-support.js';
import { useSyncHarness } from './support.js';
import {
  access,
  appointment,
  auditRows,
  newTenant,
  outboxOf,
  patient,
  readBack,
  recordingNotifier,
  storeAsSynced,
  versionOf,
  writer,
} from './gateway-write-support.js';

const harness = useSyncHarness({ sandbox: { size: 20 }, worker: false });
let keyring: TenantKeyring;
const notifier = recordingNotifier();
const deps = () => ({ pool: harness.pool, keyring, notifier });
const write = writer(deps);
let one: { tenantId: string; integrationIds: string[] };
let two: { tenantId: string; integrationIds: string[] };

beforeAll(async () => {
  keyring = await openKeyring(harness.pool, harness.config);
  one = await newTenant(harness);
  two = await newTenant(harness, 2);
  const at = { tenantId: one.tenantId, integrationId: one.integrationIds[0]! };
  await storeAsSynced(deps(), at, 'Appointment', [
    appointment('appt-p1', 'pat-9'),
    appointment('appt-p2', 'pat-9'),
    appointment('appt-race', 'pat-9'),
    appointment('appt-quiet', 'pat-9'),
  ]);
  await storeAsSynced(deps(), at, 'Patient', [patient('pat-9')]);
}, 120_000);

function fresh(patientId: string): Record<string, unknown> {
  const { id: _id, ...rest } = appointment('ignored', patientId, { status: 'proposed' });
  return rest;
}

describe('create', () => {
  it("stores a new record under a local id in the tenant's only integration and queues it whole", async () => {
    const scheduler = access(one.tenantId, 'scheduling-sync', 'system/Appointment.cu system/Appointment.r');
    const calls = notifier.calls.length;
    const res = await write(scheduler, 'POST', 'Appointment', { ...fresh('pat-9'), id: 'chosen-by-client' });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const id = (res.body as { id: string }).id;
    expect(id).toMatch(/^local-[0-9a-f-]{36}$/);
    expect(res.headers.location).toBe(
      `https://gateway.test/fhir/Appointment/${id}/_history/${res.headers.etag!.slice(3, -1)}`,
    );
    const [change, ...more] = await outboxOf(harness.pool, one.tenantId, id);
    expect(more).toEqual([]);
    expect(change).toMatchObject({ kind: 'create', status: 'pending', base_version_id: null });
    expect(change!.integration_id).toBe(one.integrationIds[0]);
    const payload = await openChange(harness.pool, keyring, change!.id);
    expect(payload).toEqual({ kind: 'create', resource: { resourceType: 'Appointment', ...fresh('pat-9') } });
    expect((await readBack(deps(), scheduler, `Appointment/${id}`)).body).toMatchObject({ id, status: 'proposed' });
    expect(notifier.calls.slice(calls)).toEqual([{ tenantId: one.tenantId, integrationId: one.integrationIds[0] }]);
    const [event] = (await auditRows(harness.pool, res.correlationId)).filter((e) => e.action === 'gateway.write');
    expect(event).toMatchObject({
      outcome: 'success',
      details: { interaction: 'create', resourceId: id, status: 201 },
    });

    // Its create has not reached the EHR: an update waits for it.
    const early = await write(scheduler, 'PUT', `Appointment/${id}`, { ...fresh('pat-9'), id, status: 'booked' });
    expect(early.status).toBe(409);
    expect(await outboxOf(harness.pool, one.tenantId, id)).toHaveLength(1);
  });

  it('needs X-Ehr-Integration when the tenant has several integrations, and refuses one it does not hold', async () => {
    const scheduler = access(two.tenantId, 'scheduling-sync', 'system/Appointment.cu');
    const none = await write(scheduler, 'POST', 'Appointment', fresh('pat-8'));
    expect(none.status).toBe(400);
    expect(JSON.stringify(none.body)).toMatch(/X-Ehr-Integration is required: the tenant has 2 integrations/);
    const foreign = await write(scheduler, 'POST', 'Appointment', fresh('pat-8'), {
      integration: one.integrationIds[0]!,
    });
    expect(foreign.status).toBe(400);
    expect(JSON.stringify(foreign.body)).toMatch(/X-Ehr-Integration names no integration of this tenant/);
    expect(await outboxOf(harness.pool, two.tenantId)).toEqual([]);
    const target = two.integrationIds[1]!;
    const made = await write(scheduler, 'POST', 'Appointment', fresh('pat-8'), { integration: target });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    expect((await outboxOf(harness.pool, two.tenantId)).map((c) => c.integration_id)).toEqual([target]);
    expect(notifier.calls.at(-1)).toEqual({ tenantId: two.tenantId, integrationId: target });
  });

  it('refuses a type whose write policy does not create, and an invalid new resource, storing nothing', async () => {
    const frontDesk = access(one.tenantId, 'scheduling-sync', 'system/Patient.cu');
    const patientCreate = await write(frontDesk, 'POST', 'Patient', { resourceType: 'Patient', gender: 'other' });
    expect(patientCreate.status).toBe(422);
    expect(JSON.stringify(patientCreate.body)).toMatch(/does not allow creating Patient/);
    const scheduler = access(one.tenantId, 'scheduling-sync', 'system/Appointment.cu');
    const { participant: _p, ...withoutParticipant } = fresh('pat-9');
    const invalid = await write(scheduler, 'POST', 'Appointment', withoutParticipant);
    expect(invalid.status).toBe(400);
    expect(invalid.body).toMatchObject({ issue: [{ expression: ['Appointment.participant'] }] });
    const before = (await outboxOf(harness.pool, one.tenantId)).length;
    expect(before).toBe(1);
  });
});

describe('patch', () => {
  it('applies a JSON Patch to what the consumer sees and queues the changed element', async () => {
    const scheduler = access(one.tenantId, 'scheduling-sync', 'system/Appointment.cu');
    const patch = [
      { op: 'test', path: '/status', value: 'booked' },
      { op: 'replace', path: '/status', value: 'checked-in' },
    ];
    const res = await write(scheduler, 'PATCH', 'Appointment/appt-p1', patch, { ifMatch: 'W/"1"' });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ status: 'checked-in', description: 'Synthetic follow-up' });
    const [change] = await outboxOf(harness.pool, one.tenantId, 'appt-p1');
    expect(change!.changed_elements).toEqual(['status']);
    expect(await openChange(harness.pool, keyring, change!.id)).toEqual({
      kind: 'update',
      elements: { status: 'checked-in' },
      base: { status: 'booked' },
    });
    // The test operation now fails: 409, nothing more queued.
    expect((await write(scheduler, 'PATCH', 'Appointment/appt-p1', patch)).status).toBe(409);
    expect(await outboxOf(harness.pool, one.tenantId, 'appt-p1')).toHaveLength(1);
  });

  it('refuses a patch of an element the EHR owns (422), a path that does not resolve (400) and other media (415)', async () => {
    const scheduler = access(one.tenantId, 'scheduling-sync', 'system/Appointment.cu');
    const version = await versionOf(harness.pool, one.tenantId, 'Appointment', 'appt-p2');
    const owned = await write(scheduler, 'PATCH', 'Appointment/appt-p2', [
      { op: 'replace', path: '/description', value: 'Changed locally' },
      { op: 'replace', path: '/start', value: '2027-01-05T10:00:00Z' },
      { op: 'replace', path: '/end', value: '2027-01-05T10:30:00Z' },
    ]);
    expect(owned.status).toBe(422);
    // start and end are shared: only description is named.
    expect(owned.body).toMatchObject({ issue: [{ expression: ['Appointment.description'] }] });
    expect((owned.body as { issue: unknown[] }).issue).toHaveLength(1);
    const unresolved = await write(scheduler, 'PATCH', 'Appointment/appt-p2', [
      { op: 'replace', path: '/reasonCode/0/text', value: 'x' },
    ]);
    expect([unresolved.status, JSON.stringify(unresolved.body)]).toEqual([400, expect.stringMatching(/UNRESOLVABLE/)]);
    const media = await write(scheduler, 'PATCH', 'Appointment/appt-p2', '[]', { contentType: 'application/json' });
    expect(media.status).toBe(415);
    // Another tenant's record is answered as a missing one.
    const stranger = access(two.tenantId, 'scheduling-sync', 'system/Appointment.cu');
    const foreign = await write(
      stranger,
      'PUT',
      'Appointment/appt-p2',
      appointment('appt-p2', 'pat-9', { status: 'noshow' }),
    );
    expect(foreign.status).toBe(404);
    expect(await versionOf(harness.pool, one.tenantId, 'Appointment', 'appt-p2')).toBe(version);
    expect(await outboxOf(harness.pool, one.tenantId, 'appt-p2')).toEqual([]);
  });
});

describe('concurrent writes', () => {
  it('serialises two updates of one record: the one decided on a version already replaced stores nothing (409)', async () => {
    const scheduler = access(one.tenantId, 'scheduling-sync', 'system/Appointment.cu');
    // Hold the record's row so both writes are decided on version 1 and then wait for it.
    const holder = await harness.pool.connect();
    let results: Array<{ status: number; headers: Record<string, string> }>;
    try {
      await holder.query('BEGIN');
      await holder.query(
        `SELECT 1 FROM records WHERE tenant_id = $1 AND resource_type = 'Appointment' AND resource_id = 'appt-race'
          FOR UPDATE`,
        [one.tenantId],
      );
      const pending = ['arrived', 'noshow'].map((status) =>
        write(scheduler, 'PUT', 'Appointment/appt-race', appointment('appt-race', 'pat-9', { status })),
      );
      for (let waiting = 0; waiting < 2; await new Promise((r) => setTimeout(r, 20))) {
        const { rows } = await harness.pool.query<{ n: string }>(
          `SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%FOR UPDATE%'`,
        );
        waiting = Number(rows[0]!.n);
      }
      await holder.query('COMMIT');
      results = await Promise.all(pending);
    } finally {
      holder.release();
    }
    expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
    expect(await outboxOf(harness.pool, one.tenantId, 'appt-race')).toHaveLength(1);
    const winner = results.find((r) => r.status === 200)!;
    expect(await versionOf(harness.pool, one.tenantId, 'Appointment', 'appt-race')).toBe(
      winner.headers.etag!.slice(3, -1),
    );
  });
});

describe('around the transaction', () => {
  it('answers 200 when write-back cannot be notified: the change waits in the outbox', async () => {
    const failing = writer(() => ({
      pool: harness.pool,
      keyring,
      notifier: { changesQueued: () => Promise.reject(new Error('temporal unreachable')) },
    }));
    const scheduler = access(one.tenantId, 'scheduling-sync', 'system/Appointment.cu');
    const res = await failing(
      scheduler,
      'PUT',
      'Appointment/appt-quiet',
      appointment('appt-quiet', 'pat-9', { status: 'noshow' }),
    );
    expect(res.status).toBe(200);
    expect((await outboxOf(harness.pool, one.tenantId, 'appt-quiet')).map((c) => c.status)).toEqual(['pending']);
  });

  it('refuses an element the consumer purpose does not keep (422), rather than dropping it', async () => {
    const frontDesk = access(one.tenantId, 'scheduling-sync', 'system/Patient.cu system/Patient.r');
    const view = (await readBack(deps(), frontDesk, 'Patient/pat-9')).body as Record<string, unknown>;
    const res = await write(frontDesk, 'PUT', 'Patient/pat-9', { ...view, maritalStatus: { text: 'Other' } });
    expect(res.status).toBe(422);
    expect(res.body).toMatchObject({ issue: [{ expression: ['Patient.maritalStatus'] }] });
    expect(await outboxOf(harness.pool, one.tenantId, 'pat-9')).toEqual([]);
  });
});
