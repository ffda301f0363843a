/**
 * Since issue 13 the organisation's writes go through the write-back outbox (lib/writeback/): while an incident
 * holds an integration's writes its changes stay pending and its writeBack workflow waits; recovery wakes it
 * (`wakeWriteBacks`) and each change is sent once. The queue below is the older door, kept so rows queued
 * through it (and recorded incident histories) still replay.
 *
 * Vendor writes that arrive while their integration is held by an incident are queued, not lost:
 * `enqueueVendorWrite` stores the request (resource envelope-encrypted with the tenant's data key,
 * which binds it to the row's identifiers) under its idempotency key; after approval the containment
 * workflow replays each once through VendorClient.create/update with that same key, so a replay
 * repeated after a crash is answered by the vendor's idempotency record instead of a second write.
 */
import { appendAuditEvents } from '../audit/chain.js';
import type { AuditContext } from '../audit/chain.js';
import { decryptRecord, encryptRecord } from '../crypto/envelope.js';
import type { TenantKeyring } from '../keys/keyring.js';
import type { Pool } from '../store/pool.js';
import { withTransaction } from '../store/pool.js';
import type { VendorClient } from '../vendors/vendor-client.js';
import { VendorHttpError } from '../errors/index.js';
import type { OutboxNotifier } from '../writeback/notifier.js';
import { pendingChangeIds } from '../writeback/outbox-repository.js';
import { writesHeld } from './holds.js';

export interface VendorWrite {
  integrationId: string;
  method: 'create' | 'update';
  resourceType: string;
  /** Required for update. */
  resourceId?: string;
  resource: Record<string, unknown>;
  idempotencyKey: string;
}

/** The AAD names the queue row by its idempotency key, so a ciphertext moved to another row fails. */
function recordContext(tenantId: string, w: Pick<VendorWrite, 'integrationId' | 'idempotencyKey'>) {
  return {
    tenantId,
    integrationId: w.integrationId,
    resourceType: 'PendingVendorAction',
    resourceId: w.idempotencyKey,
  };
}

export type WriteOutcome = { queued: true; incidentId: string } | { queued: false; status: number };

/**
 * The one door for vendor writes outside a sync: sends now through the VendorClient, or — while an
 * incident holds the integration — queues the write (a repeat of the same idempotency key is stored once).
 */
export async function enqueueVendorWrite(
  deps: { pool: Pool; keyring: TenantKeyring; vendors: VendorClient },
  write: VendorWrite,
  ctx: AuditContext,
): Promise<WriteOutcome> {
  const hold = await writesHeld(deps.pool, write.integrationId);
  if (!hold) {
    const res = await sendWrite(deps.vendors, write, ctx.correlationId);
    return { queued: false, status: res.status };
  }
  const tenant = await deps.pool.query<{ tenant_id: string }>('SELECT tenant_id FROM integrations WHERE id = $1', [
    write.integrationId,
  ]);
  const tenantId = tenant.rows[0]!.tenant_id;
  const dek = await deps.keyring.primaryDataKey(tenantId, ctx);
  const ciphertext = encryptRecord(dek, recordContext(tenantId, write), Buffer.from(JSON.stringify(write.resource)));
  await withTransaction(deps.pool, async (client) => {
    const inserted = await client.query(
      `INSERT INTO pending_vendor_actions (tenant_id, integration_id, method, resource_type, resource_id,
         idempotency_key, ciphertext, queued_by)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (integration_id, idempotency_key) DO NOTHING`,
      [
        tenantId,
        write.integrationId,
        write.method,
        write.resourceType,
        write.resourceId ?? null,
        write.idempotencyKey,
        ciphertext,
        ctx.actor,
      ],
    );
    if (inserted.rowCount === 0) return;
    await appendAuditEvents(client, [
      {
        ...ctx,
        action: 'vendor.write_queued',
        outcome: 'success',
        tenantId,
        integrationId: write.integrationId,
        details: { incidentId: hold.incident_id, method: write.method, resourceType: write.resourceType },
      },
    ]);
  });
  return { queued: true, incidentId: hold.incident_id };
}

async function sendWrite(vendors: VendorClient, w: VendorWrite, correlationId: string) {
  const ctx = { correlationId, purpose: 'vendor.write', idempotencyKey: w.idempotencyKey };
  if (w.method === 'update')
    return vendors.update(w.integrationId, w.resourceType, w.resourceId ?? '', w.resource, ctx);
  return vendors.create(w.integrationId, w.resourceType, w.resource, ctx);
}

/** Replays the integration's queued writes once each, oldest first; returns how many were sent now. */
export async function replayPendingWrites(
  deps: { pool: Pool; keyring: TenantKeyring; vendors: VendorClient },
  integrationId: string,
  correlationId: string,
): Promise<number> {
  const rows = await deps.pool.query<{
    id: string;
    tenant_id: string;
    method: 'create' | 'update';
    resource_type: string;
    resource_id: string | null;
    idempotency_key: string;
    ciphertext: Buffer;
  }>(
    `SELECT id, tenant_id, method, resource_type, resource_id, idempotency_key, ciphertext
        FROM pending_vendor_actions WHERE integration_id = $1 AND replayed_at IS NULL ORDER BY id`,
    [integrationId],
  );
  for (const r of rows.rows) {
    const plain = await decryptRecord(
      r.ciphertext,
      recordContext(r.tenant_id, { integrationId, idempotencyKey: r.idempotency_key }),
      (t, v) => deps.keyring.dataKey(t, v),
    );
    const write: VendorWrite = {
      integrationId,
      method: r.method,
      resourceType: r.resource_type,
      ...(r.resource_id ? { resourceId: r.resource_id } : {}),
      resource: JSON.parse(plain.toString('utf8')) as Record<string, unknown>,
      idempotencyKey: r.idempotency_key,
    };
    // A crash after the vendor answered and before this UPDATE resends with the same key: the vendor
    // returns its first answer and writes nothing more.
    let status: number;
    try {
      status = (await sendWrite(deps.vendors, write, correlationId)).status;
    } catch (err) {
      // A refusal the vendor will repeat (4xx) is recorded against the write, not retried forever;
      // anything retryable propagates and the activity retries with the same key.
      if (!(err instanceof VendorHttpError) || err.retryable) throw err;
      status = err.status;
    }
    await deps.pool.query('UPDATE pending_vendor_actions SET replayed_at = now(), replay_status = $2 WHERE id = $1', [
      r.id,
      status,
    ]);
  }
  return rows.rows.length;
}

/**
 * After recovery: wakes the writeBack workflow of each integration that has pending outbox changes (held while
 * the incident held its writes), so each is sent once. Returns the integrations woken.
 */
export async function wakeWriteBacks(
  deps: { pool: Pool; outbox: OutboxNotifier },
  integrations: ReadonlyArray<{ tenantId: string; integrationId: string }>,
): Promise<string[]> {
  const woken: string[] = [];
  for (const i of integrations) {
    if ((await pendingChangeIds(deps.pool, i.integrationId, 1)).length === 0) continue;
    await deps.outbox.changesQueued({ tenantId: i.tenantId, integrationId: i.integrationId });
    woken.push(i.integrationId);
  }
  return woken;
}
