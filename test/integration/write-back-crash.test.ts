/**
 * Exactly one effect per change across worker crashes: the worker process is SIGKILLed while the vendor has
 * carried out a write but not yet answered it (the sandbox holds the answer back), once during a create and once
 * during an update. The restarted worker sends again — the create meets its Idempotency-Key / If-None-Exist, the
 * update finds its values already there — and the sandbox's write ledger shows one write per change.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { ChildWorker } from './child-worker.js';
import { KILLED_WORKER_CONFIG, startChildWorker } from './child-worker.js';
import { writeBackWorkflowId } from '../../lib/writeback/notifier.js';
import { outboxChangedSignal, writeBack } from '../../workflows/write-back.js';
import { sandboxAdmin, sandboxManifest, useSyncHarness } from './support.js';
import type { WriteBackTenant } from './write-back-support.js';
import {
  queueLocalChange,
  queueUpdate,
  settled,
  vendorCopy,
  writeBackTenant,
  writesLedger,
} from './write-back-support.js';
import { getOutboxChange } from '../../lib/writeback/outbox-repository.js';

const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ehr-writeback-crash-'));
const harness = useSyncHarness({ sandbox: { size: 300 }, config: KILLED_WORKER_CONFIG, worker: false });

/**
 * A killed worker's send is sent again once Temporal misses its heartbeats this long: 5 s instead of the preset's
 * 10 s (a send heartbeats every 2 s), so each of the two crashes is noticed 5 s sooner. What the test checks is
 * the resend's single effect, not the timeout; a send that timed out spuriously would be one more resend.
 */
const SEND_HEARTBEAT_TIMEOUT_SECONDS = 5;

/** What the outbox notifier does (workers/outbox-notifier.ts), with the workflow's shorter send heartbeat timeout. */
async function wakeWriteBack(t: WriteBackTenant): Promise<void> {
  await harness.temporal.client.workflow.signalWithStart(writeBack, {
    workflowId: writeBackWorkflowId(t.integrationId),
    taskQueue: harness.config.TEMPORAL_TASK_QUEUE,
    args: [
      {
        tenantId: t.tenantId,
        integrationId: t.integrationId,
        sendHeartbeatTimeoutSeconds: SEND_HEARTBEAT_TIMEOUT_SECONDS,
      },
    ],
    signal: outboxChangedSignal,
    signalArgs: [],
  });
}

async function keyOf(changeId: string): Promise<string> {
  return (await getOutboxChange(harness.pool, changeId))!.idempotencyKey;
}

/** Waits until the sandbox has carried out a write of this key (its answer is still held back). */
async function writtenAtVendor(key: string): Promise<void> {
  await expect
    .poll(async () => (await writesLedger(harness)).ledger.find((r) => r.key === key)?.effects ?? 0, {
      timeout: 60_000,
      interval: 100,
    })
    .toBe(1);
}

async function kill(worker: ChildWorker): Promise<void> {
  worker.child.kill('SIGKILL');
  await worker.exited;
}

async function queueCreate(t: WriteBackTenant, patient: string): Promise<string> {
  const localId = `local-${randomUUID()}`;
  const resource = {
    resourceType: 'Appointment',
    status: 'proposed',
    start: '2026-12-28T08:00:00Z',
    end: '2026-12-28T08:15:00Z',
    participant: [{ actor: { reference: `Patient/${patient}` }, status: 'needs-action' }],
  };
  return queueLocalChange(
    harness.pool,
    t,
    { resourceType: 'Appointment', resourceId: localId, baseVersionId: null, payload: { kind: 'create', resource } },
    { ...resource, id: localId },
  );
}

describe('write-back across worker crashes', () => {
  it('a SIGKILL after the vendor wrote and before it answered leaves exactly one effect per change', async () => {
    const t = await writeBackTenant(harness);
    const patient = (await sandboxManifest(harness.sandbox, 'Patient'))[0]!.id;
    const target = (await sandboxManifest(harness.sandbox, 'Appointment'))[0]!.id;
    const create = await queueCreate(t, patient);
    const update = await queueUpdate(harness, t, 'Appointment', target, { status: 'cancelled' });
    // The next two writes are carried out at once and answered 8 s later: the window the worker dies in.
    await sandboxAdmin(harness.sandbox, 'POST', '/admin/write-slow', {
      delayMs: 8_000,
      resourceType: 'Appointment',
      times: 2,
    });

    const first = await startChildWorker(harness.config, path.join(logDir, 'worker-1.log'));
    await wakeWriteBack(t);
    await writtenAtVendor(await keyOf(create));
    await kill(first);

    const second = await startChildWorker(harness.config, path.join(logDir, 'worker-2.log'));
    expect(await settled(harness.pool, create, 90_000)).toMatchObject({ status: 'sent', vendorStatus: 201 });
    await writtenAtVendor(await keyOf(update));
    await kill(second);

    const third = await startChildWorker(harness.config, path.join(logDir, 'worker-3.log'));
    try {
      expect(await settled(harness.pool, update, 90_000)).toMatchObject({ status: 'sent' });
      const ledger = await writesLedger(harness);
      const rows = (key: string) => ledger.ledger.filter((r) => r.key === key);
      // One version written per change; the create's resend was answered from the vendor's idempotency record.
      expect(rows(await keyOf(create)).reduce((n, r) => n + r.effects, 0)).toBe(1);
      expect(rows(await keyOf(create)).reduce((n, r) => n + r.noEffect, 0)).toBeGreaterThanOrEqual(1);
      expect(rows(await keyOf(update)).reduce((n, r) => n + r.effects, 0)).toBe(1);
      const created = (await getOutboxChange(harness.pool, create))!.vendorResourceId!;
      expect((await vendorCopy(harness, 'Appointment', created)).meta).toMatchObject({ versionId: '1' });
      expect(await vendorCopy(harness, 'Appointment', target)).toMatchObject({
        status: 'cancelled',
        meta: { versionId: '2' },
      });
    } finally {
      third.child.kill('SIGTERM');
      expect(await third.exited).toBe(0);
    }
  });
});
