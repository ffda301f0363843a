/**
 * While an incident holds an integration's writes, its outbox changes stay pending and its writeBack workflow
 * waits (nothing reaches the vendor); recovery lifts the hold and wakes the workflow (the containment's
 * replayQueuedWrites step: lib/incidents/pending-writes.ts wakeWriteBacks), and each change is sent exactly once —
 * through the breach containment workflow itself, and step by step beside an integration outside the scope.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { approveResumption, declareIncident, incidentTimeline } from '../../client/incident-client.js';
import { wakeWriteBacks } from '../../lib/incidents/pending-writes.js';
import { registerSandboxAdmin } from '../../lib/incidents/sandbox-admins.js';
import { uniqueId } from '../harness.js';
import { liftHold, openIncident, raiseHold } from '../../lib/incidents/store.js';
import { writeBackWorkflowId } from '../../lib/writeback/notifier.js';
import { getOutboxChange } from '../../lib/writeback/outbox-repository.js';
import { temporalOutboxNotifier } from '../../workers/outbox-notifier.js';
import { outboxChangedSignal, writeBack, writeBackProgressQuery } from '../../workflows/write-back.js';
import { sandboxManifest, testActor, useSyncHarness } from './support.js';
import { effectsOf, queueUpdate, settled, vendorCopy, wakeWriteBack, writeBackTenant } from './write-back-support.js';

const harness = useSyncHarness({ sandbox: { size: 300 } });

describe('write-back under an incident', () => {
  it('through breach containment: writes held while contained, sent once each after approval', async () => {
    const { sandbox, config } = harness;
    const client = harness.temporal.client;
    // Recovery re-registers the integration's client with the sandbox (fresh key; write scopes included).
    registerSandboxAdmin(sandbox.fhirBaseUrl, { url: sandbox.url, adminToken: sandbox.adminToken });
    const t = await writeBackTenant(harness);
    const ids = (await sandboxManifest(sandbox, 'Appointment')).map((m) => m.id).slice(10, 12);
    const incidentId = uniqueId('inc');
    const handle = await declareIncident(client, config.TEMPORAL_TASK_QUEUE, {
      incidentId,
      scope: `integration:${t.integrationId}`,
      severity: 'high',
      reason: 'synthetic drill: write-back held',
      declaredBy: 'alice@example.org',
      drill: true,
      rotationGraceSeconds: 1,
      vendorJwksCacheSeconds: 1,
      notificationDeadlineSeconds: 3600,
      reminderOffsetsSeconds: [],
      businessAssociateNoticeSeconds: 3600,
      catchUpSync: false,
    });
    await expect
      .poll(async () => (await incidentTimeline(handle)).status, { timeout: 60_000, interval: 200 })
      .toBe('awaiting-approval');

    const queued = [];
    for (const id of ids) queued.push(await queueUpdate(harness, t, 'Appointment', id, { status: 'cancelled' }));
    // A send that fails while recovery settles (a loaded machine's token exchange after the key rotation) is tried
    // again after the recheck interval: 2 s here rather than the default minute.
    await client.workflow.signalWithStart(writeBack, {
      workflowId: writeBackWorkflowId(t.integrationId),
      taskQueue: config.TEMPORAL_TASK_QUEUE,
      args: [{ tenantId: t.tenantId, integrationId: t.integrationId, holdRecheckSeconds: 2 }],
      signal: outboxChangedSignal,
      signalArgs: [],
    });
    const writeBackHandle = client.workflow.getHandle(writeBackWorkflowId(t.integrationId));
    await expect
      .poll(async () => (await writeBackHandle.query(writeBackProgressQuery)).heldBy, { timeout: 30_000 })
      .toBe(incidentId);
    for (const id of queued) expect((await getOutboxChange(harness.pool, id))?.status).toBe('pending');

    await approveResumption(handle, { by: 'bob@example.org' });
    // Recovery: fresh credentials, the hold lifted, queued writes replayed (the incident then waits for its
    // notifications, which this test does not record).
    const replayed = async () =>
      (await incidentTimeline(handle)).entries.find((e) => e.step === 'queued-writes-replayed')?.detail;
    await expect
      .poll(replayed, { timeout: 90_000, interval: 500 })
      .toMatchObject({ writeBacksWoken: [t.integrationId] });
    for (const id of queued) {
      const change = await settled(harness.pool, id, 120_000);
      expect(change.status).toBe('sent');
      expect(await effectsOf(harness, change)).toBe(1);
    }
    await handle.terminate('test done');
  });

  it('holds changes pending while the incident holds writes; after recovery each is sent exactly once', async () => {
    const held = await writeBackTenant(harness);
    const free = await writeBackTenant(harness);
    const ids = (await sandboxManifest(harness.sandbox, 'Appointment')).map((m) => m.id);
    const incidentId = `inc-${randomUUID()}`;
    await openIncident(
      harness.pool,
      {
        id: incidentId,
        scope: `integration:${held.integrationId}`,
        severity: 'high',
        reason: 'drill: write-back hold',
        declaredBy: 'test',
        drill: true,
        declaredAt: new Date(),
      },
      testActor,
    );
    await raiseHold(harness.pool, incidentId, `integration:${held.integrationId}`, testActor);

    const queued = [
      await queueUpdate(harness, held, 'Appointment', ids[0]!, { status: 'cancelled' }),
      await queueUpdate(harness, held, 'Appointment', ids[1]!, { status: 'cancelled' }),
    ];
    const elsewhere = await queueUpdate(harness, free, 'Appointment', ids[2]!, { status: 'cancelled' });
    await wakeWriteBack(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, held);
    await wakeWriteBack(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, free);

    // The integration outside the scope writes on; the held one waits, its workflow saying why.
    expect(await settled(harness.pool, elsewhere)).toMatchObject({ status: 'sent' });
    const handle = harness.temporal.client.workflow.getHandle(writeBackWorkflowId(held.integrationId));
    await expect
      .poll(async () => (await handle.query(writeBackProgressQuery)).heldBy, { timeout: 30_000 })
      .toBe(incidentId);
    // Woken again while held: still nothing goes.
    await wakeWriteBack(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, held);
    await new Promise((r) => setTimeout(r, 1_500));
    for (const id of queued) {
      const change = (await getOutboxChange(harness.pool, id))!;
      expect(change.status).toBe('pending');
      expect(await effectsOf(harness, change)).toBe(0);
    }
    expect((await vendorCopy(harness, 'Appointment', ids[0]!)).meta).toMatchObject({ versionId: '1' });

    // Recovery: the hold is lifted and the held integrations' write-backs are woken.
    await liftHold(harness.pool, incidentId, testActor);
    const notifier = temporalOutboxNotifier(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE);
    const woken = await wakeWriteBacks({ pool: harness.pool, outbox: notifier }, [held, free]);
    expect(woken).toEqual([held.integrationId]);
    for (const id of queued) {
      const change = await settled(harness.pool, id);
      expect(change.status).toBe('sent');
      expect(await effectsOf(harness, change)).toBe(1);
    }
    expect(await handle.query(writeBackProgressQuery)).toMatchObject({ sent: 2, heldBy: null, held: 1 });
  });
});
