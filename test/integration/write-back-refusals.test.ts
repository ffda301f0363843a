/**
 * A change the vendor refuses (422, or a 409 that is no version conflict, with an OperationOutcome) stays in the
 * outbox as `refused`, with the HTTP status and the issue code, and is never dropped: `ehrctl writes retry` sends it
 * again once the cause is gone, `ehrctl writes cancel` keeps it as cancelled. A 503 is retried by the activity,
 * never marked. `writes list` and `show` print ids, element names and codes — never values.
 */
import { describe, expect, it } from 'vitest';
import { getOutboxChange } from '../../lib/writeback/outbox-repository.js';
import { ehrctlEnv, runEhrctl } from './ehrctl-process.js';
import { sandboxAdmin, sandboxManifest, useSyncHarness } from './support.js';
import { effectsOf, queueUpdate, settled, vendorCopy, wakeWriteBack, writeBackTenant } from './write-back-support.js';

const harness = useSyncHarness({ sandbox: { size: 300 } });

const ehrctl = (args: string[]) => runEhrctl(args, ehrctlEnv({ config: harness.config }));

describe('refused write-backs', () => {
  it('a 422 (or a 409 that is no version conflict) stays refused with its code, is retried by `writes retry` and sent once; `cancel` keeps it', async () => {
    const t = await writeBackTenant(harness);
    const [a, b] = (await sandboxManifest(harness.sandbox, 'Appointment')).map((m) => m.id);
    await sandboxAdmin(harness.sandbox, 'POST', '/admin/write-faults', {
      status: 422,
      code: 'business-rule',
      resourceType: 'Appointment',
      times: 1,
    });
    // A 409 that is not a version conflict (the version did not move): a refusal too.
    await sandboxAdmin(harness.sandbox, 'POST', '/admin/write-faults', {
      status: 409,
      code: 'business-rule',
      resourceType: 'Appointment',
      times: 1,
    });
    const first = await queueUpdate(harness, t, 'Appointment', a!, { status: 'cancelled', cancelationReason: null });
    const second = await queueUpdate(harness, t, 'Appointment', b!, { status: 'cancelled' });
    await wakeWriteBack(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, t);

    const refused = await settled(harness.pool, first);
    expect(refused).toMatchObject({ status: 'refused', vendorStatus: 422, vendorOutcomeCode: 'business-rule' });
    expect(await settled(harness.pool, second)).toMatchObject({ status: 'refused', vendorStatus: 409 });
    expect(await effectsOf(harness, refused)).toBe(0);

    const list = await ehrctl(['writes', 'list', '--integration', t.integrationId, '--status', 'refused']);
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(first);
    expect(list.stdout).toContain('422 business-rule');
    expect(list.stdout).toContain('cancelationReason,status');
    const show = await ehrctl(['writes', 'show', first]);
    expect(show.stdout).toMatch(/status\s+refused/);
    expect(show.stdout).not.toContain('cancelled'); // the values stay encrypted in the outbox

    // The cause is gone (the faults were used up): retry sends it, once.
    const retried = await ehrctl(['writes', 'retry', first]);
    expect(retried.code).toBe(0);
    const sent = await settled(harness.pool, first);
    expect(sent).toMatchObject({ status: 'sent', vendorStatus: 200 });
    expect((await vendorCopy(harness, 'Appointment', a!)).status).toBe('cancelled');
    expect(await effectsOf(harness, sent)).toBe(1);

    const cancelled = await ehrctl(['writes', 'cancel', second]);
    expect(cancelled.code).toBe(0);
    expect((await getOutboxChange(harness.pool, second))?.status).toBe('cancelled');
    // Neither can be moved again: a sent change is not retried, a cancelled one not cancelled twice.
    const again = await ehrctl(['writes', 'retry', first]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('is sent');

    const audit = await harness.pool.query<{ action: string; n: string }>(
      `SELECT action, count(*) AS n FROM audit_events
        WHERE integration_id = $1 AND action LIKE 'writeback.%' GROUP BY action ORDER BY action`,
      [t.integrationId],
    );
    expect(Object.fromEntries(audit.rows.map((r) => [r.action, Number(r.n)]))).toEqual({
      'writeback.cancelled': 1,
      'writeback.change_queued': 2,
      'writeback.refused': 2,
      'writeback.retried': 1,
      'writeback.sent': 1,
    });
  });

  it('a 503 is retried by the activity and the change is sent once, never marked refused', async () => {
    const t = await writeBackTenant(harness);
    const id = (await sandboxManifest(harness.sandbox, 'Appointment'))[5]!.id;
    const changeId = await queueUpdate(harness, t, 'Appointment', id, { status: 'cancelled' });
    await sandboxAdmin(harness.sandbox, 'POST', '/admin/write-faults', {
      status: 503,
      code: 'transient',
      retryAfterSeconds: 1,
      resourceType: 'Appointment',
      times: 1,
    });
    await wakeWriteBack(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, t);
    const change = await settled(harness.pool, changeId);
    expect(change).toMatchObject({ status: 'sent', vendorStatus: 200 });
    expect(change.attempts).toBeGreaterThanOrEqual(2);
    expect(await effectsOf(harness, change)).toBe(1);
  });
});
