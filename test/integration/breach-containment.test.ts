/**
 * Breach containment (issue 5 items 4–10): an incident for one tenant of two, both syncing, each at
 * its own sandbox vendor (the ledger has no client id, so a vendor per tenant tells them apart).
 * The tenant's vendor calls stop at containment, the other tenant's sync completes, exports are
 * frozen and vendor writes queued, the evidence manifest verifies, reminders fire on short timers,
 * the declarer cannot approve their own resumption, and after approval the integrations sync again
 * and each queued write reaches the vendor exactly once. Eradication runs the real child rotations
 * (signing key and webhook secret per integration, the tenant's data key) with 1 s grace periods.
 */
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { scheduleIdFor } from '../../lib/domain.js';
import { scheduleReconcile } from '../../client/reconcile-client.js';
import { scheduleNightlySync, startSync, syncResult } from '../../client/sync-client.js';
import { ScopeUnderIncidentError } from '../../lib/errors/index.js';
import {
  addIncidentNote,
  approveResumption,
  declareIncident,
  incidentTimeline,
  recordIncidentNotification,
} from '../../client/incident-client.js';
import { verifyEvidence } from '../../lib/incidents/evidence.js';
import { assertExportAllowed, assertWebhookAccepted, legalHoldActive } from '../../lib/incidents/holds.js';
import { enqueueVendorWrite } from '../../lib/incidents/pending-writes.js';
import { releaseLegalHold } from '../../lib/incidents/store.js';
import { KeyAdmin } from '../../lib/keys/key-admin.js';
import { registerSandboxAdmin } from '../../lib/incidents/sandbox-admins.js';
import { createKekProvider } from '../../lib/keys/kek-factory.js';
import { KeyHierarchy } from '../../lib/keys/key-hierarchy.js';
import { TenantKeyring } from '../../lib/keys/keyring.js';
import { getIntegration } from '../../lib/integrations/repository.js';
import { restoreIntegration } from '../../lib/revocation/restore.js';
import type { VendorClient } from '../../lib/vendors/vendor-client.js';
import type { IncidentTimeline } from '../../workflows/incident-api.js';
import { testEnv, uniqueId } from '../harness.js';
import { findLeaks } from '../security/leak-scan.js';
import { registerSandboxTenant, sandboxAdmin, startTestSandbox, testActor, useSyncHarness } from './support.js';

const harness = useSyncHarness({ sandbox: { size: 1000 }, config: { EHR_SYNC_PAGE_SIZE: '5' } });

const entry = (t: IncidentTimeline, step: string) => t.entries.find((e) => e.step === step);

