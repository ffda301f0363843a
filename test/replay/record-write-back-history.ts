/**
 * Records a writeBack history for test/replay/replay.test.ts:
 *   npx tsx test/replay/record-write-back-history.ts
 * Three changes queued to one integration of the sandbox: one refused (422), one sent, one meeting a conflicting
 * edit at the vendor (412, then a stale-write conflict); then the refused one retried and sent. The workflow stays
 * open (it idles for the next change): the history is recorded up to that point.
 */
import { randomUUID } from 'node:crypto';
import { registerIntegration } from '../../lib/integrations/registration.js';
import { createKekProvider } from '../../lib/keys/kek-factory.js';
import { KeyHierarchy } from '../../lib/keys/key-hierarchy.js';
import { TenantKeyring } from '../../lib/keys/keyring.js';
import { withTransaction } from '../../lib/store/pool.js';
import { createTenant } from '../../lib/store/tenants.js';
import { defaultWritePolicy } from '../../lib/writeback/authority.js';
import { writeBackWorkflowId } from '../../lib/writeback/notifier.js';
import { retryChange } from '../../lib/writeback/operations.js';
import { enqueueChange } from '../../lib/writeback/outbox.js';
import { getOutboxChange } from '../../lib/writeback/outbox-repository.js';
import { temporalOutboxNotifier } from '../../workers/outbox-notifier.js';
import { runRecorder, sandboxIdentifiers, startRecordingStack, writeHistory } from './history-files.js';

const actor = { actor: 'recorder', correlationId: randomUUID() };

async function main(): Promise<void> {
  const { infra, sandbox, pool, config, client, close } = await startRecordingStack({
    taskQueue: 'record-write-back',
    sandboxSeed: 95,
    sandboxSize: 40,
  });
  const admin = async (method: string, route: string, body?: unknown) => {
    const res = await fetch(`${sandbox.url}${route}`, {
      method,
      headers: { 'x-sandbox-admin': sandbox.adminToken, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`sandbox admin ${route}: ${res.status}`);
    return (await res.json()) as Record<string, unknown>;
  };
  try {
    await createTenant(pool, { id: 'replay', name: 'Replay Clinic (synthetic)' }, actor);
    const scope = { tenantId: 'replay', integrationId: 'replay-write-back' };
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
    await pool.query(
      `INSERT INTO write_policies (tenant_id, integration_id, resource_type, policy, updated_by)
       VALUES ($1, $2, 'Appointment', $3, 'recorder')`,
      [scope.tenantId, scope.integrationId, JSON.stringify(defaultWritePolicy('Appointment'))],
    );
    const kek = await KeyHierarchy.open({ pool, backend: await createKekProvider(config) });
    const keyring = new TenantKeyring({ pool, kek });
    const manifest = (await admin('GET', '/admin/manifest?type=Appointment')) as {
      records: Array<{ id: string; versionId: string }>;
    };
    const queue = async (id: string, elements: Record<string, unknown>): Promise<string> => {
      const copy = await admin('GET', `/admin/resource/Appointment/${id}`);
      const base = Object.fromEntries(Object.keys(elements).map((e) => [e, copy[e] ?? null]));
      const change = {
        ...scope,
        resourceType: 'Appointment',
        resourceId: id,
        origin: 'gateway' as const,
        requestedBy: 'consumer:recorder',
        baseVersionId: (copy.meta as { versionId: string }).versionId,
        payload: { kind: 'update' as const, elements, base },
      };
      return withTransaction(pool, async (c) => (await enqueueChange(c, keyring, change, actor)).id);
    };
    const [a, b, c] = manifest.records.map((r) => r.id);
    await admin('POST', '/admin/write-faults', { status: 422, code: 'business-rule', times: 1 });
    await admin('POST', '/admin/conflicting-edit', {
      resourceType: 'Appointment',
      id: c,
      elements: { start: '2026-12-31T11:00:00Z' },
      onNextWrite: true,
    });
    const ids = [await queue(a!, { status: 'cancelled' }), await queue(b!, { status: 'cancelled' })];
    ids.push(await queue(c!, { start: '2026-12-30T10:00:00Z' }));
    const notifier = temporalOutboxNotifier(client, config.TEMPORAL_TASK_QUEUE);
    await notifier.changesQueued(scope);
    const settledAll = async (want: string[]) => {
      for (let i = 0; ; i++) {
        const statuses = await Promise.all(ids.map(async (id) => (await getOutboxChange(pool, id))!.status));
        if (statuses.every((s, k) => s === want[k])) return;
        if (i > 600) throw new Error(`changes did not settle: ${statuses.join(', ')}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    await settledAll(['refused', 'sent', 'conflict']);
    await retryChange(pool, notifier, ids[0]!, actor);
    await settledAll(['sent', 'sent', 'conflict']);
    const handle = client.workflow.getHandle(writeBackWorkflowId(scope.integrationId));
    await writeHistory('write-back', handle, await sandboxIdentifiers(sandbox));
    await handle.terminate('recorded');
  } finally {
    await close();
  }
}

runRecorder(main);
