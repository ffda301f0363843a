/**
 * Records key rotation histories for test/replay/replay.test.ts (beside record-histories.ts, which
 * records the syncs; separate so re-recording one workflow leaves the other's files alone):
 *   npx tsx test/replay/record-key-rotation-histories.ts [name ...]
 * A tenant DEK rotation (re-encryption loop, grace timer, retirement), a KEK rotation rolled back by an
 * injected fault, a webhook secret rotation, and a tenant DEK rotation whose re-encryption loop
 * continues as new (its first and last runs), on throwaway infrastructure with the sandbox. Names
 * given (e.g. key-rotation-tenant-dek-continued-first-run) write only those files: histories recorded
 * by older code must stay as they are, so the paths they took keep replaying.
 */
import { randomUUID } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import { activityFaults } from '../activity-faults.js';
import { createTenant } from '../../lib/store/tenants.js';
import { addWebhookSecret } from '../../lib/webhooks/secrets.js';
import { registerIntegration } from '../../lib/integrations/registration.js';
import { startSync } from '../../client/sync-client.js';
import type { KeyRotationInput } from '../../workflows/key-rotation-api.js';
import { runRecorder, sandboxIdentifiers, startRecordingStack, writeHistory } from './history-files.js';

const actor = { actor: 'recorder', correlationId: randomUUID() };

async function main(): Promise<void> {
  const { infra, sandbox, pool, config, client, close } = await startRecordingStack({
    taskQueue: 'record-key-rotation',
    sandboxSeed: 98,
    sandboxSize: 120,
  });
  const rotate = (workflowId: string, input: Omit<KeyRotationInput, 'requestedBy' | 'reason'>) =>
    client.workflow.start('keyRotation', {
      taskQueue: config.TEMPORAL_TASK_QUEUE,
      workflowId,
      args: [{ requestedBy: 'recorder', reason: 'replay history', ...input }],
    });
  try {
    await createTenant(pool, { id: 'replay', name: 'Replay Clinic (synthetic)' }, actor);
    await registerIntegration(
      pool,
      {
        id: 'rot',
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
        { tenantId: 'replay', integrationId: 'rot', vendor: 'sandbox' },
        { workflowId: 'replay-rotation-seed' },
      )
    ).result();
    const recorded: Array<[string, WorkflowHandle]> = [];
    const dek = await rotate('replay-key-rotation-tenant-dek', {
      kind: 'tenant-dek',
      tenantId: 'replay',
      graceSeconds: 1,
      batchSize: 40,
    });
    await dek.result();
    recorded.push(['key-rotation-tenant-dek', dek]);
    activityFaults.failOnce.add('verifyKekSample');
    const kek = await rotate('replay-key-rotation-kek-rolled-back', { kind: 'kek', graceSeconds: 1, batchSize: 2 });
    await kek.result();
    recorded.push(['key-rotation-kek-rolled-back', kek]);
    await addWebhookSecret(pool, 'rot', actor, { secretsDir: infra.secretsDir });
    const webhook = await rotate('replay-key-rotation-webhook-secret', {
      kind: 'webhook-secret',
      integrationId: 'rot',
      graceSeconds: 1,
    });
    await webhook.result();
    recorded.push(['key-rotation-webhook-secret', webhook]);
    // The tenant's Patients in batches of 10, one batch per run: several runs.
    const continuedInput = {
      kind: 'tenant-dek',
      tenantId: 'replay',
      graceSeconds: 1,
      batchSize: 10,
      maxBatchesPerRun: 1,
    } as const;
    const continued = await rotate('replay-key-rotation-tenant-dek-continued', continuedInput);
    await continued.result();
    recorded.push(
      [
        'key-rotation-tenant-dek-continued-first-run',
        client.workflow.getHandle(continued.workflowId, continued.firstExecutionRunId),
      ],
      ['key-rotation-tenant-dek-continued-last-run', client.workflow.getHandle(continued.workflowId)],
    );

    const only = process.argv.slice(2);
    const identifiers = await sandboxIdentifiers(sandbox);
    for (const [name, handle] of recorded)
      if (only.length === 0 || only.includes(name)) await writeHistory(name, handle, identifiers);
  } finally {
    await close();
  }
}

runRecorder(main);
