/**
 * Local changes through the gateway (issue 13 item 1), over real PostgreSQL: an update is stored as the local
 * version of the record with one pending, encrypted outbox change and a `gateway.write` audit event, in one
 * transaction, and wakes write-back; what the policy, the validator, the scopes or a stale If-Match refuse leaves
 * nothing stored. Creates, JSON Patch and the HTTP door are in gateway-write-create.test.ts.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { parseCiphertextHeader, tenantKeyId } from '../../lib/crypto/envelope.js';
import type { TenantKeyring } from '../../lib/keys/keyring.js';
import { liftHold, openIncident, raiseHold } from '../../lib/incidents/store.js';
import { openChange } from '../../lib/writeback/outbox.js';
import { uniqueId } from '../harness.js';
import { openKeyring } from './gateway-support.js';
import { testActor, useSyncHarness } from './support.js';
import {
  VENDOR_UPDATED,
  access,
  appointment,
  auditRows,
  outboxOf,
  patient,
  readBack,
  recordingNotifier,
  storeAsSynced,
  versionOf,
  newTenant,
  writer,
} from './gateway-write-support.js';

const harness = useSyncHarness({ sandbox: { size: 20 }, worker: false });
let keyring: TenantKeyring;
const notifier = recordingNotifier();
const deps = () => ({ pool: harness.pool, keyring, notifier });
const write = writer(deps);
let tenantId: string;
let integrationId: string;

beforeAll(async () => {
  keyring = await openKeyring(harness.pool, harness.config);
  ({
    tenantId,
    integrationIds: [integrationId = ''],
  } = await newTenant(harness));
  await storeAsSynced(deps(), { tenantId, integrationId }, 'Appointment', [
    appointment('appt-1', 'pat-1'),
    appointment('appt-2', 'pat-1'),
    appointment('appt-3', 'pat-1'),
  ]);
  await storeAsSynced(deps(), { tenantId, integrationId }, 'Patient', [patient('pat-1')]);
}, 120_000);

describe('an update through the gateway', () => {
  it('stores the local version, one pending encrypted change and one audit event without values, then notifies', async () => {
    const scheduler = access(tenantId, 'scheduling-sync', 'system/Appointment.cruds');
    const before = (await readBack(deps(), scheduler, 'Appointment/appt-1')).body as Record<string, unknown>;
    const calls = notifier.calls.length;
    const res = await write(scheduler, 'PUT', 'Appointment/appt-1', { ...before, status: 'cancelled' });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const etag = res.headers.etag!;
    expect(etag).toMatch(/^W\/"local-[0-9a-f-]{36}"$/);
    expect(res.headers.location).toBe(`https://gateway.test/fhir/Appointment/appt-1/_history/${etag.slice(3, -1)}`);
    expect(res.body).toMatchObject({ id: 'appt-1', status: 'cancelled', meta: { versionId: etag.slice(3, -1) } });

    const [change, ...more] = await outboxOf(harness.pool, tenantId, 'appt-1');
    expect(more).toEqual([]);
    expect(change).toMatchObject({ kind: 'update', status: 'pending', integration_id: integrationId });
    expect(change!.changed_elements).toEqual(['status']);
    expect(change!.base_version_id).toBe('1');
    expect(etag).toBe(`W/"local-${change!.id}"`);
    // The change is encrypted under the tenant's data key: its header says so.
    expect(parseCiphertextHeader(change!.ciphertext).keyId).toBe(tenantKeyId(tenantId));
    expect(change!.ciphertext.includes(Buffer.from('cancelled'))).toBe(false);
    expect(await openChange(harness.pool, keyring, change!.id)).toEqual({
      kind: 'update',
      elements: { status: 'cancelled' },
      base: { status: 'booked' },
    });

    const read = await readBack(deps(), scheduler, 'Appointment/appt-1');
    expect(read.headers.etag).toBe(etag);
    expect(read.body).toMatchObject({ status: 'cancelled' });
    expect(Date.parse(read.headers['last-modified']!)).toBeGreaterThan(Date.parse(VENDOR_UPDATED));

    const events = await auditRows(harness.pool, res.correlationId);
    const writes = events.filter((e) => e.action === 'gateway.write');
    expect(writes).toHaveLength(1);
    expect(writes[0]).toMatchObject({
      outcome: 'success',
      details: {
        consumerId: 'c-writer',
        purpose: 'scheduling-sync',
        resourceType: 'Appointment',
        resourceId: 'appt-1',
        changeId: change!.id,
        elements: ['status'],
        interaction: 'update',
      },
    });
    expect((writes[0]!.details.patients as string[]).length).toBe(1);
    expect(events.map((e) => e.action)).toContain('writeback.change_queued');
    const text = JSON.stringify(events);
    for (const value of ['cancelled', 'booked', 'pat-1', 'Synthetic follow-up']) expect(text).not.toContain(value);
    expect(notifier.calls.slice(calls)).toEqual([{ tenantId, integrationId }]);
  });

  it('bases a second change on the vendor version the first was made against, and takes If-Match', async () => {
    const scheduler = access(tenantId, 'scheduling-sync', 'system/Appointment.cu system/Appointment.r');
    const first = await write(
      scheduler,
      'PUT',
      'Appointment/appt-2',
      appointment('appt-2', 'pat-1', { status: 'arrived' }),
    );
    expect(first.status).toBe(200);
    const stale = await write(scheduler, 'PUT', 'Appointment/appt-2', appointment('appt-2', 'pat-1'), {
      ifMatch: 'W/"1"',
    });
    expect(stale.status).toBe(412);
    expect((await auditRows(harness.pool, stale.correlationId))[0]).toMatchObject({
      action: 'gateway.write',
      outcome: 'failure',
      details: { status: 412, reason: 'stale' },
    });
    const second = await write(
      scheduler,
      'PUT',
      'Appointment/appt-2',
      appointment('appt-2', 'pat-1', { status: 'fulfilled' }),
      {
        ifMatch: first.headers.etag!,
      },
    );
    expect(second.status, JSON.stringify(second.body)).toBe(200);
    const changes = await outboxOf(harness.pool, tenantId, 'appt-2');
    expect(changes.map((c) => [c.status, c.base_version_id])).toEqual([
      ['pending', '1'],
      ['pending', '1'],
    ]);
  });

  it('keeps elements hidden from the consumer purpose, and refuses an element the EHR owns naming it', async () => {
    const frontDesk = access(tenantId, 'scheduling-sync', 'system/Patient.rs system/Patient.cu');
    const view = (await readBack(deps(), frontDesk, 'Patient/pat-1')).body as Record<string, unknown>;
    expect(view.maritalStatus).toBeUndefined();
    const version = await versionOf(harness.pool, tenantId, 'Patient', 'pat-1');
    const renamed = await write(frontDesk, 'PUT', 'Patient/pat-1', { ...view, name: [{ family: 'Otherwise' }] });
    expect(renamed.status).toBe(422);
    expect(renamed.body).toMatchObject({
      resourceType: 'OperationOutcome',
      issue: [{ code: 'business-rule', expression: ['Patient.name'] }],
    });
    expect(JSON.stringify(renamed.body)).toMatch(/Patient\.name is owned by the EHR/);
    expect(await versionOf(harness.pool, tenantId, 'Patient', 'pat-1')).toBe(version);
    expect(await outboxOf(harness.pool, tenantId, 'pat-1')).toEqual([]);
    expect((await auditRows(harness.pool, renamed.correlationId))[0]).toMatchObject({
      outcome: 'failure',
      details: { status: 422, reason: 'write-policy', elements: ['name'] },
    });

    const phone = await write(frontDesk, 'PUT', 'Patient/pat-1', {
      ...view,
      telecom: [{ system: 'phone', value: '555-0199' }],
    });
    expect(phone.status, JSON.stringify(phone.body)).toBe(200);
    const [change] = await outboxOf(harness.pool, tenantId, 'pat-1');
    expect(change!.changed_elements).toEqual(['telecom']);
    // What the front desk cannot see is still there for a purpose that can.
    const clinician = access(tenantId, 'clinical-sync', 'system/Patient.r');
    expect((await readBack(deps(), clinician, 'Patient/pat-1')).body).toMatchObject({
      maritalStatus: { text: 'Synthetic' },
      telecom: [{ value: '555-0199' }],
    });
  });

  it('refuses malformed and invalid bodies (400), a missing scope (403) and DELETE (405), storing nothing', async () => {
    const scheduler = access(tenantId, 'scheduling-sync', 'system/Appointment.cu');
    const version = await versionOf(harness.pool, tenantId, 'Appointment', 'appt-3');
    const malformed = await write(scheduler, 'PUT', 'Appointment/appt-3', '{"resourceType": "Appointment",');
    expect([malformed.status, JSON.stringify(malformed.body)]).toEqual([
      400,
      expect.stringMatching(/not well-formed JSON/),
    ]);
    const wrongType = await write(scheduler, 'PUT', 'Appointment/appt-3', patient('appt-3'));
    expect(wrongType.status).toBe(400);
    const invalid = await write(
      scheduler,
      'PUT',
      'Appointment/appt-3',
      appointment('appt-3', 'pat-1', { start: 'soon' }),
    );
    expect(invalid.status).toBe(400);
    expect((invalid.body as { issue: Array<{ expression: string[] }> }).issue.map((i) => i.expression[0])).toContain(
      'Appointment.start',
    );
    const badCode = await write(
      scheduler,
      'PUT',
      'Appointment/appt-3',
      appointment('appt-3', 'pat-1', { status: 'maybe' }),
    );
    expect(badCode.body).toMatchObject({ issue: [{ code: 'code-invalid', expression: ['Appointment.status'] }] });
    const reader = access(tenantId, 'scheduling-sync', 'system/Appointment.rs');
    const noScope = await write(
      reader,
      'PUT',
      'Appointment/appt-3',
      appointment('appt-3', 'pat-1', { status: 'noshow' }),
    );
    expect(noScope.status).toBe(403);
    const deleted = await write(scheduler, 'DELETE', 'Appointment/appt-3');
    expect([deleted.status, deleted.headers.allow]).toEqual([405, 'GET, PUT, PATCH']);
    expect(JSON.stringify(deleted.body)).toMatch(/does not delete/);
    expect(await versionOf(harness.pool, tenantId, 'Appointment', 'appt-3')).toBe(version);
    expect(await outboxOf(harness.pool, tenantId, 'appt-3')).toEqual([]);
    for (const res of [malformed, wrongType, invalid, badCode, noScope, deleted])
      expect((await auditRows(harness.pool, res.correlationId))[0]).toMatchObject({
        action: 'gateway.write',
        outcome: 'failure',
        details: { status: res.status },
      });
  });

  it('refuses writes while an incident freezes the tenant (503), storing nothing', async () => {
    const scheduler = access(tenantId, 'scheduling-sync', 'system/Appointment.cu');
    const incidentId = uniqueId('inc');
    const incident = { id: incidentId, scope: `tenant:${tenantId}`, severity: 'low', reason: 'test' } as const;
    await openIncident(
      harness.pool,
      { ...incident, declaredBy: 'test', drill: true, declaredAt: new Date() },
      testActor,
    );
    await raiseHold(harness.pool, incidentId, `tenant:${tenantId}`, testActor);
    try {
      const frozen = await write(
        scheduler,
        'PUT',
        'Appointment/appt-3',
        appointment('appt-3', 'pat-1', { status: 'noshow' }),
      );
      expect([frozen.status, frozen.headers['retry-after']]).toEqual([503, '3600']);
      expect(await outboxOf(harness.pool, tenantId, 'appt-3')).toEqual([]);
    } finally {
      await liftHold(harness.pool, incidentId, testActor);
    }
  });
});
