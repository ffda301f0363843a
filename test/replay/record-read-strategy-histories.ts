/**
 * Records nightly syncs that run a read plan, for test/replay/replay.test.ts:
 *   npx tsx test/replay/record-read-strategy-histories.ts
 *   - search: an incremental run whose server caps its result set (a second window), with a deletion read from
 *     the type's history;
 *   - patient: a roster from a Patient search, batches of patients per type;
 *   - bulk: the nightly sync with its bulkExport child (the child's own history is bulk-export.json);
 *   - capped-windows-sync: a search whose server caps results and refuses `_sort` (counted time windows);
 *   - patient-strategy-history-sync, bulk-strategy-history-sync: second runs that read deletions from each
 *     type's `_history` after the patients' searches, after the export;
 *   - bulk-checkpoints-after-history-sync: the same bulk run where the export leaves the checkpoints of types read
 *     from `_history` to the nightly sync, which moves each once its deletions are read.
 * Names given on the command line: only those histories are written (the others keep covering older code).
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
    const only = process.argv.slice(2);
    const record = async (name: string, integrationId: string) => {
      if (only.length > 0 && !only.includes(name)) return;
      await writeHistory(name, await sync(integrationId, name), await identifiers());
    };

    /** The first recordings: search (capped, with `_sort`), patient and bulk first runs. */
    const recordFirst = async (): Promise<void> => {
      await register('search', ['Patient', 'Observation'], { strategy: 'search' });
      await sync('search', 'replay-search-first');
      await fetch(`${sandbox.url}/admin/records/modify`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-sandbox-admin': sandbox.adminToken },
        body: JSON.stringify({ resourceType: 'Observation', count: 30 }),
      });
      await deleteRecords(sandbox, 'Observation', { count: 2 });
      await setSearchBehaviour(sandbox, { capResults: 20 });
      await record('search-strategy-sync', 'search');
      await setSearchBehaviour(sandbox, { capResults: null });

      await register('patient', ['Patient', 'Condition'], { strategy: 'patient', rosterSearch: '_count=40' });
      await record('patient-strategy-sync', 'patient');

      await register('bulk', ['Patient', 'Observation'], { strategy: 'bulk', bulkLevel: 'system' });
      await record('bulk-strategy-sync', 'bulk');
    };
    const wanted = (names: string[]) => only.length === 0 || names.some((n) => only.includes(n));
    if (wanted(['search-strategy-sync', 'patient-strategy-sync', 'bulk-strategy-sync'])) await recordFirst();
    if (wanted(['capped-windows-sync'])) {
      await register('capped', ['Patient', 'Observation'], { strategy: 'search' });
      await setSearchBehaviour(sandbox, { capResults: 20, sortLastUpdated: false });
      await record('capped-windows-sync', 'capped');
      await setSearchBehaviour(sandbox, { capResults: null, sortLastUpdated: true });
    }
    if (wanted(['patient-strategy-history-sync', 'bulk-strategy-history-sync'])) {
      await register('patient-history', ['Patient', 'Condition'], { strategy: 'patient', rosterSearch: '_count=40' });
      await register('bulk-history', ['Patient', 'Observation'], { strategy: 'bulk', bulkLevel: 'system' });
      await sync('patient-history', 'replay-patient-history-first');
      await sync('bulk-history', 'replay-bulk-history-first');
      await deleteRecords(sandbox, 'Condition', { count: 2 });
      await deleteRecords(sandbox, 'Observation', { count: 2 });
      await record('patient-strategy-history-sync', 'patient-history');
      await record('bulk-strategy-history-sync', 'bulk-history');
    }
    if (wanted(['bulk-checkpoints-after-history-sync'])) {
      await register('bulk-held', ['Patient', 'Observation'], { strategy: 'bulk', bulkLevel: 'system' });
      await sync('bulk-held', 'replay-bulk-held-first');
      await deleteRecords(sandbox, 'Observation', { count: 2 });
      await record('bulk-checkpoints-after-history-sync', 'bulk-held');
    }
  } finally {
    await close();
  }
}

runRecorder(main);
