/**
 * Records a Bulk Data export history for test/replay/replay.test.ts:
 *   npx tsx test/replay/record-bulk-export-history.ts [bulk-export | bulk-export-three-files]
 * (names given: only those histories are written; the others keep covering older code).
 * bulk-export-three-files: the same export with the child's default file concurrency (three at once).
 * A system export of Patient and Observation: slow preparation (two 202 polls, a transient 503 between
 * them), several output files per type downloaded two at a time, an error file, a deleted file (one
 * Observation deleted at the vendor after a first export), checkpoints, and the DELETE of the status URL.
 */
import { randomUUID } from 'node:crypto';
import { createTenant } from '../../lib/store/tenants.js';
import { registerIntegration } from '../../lib/integrations/registration.js';
import { deleteRecords, setBulkBehaviour } from '../../sandbox/test-bulk.js';
import type { bulkExport } from '../../workflows/bulk-export.js';
import { runRecorder, sandboxIdentifiers, startRecordingStack, writeHistory } from './history-files.js';

const actor = { actor: 'recorder', correlationId: randomUUID() };

async function main(): Promise<void> {
  const { infra, sandbox, pool, config, client, close } = await startRecordingStack({
    taskQueue: 'record-bulk-export',
    sandboxSeed: 101,
    sandboxSize: 120,
  });
  try {
    await createTenant(pool, { id: 'replay', name: 'Replay Clinic (synthetic)' }, actor);
    await registerIntegration(
      pool,
      {
        id: 'bulk',
        tenantId: 'replay',
        vendor: 'sandbox',
        baseUrl: sandbox.fhirBaseUrl,
        resourceTypes: ['Patient', 'Observation'],
        secretsDir: infra.secretsDir,
        sandboxAdmin: { url: sandbox.url, adminToken: sandbox.adminToken },
      },
      actor,
    );
    const only = process.argv.slice(2);
    const wanted = (name: string) => only.length === 0 || only.includes(name);
    const run = (id: string, concurrency: number | undefined = 2) =>
      client.workflow.execute<typeof bulkExport>('bulkExport', {
        taskQueue: config.TEMPORAL_TASK_QUEUE,
        workflowId: id,
        args: [
          {
            tenantId: 'replay',
            integrationId: 'bulk',
            level: 'system',
            types: [
              { resourceType: 'Patient', since: null },
              { resourceType: 'Observation', since: null },
            ],
            ...(concurrency === undefined ? {} : { concurrency }),
          },
        ],
      });
    await setBulkBehaviour(sandbox, { retryAfterSeconds: 1, resourcesPerFile: 20 });
    await run('bulk-export-first');
    await deleteRecords(sandbox, 'Observation', { count: 1 });
    await setBulkBehaviour(sandbox, { preparePolls: 2, errorFile: true, deleted: 'always', pollErrors: 1 });
    for (const [name, concurrency] of [
      ['bulk-export', 2],
      ['bulk-export-three-files', undefined],
    ] as const) {
      if (!wanted(name)) continue;
      await run(name, concurrency);
      await writeHistory(name, client.workflow.getHandle(name), await sandboxIdentifiers(sandbox));
    }
  } finally {
    await close();
  }
}

runRecorder(main);
