/**
 * Records a breach containment history for test/replay/replay.test.ts (beside the sync and key
 * rotation recorders, so re-recording one leaves the others' files alone):
 *   npx tsx test/replay/record-incident-history.ts
 * One incident for a tenant with one sandbox integration, end to end: containment, evidence, child
 * rotations (1 s grace), a reminder on a short deadline, a note, two notifications, a second person's
 * approval, recovery. On throwaway infrastructure with the sandbox; no payload codec (histories as JSON).
 * Writes the incident and its signing-key child rotation (which signals the incident when it switches).
 * `breach-containment.json` is kept from before eradication ran beside the commander's wait (patch
 * `eradicate-beside-approval`): it proves the old path still replays, so this recorder leaves it alone.
 */
import { randomUUID } from 'node:crypto';
import { registerIntegration } from '../../lib/integrations/registration.js';
import { startSync } from '../../client/sync-client.js';
import {
  addIncidentNote,
  approveResumption,
  declareIncident,
  incidentTimeline,
  recordIncidentNotification,
} from '../../client/incident-client.js';
import { registerSandboxAdmin } from '../../lib/incidents/sandbox-admins.js';
import { createTenant } from '../../lib/store/tenants.js';
import { runRecorder, sandboxIdentifiers, startRecordingStack, writeHistory } from './history-files.js';

const actor = { actor: 'recorder', correlationId: randomUUID() };

async function main(): Promise<void> {
  const { infra, sandbox, pool, config, client, close } = await startRecordingStack({
    taskQueue: 'record-incident',
    sandboxSeed: 97,
    sandboxSize: 120,
  });
  registerSandboxAdmin(sandbox.fhirBaseUrl, { url: sandbox.url, adminToken: sandbox.adminToken });
  try {
    await createTenant(pool, { id: 'replay', name: 'Replay Clinic (synthetic)' }, actor);
    await registerIntegration(
      pool,
      {
        id: 'inc',
        tenantId: 'replay',
        vendor: 'sandbox',
        baseUrl: sandbox.fhirBaseUrl,
        resourceTypes: ['Patient'],
        secretsDir: infra.secretsDir,
        sandboxAdmin: { url: sandbox.url, adminToken: sandbox.adminToken },
      },
      actor,
    );
    await (
      await startSync(
        client,
        config.TEMPORAL_TASK_QUEUE,
        { tenantId: 'replay', integrationId: 'inc', vendor: 'sandbox' },
        { workflowId: 'replay-incident-seed' },
      )
    ).result();
    const handle = await declareIncident(client, config.TEMPORAL_TASK_QUEUE, {
      incidentId: 'replay-incident',
      scope: 'tenant:replay',
      severity: 'high',
      reason: 'replay history',
      declaredBy: 'alice@example.org',
      rotationGraceSeconds: 1,
      notificationDeadlineSeconds: 6,
      reminderOffsetsSeconds: [3],
      businessAssociateNoticeSeconds: 2,
      catchUpSync: false,
    });
    for (let i = 0; (await incidentTimeline(handle)).status !== 'awaiting-approval'; i++) {
      if (i > 600) throw new Error('the incident did not reach awaiting-approval in 60 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    await addIncidentNote(handle, { by: 'bob@example.org', text: 'vendor confirmed key revoked' });
    await approveResumption(handle, { by: 'bob@example.org', note: 'root cause fixed' });
    await recordIncidentNotification(handle, {
      by: 'carol@example.org',
      recipient: 'individuals',
      reference: 'letter-0001',
    });
    await recordIncidentNotification(handle, { by: 'carol@example.org', recipient: 'hhs' });
    await handle.result();

    const identifiers = await sandboxIdentifiers(sandbox);
    await writeHistory('breach-containment-eradicate-beside-approval', handle, identifiers);
    await writeHistory(
      'key-rotation-signing-key-in-incident',
      client.workflow.getHandle('incident/replay-incident/rotate/signing-key/inc'),
      identifiers,
    );
  } finally {
    await close();
  }
}

runRecorder(main);
