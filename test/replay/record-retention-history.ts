/**
 * Records a retention history for test/replay/replay.test.ts:
 *   npx tsx test/replay/record-retention-history.ts
 * A tenant's Observations (labs-vitals, kept 30 days) stored 40 days ago: a full run purges them in batches of
 * five, then looks at the audit trail (nothing due) and evidence (none), and records its totals.
 */
import { randomUUID } from 'node:crypto';
import { startSync, syncResult } from '../../client/sync-client.js';
import { registerIntegration } from '../../lib/integrations/registration.js';
import { setRetentionRule } from '../../lib/retention/rules.js';
import { createTenant } from '../../lib/store/tenants.js';
import type { RetentionInput } from '../../workflows/retention.js';
import { runRecorder, sandboxIdentifiers, startRecordingStack, writeHistory } from './history-files.js';

const actor = { actor: 'recorder', correlationId: randomUUID() };

async function main(): Promise<void> {
  const { infra, sandbox, pool, config, client, close } = await startRecordingStack({
    taskQueue: 'record-retention',
    sandboxSeed: 101,
    sandboxSize: 20,
  });
  try {
    await createTenant(pool, { id: 'replay', name: 'Replay Clinic (synthetic)' }, actor);
    await registerIntegration(
      pool,
      {
        id: 'kept',
        tenantId: 'replay',
        vendor: 'sandbox',
        baseUrl: sandbox.fhirBaseUrl,
        resourceTypes: ['Patient', 'Observation'],
        secretsDir: infra.secretsDir,
        sandboxAdmin: { url: sandbox.url, adminToken: sandbox.adminToken },
      },
      actor,
    );
    const target = { tenantId: 'replay', integrationId: 'kept', vendor: 'sandbox' };
    await syncResult(await startSync(client, config.TEMPORAL_TASK_QUEUE, target));
    await setRetentionRule(pool, { tenantId: 'replay', kind: 'records:labs-vitals', days: 30 }, actor);
    await pool.query(
      `UPDATE records SET stored_at = now() - interval '40 days' WHERE tenant_id = 'replay' AND resource_type = 'Observation'`,
    );
    const handle = await client.workflow.start('retention', {
      taskQueue: config.TEMPORAL_TASK_QUEUE,
      workflowId: 'retention/replay',
      args: [{ batchSize: 5 } satisfies RetentionInput],
    });
    await handle.result();
    await writeHistory('retention', handle, await sandboxIdentifiers(sandbox));
  } finally {
    await close();
  }
}

runRecorder(main);
