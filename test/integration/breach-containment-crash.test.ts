/**
 * Containment survives its worker: the worker process is SIGKILLed while the revoke step waits for
 * workers' acknowledgements (held open by a listener that never acknowledges, as a stalled worker
 * would), a new worker is started, and containment completes — each step's side effect exactly once
 * (one revocation per integration, one hold, one schedule pause, one evidence package).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { scheduleIdFor } from '../../lib/domain.js';
import { scheduleNightlySync, startSync } from '../../client/sync-client.js';
import { approveResumption, declareIncident, incidentTimeline } from '../../client/incident-client.js';
import { verifyEvidence } from '../../lib/incidents/evidence.js';
import { REVOCATION_CHANNEL, WATCHER_APPLICATION_NAME } from '../../lib/revocation/watcher.js';
import { testEnv, uniqueId } from '../harness.js';
import { startChildWorker } from './child-worker.js';
import { registerSandboxTenant, useSyncHarness } from './support.js';

const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ehr-containment-crash-'));
const harness = useSyncHarness({ sandbox: { size: 1000 }, config: { EHR_SYNC_PAGE_SIZE: '5' }, worker: false });

async function auditCount(action: string, incidentId: string, integrationIds: string[] = []): Promise<number> {
  const res = await harness.pool.query<{ n: string }>(
    `SELECT count(*) AS n FROM audit_events WHERE action = $1 AND (correlation_id = $2 OR integration_id = ANY($3))`,
    [action, incidentId, integrationIds],
  );
  return Number(res.rows[0]!.n);
}

describe('breach containment across a worker crash', () => {
  it('completes containment after the worker is killed mid-step, without repeating a side effect', async () => {
    const { pool, config } = harness;
    const { tenantId, integrationIds } = await registerSandboxTenant(pool, harness.sandbox, {
      resourceTypes: ['Patient'],
      integrations: 2,
    });
    await scheduleNightlySync(
      harness.temporal.client,
      config.TEMPORAL_TASK_QUEUE,
      { tenantId, integrationId: integrationIds[0]!, vendor: 'sandbox' },
      { hour: 2, minute: 0, timezone: 'UTC' },
    );
    // A listener that counts as a worker but never acknowledges: revoke waits its full 5 s.
    const stalled = new pg.Client({
      connectionString: testEnv().databaseUrl,
      application_name: WATCHER_APPLICATION_NAME,
    });
    await stalled.connect();
    await stalled.query(`LISTEN ${REVOCATION_CHANNEL}`);
    const first = await startChildWorker(config, path.join(logDir, 'worker-1.log'));
    let second: typeof first | undefined;
    try {
      await startSync(harness.temporal.client, config.TEMPORAL_TASK_QUEUE, {
        tenantId,
        integrationId: integrationIds[1]!,
        vendor: 'sandbox',
      });
      const incidentId = uniqueId('inc');
      const handle = await declareIncident(harness.temporal.client, config.TEMPORAL_TASK_QUEUE, {
        incidentId,
        scope: `tenant:${tenantId}`,
        severity: 'high',
        reason: 'synthetic crash drill',
        declaredBy: 'alice@example.org',
        eradicate: false,
        notificationDeadlineSeconds: 3600,
        businessAssociateNoticeSeconds: 3600,
      });
      // Revocations committed; the step is now waiting for acknowledgements. Kill the worker.
      await expect
        .poll(() => auditCount('integration.revoked', incidentId, integrationIds), { timeout: 60_000, interval: 50 })
        .toBe(2);
      // Resumption cannot be approved while containment is still running, whoever asks (the update
      // is answered by whichever worker runs the incident next).
      const early = approveResumption(handle, { by: 'bob@example.org' }).then(
        () => undefined,
        (err: unknown) => err,
      );
      first.child.kill('SIGKILL');
      await first.exited;

      second = await startChildWorker(config, path.join(logDir, 'worker-2.log'));
      expect(await early).toMatchObject({
        cause: { message: expect.stringMatching(/before containment and evidence/) },
      });
      await expect
        .poll(async () => (await incidentTimeline(handle)).status, { timeout: 120_000, interval: 250 })
        .toBe('awaiting-approval');
      const t = await incidentTimeline(handle);
      expect(t.entries.map((e) => e.step)).toEqual(
        expect.arrayContaining([
          'credentials-revoked',
          'scope-held',
          'schedules-paused',
          'syncs-cancelled',
          'contained',
          'evidence-preserved',
        ]),
      );

      // Each side effect once.
      expect(await auditCount('incident.declared', incidentId)).toBe(1);
      expect(await auditCount('integration.revoked', incidentId, integrationIds)).toBe(2);
      expect(await auditCount('incident.hold_raised', incidentId)).toBe(1);
      expect(await auditCount('incident.schedules_paused', incidentId)).toBe(1);
      expect(await auditCount('incident.contained', incidentId)).toBe(1);
      expect(await auditCount('incident.evidence_preserved', incidentId)).toBe(1);
      const holds = await pool.query('SELECT 1 FROM incident_holds WHERE incident_id = $1', [incidentId]);
      expect(holds.rowCount).toBe(1);
      const schedule = await harness.temporal.client.schedule
        .getHandle(scheduleIdFor({ tenantId, integrationId: integrationIds[0]! }))
        .describe();
      expect(schedule.state.paused).toBe(true);
      expect((await verifyEvidence(pool, incidentId)).ok).toBe(true);
      await handle.terminate('test done');
      await harness.temporal.client.schedule
        .getHandle(scheduleIdFor({ tenantId, integrationId: integrationIds[0]! }))
        .delete();
    } finally {
      await stalled.end();
      second?.child.kill('SIGTERM');
      if (second) await second.exited;
      if (first.child.exitCode === null) first.child.kill('SIGKILL');
    }
  });
});
