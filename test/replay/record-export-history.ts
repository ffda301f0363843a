/**
 * Records batch export histories for test/replay/replay.test.ts:
 *   npx tsx test/replay/record-export-history.ts [batch-export | batch-export-refused]
 * (names given: only those histories are written).
 * batch-export: after a full sync of Patient and Observation, an export for clinical-sync whose first file's
 * reply is lost (the file is written again), the signed manifest, a 2-second retention timer, then the job
 * key destroyed and the files removed. batch-export-refused: the same tenant under an incident's freeze.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startSync, syncResult } from '../../client/sync-client.js';
import { registerIntegration } from '../../lib/integrations/registration.js';
import { createTenant } from '../../lib/store/tenants.js';
import type { batchExport } from '../../workflows/export.js';
import { activityFaults } from '../activity-faults.js';
import { runRecorder, sandboxIdentifiers, startRecordingStack, writeHistory } from './history-files.js';

const actor = { actor: 'recorder', correlationId: randomUUID() };

async function main(): Promise<void> {
  const { infra, sandbox, pool, config, client, close } = await startRecordingStack({
    taskQueue: 'record-export',
    sandboxSeed: 103,
    sandboxSize: 40,
  });
  const to = fs.mkdtempSync(path.join(os.tmpdir(), 'record-export-'));
  try {
    await createTenant(pool, { id: 'replay', name: 'Replay Clinic (synthetic)' }, actor);
    await registerIntegration(
      pool,
      {
        id: 'export-source',
        tenantId: 'replay',
        vendor: 'sandbox',
        baseUrl: sandbox.fhirBaseUrl,
        resourceTypes: ['Patient', 'Observation'],
        secretsDir: infra.secretsDir,
        sandboxAdmin: { url: sandbox.url, adminToken: sandbox.adminToken },
      },
      actor,
    );
    const target = { tenantId: 'replay', integrationId: 'export-source', vendor: 'sandbox' };
    await syncResult(await startSync(client, config.TEMPORAL_TASK_QUEUE, target, { full: true }));
    const only = process.argv.slice(2);
    const wanted = (name: string) => only.length === 0 || only.includes(name);
    const run = (id: string) =>
      client.workflow.execute<typeof batchExport>('batchExport', {
        taskQueue: config.TEMPORAL_TASK_QUEUE,
        workflowId: id,
        args: [
          {
            tenantId: 'replay',
            purpose: 'clinical-sync',
            to,
            retainSeconds: 2,
            requestedBy: 'recorder',
            jobId: id,
          },
        ],
      });
    if (wanted('batch-export')) {
      activityFaults.loseReplyOnce.add('writeExportFile');
      await run('batch-export');
      await writeHistory('batch-export', client.workflow.getHandle('batch-export'), await sandboxIdentifiers(sandbox));
    }
    if (wanted('batch-export-refused')) {
      await pool.query(
        `INSERT INTO incidents (id, scope, severity, reason, declared_by, declared_at, affected, status)
         VALUES ('replay-freeze', 'tenant:replay', 'high', 'synthetic', 'recorder', now(), '[]'::jsonb, 'contained')`,
      );
      await pool.query(
        `INSERT INTO incident_holds (incident_id, scope, exports_frozen, webhooks_refused, writes_queued, legal_hold)
         VALUES ('replay-freeze', 'tenant:replay', true, false, false, false)`,
      );
      await run('batch-export-refused').catch(() => undefined);
      const handle = client.workflow.getHandle('batch-export-refused');
      await writeHistory('batch-export-refused', handle, await sandboxIdentifiers(sandbox));
    }
  } finally {
    await close();
    fs.rmSync(to, { recursive: true, force: true });
  }
}

runRecorder(main);
