/**
 * Records a breach containment history for test/replay/replay.test.ts (beside the sync and key
 * rotation recorders, so re-recording one leaves the others' files alone):
 *   npx tsx test/replay/record-incident-history.ts
 * One incident for a tenant with one sandbox integration, end to end: containment, evidence, child
 * rotations (1 s grace), a reminder on a short deadline, a note, two notifications, a second person's
 * approval, recovery. On throwaway infrastructure with the sandbox; no payload codec (histories as JSON).
 */
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { createActivities } from '../../activities/index.js';
import { registerIntegration } from '../../client/integrations.js';
import { startSync } from '../../client/sync-client.js';
import { loadConfig } from '../../lib/config/schema.js';
import { benchInfraEnv, startBenchInfra } from '../../lib/dev/ephemeral.js';
import { incidentTaskQueue } from '../../lib/domain.js';
import { addIncidentNote, approveResumption, declareIncident, incidentTimeline, recordIncidentNotification } from '../../lib/incidents/client.js';
import { registerSandboxAdmin } from '../../lib/incidents/sandbox-admins.js';
import { createPool } from '../../lib/store/pool.js';
import { createTenant } from '../../lib/store/tenants.js';
import { startSandbox } from '../../sandbox/index.js';
import { buildActivityDeps } from '../../workers/build-deps.js';
import { sandboxIdentifiers, writeHistory } from './history-files.js';

const actor = { actor: 'recorder', correlationId: randomUUID() };

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const infra = await startBenchInfra((line) => process.stdout.write(`${line}\n`));
  const sandbox = await startSandbox({ seed: 97, size: 120 });
  registerSandboxAdmin(sandbox.fhirBaseUrl, { url: sandbox.url, adminToken: sandbox.adminToken });
  const pool = createPool(infra.databaseUrl, 4);
  const config = loadConfig({ ...benchInfraEnv(infra), TEMPORAL_TASK_QUEUE: 'record-incident', EHR_SYNC_PAGE_SIZE: '25', LOG_LEVEL: 'warn' });
  const deps = await buildActivityDeps(config);
  const nativeConnection = await NativeConnection.connect({ address: infra.temporalAddress });
  const options = { connection: nativeConnection, workflowsPath: require.resolve('../../workflows/index.ts'), activities: createActivities(deps) };
  const workers = [
    await Worker.create({ ...options, taskQueue: config.TEMPORAL_TASK_QUEUE }),
    await Worker.create({ ...options, taskQueue: incidentTaskQueue(config.TEMPORAL_TASK_QUEUE) }),
  ];
  const running = Promise.all(workers.map((w) => w.run()));
  const connection = await Connection.connect({ address: infra.temporalAddress });
  const client = new Client({ connection });
  try {
    await createTenant(pool, { id: 'replay', name: 'Replay Clinic (synthetic)' }, actor);
    await registerIntegration(
      pool,
      { id: 'inc', tenantId: 'replay', vendor: 'sandbox', baseUrl: sandbox.fhirBaseUrl, resourceTypes: ['Patient'], secretsDir: infra.secretsDir, sandboxAdmin: { url: sandbox.url, adminToken: sandbox.adminToken } },
      actor,
    );
    await (await startSync(client, config.TEMPORAL_TASK_QUEUE, { tenantId: 'replay', integrationId: 'inc', vendor: 'sandbox' }, { workflowId: 'replay-incident-seed' })).result();
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
    await recordIncidentNotification(handle, { by: 'carol@example.org', recipient: 'individuals', reference: 'letter-0001' });
    await recordIncidentNotification(handle, { by: 'carol@example.org', recipient: 'hhs' });
    await handle.result();

    await writeHistory('breach-containment', handle, await sandboxIdentifiers(sandbox));
  } finally {
    for (const w of workers) w.shutdown();
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
