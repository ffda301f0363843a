/**
 * Rotation never breaks a read (issue: security core): after the payload key and the KEK are
 * rotated (KEK: new primary, every wrapped key rewrapped, decryption floor raised), the histories
 * and records written before the rotation still decode, and new runs use the new keys.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { startSync, syncResult } from '../../client/sync-client.js';
import { decryptRecord } from '../../lib/crypto/envelope.js';
import { createKekProvider } from '../../lib/keys/kek-factory.js';
import { KeyAdmin } from '../../lib/keys/key-admin.js';
import { KeyHierarchy } from '../../lib/keys/key-hierarchy.js';
import { TenantKeyring } from '../../lib/keys/keyring.js';
import { openPurposeKeys } from '../../lib/keys/open-purpose-keys.js';
import { isResourceType } from '../../lib/domain.js';
import type { RunningWorker } from './support.js';
import { registerSandboxTenant, startInProcessWorker, temporalClient, useSyncHarness } from './support.js';

const ctx = (what: string) => ({ actor: 'test:rotation', correlationId: `${what}-${randomUUID()}` });

const harness = useSyncHarness({
  sandbox: { seed: 21, size: 300 },
  config: { EHR_SYNC_PAGE_SIZE: '50' },
  worker: false,
  raw: true,
});

function keyIdsOf(history: unknown): string[] {
  const ids = new Set<string>();
  const visit = (v: unknown): void => {
    if (v === null || typeof v !== 'object') return;
    const meta = (v as { metadata?: Record<string, Uint8Array> }).metadata;
    const id = meta?.['encryption-key-id'];
    if (id) ids.add(Buffer.from(id).toString('utf8'));
    for (const child of Object.values(v as Record<string, unknown>)) visit(child);
  };
  visit(history);
  return [...ids].sort();
}

async function readAllRecords(tenantId: string, integrationId: string): Promise<number> {
  const kek = await KeyHierarchy.open({ pool: harness.pool, backend: await createKekProvider(harness.config) });
  const keyring = new TenantKeyring({ pool: harness.pool, kek });
  const rows = await harness.pool.query<{ resource_type: string; resource_id: string; ciphertext: Buffer }>(
    'SELECT resource_type, resource_id, ciphertext FROM records WHERE tenant_id = $1 AND integration_id = $2',
    [tenantId, integrationId],
  );
  for (const r of rows.rows) {
    if (!isResourceType(r.resource_type)) throw new Error('unexpected type');
    await decryptRecord(
      r.ciphertext,
      { tenantId, integrationId, resourceType: r.resource_type, resourceId: r.resource_id },
      keyring.lookup,
    );
  }
  return rows.rows.length;
}

describe('rotation keeps every existing record and history readable', () => {
  it('rotates the payload key and the KEK (rewrap, raise floor) without breaking a read', async () => {
    const { tenantId, integrationIds } = await registerSandboxTenant(harness.pool, harness.sandbox, {
      resourceTypes: ['Patient', 'Condition'],
    });
    const integrationId = integrationIds[0]!;
    let worker: RunningWorker = await startInProcessWorker(harness.config);
    const before = await startSync(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, {
      tenantId,
      integrationId,
      vendor: 'sandbox',
    });
    const report = await syncResult(before);
    await worker.stop();
    const oldKeyIds = keyIdsOf(await harness.raw.client.workflow.getHandle(before.workflowId).fetchHistory());
    expect(oldKeyIds.length).toBeGreaterThan(0);

    // Rotate: a new payload key, a new KEK version, every wrapped key rewrapped, the floor raised.
    const kek = await KeyHierarchy.open({
      pool: harness.pool,
      backend: await createKekProvider(harness.config),
      audit: ctx('open'),
    });
    const purpose = await openPurposeKeys(harness.config, { pool: harness.pool, kek, actor: 'test:rotation' });
    const payload = await purpose.rotatePayloadKey(ctx('payload'));
    const admin = new KeyAdmin({ pool: harness.pool, kek, destroyDelaySeconds: 3600 });
    const rotated = await admin.rotateKek(ctx('kek'));
    let remaining = Infinity;
    while (remaining > 0) remaining = (await admin.rewrapDataKeys(100, ctx('rewrap'))).remaining;
    await admin.raiseKekFloor(rotated.version, ctx('floor'));
    expect(oldKeyIds).not.toContain(payload.keyId);

    // Old history: still decodes through a fresh client (payload keys unwrapped under the new KEK).
    const fresh = await temporalClient();
    try {
      const decoded = await fresh.client.workflow.getHandle(before.workflowId).result();
      expect(decoded).toEqual(report);
    } finally {
      await fresh.close();
    }
    // Old records: every one still decrypts.
    expect(await readAllRecords(tenantId, integrationId)).toBe(report.totals.inserted);

    // New runs use the new payload key.
    worker = await startInProcessWorker(harness.config);
    try {
      const after = await startSync(
        harness.temporal.client,
        harness.config.TEMPORAL_TASK_QUEUE,
        { tenantId, integrationId, vendor: 'sandbox' },
        { full: true },
      );
      const again = await syncResult(after);
      expect(again.totals.unchanged).toBe(report.totals.inserted);
      expect(keyIdsOf(await harness.raw.client.workflow.getHandle(after.workflowId).fetchHistory())).toContain(
        payload.keyId,
      );
    } finally {
      await worker.stop();
    }
    const audit = await harness.pool.query<{ action: string }>(
      `SELECT DISTINCT action FROM audit_events WHERE action LIKE 'key.%'
          AND correlation_id LIKE ANY (ARRAY['payload-%', 'kek-%', 'rewrap-%', 'floor-%'])`,
    );
    expect(audit.rows.map((r) => r.action).length).toBeGreaterThanOrEqual(3);
  });
});
