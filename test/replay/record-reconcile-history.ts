/**
 * Records reconcile histories for test/replay/replay.test.ts:
 *   npx tsx test/replay/record-reconcile-history.ts [reconcile-search | reconcile-bulk]
 * (names given: only those histories are written).
 * reconcile-search: after a full sync of Observation and Condition, the vendor changes two Observations, deletes
 * one and creates one; the run reads every search page, reads the unlisted ones by id, and continues as new on the
 * way (its first and last runs are written). reconcile-bulk: the same over a Bulk Data integration (kick-off,
 * polls, one activity per file, then the unlisted reads).
 */
import { randomUUID } from 'node:crypto';
import { startReconcile } from '../../client/reconcile-client.js';
import { startSync, syncResult } from '../../client/sync-client.js';
import { registerIntegration } from '../../lib/integrations/registration.js';
import { createTenant } from '../../lib/store/tenants.js';
import { runRecorder, sandboxIdentifiers, startRecordingStack, writeHistory } from './history-files.js';

const actor = { actor: 'recorder', correlationId: randomUUID() };

async function main(): Promise<void> {
  const { infra, sandbox, pool, config, client, close } = await startRecordingStack({
    taskQueue: 'record-reconcile',
    sandboxSeed: 113,
    sandboxSize: 40,
  });
  const admin = async (route: string, body: unknown) => {
    const res = await fetch(`${sandbox.url}${route}`, {
      method: 'POST',
      headers: { 'x-sandbox-admin': sandbox.adminToken, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`${route} answered ${res.status}`);
  };
  try {
    await createTenant(pool, { id: 'replay', name: 'Replay Clinic (synthetic)' }, actor);
    const only = process.argv.slice(2);
    const wanted = (name: string) => only.length === 0 || only.includes(name);
    for (const [name, read] of [
      ['reconcile-search', undefined],
      ['reconcile-bulk', { strategy: 'bulk', bulkLevel: 'system' }],
    ] as const) {
      if (!wanted(name)) continue;
      const integrationId = `${name}-source`;
      await registerIntegration(
        pool,
        {
          id: integrationId,
          tenantId: 'replay',
          vendor: 'sandbox',
          baseUrl: sandbox.fhirBaseUrl,
          resourceTypes: ['Observation', 'Condition'],
          ...(read ? { read } : {}),
          secretsDir: infra.secretsDir,
          sandboxAdmin: { url: sandbox.url, adminToken: sandbox.adminToken },
        },
        actor,
      );
      const target = { tenantId: 'replay', integrationId };
      await syncResult(await startSync(client, config.TEMPORAL_TASK_QUEUE, { ...target, vendor: 'sandbox' }));
      await admin('/admin/records/modify', { resourceType: 'Observation', count: 2 });
      await admin('/admin/records/delete', { resourceType: 'Observation', count: 1 });
      await admin('/admin/records/create', { resourceType: 'Observation', count: 1 });
      const handle = await startReconcile(client, config.TEMPORAL_TASK_QUEUE, target, {
        workflowId: name,
        historyEventLimit: 20,
      });
      await handle.result();
      const identifiers = await sandboxIdentifiers(sandbox);
      await writeHistory(`${name}-first-run`, client.workflow.getHandle(name, handle.firstExecutionRunId), identifiers);
      await writeHistory(`${name}-last-run`, client.workflow.getHandle(name), identifiers);
    }
  } finally {
    await close();
  }
}

runRecorder(main);
