/**
 * Records the histories that test/replay/replay.test.ts replays on every test run:
 *   npx tsx test/replay/record-histories.ts
 * Runs real syncs (full, incremental, continued-as-new, cancelled, failed on a malformed page) on
 * throwaway infrastructure with the sandbox, scans each history for the sandbox's synthetic
 * identifiers (refusing to write one that leaks) and writes them as JSON. Re-record when a workflow
 * change is intentionally incompatible (and version the workflow instead if runs may be in flight).
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import { createTenant } from '../../lib/store/tenants.js';
import { registerIntegration } from '../../lib/integrations/registration.js';
import { startSync } from '../../client/sync-client.js';
import { runRecorder, sandboxIdentifiers, startRecordingStack, writeHistory } from './history-files.js';

const outDir = path.join(__dirname, 'histories');
const actor = { actor: 'recorder', correlationId: randomUUID() };

async function main(): Promise<void> {
  const { infra, sandbox, pool, config, client, close } = await startRecordingStack({
    taskQueue: 'record-histories',
    sandboxSeed: 99,
    sandboxSize: 400,
  });
  const admin = (route: string, body: unknown) =>
    fetch(`${sandbox.url}${route}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-sandbox-admin': sandbox.adminToken },
      body: JSON.stringify(body),
    });

  try {
    await createTenant(pool, { id: 'replay', name: 'Replay Clinic (synthetic)' }, actor);
    const register = (id: string, types?: string[]) =>
      registerIntegration(
        pool,
        {
          id,
          tenantId: 'replay',
          vendor: 'sandbox',
          baseUrl: sandbox.fhirBaseUrl,
          resourceTypes: types,
          secretsDir: infra.secretsDir,
          sandboxAdmin: { url: sandbox.url, adminToken: sandbox.adminToken },
        },
        actor,
      );
    await register('full');
    await register('small', ['Patient', 'Condition']);
    await register('faulty', ['Condition']);
    const target = (integrationId: string) => ({ tenantId: 'replay', integrationId, vendor: 'sandbox' });
    const recorded: Array<[string, WorkflowHandle]> = [];
    const settle = async (h: WorkflowHandle) => h.result().catch(() => undefined);

    const full = await startSync(client, config.TEMPORAL_TASK_QUEUE, target('full'), {
      workflowId: 'replay-full-sync',
    });
    await settle(full);
    recorded.push(['full-sync', full]);
    await admin('/admin/records/modify', { resourceType: 'Observation', count: 7 });
    const incremental = await startSync(client, config.TEMPORAL_TASK_QUEUE, target('full'), {
      workflowId: 'replay-incremental-sync',
    });
    await settle(incremental);
    recorded.push(['incremental-sync', incremental]);
    const can = await startSync(client, config.TEMPORAL_TASK_QUEUE, target('small'), {
      workflowId: 'replay-continue-as-new',
      historyEventLimit: 30,
    });
    await settle(can);
    const firstRun = client.workflow.getHandle(can.workflowId, can.firstExecutionRunId);
    recorded.push(
      ['continue-as-new-first-run', firstRun],
      ['continue-as-new-last-run', client.workflow.getHandle(can.workflowId)],
    );
    const paused = await startSync(client, config.TEMPORAL_TASK_QUEUE, target('full'), {
      workflowId: 'replay-paused-cancelled',
      full: true,
    });
    await paused.signal('pause', { by: 'recorder' });
    await new Promise((r) => setTimeout(r, 1_000));
    await paused.signal('resume', { by: 'recorder' });
    await paused.signal('cancel', { by: 'recorder' });
    await settle(paused);
    recorded.push(['paused-resumed-cancelled', paused]);
    await admin('/admin/faults', { kind: 'malformed-json', resourceType: 'Condition' });
    const failed = await startSync(client, config.TEMPORAL_TASK_QUEUE, target('faulty'), {
      workflowId: 'replay-malformed-page',
    });
    await settle(failed);
    recorded.push(['malformed-page-failed', failed]);

    const identifiers = await sandboxIdentifiers(sandbox);
    fs.mkdirSync(outDir, { recursive: true });
    for (const [name, handle] of recorded) await writeHistory(name, handle, identifiers);
  } finally {
    await close();
  }
}

runRecorder(main);
