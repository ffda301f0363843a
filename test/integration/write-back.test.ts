/**
 * Write-back end to end: a change queued in the outbox (as the gateway queues it) is sent by the writeBack
 * workflow through the vendor door to the sandbox — an update with If-Match on the vendor's version, a create
 * with If-None-Exist on our identifier — and the vendor's answer becomes the local record. A stale version meets
 * the sandbox's 412 and takes the policy path: a `local` element is applied anyway, a `shared` one parks a
 * conflict; a record deleted at the vendor becomes a conflict, never a re-create.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { openConflictSides } from '../../lib/writeback/conflicts.js';
import { writeBackWorkflowId } from '../../lib/writeback/notifier.js';
import { writeBack, writeBackProgressQuery } from '../../workflows/write-back.js';
import { sandboxAdmin, sandboxManifest, storedVersions, useSyncHarness } from './support.js';
import {
  effectsOf,
  queueLocalChange,
  queueUpdate,
  settled,
  vendorCopy,
  wakeWriteBack,
  writeBackTenant,
  writesLedger,
} from './write-back-support.js';

const harness = useSyncHarness({ sandbox: { size: 400 } });

/** A generated record of the type nobody else in this file writes to. */
let picked = 0;
async function someRecord(type: string): Promise<string> {
  const manifest = await sandboxManifest(harness.sandbox, type);
  return manifest[picked++ * 3]!.id;
}

const otherStatus = (s: unknown): string => (s === 'cancelled' ? 'noshow' : 'cancelled');

