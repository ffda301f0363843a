/**
 * Planting local changes for reconciliation tests the way the gateway makes them: a local version of the record
 * (its own version id, last_updated now) stored encrypted, optionally with its outbox change, in one transaction.
 */
import type { Payload } from '@temporalio/common';
import type { Client } from '@temporalio/client';
import { decryptRecord, encryptRecord } from '../../lib/crypto/envelope.js';
import type { ResourceType } from '../../lib/domain.js';
import { createKekProvider } from '../../lib/keys/kek-factory.js';
import { KeyHierarchy } from '../../lib/keys/key-hierarchy.js';
import { TenantKeyring } from '../../lib/keys/keyring.js';
import type { Pool } from '../../lib/store/pool.js';
import { createPool, withTransaction } from '../../lib/store/pool.js';
import type { ChangePayload } from '../../lib/writeback/outbox.js';
import { enqueueChange } from '../../lib/writeback/outbox.js';
import { testEnv } from '../harness.js';
import { createLeakScanCodec } from './leak-scan-codec.js';
import type { SyncHarness } from './support.js';
import { testActor } from './support.js';

export interface Scope {
  tenantId: string;
  integrationId: string;
  resourceType: ResourceType;
}

export async function testKeyring(harness: SyncHarness): Promise<TenantKeyring> {
  const kek = await KeyHierarchy.open({ pool: harness.pool, backend: await createKekProvider(harness.config) });
  return new TenantKeyring({ pool: harness.pool, kek });
}

export async function storedResource(
  pool: Pool,
  keyring: TenantKeyring,
  scope: Scope,
  id: string,
): Promise<{ versionId: string; resource: Record<string, unknown> } | undefined> {
  const res = await pool.query<{ version_id: string; ciphertext: Buffer }>(
    `SELECT version_id, ciphertext FROM records
      WHERE tenant_id = $1 AND integration_id = $2 AND resource_type = $3 AND resource_id = $4`,
    [scope.tenantId, scope.integrationId, scope.resourceType, id],
  );
  const row = res.rows[0];
  if (!row) return undefined;
  const plain = await decryptRecord(row.ciphertext, { ...scope, resourceId: id }, keyring.lookup);
  return { versionId: row.version_id, resource: JSON.parse(plain.toString('utf8')) as Record<string, unknown> };
}

/**
 * Stores a local version of a record (a new one when `id` is not stored), and queues its change when given,
 * in one transaction — as the gateway does.
 */
export async function storeLocalVersion(
  pool: Pool,
  keyring: TenantKeyring,
  scope: Scope,
  id: string,
  resource: Record<string, unknown>,
  change?: { payload: ChangePayload; baseVersionId: string | null },
): Promise<void> {
  const dek = await keyring.primaryDataKey(scope.tenantId, testActor);
  const versionId = `local-${Date.now()}`;
  const stored = { ...resource, id, meta: { versionId, lastUpdated: new Date().toISOString() } };
  const ciphertext = encryptRecord(dek, { ...scope, resourceId: id }, Buffer.from(JSON.stringify(stored), 'utf8'));
  await withTransaction(pool, async (client) => {
    await client.query(
      `INSERT INTO records (tenant_id, integration_id, resource_type, resource_id, version_id, last_updated,
         patient_pseudonym, key_version, ciphertext)
       VALUES ($1, $2, $3, $4, $5, now(), NULL, $6, $7)
       ON CONFLICT (tenant_id, integration_id, resource_type, resource_id) DO UPDATE
         SET version_id = EXCLUDED.version_id, last_updated = now(), key_version = EXCLUDED.key_version,
             ciphertext = EXCLUDED.ciphertext`,
      [scope.tenantId, scope.integrationId, scope.resourceType, id, versionId, dek.version, ciphertext],
    );
    if (change)
      await enqueueChange(
        client,
        keyring,
        {
          ...scope,
          resourceId: id,
          origin: 'gateway',
          requestedBy: 'consumer:test',
          baseVersionId: change.baseVersionId,
          payload: change.payload,
        },
        testActor,
      );
  });
}

/** An incident hold on the integration that queues its vendor writes (what containment leaves behind). */
export async function holdWrites(integrationId: string): Promise<string> {
  const incidentId = `inc-rec-${integrationId}`.slice(0, 63);
  const owner = createPool(testEnv().ownerDatabaseUrl, 1);
  try {
    await owner.query(
      `INSERT INTO incidents (id, scope, severity, reason, declared_by, declared_at, affected, status)
       VALUES ($1, $2, 'high', 'synthetic', 'user:test', now(), '[]'::jsonb, 'contained')`,
      [incidentId, `integration:${integrationId}`],
    );
    await owner.query(
      `INSERT INTO incident_holds (incident_id, scope, exports_frozen, webhooks_refused, writes_queued, legal_hold)
       VALUES ($1, $2, false, false, true, false)`,
      [incidentId, `integration:${integrationId}`],
    );
  } finally {
    await owner.end();
  }
  return incidentId;
}

/** Every payload of a workflow's history, decoded with the product's codec, as one text. */
export async function decodedHistoryText(client: Client, workflowId: string): Promise<string> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const payloads: Payload[] = [];
  const walk = (value: unknown): void => {
    if (value === null || typeof value !== 'object') return;
    if (value instanceof Uint8Array) return;
    const o = value as Record<string, unknown>;
    if (o.data instanceof Uint8Array && o.metadata && typeof o.metadata === 'object') {
      payloads.push(o as Payload);
      return;
    }
    for (const v of Object.values(o)) walk(v);
  };
  walk(history.events);
  const decoded = await createLeakScanCodec(testEnv()).decode(payloads);
  return decoded.map((p) => Buffer.from(p.data ?? new Uint8Array()).toString('utf8')).join('\n');
}
