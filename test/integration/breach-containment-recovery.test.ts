/**
 * Recovery that neither breaks nor lies, and containment that stops everything of the scope:
 *   - a client_secret_basic integration recovers with the rotated secret named in the approval; an
 *     approval without it (or naming the revoked one) is refused before it counts, and the incident
 *     stays held and approvable;
 *   - a running webhook delta sync of the scope is cancelled by containment;
 *   - a child rotation that rolled back blocks recovery until it is retried, one that failed until a
 *     second person overrides it with a reason (audited); `incident status` says which and how.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { afterEach, describe, expect, it } from 'vitest';
import { activityFaults } from '../activity-faults.js';
import { deltaSyncWorkflowId, notifyDeltaSync } from '../../client/delta-sync-client.js';
import { registerIntegration } from '../../lib/integrations/registration.js';
import {
  approveResumption,
  declareIncident,
  incidentTimeline,
  overrideIncidentRotation,
  retryIncidentRotation,
} from '../../client/incident-client.js';
import { registerSandboxAdmin } from '../../lib/incidents/sandbox-admins.js';
import { getIntegration } from '../../lib/integrations/repository.js';
import { createTenant } from '../../lib/store/tenants.js';
import type { IncidentTimeline } from '../../workflows/incident-api.js';
import { testEnv, uniqueId } from '../harness.js';
import { recordIdentifiers } from '../security/leak-registry.js';
import { ehrctlEnv, runEhrctl } from './ehrctl-process.js';
import { registerSandboxTenant, testActor, useSyncHarness } from './support.js';

const harness = useSyncHarness({ sandbox: { size: 200 }, config: { EHR_SYNC_PAGE_SIZE: '20' } });
const short = {
  rotationGraceSeconds: 1,
  vendorJwksCacheSeconds: 1,
  notificationDeadlineSeconds: 3600,
  businessAssociateNoticeSeconds: 3600,
};

afterEach(() => activityFaults.failOnce.clear());

/** A 0600 file under the secrets directory holding a fresh synthetic secret (registered with the leak scan). */
function secretRef(name: string): string {
  const secret = `sb-${randomBytes(18).toString('base64url')}`;
  recordIdentifiers([secret]);
  const file = path.join(testEnv().secretsDir, `${uniqueId(name)}.secret`);
  fs.writeFileSync(file, secret, { mode: 0o600 });
  return `file:${file}`;
}

function ehrctl(args: string[]) {
  return runEhrctl(args, ehrctlEnv({ config: harness.config }));
}

const entry = (t: IncidentTimeline, step: string) => t.entries.find((e) => e.step === step);
const rotation = (t: IncidentTimeline, prefix: string) => t.rotations?.find((r) => r.rotation.startsWith(prefix));

