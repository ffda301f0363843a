/**
 * Records the gated recovery path of breach containment for test/replay/replay.test.ts:
 *   npx tsx test/replay/record-incident-recovery-history.ts
 * One tenant with a private_key_jwt and a client_secret_basic integration; the latter's webhook delta
 * sync is running and is cancelled by containment. The signing-key rotation rolls back and the DEK
 * rotation fails (injected once each); an approval without the rotated secret is refused, one with it
 * accepted; recovery is blocked until the signing-key rotation is retried and the DEK one overridden by
 * a second person. Writes `breach-containment-recovery-gated.json`; the other incident histories (from
 * before these patches) stay as they are, so the older paths keep replaying.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { activityFaults } from '../activity-faults.js';
import { notifyDeltaSync } from '../../client/delta-sync-client.js';
import { registerIntegration } from '../../lib/integrations/registration.js';
import {
  approveResumption,
  declareIncident,
  incidentTimeline,
  overrideIncidentRotation,
  retryIncidentRotation,
} from '../../client/incident-client.js';
import { registerSandboxAdmin } from '../../lib/incidents/sandbox-admins.js';
import { createTenant } from '../../lib/store/tenants.js';
import type { IncidentTimeline } from '../../workflows/incident-api.js';
import { runRecorder, sandboxIdentifiers, startRecordingStack, writeHistory } from './history-files.js';

const actor = { actor: 'recorder', correlationId: randomUUID() };

async function until(what: string, check: () => Promise<boolean>, seconds = 90): Promise<void> {
  for (const started = Date.now(); !(await check());) {
    if (Date.now() - started > seconds * 1000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function main(): Promise<void> {
  const { infra, sandbox, pool, config, client, close } = await startRecordingStack({
    taskQueue: 'record-incident-recovery',
    sandboxSeed: 98,
    sandboxSize: 60,
  });
  registerSandboxAdmin(sandbox.fhirBaseUrl, { url: sandbox.url, adminToken: sandbox.adminToken });
  const secretFile = (name: string): string => {
    const file = path.join(infra.secretsDir, name);
    fs.writeFileSync(file, `sb-${randomBytes(18).toString('base64url')}`, { mode: 0o600 });
    return `file:${file}`;
  };
  try {
    await createTenant(pool, { id: 'replay', name: 'Replay Clinic (synthetic)' }, actor);
    const common = {
      tenantId: 'replay',
      vendor: 'sandbox',
      baseUrl: sandbox.fhirBaseUrl,
      resourceTypes: ['Patient'],
      secretsDir: infra.secretsDir,
      sandboxAdmin: { url: sandbox.url, adminToken: sandbox.adminToken },
    };
    await registerIntegration(pool, { ...common, id: 'key' }, actor);
    await registerIntegration(
      pool,
      { ...common, id: 'sec', authMethod: 'client_secret_basic', clientSecretRef: secretFile('sec-old.secret') },
      actor,
    );
    const target = { tenantId: 'replay', integrationId: 'sec', vendor: 'sandbox' };
    await notifyDeltaSync(
      client,
      config.TEMPORAL_TASK_QUEUE,
      target,
      { webhookId: 'replay-webhook-1', resourceTypes: ['Patient'] },
      { debounceSeconds: 3600 },
    );
    const running = `IntegrationId = 'sec' AND WorkflowType = 'webhookDeltaSync' AND ExecutionStatus = 'Running'`;
    await until('the delta sync to be visible', async () => (await client.workflow.count(running)).count === 1);

    activityFaults.failOnce.add('activateSigningKey');
    activityFaults.failOnce.add('rotateTenantDek');
    const handle = await declareIncident(client, config.TEMPORAL_TASK_QUEUE, {
      incidentId: 'replay-recovery',
      scope: 'tenant:replay',
      severity: 'high',
      reason: 'replay history',
      declaredBy: 'alice@example.org',
      rotationGraceSeconds: 1,
      vendorJwksCacheSeconds: 1,
      notificationDeadlineSeconds: 6,
      reminderOffsetsSeconds: [3],
      businessAssociateNoticeSeconds: 2,
      catchUpSync: false,
    });
    const outcome = (t: IncidentTimeline, prefix: string) =>
      t.rotations?.find((r) => r.rotation.startsWith(prefix))?.outcome;
    await until('containment, a rolled-back and a failed rotation', async () => {
      const t = await incidentTimeline(handle);
      return (
        t.status === 'awaiting-approval' &&
        outcome(t, 'signing-key/') === 'rolled-back' &&
        outcome(t, 'tenant-dek/') === 'failed'
      );
    });
    const refused = await approveResumption(handle, { by: 'bob@example.org' }).then(
      () => false,
      () => true,
    );
    if (!refused) throw new Error('an approval without the rotated secret was accepted');
    await approveResumption(handle, {
      by: 'bob@example.org',
      credentials: { sec: { clientSecretRef: secretFile('sec-new.secret') } },
    });
    await until('recovery to be blocked', async () => (await incidentTimeline(handle)).status === 'recovery-blocked');
    await retryIncidentRotation(handle, { by: 'bob@example.org', rotation: 'signing-key/key' });
    await until('the retried rotation to switch', async () =>
      /^(switched|completed)$/.test(String(outcome(await incidentTimeline(handle), 'signing-key/'))),
    );
    await overrideIncidentRotation(handle, {
      by: 'carol@example.org',
      rotation: 'tenant-dek/replay',
      reason: 'replay history',
    });
    await handle.result();
    await writeHistory('breach-containment-recovery-gated', handle, await sandboxIdentifiers(sandbox));
  } finally {
    activityFaults.failOnce.clear();
    await close();
  }
}

runRecorder(main);
