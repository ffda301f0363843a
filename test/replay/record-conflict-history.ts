/**
 * Records a conflict resolution history for test/replay/replay.test.ts:
 *   npx tsx test/replay/record-conflict-history.ts
 * A conflict over a sandbox Appointment's start and end (opened with openConflict, started by the real notifier):
 * the reminder and the escalation on short timers (no alert hook), a partial decision refused by the validator
 * (not in the history), then start=local,end=remote applied — one write-back change queued.
 */
import { randomUUID } from 'node:crypto';
import { resolveConflict } from '../../client/conflict-client.js';
import { createKekProvider } from '../../lib/keys/kek-factory.js';
import { KeyHierarchy } from '../../lib/keys/key-hierarchy.js';
import { TenantKeyring } from '../../lib/keys/keyring.js';
import { registerIntegration } from '../../lib/integrations/registration.js';
import { withTransaction } from '../../lib/store/pool.js';
import { createTenant } from '../../lib/store/tenants.js';
import { storeResources } from '../../lib/sync/store-resources.js';
import { openConflict } from '../../lib/writeback/conflicts.js';
import { conflictWorkflowId } from '../../lib/writeback/notifier.js';
import { temporalConflictNotifier } from '../../workers/outbox-notifier.js';
import type { ConflictResolutionState } from '../../workflows/conflict-resolution.js';
import { runRecorder, sandboxIdentifiers, startRecordingStack, writeHistory } from './history-files.js';

const actor = { actor: 'recorder', correlationId: randomUUID() };
const LOCAL = { start: '2030-01-02T03:04:05.000Z', end: '2030-01-02T03:49:05.000Z' };

async function main(): Promise<void> {
  const { infra, sandbox, pool, config, client, close } = await startRecordingStack({
    taskQueue: 'record-conflict',
    sandboxSeed: 113,
    sandboxSize: 40,
    env: { EHR_CONFLICT_REMIND_SECONDS: '1', EHR_CONFLICT_ESCALATE_SECONDS: '2' },
  });
  try {
    await createTenant(pool, { id: 'replay', name: 'Replay Clinic (synthetic)' }, actor);
    const scope = { tenantId: 'replay', integrationId: 'booked' };
    await registerIntegration(
      pool,
      {
        id: scope.integrationId,
        tenantId: scope.tenantId,
        vendor: 'sandbox',
        baseUrl: sandbox.fhirBaseUrl,
        resourceTypes: ['Patient', 'Appointment'],
        secretsDir: infra.secretsDir,
        sandboxAdmin: { url: sandbox.url, adminToken: sandbox.adminToken },
      },
      actor,
    );
    const admin = { headers: { 'x-sandbox-admin': sandbox.adminToken } };
    const manifest = (await (await fetch(`${sandbox.url}/admin/manifest?type=Appointment`, admin)).json()) as {
      records: Array<{ id: string }>;
    };
    const id = manifest.records[0]!.id;
    const vendor = (await (await fetch(`${sandbox.url}/admin/resource/Appointment/${id}`, admin)).json()) as Record<
      string,
      unknown
    >;
    const keyring = new TenantKeyring({
      pool,
      kek: await KeyHierarchy.open({ pool, backend: await createKekProvider(config) }),
    });
    const now = new Date().toISOString();
    await storeResources(
      { pool, keyring },
      actor,
      { ...scope, resourceType: 'Appointment', purpose: 'clinical-sync' },
      [
        {
          id,
          versionId: 'local-1',
          lastUpdated: now,
          resource: { ...vendor, ...LOCAL, meta: { versionId: 'local-1', lastUpdated: now } },
        },
      ],
    );
    const { id: conflictId } = await withTransaction(pool, (c) =>
      openConflict(
        c,
        keyring,
        {
          ...scope,
          resourceType: 'Appointment',
          resourceId: id,
          source: 'reconcile',
          runId: 'replay-run',
          reason: 'both-changed',
          elements: ['start', 'end'],
          sides: { local: LOCAL, remote: { start: vendor.start, end: vendor.end } },
        },
        actor,
      ),
    );
    await temporalConflictNotifier(client, config.TEMPORAL_TASK_QUEUE).conflictOpened({ ...scope, conflictId });
    const handle = client.workflow.getHandle(conflictWorkflowId(conflictId));
    for (let i = 0; (await handle.query<ConflictResolutionState>('conflictState')).status !== 'escalated'; i++) {
      if (i > 600) throw new Error('the conflict was not escalated');
      await new Promise((r) => setTimeout(r, 100));
    }
    const partial = await resolveConflict(
      pool,
      client,
      conflictId,
      { fields: { start: 'local' }, by: 'dr.replay' },
      actor,
    ).then(
      () => undefined,
      (err: unknown) => err,
    );
    if (!partial) throw new Error('a partial decision was accepted');
    await resolveConflict(
      pool,
      client,
      conflictId,
      { fields: { start: 'local', end: 'remote' }, by: 'dr.replay' },
      actor,
    );
    await handle.result();
    await writeHistory('conflict-resolution', handle, [...(await sandboxIdentifiers(sandbox)), LOCAL.start, LOCAL.end]);
  } finally {
    await close();
  }
}

runRecorder(main);
