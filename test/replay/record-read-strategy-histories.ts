/**
 * Records nightly syncs that run a read plan, for test/replay/replay.test.ts:
 *   npx tsx test/replay/record-read-strategy-histories.ts
 *   - search: an incremental run whose server caps its result set (a second window), with a deletion read from
 *     the type's history;
 *   - patient: a roster from a Patient search, batches of patients per type;
 *   - bulk: the nightly sync with its bulkExport child (the child's own history is bulk-export.json).
 */
import { randomUUID } from 'node:crypto';
import { startSync } from '../../client/sync-client.js';
import type { ReadChoiceInput } from '../../lib/integrations/read-choice.js';
import { registerIntegration } from '../../lib/integrations/registration.js';
import { createTenant } from '../../lib/store/tenants.js';
import { deleteRecords, setSearchBehaviour } from '../../sandbox/test-bulk.js';
import { runRecorder, sandboxIdentifiers, startRecordingStack, writeHistory } from './history-files.js';

const actor = { actor: 'recorder', correlationId: randomUUID() };

async function main(): Promise<void> {
  const { infra, sandbox, pool, config, client, close } = await startRecordingStack({
    taskQueue: 'record-read-strategies',
    sandboxSeed: 103,
    sandboxSize: 150,
  });
  try {
    await createTenant(pool, { id: 'replay', name: 'Replay Clinic (synthetic)' }, actor);
    const register = (id: string, types: string[], read: ReadChoiceInput) =>
      registerIntegration(
        pool,
        {
          id,
          tenantId: 'replay',
          vendor: 'sandbox',
          baseUrl: sandbox.fhirBaseUrl,
          resourceTypes: types,
          read,
          secretsDir: infra.secretsDir,
          sandboxAdmin: { url: sandbox.url, adminToken: sandbox.adminToken },
        },
        actor,
      );
    const sync = async (integrationId: string, workflowId: string) => {
      const handle = await startSync(
        client,
        config.TEMPORAL_TASK_QUEUE,
        { tenantId: 'replay', integrationId, vendor: 'sandbox' },
        { workflowId },
      );
      await handle.result();
      return handle;
    };
    const identifiers = async () => sandboxIdentifiers(sandbox);

    await register('search', ['Patient', 'Observation'], { strategy: 'search' });
    await sync('search', 'replay-search-first');
    await fetch(`${sandbox.url}/admin/records/modify`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-sandbox-admin': sandbox.adminToken },
      body: JSON.stringify({ resourceType: 'Observation', count: 30 }),
    });
    await deleteRecords(sandbox, 'Observation', { count: 2 });
    await setSearchBehaviour(sandbox, { capResults: 20 });
    await writeHistory('search-strategy-sync', await sync('search', 'search-strategy-sync'), await identifiers());
    await setSearchBehaviour(sandbox, { capResults: null });

    await register('patient', ['Patient', 'Condition'], { strategy: 'patient', rosterSearch: '_count=40' });
    await writeHistory('patient-strategy-sync', await sync('patient', 'patient-strategy-sync'), await identifiers());

    await register('bulk', ['Patient', 'Observation'], { strategy: 'bulk', bulkLevel: 'system' });
    await writeHistory('bulk-strategy-sync', await sync('bulk', 'bulk-strategy-sync'), await identifiers());
  } finally {
    await close();
  }
}

runRecorder(main);