describe('breach containment', () => {
  it('contains one tenant of two in seconds, preserves evidence, waits for a second person, and recovers with queued writes replayed once', async () => {
    const { pool, sandbox, config } = harness;
    const other = await startTestSandbox({ size: 1000 });
    try {
      registerSandboxAdmin(sandbox.fhirBaseUrl, { url: sandbox.url, adminToken: sandbox.adminToken });
      const breached = await registerSandboxTenant(pool, sandbox, {
        resourceTypes: ['Patient', 'Observation'],
        integrations: 2,
      });
      const bystander = await registerSandboxTenant(pool, other, { resourceTypes: ['Patient'] });
      const scheduled = { tenantId: breached.tenantId, integrationId: breached.integrationIds[0]! };
      await scheduleNightlySync(
        harness.temporal.client,
        config.TEMPORAL_TASK_QUEUE,
        { ...scheduled, vendor: 'sandbox' },
        { hour: 2, minute: 0, timezone: 'UTC' },
      );
      const schedule = harness.temporal.client.schedule.getHandle(scheduleIdFor(scheduled));
      const reconcileSchedule = await scheduleReconcile(
        harness.temporal.client,
        config.TEMPORAL_TASK_QUEUE,
        scheduled,
        {
          hour: 3,
          minute: 0,
          timezone: 'UTC',
        },
      );
      const syncs = await Promise.all(
        [
          ...breached.integrationIds.map((integrationId) => ({ tenantId: breached.tenantId, integrationId })),
          { tenantId: bystander.tenantId, integrationId: bystander.integrationIds[0]! },
        ].map((t) => startSync(harness.temporal.client, config.TEMPORAL_TASK_QUEUE, { ...t, vendor: 'sandbox' })),
      );
      await expect
        .poll(async () => sandbox.ledger().filter((e) => e.status === 200).length, { timeout: 60_000, interval: 100 })
        .toBeGreaterThan(4);

      const incidentId = uniqueId('inc');
      const handle = await declareIncident(harness.temporal.client, config.TEMPORAL_TASK_QUEUE, {
        incidentId,
        scope: `tenant:${breached.tenantId}`,
        severity: 'high',
        reason: 'synthetic drill: signing key exposed',
        declaredBy: 'alice@example.org',
        // Long enough that recovery (which waits only for each rotation to switch keys) ends first.
        rotationGraceSeconds: 20,
        vendorJwksCacheSeconds: 1,
        notificationDeadlineSeconds: 12,
        reminderOffsetsSeconds: [9],
        businessAssociateNoticeSeconds: 2,
      });
      await expect
        .poll(async () => (await incidentTimeline(handle)).status, { timeout: 60_000, interval: 100 })
        .toBe('awaiting-approval');
      const contained = await incidentTimeline(handle);
      expect(contained.timeToContainMs).toBeGreaterThanOrEqual(0);
      expect(contained.timeToContainMs).toBeLessThan(10_000);
      const containedAtMs = Date.parse(entry(contained, 'contained')!.at);

      // The tenant's vendor calls stopped; its syncs ended (cancelled or refused at the gate).
      for (const s of syncs.slice(0, 2)) await expect(s.result()).rejects.toBeDefined();
      expect(sandbox.ledger(containedAtMs + 1)).toEqual([]);
      for (const id of breached.integrationIds) expect((await getIntegration(pool, id)).status).toBe('revoked');
      expect((await schedule.describe()).state.paused).toBe(true);
      expect((await reconcileSchedule.describe()).state.paused).toBe(true);
      // The other tenant kept syncing to the end.
      expect((await syncResult(syncs[2]!)).outcome).toBe('completed');

      // Held: exports refused, webhooks refused, legal hold on, vendor writes queued (a repeat stored once).
      await expect(assertExportAllowed(pool, 'audit export', breached.tenantId)).rejects.toBeInstanceOf(
        ScopeUnderIncidentError,
      );
      await expect(assertExportAllowed(pool, 'audit export', bystander.tenantId)).resolves.toBeUndefined();
      await expect(assertWebhookAccepted(pool, breached.integrationIds[0]!)).rejects.toMatchObject({
        code: 'SCOPE_UNDER_INCIDENT',
      });
      expect(await legalHoldActive(pool, breached.tenantId)).toBe(true);
      // While held, enqueueVendorWrite never reaches the vendor client.
      const kek = await KeyHierarchy.open({ pool, backend: await createKekProvider(config), audit: testActor });
      const deps = { pool, keyring: new TenantKeyring({ pool, kek }), vendors: undefined as unknown as VendorClient };
      const write = (key: string) => ({
        integrationId: breached.integrationIds[0]!,
        method: 'create' as const,
        resourceType: 'Observation',
        resource: { resourceType: 'Observation', status: 'final' },
        idempotencyKey: `incident-test/${incidentId}/${key}`,
      });
      expect(await enqueueVendorWrite(deps, write('w1'), testActor)).toEqual({ queued: true, incidentId });
      expect(await enqueueVendorWrite(deps, write('w1'), testActor)).toEqual({ queued: true, incidentId });
      expect(await enqueueVendorWrite(deps, write('w2'), testActor)).toEqual({ queued: true, incidentId });

      // Eradicate: every key in scope is rotated by a child keyRotation workflow, beside the commander's
      // wait; each tells the incident when it has switched to its new key.
      // (A rotation with no old key to replace — the first webhook secret — simply finishes.)
      const rotationKinds = (t: IncidentTimeline, ...steps: string[]) => {
        const ids = new Set(t.entries.filter((e) => steps.includes(e.step)).map((e) => String(e.detail?.workflowId)));
        return [...ids].map((id) => id.replace(/^incident\/[^/]+\/rotate\//, '').split('/')[0]).sort();
      };
      const inScope = ['signing-key', 'signing-key', 'tenant-dek', 'webhook-secret', 'webhook-secret'];
      await expect
        .poll(async () => rotationKinds(await incidentTimeline(handle), 'rotation-switched', 'rotation-finished'), {
          timeout: 60_000,
          interval: 200,
        })
        .toEqual(inScope);
      expect(rotationKinds(await incidentTimeline(handle), 'rotation-switched')).toEqual([
        'signing-key',
        'signing-key',
        'tenant-dek',
      ]);

      // Evidence: the manifest and every file verify against the insert-only rows; the app cannot alter them.
      expect(contained.evidenceId).toMatch(/^[0-9a-f]{64}$/);
      expect((await verifyEvidence(pool, incidentId)).ok).toBe(true);

      // Reminders fire on their (short) durable timers.
      await expect
        .poll(async () => (await incidentTimeline(handle)).entries.map((e) => e.step), {
          timeout: 30_000,
          interval: 200,
        })
        .toEqual(expect.arrayContaining(['business-associate-notice-overdue', 'notification-reminder']));

      // No resumption without a second person; the integrations stay revoked meanwhile.
      await expect(approveResumption(handle, { by: 'alice@example.org' })).rejects.toBeInstanceOf(
        WorkflowUpdateFailedError,
      );
      await expect(
        addIncidentNote(handle, { by: 'bob@example.org', text: 'vendor confirmed key revoked' }),
      ).resolves.toBeGreaterThan(0);
      expect((await getIntegration(pool, breached.integrationIds[0]!)).status).toBe('revoked');
      // Nor around the incident: a direct restore is refused while the hold stands.
      const restoreOpts = {
        secretsDir: testEnv().secretsDir,
        sandboxAdmin: { url: sandbox.url, adminToken: sandbox.adminToken },
      };
      await expect(restoreIntegration(pool, breached.integrationIds[0]!, testActor, restoreOpts)).rejects.toMatchObject(
        { code: 'SCOPE_UNDER_INCIDENT' },
      );
      await expect(
        restoreIntegration(pool, breached.integrationIds[0]!, testActor, {
          ...restoreOpts,
          incidentId: 'another-incident',
        }),
      ).rejects.toMatchObject({ code: 'SCOPE_UNDER_INCIDENT' });
      expect((await getIntegration(pool, breached.integrationIds[0]!)).status).toBe('revoked');
      // Nor can the legal hold be released while the incident holds the scope.
      await expect(
        releaseLegalHold(pool, incidentId, { by: 'counsel@example.org', reason: 'too early' }, testActor),
      ).rejects.toMatchObject({ code: 'CONFLICT' });
      const beforeApproval = Date.now();
      expect(await approveResumption(handle, { by: 'bob@example.org', note: 'root cause fixed' })).toBe(
        'bob@example.org',
      );
      await recordIncidentNotification(handle, {
        by: 'carol@example.org',
        recipient: 'individuals',
        reference: 'letter-2026-001',
      });
      await recordIncidentNotification(handle, { by: 'carol@example.org', recipient: 'hhs' });

      const final = (await handle.result()) as IncidentTimeline;
      expect(final.status).toBe('recovered');
      for (const id of breached.integrationIds) expect((await getIntegration(pool, id)).status).toBe('active');
      expect((await schedule.describe()).state.paused).toBe(false);
      expect((await reconcileSchedule.describe()).state.paused).toBe(false);
      await schedule.delete();
      // Catch-up syncs reached the vendor again with fresh credentials.
      await expect
        .poll(async () => sandbox.ledger(beforeApproval).filter((e) => e.method === 'GET' && e.status === 200).length, {
          timeout: 60_000,
        })
        .toBeGreaterThan(0);
      // Each queued write reached the vendor exactly once.
      const posts = sandbox.ledger(beforeApproval).filter((e) => e.method === 'POST' && e.resource === 'Observation');
      expect(posts).toHaveLength(2);
      const pending = await pool.query<{ replay_status: number | null }>(
        'SELECT replay_status FROM pending_vendor_actions WHERE integration_id = $1',
        [breached.integrationIds[0]],
      );
      // The sandbox grants these integrations read scopes only, so it refuses the writes (403): the
      // refusal is recorded on each queued write once, not retried.
      expect(pending.rows.map((r) => r.replay_status)).toEqual([403, 403]);
      await expect(assertExportAllowed(pool, 'audit export', breached.tenantId)).resolves.toBeUndefined();

      // Recovery waited for every key to switch, not for the old keys' grace periods, which ran on after
      // it; the incident closed only once every rotation had completed.
      const at = (e: { at: string } | undefined) => Date.parse(e!.at);
      const restoredAt = at(entry(final, 'credentials-restored'));
      const switchedOrEnded = final.entries.filter(
        (x) =>
          x.step === 'rotation-switched' ||
          (x.step === 'rotation-finished' && !/signing-key|tenant-dek/.test(String(x.detail?.workflowId))),
      );
      expect(switchedOrEnded).toHaveLength(inScope.length);
      for (const e of switchedOrEnded) expect(at(e)).toBeLessThanOrEqual(restoredAt);
      expect(rotationKinds(final, 'rotation-finished')).toEqual(inScope);
      expect(final.entries.filter((e) => e.step === 'rotation-finished').map((e) => e.detail?.outcome)).toEqual(
        inScope.map(() => 'completed'),
      );
      const dekFinished = final.entries.find(
        (e) => e.step === 'rotation-finished' && String(e.detail?.workflowId).includes('/rotate/tenant-dek/'),
      );
      expect(at(entry(final, 'recovered'))).toBeLessThan(at(dekFinished));

      // The timeline reads like the report: every step, with a time and an actor, and nothing identifying.
      const steps = final.entries.map((e) => e.step);
      for (const s of [
        'declared',
        'credentials-revoked',
        'scope-held',
        'schedules-paused',
        'syncs-cancelled',
        'contained',
        'evidence-preserved',
        'note',
        'resumption-approved',
        'credentials-restored',
        'hold-lifted',
        'queued-writes-replayed',
        'schedules-unpaused',
        'catch-up-syncs-started',
        'recovered',
      ]) {
        expect(steps).toContain(s);
      }
      for (const e of final.entries) {
        expect(Number.isNaN(Date.parse(e.at))).toBe(false);
        expect(e.actor.length).toBeGreaterThan(0);
      }
      expect(entry(final, 'declared')!.actor).toBe('alice@example.org');
      expect(entry(final, 'resumption-approved')!.actor).toBe('bob@example.org');
      expect(final.timeToRecoverMs).not.toBeNull();
      const { strings } = await sandboxAdmin<{ strings: string[] }>(sandbox, 'GET', '/admin/identifiers');
      expect(findLeaks(JSON.stringify(final), strings)).toEqual([]);

      // The legal hold outlives recovery: crypto-shredding the tenant (the one operation that makes its
      // records unreadable for good) is refused, and the refusal audited, until counsel releases it.
      expect(await legalHoldActive(pool, breached.tenantId)).toBe(true);
      const admin = new KeyAdmin({ pool, kek, destroyDelaySeconds: 0 });
      const live = async () =>
        (
          await pool.query('SELECT key_version FROM data_keys WHERE tenant_id = $1 AND status <> $2', [
            breached.tenantId,
            'destroyed',
          ])
        ).rowCount;
      const liveBefore = await live();
      expect(liveBefore).toBeGreaterThan(0);
      await expect(admin.destroyTenantKeys(breached.tenantId, testActor)).rejects.toMatchObject({
        code: 'SCOPE_UNDER_INCIDENT',
        incidentId,
      });
      const refusals = await pool.query(
        `SELECT 1 FROM audit_events WHERE action = 'key.dek.destroyed' AND outcome = 'failure' AND tenant_id = $1`,
        [breached.tenantId],
      );
      expect(refusals.rowCount).toBe(1);
      expect(await live()).toBe(liveBefore);
      await expect(
        releaseLegalHold(pool, incidentId, { by: 'counsel@example.org', reason: '' }, testActor),
      ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      expect(
        await releaseLegalHold(pool, incidentId, { by: 'counsel@example.org', reason: 'matter closed' }, testActor),
      ).toBe(true);
      expect(await legalHoldActive(pool, breached.tenantId)).toBe(false);
      expect((await admin.destroyTenantKeys(breached.tenantId, testActor)).destroyed).toHaveLength(liveBefore!);
      expect(await live()).toBe(0);
    } finally {
      await other.close();
    }
  });
});
