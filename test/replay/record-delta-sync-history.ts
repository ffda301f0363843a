/**
 * Records a webhook delta-sync history for test/replay/replay.test.ts:
 *   npx tsx test/replay/record-delta-sync-history.ts
 * Two notifications debounced into one batch (a child sync of Patient), a third into a second batch
 * (every type), then continue-as-new (maxBatchesPerRun 2): the first run's complete history.
 */
import { randomUUID } from 'node:crypto';
import { createTenant } from '../../lib/store/tenants.js';
import { registerIntegration } from '../../lib/integrations/registration.js';
import { notifyDeltaSync, pendingNotifications, deltaSyncWorkflowId } from '../../client/delta-sync-client.js';
import { runRecorder, sandboxIdentifiers, startRecordingStack, writeHistory } from './history-files.js';

const actor = { actor: 'recorder', correlationId: randomUUID() };

async function main(): Promise<void> {
  const { infra, sandbox, pool, config, client, close } = await startRecordingStack({
    taskQueue: 'record-delta-sync',
    sandboxSeed: 97,
    sandboxSize: 60,
  });
  try {
    await createTenant(pool, { id: 'replay', name: 'Replay Clinic (synthetic)' }, actor);
    await registerIntegration(
      pool,
      {
        id: 'hooks',
        tenantId: 'replay',
        vendor: 'sandbox',
        baseUrl: sandbox.fhirBaseUrl,
        resourceTypes: ['Patient', 'Observation'],
        secretsDir: infra.secretsDir,
        sandboxAdmin: { url: sandbox.url, adminToken: sandbox.adminToken },
      },
      actor,
    );
    const target = { tenantId: 'replay', integrationId: 'hooks', vendor: 'sandbox' };
    const notify = (webhookId: string, resourceTypes: Array<'Patient' | 'Observation'>) =>
      notifyDeltaSync(
        client,
        config.TEMPORAL_TASK_QUEUE,
        target,
        { webhookId, resourceTypes },
        { debounceSeconds: 1, maxBatchesPerRun: 2 },
      );
    const handle = client.workflow.getHandle(deltaSyncWorkflowId(target));
    await notify('msg-replay-1', ['Patient']);
    await notify('msg-replay-2', ['Patient']);
    const firstRunId = (await handle.describe()).runId;
    for (let i = 0; (await pendingNotifications(handle)).batches < 1; i++) {
      if (i > 600) throw new Error('first batch did not finish');
      await new Promise((r) => setTimeout(r, 100));
    }
    await notify('msg-replay-3', []);
    for (let i = 0; (await handle.describe()).runId === firstRunId; i++) {
      if (i > 600) throw new Error('the run did not continue as new');
      await new Promise((r) => setTimeout(r, 100));
    }
    await writeHistory(
      'webhook-delta-sync',
      client.workflow.getHandle(handle.workflowId, firstRunId),
      await sandboxIdentifiers(sandbox),
    );
  } finally {
    await close();
  }
}

runRecorder(main);
