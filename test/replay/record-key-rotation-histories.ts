/**
 * Records key rotation histories for test/replay/replay.test.ts (beside record-histories.ts, which
 * records the syncs; separate so re-recording one workflow leaves the other's files alone):
 *   npx tsx test/replay/record-key-rotation-histories.ts
 * A tenant DEK rotation (re-encryption loop, grace timer, retirement), a KEK rotation rolled back by an
 * injected fault, and a webhook secret rotation, on throwaway infrastructure with the sandbox.
 */
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import type { WorkflowHandle } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { createActivities } from '../../activities/index.js';
import { keyRotationFaults } from '../../activities/key-rotation.js';
import { loadConfig } from '../../lib/config/schema.js';
import { benchInfraEnv, startBenchInfra } from '../../lib/dev/ephemeral.js';
import { createPool } from '../../lib/store/pool.js';
import { createTenant } from '../../lib/store/tenants.js';
import { addWebhookSecret } from '../../lib/webhooks/secrets.js';
import { registerIntegration } from '../../client/integrations.js';
import { startSync } from '../../client/sync-client.js';
import type { KeyRotationInput } from '../../workflows/key-rotation.js';
import { buildActivityDeps } from '../../workers/build-deps.js';
import { startSandbox } from '../../sandbox/index.js';
import { sandboxIdentifiers, writeHistory } from './history-files.js';

const actor = { actor: 'recorder', correlationId: randomUUID() };

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const infra = await startBenchInfra((line) => process.stdout.write(`${line}\n`));
  const sandbox = await startSandbox({ seed: 98, size: 120 });
  const pool = createPool(infra.databaseUrl, 4);
  const config = loadConfig({ ...benchInfraEnv(infra), TEMPORAL_TASK_QUEUE: 'record-key-rotation', EHR_SYNC_PAGE_SIZE: '25', LOG_LEVEL: 'warn' });
  const deps = await buildActivityDeps(config);
  const nativeConnection = await NativeConnection.connect({ address: infra.temporalAddress });
  const worker = await Worker.create({
    connection: nativeConnection,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    workflowsPath: require.resolve('../../workflows/index.ts'),
    activities: createActivities(deps),
  });
  const running = worker.run();
  const connection = await Connection.connect({ address: infra.temporalAddress });
  const client = new Client({ connection });
  const rotate = (workflowId: string, input: Omit<KeyRotationInput, 'requestedBy' | 'reason'>) =>
    client.workflow.start('keyRotation', { taskQueue: config.TEMPORAL_TASK_QUEUE, workflowId, args: [{ requestedBy: 'recorder', reason: 'replay history', ...input }] });
  try {
    await createTenant(pool, { id: 'replay', name: 'Replay Clinic (synthetic)' }, actor);
    await registerIntegration(
      pool,
      { id: 'rot', tenantId: 'replay', vendor: 'sandbox', baseUrl: sandbox.fhirBaseUrl, resourceTypes: ['Patient'], secretsDir: infra.secretsDir, sandboxAdmin: { url: sandbox.url, adminToken: sandbox.adminToken } },
      actor,
    );
    await (await startSync(client, config.TEMPORAL_TASK_QUEUE, { tenantId: 'replay', integrationId: 'rot', vendor: 'sandbox' }, { workflowId: 'replay-rotation-seed' })).result();
    const recorded: Array<[string, WorkflowHandle]> = [];
    const dek = await rotate('replay-key-rotation-tenant-dek', { kind: 'tenant-dek', tenantId: 'replay', graceSeconds: 1, batchSize: 40 });
    await dek.result();
    recorded.push(['key-rotation-tenant-dek', dek]);
    keyRotationFaults.failOnce.add('verifyKekSample');
    const kek = await rotate('replay-key-rotation-kek-rolled-back', { kind: 'kek', graceSeconds: 1, batchSize: 2 });
    await kek.result();
    recorded.push(['key-rotation-kek-rolled-back', kek]);
    await addWebhookSecret(pool, 'rot', actor, { secretsDir: infra.secretsDir });
    const webhook = await rotate('replay-key-rotation-webhook-secret', { kind: 'webhook-secret', integrationId: 'rot', graceSeconds: 1 });
    await webhook.result();
    recorded.push(['key-rotation-webhook-secret', webhook]);

    const identifiers = await sandboxIdentifiers(sandbox);
    for (const [name, handle] of recorded) await writeHistory(name, handle, identifiers);
  } finally {
    worker.shutdown();
    await running;
    await nativeConnection.close();
    await connection.close();
    await deps.close();
    await pool.end();
    await sandbox.close();
    await infra.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`recording failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