describe('writeBack', () => {
  it('sends an update with If-Match on the vendor version; the answer becomes the local record', async () => {
    const t = await writeBackTenant(harness);
    const id = await someRecord('Appointment');
    const before = await vendorCopy(harness, 'Appointment', id);
    const status = otherStatus(before.status);
    const changeId = await queueUpdate(harness, t, 'Appointment', id, { status });
    await wakeWriteBack(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, t);

    const change = await settled(harness.pool, changeId);
    expect(change).toMatchObject({ status: 'sent', vendorStatus: 200, vendorResourceId: id, vendorVersionId: '2' });
    const after = await vendorCopy(harness, 'Appointment', id);
    expect(after.status).toBe(status);
    expect(after.meta).toMatchObject({ versionId: '2' });
    // Everything else is the vendor's, as it was.
    expect(after.start).toEqual(before.start);
    expect(after.participant).toEqual(before.participant);
    const row = (await writesLedger(harness)).ledger.find((r) => r.key === change.idempotencyKey);
    expect(row).toMatchObject({ method: 'PUT', ifMatch: 'W/"1"', effects: 1 });
    // local = vendor again: the stored record carries the vendor's version.
    expect((await storedVersions(harness.pool, t.tenantId, t.integrationId, 'Appointment')).get(id)).toBe('2');

    const handle = harness.temporal.client.workflow.getHandle(writeBackWorkflowId(t.integrationId));
    const progress = await handle.query(writeBackProgressQuery);
    expect(progress).toMatchObject({ sent: 1, refused: 0, conflict: 0, pending: expect.any(Number) });
  });

  it('creates with If-None-Exist on our identifier, never sends local-only elements, replaces the local id', async () => {
    const t = await writeBackTenant(harness);
    const patient = await someRecord('Patient');
    const localId = `local-${randomUUID()}`;
    const resource = {
      resourceType: 'Appointment',
      status: 'proposed',
      start: '2026-12-24T09:00:00Z',
      end: '2026-12-24T09:20:00Z',
      participant: [{ actor: { reference: `Patient/${patient}` }, status: 'needs-action' }],
      comment: 'synthetic local note',
    };
    const changeId = await queueLocalChange(
      harness.pool,
      t,
      { resourceType: 'Appointment', resourceId: localId, baseVersionId: null, payload: { kind: 'create', resource } },
      { ...resource, id: localId },
    );
    await wakeWriteBack(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, t);

    const change = await settled(harness.pool, changeId);
    expect(change).toMatchObject({ status: 'sent', vendorStatus: 201, vendorVersionId: '1' });
    const vendorId = change.vendorResourceId!;
    expect(vendorId).not.toBe(localId);
    const copy = await vendorCopy(harness, 'Appointment', vendorId);
    expect(copy).toMatchObject({ status: 'proposed', start: resource.start });
    expect(copy.comment).toBeUndefined();
    expect(copy.identifier).toEqual([{ system: 'urn:ehr-connectors:outbox-change', value: changeId }]);
    const row = (await writesLedger(harness)).ledger.find((r) => r.key === change.idempotencyKey);
    expect(row).toMatchObject({
      method: 'POST',
      ifNoneExist: `identifier=urn:ehr-connectors:outbox-change|${changeId}`,
      effects: 1,
    });
    const stored = await storedVersions(harness.pool, t.tenantId, t.integrationId, 'Appointment');
    expect(stored.get(vendorId)).toBe('1');
    expect(stored.has(localId)).toBe(false);
  });

  it('a stale version meets 412; a local element is re-read and applied on the new version', async () => {
    const t = await writeBackTenant(harness);
    const id = await someRecord('Appointment');
    const before = await vendorCopy(harness, 'Appointment', id);
    const status = otherStatus(before.status);
    const changeId = await queueUpdate(harness, t, 'Appointment', id, { status });
    // Someone at the vendor saves a different status the moment our update arrives.
    await sandboxAdmin(harness.sandbox, 'POST', '/admin/conflicting-edit', {
      resourceType: 'Appointment',
      id,
      elements: { status: 'arrived' },
      onNextWrite: true,
    });
    const preconditionFailed = (await writesLedger(harness)).preconditionFailed;
    await wakeWriteBack(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, t);

    const change = await settled(harness.pool, changeId);
    expect(change).toMatchObject({ status: 'sent', vendorVersionId: '3' });
    expect((await writesLedger(harness)).preconditionFailed).toBe(preconditionFailed + 1);
    expect((await vendorCopy(harness, 'Appointment', id)).status).toBe(status);
    expect(await effectsOf(harness, change)).toBe(1);
  });

  it('a stale version of a shared element parks a stale-write conflict with both sides; nothing is written', async () => {
    const t = await writeBackTenant(harness);
    const id = await someRecord('Appointment');
    const changeId = await queueUpdate(harness, t, 'Appointment', id, { start: '2026-12-30T10:00:00Z' });
    await sandboxAdmin(harness.sandbox, 'POST', '/admin/conflicting-edit', {
      resourceType: 'Appointment',
      id,
      elements: { start: '2026-12-31T11:00:00Z' },
      onNextWrite: true,
    });
    await wakeWriteBack(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, t);

    const change = await settled(harness.pool, changeId);
    expect(change.status).toBe('conflict');
    expect(await effectsOf(harness, change)).toBe(0);
    const conflict = await harness.pool.query<{
      reason: string;
      elements: string[];
      source: string;
      change_id: string;
    }>('SELECT reason, elements, source, change_id FROM reconcile_conflicts WHERE id = $1', [change.conflictId]);
    expect(conflict.rows[0]).toEqual({
      reason: 'stale-write',
      elements: ['start'],
      source: 'write-back',
      change_id: changeId,
    });
    expect(await openConflictSides(harness.pool, t.keyring, change.conflictId!)).toEqual({
      local: { start: '2026-12-30T10:00:00Z' },
      remote: { start: '2026-12-31T11:00:00Z' },
    });
    expect((await vendorCopy(harness, 'Appointment', id)).start).toBe('2026-12-31T11:00:00Z');
  });

  it('continues as new after its changes per run, carrying its counts, and goes on draining', async () => {
    const t = await writeBackTenant(harness);
    const ids = [await someRecord('Appointment'), await someRecord('Appointment'), await someRecord('Appointment')];
    const changes = [];
    for (const id of ids) changes.push(await queueUpdate(harness, t, 'Appointment', id, { status: 'cancelled' }));
    const handle = await harness.temporal.client.workflow.start(writeBack, {
      workflowId: writeBackWorkflowId(t.integrationId),
      taskQueue: harness.config.TEMPORAL_TASK_QUEUE,
      args: [{ tenantId: t.tenantId, integrationId: t.integrationId, changesPerRun: 2 }],
    });
    for (const id of changes) expect((await settled(harness.pool, id)).status).toBe('sent');
    await expect
      .poll(async () => (await handle.query(writeBackProgressQuery)).continuedAsNew, { timeout: 30_000 })
      .toBe(1);
    expect((await handle.describe()).runId).not.toBe(handle.firstExecutionRunId);
    // The new run drains what comes next, its counts carried over.
    const later = await queueUpdate(harness, t, 'Appointment', await someRecord('Appointment'), {
      status: 'cancelled',
    });
    await wakeWriteBack(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, t);
    expect((await settled(harness.pool, later)).status).toBe('sent');
    await expect.poll(async () => (await handle.query(writeBackProgressQuery)).sent).toBe(4);
  });

  it('a record deleted at the vendor becomes a deleted-remote conflict, never a re-create', async () => {
    const t = await writeBackTenant(harness);
    const id = await someRecord('Appointment');
    const changeId = await queueUpdate(harness, t, 'Appointment', id, { status: 'cancelled' });
    await sandboxAdmin(harness.sandbox, 'POST', '/admin/records/delete', { resourceType: 'Appointment', ids: [id] });
    const created = (await writesLedger(harness)).created;
    await wakeWriteBack(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, t);

    const change = await settled(harness.pool, changeId);
    expect(change.status).toBe('conflict');
    const conflict = await harness.pool.query<{ reason: string }>(
      'SELECT reason FROM reconcile_conflicts WHERE id = $1',
      [change.conflictId],
    );
    expect(conflict.rows[0]?.reason).toBe('deleted-remote');
    expect((await writesLedger(harness)).created).toBe(created);
    expect(await effectsOf(harness, change)).toBe(0);
  });
});
