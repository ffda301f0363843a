/**
 * A consumer's create sent again with its Idempotency-Key (a dropped connection, a restarted job) creates one
 * resource, locally and at the EHR: the repeat answers what the first created (under the EHR's id once sent),
 * marked `Idempotent-Replayed`; the key with another body is refused 422; concurrent repeats create one; keys are
 * each consumer's own and forgotten after 24 hours. Real Temporal (writeBack to the sandbox), real PostgreSQL.
 */
import { describe, expect, it } from 'vitest';
import { createPool } from '../../lib/store/pool.js';
import { testEnv } from '../harness.js';
import { access, appointment, auditRows, outboxOf, temporalWriter } from './gateway-write-support.js';
import { syncedSandboxTenant } from './stored-records.js';
import { sandboxManifest, useSyncHarness } from './support.js';
import { settled, writesLedger } from './write-back-support.js';

const harness = useSyncHarness({ sandbox: { size: 20 } });
const { write, open } = temporalWriter(harness);

function newAppointment(patientId: string, description: string): Record<string, unknown> {
  const { id: _id, ...rest } = appointment('ignored', patientId, { status: 'proposed', description });
  return rest;
}

async function appointmentsStored(tenantId: string): Promise<number> {
  const { rows } = await harness.pool.query<{ n: string }>(
    `SELECT count(*) AS n FROM records WHERE tenant_id = $1 AND resource_type = 'Appointment'`,
    [tenantId],
  );
  return Number(rows[0]!.n);
}

describe('creates with an Idempotency-Key', () => {
  it('a repeat creates nothing more, here or at the EHR, and answers what the first created', async () => {
    await open();
    const { tenantId } = await syncedSandboxTenant(harness, ['Patient', 'Appointment']);
    const patientId = (await sandboxManifest(harness.sandbox, 'Patient'))[0]!.id;
    const scheduler = access(tenantId, 'scheduling-sync', 'system/Appointment.cruds');
    const other = access(tenantId, 'scheduling-sync', 'system/Appointment.cruds', 'c-other-writer');
    const body = newAppointment(patientId, 'Synthetic idempotent visit');
    const key = { idempotencyKey: 'job-42:appointment:7' };
    const createdAtEhr = (await writesLedger(harness)).created;
    const storedBefore = await appointmentsStored(tenantId);

    const first = await write(scheduler, 'POST', 'Appointment', body, key);
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    const localId = (first.body as { id: string }).id;

    // Sent again before the change reached the EHR: the same local record, nothing queued twice.
    const again = await write(scheduler, 'POST', 'Appointment', body, key);
    expect(again.status).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.headers.location).toBe(first.headers.location);
    expect(again.body).toEqual(first.body);
    const [change, ...more] = await outboxOf(harness.pool, tenantId, localId);
    expect(more).toEqual([]);
    expect(await appointmentsStored(tenantId)).toBe(storedBefore + 1);
    const [replayEvent] = (await auditRows(harness.pool, again.correlationId)).filter(
      (e) => e.action === 'gateway.write',
    );
    expect(replayEvent).toMatchObject({
      outcome: 'success',
      details: { reason: 'idempotent-replay', status: 201, resourceId: localId },
    });

    // The same key with another request is refused, and stores nothing.
    const changed = await write(
      scheduler,
      'POST',
      'Appointment',
      newAppointment(patientId, 'Synthetic other visit'),
      key,
    );
    expect(changed.status).toBe(422);
    expect(JSON.stringify(changed.body)).toContain('Idempotency-Key');
    expect(await appointmentsStored(tenantId)).toBe(storedBefore + 1);

    // Sent again after the EHR created it: its id at the EHR, and still one resource there.
    const sent = await settled(harness.pool, change!.id);
    expect(sent).toMatchObject({ status: 'sent' });
    const vendorId = sent.vendorResourceId!;
    expect(vendorId).not.toBe(localId);
    const late = await write(scheduler, 'POST', 'Appointment', body, key);
    expect(late.status).toBe(201);
    expect(late.headers['idempotent-replayed']).toBe('true');
    expect((late.body as { id: string }).id).toBe(vendorId);
    expect(late.headers.location).toMatch(new RegExp(`/Appointment/${vendorId}/_history/`));
    expect((await writesLedger(harness)).created).toBe(createdAtEhr + 1);
    expect(await appointmentsStored(tenantId)).toBe(storedBefore + 1);

    // Keys are each consumer's own: another consumer's same key is a new create.
    const theirs = await write(other, 'POST', 'Appointment', body, key);
    expect(theirs.status).toBe(201);
    expect(theirs.headers['idempotent-replayed']).toBeUndefined();
    expect((theirs.body as { id: string }).id).not.toBe(localId);
  });

  it('concurrent repeats create one record; a malformed key is refused; a key is forgotten after 24 hours', async () => {
    await open();
    const { tenantId } = await syncedSandboxTenant(harness, ['Patient', 'Appointment']);
    const patientId = (await sandboxManifest(harness.sandbox, 'Patient'))[0]!.id;
    const scheduler = access(tenantId, 'scheduling-sync', 'system/Appointment.cruds');
    const body = newAppointment(patientId, 'Synthetic concurrent visit');
    const storedBefore = await appointmentsStored(tenantId);

    const answers = await Promise.all(
      Array.from({ length: 6 }, () =>
        write(scheduler, 'POST', 'Appointment', body, { idempotencyKey: 'burst-0001-appointment' }),
      ),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(6).fill(201));
    expect(answers.filter((a) => a.headers['idempotent-replayed'] === undefined)).toHaveLength(1);
    expect(new Set(answers.map((a) => (a.body as { id: string }).id)).size).toBe(1);
    expect(await appointmentsStored(tenantId)).toBe(storedBefore + 1);
    expect(await outboxOf(harness.pool, tenantId, (answers[0]!.body as { id: string }).id)).toHaveLength(1);

    for (const bad of ['short', 'has space in it', 'x'.repeat(256)]) {
      const refused = await write(scheduler, 'POST', 'Appointment', body, { idempotencyKey: bad });
      expect(refused.status).toBe(400);
    }
    expect(await appointmentsStored(tenantId)).toBe(storedBefore + 1);

    // 24 hours on (the operator's clock moved by hand), the key is forgotten: the same request creates anew.
    const owner = createPool(testEnv().ownerDatabaseUrl, 1);
    try {
      await owner.query(
        `UPDATE gateway_idempotency_keys SET created_at = created_at - interval '25 hours' WHERE tenant_id = $1`,
        [tenantId],
      );
    } finally {
      await owner.end();
    }
    const later = await write(scheduler, 'POST', 'Appointment', body, { idempotencyKey: 'burst-0001-appointment' });
    expect([later.status, later.headers['idempotent-replayed']]).toEqual([201, undefined]);
    expect(await appointmentsStored(tenantId)).toBe(storedBefore + 2);
  });
});