describe('incident recovery', () => {
  it('recovers a client_secret_basic integration with the secret named at approval, refuses approval without it, and cancels its delta sync', async () => {
    const { pool, sandbox, config } = harness;
    const client = harness.temporal.client;
    registerSandboxAdmin(sandbox.fhirBaseUrl, { url: sandbox.url, adminToken: sandbox.adminToken });
    const tenantId = uniqueId('t');
    await createTenant(pool, { id: tenantId, name: 'Synthetic Secret Clinic' }, testActor);
    const integrationId = uniqueId('sec');
    const oldRef = secretRef('old');
    await registerIntegration(
      pool,
      {
        id: integrationId,
        tenantId,
        vendor: 'sandbox',
        baseUrl: sandbox.fhirBaseUrl,
        resourceTypes: ['Patient'],
        authMethod: 'client_secret_basic',
        clientSecretRef: oldRef,
        secretsDir: testEnv().secretsDir,
        sandboxAdmin: { url: sandbox.url, adminToken: sandbox.adminToken },
      },
      testActor,
    );
    // A delta sync gathering notifications (a long debounce keeps it running).
    const target = { tenantId, integrationId, vendor: 'sandbox' };
    await notifyDeltaSync(
      client,
      config.TEMPORAL_TASK_QUEUE,
      target,
      { webhookId: uniqueId('wh'), resourceTypes: ['Patient'] },
      { debounceSeconds: 3600 },
    );
    const running =
      `IntegrationId = '${integrationId}' AND WorkflowType = 'webhookDeltaSync' AND ` + `ExecutionStatus = 'Running'`;
    await expect
      .poll(async () => (await client.workflow.count(running)).count, { timeout: 30_000, interval: 200 })
      .toBe(1);

    const incidentId = uniqueId('inc');
    const handle = await declareIncident(client, config.TEMPORAL_TASK_QUEUE, {
      incidentId,
      scope: `integration:${integrationId}`,
      severity: 'high',
      reason: 'synthetic drill: secret exposed',
      declaredBy: 'alice@example.org',
      ...short,
      notificationDeadlineSeconds: 5,
      reminderOffsetsSeconds: [],
      businessAssociateNoticeSeconds: 1,
    });
    await expect
      .poll(async () => (await incidentTimeline(handle)).status, { timeout: 60_000, interval: 200 })
      .toBe('awaiting-approval');

    // Containment cancelled the delta sync, and said so.
    expect((await client.workflow.getHandle(deltaSyncWorkflowId(target)).describe()).status.name).toBe('CANCELLED');
    const cancelled = entry(await incidentTimeline(handle), 'syncs-cancelled')!.detail!;
    expect(cancelled).toMatchObject({ cancelled: 1, types: ['webhookDeltaSync'], notCancelled: [] });
    // A secret integration has no signing key to rotate: no rotation that could only fail.
    expect(rotation(await incidentTimeline(handle), 'signing-key/')).toBeUndefined();

    // Approval without the rotated secret is refused before it counts, naming the integration.
    const refused = await ehrctl(['incident', 'approve', incidentId, '--as', 'bob@example.org']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`${integrationId} uses client_secret_basic`);
    expect(refused.stderr).toContain('--client-secret-ref');
    await expect(
      approveResumption(handle, {
        by: 'bob@example.org',
        credentials: { [integrationId]: { clientSecretRef: oldRef } },
      }),
    ).rejects.toBeInstanceOf(WorkflowUpdateFailedError);
    let t = await incidentTimeline(handle);
    expect(t.approvedBy).toBeNull();
    expect(t.entries.filter((e) => e.step === 'approval-refused')).toHaveLength(2);
    expect((await getIntegration(pool, integrationId)).status).toBe('revoked');

    // With the rotated secret (the only secret integration of the incident, so the bare form names it).
    const newRef = secretRef('new');
    const beforeApproval = Date.now();
    const approved = await ehrctl([
      'incident',
      'approve',
      incidentId,
      '--as',
      'bob@example.org',
      '--client-secret-ref',
      newRef,
    ]);
    expect(approved.stderr).toBe('');
    expect(approved.code).toBe(0);
    // (The 5 s notification deadline has passed by now, so the incident closes after recovery.)
    t = (await handle.result()) as IncidentTimeline;
    expect(t.status).toBe('recovered');
    const restored = await getIntegration(pool, integrationId);
    expect(restored).toMatchObject({ status: 'active', clientSecretRef: newRef });
    expect(restored.credentialRotatedAt.getTime()).toBeGreaterThanOrEqual(beforeApproval - 1000);
    // The catch-up sync authenticated with the new secret and read from the vendor.
    await expect
      .poll(async () => sandbox.ledger(beforeApproval).filter((e) => e.method === 'GET' && e.status === 200).length, {
        timeout: 60_000,
      })
      .toBeGreaterThan(0);
  });

  it('blocks recovery on a rolled-back rotation until it is retried, and on a failed one until a second person overrides it', async () => {
    const { pool, config } = harness;
    const { tenantId, integrationIds } = await registerSandboxTenant(pool, harness.sandbox, {
      resourceTypes: ['Patient'],
    });
    const integrationId = integrationIds[0]!;
    activityFaults.failOnce.add('activateSigningKey'); // the signing-key rotation rolls back
    activityFaults.failOnce.add('rotateTenantDek'); // the DEK rotation fails before any change
    const incidentId = uniqueId('inc');
    const handle = await declareIncident(harness.temporal.client, config.TEMPORAL_TASK_QUEUE, {
      incidentId,
      scope: `tenant:${tenantId}`,
      severity: 'high',
      reason: 'synthetic drill: rotation fails',
      declaredBy: 'alice@example.org',
      ...short,
    });
    const outcomes = async () => {
      const t = await incidentTimeline(handle);
      return [rotation(t, 'signing-key/')?.outcome, rotation(t, 'tenant-dek/')?.outcome];
    };
    await expect.poll(outcomes, { timeout: 90_000, interval: 250 }).toEqual(['rolled-back', 'failed']);
    expect(await approveResumption(handle, { by: 'bob@example.org' })).toBe('bob@example.org');
    await expect
      .poll(async () => (await incidentTimeline(handle)).status, { timeout: 30_000, interval: 200 })
      .toBe('recovery-blocked');
    let t = await incidentTimeline(handle);
    expect(entry(t, 'recovery-blocked')!.detail!.rotations).toEqual([
      `signing-key/${integrationId}: rolled-back (incident/${incidentId}/rotate/signing-key/${integrationId})`,
      `tenant-dek/${tenantId}: failed (incident/${incidentId}/rotate/tenant-dek/${tenantId})`,
    ]);
    expect((await getIntegration(pool, integrationId)).status).toBe('revoked');
    const status = await ehrctl(['incident', 'status', incidentId]);
    expect(status.stdout).toContain(`recovery is blocked by signing-key/${integrationId}, tenant-dek/${tenantId}`);
    expect(status.stdout).toContain(`ehrctl incident retry-rotation ${incidentId} signing-key/${integrationId}`);

    // Retry the rolled-back one: it switches; the failed one still blocks.
    const retried = await ehrctl([
      'incident',
      'retry-rotation',
      incidentId,
      `signing-key/${integrationId}`,
      '--as',
      'bob@example.org',
    ]);
    expect(retried.code).toBe(0);
    expect(retried.stdout).toContain(`incident/${incidentId}/rotate/signing-key/${integrationId}/retry-1`);
    await expect
      .poll(async () => (await outcomes())[0], { timeout: 60_000, interval: 250 })
      .toMatch(/^(switched|completed)$/);
    t = await incidentTimeline(handle);
    expect(t.status).toBe('recovery-blocked');
    expect((await getIntegration(pool, integrationId)).status).toBe('revoked');
    await expect(
      retryIncidentRotation(handle, { by: 'bob@example.org', rotation: `signing-key/${integrationId}` }),
    ).rejects.toBeInstanceOf(WorkflowUpdateFailedError);

    // Override the failed one: not by the declarer, not without a reason; audited with who and why.
    const dek = `tenant-dek/${tenantId}`;
    await expect(
      overrideIncidentRotation(handle, { by: 'alice@example.org', rotation: dek, reason: 'accepting the old DEK' }),
    ).rejects.toBeInstanceOf(WorkflowUpdateFailedError);
    expect(
      await overrideIncidentRotation(handle, {
        by: 'carol@example.org',
        rotation: dek,
        reason: 'records re-encrypted next week',
      }),
    ).toBe(dek);
    await expect
      .poll(async () => (await incidentTimeline(handle)).status, { timeout: 60_000, interval: 200 })
      .toBe('recovered');
    expect((await getIntegration(pool, integrationId)).status).toBe('active');
    const audited = await pool.query<{ actor: string; details: Record<string, unknown> }>(
      `SELECT actor, details FROM audit_events WHERE action = 'incident.rotation_overridden' AND correlation_id = $1`,
      [incidentId],
    );
    expect(audited.rows).toEqual([
      {
        actor: 'carol@example.org',
        details: expect.objectContaining({
          rotation: dek,
          outcome: 'failed',
          reason: 'records re-encrypted next week',
        }),
      },
    ]);
    t = await incidentTimeline(handle);
    expect(t.entries.map((e) => e.step)).toEqual(
      expect.arrayContaining(['rotation-retried', 'rotation-overridden', 'credentials-restored']),
    );
    await handle.terminate('test done');
  });
});
