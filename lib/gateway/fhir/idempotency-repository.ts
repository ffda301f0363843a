/**
 * Consumers' Idempotency-Keys for creates (migrations/1733610000000_gateway-idempotency-keys.sql): claimed in the
 * create's own transaction, so a create and its key commit or vanish together, and a second request with the key
 * waits on the first's row lock and then finds it. Identifiers and a keyed digest only.
 */
import type { PoolClient, Queryable } from '../../store/pool.js';

/** How long a key is remembered; a key sent again after this creates anew. */
export const IDEMPOTENCY_KEY_HOURS = 24;

export interface IdempotencyClaim {
  tenantId: string;
  consumerId: string;
  key: string;
  requestDigest: string;
  integrationId: string;
  resourceType: string;
  resourceId: string;
}

export interface ClaimedKey {
  requestDigest: string;
  integrationId: string;
  resourceType: string;
  resourceId: string;
}

/**
 * Claims the key for this create; when the consumer already used it (within the window), what it created then.
 * The tenant's expired keys go first (any consumer's create sweeps them, so none outlive the window by much).
 */
export async function claimIdempotencyKey(
  client: PoolClient,
  claim: IdempotencyClaim,
): Promise<{ claimed: true } | { claimed: false; earlier: ClaimedKey }> {
  await client.query(
    `DELETE FROM gateway_idempotency_keys
      WHERE tenant_id = $1 AND created_at < now() - make_interval(hours => $2)`,
    [claim.tenantId, IDEMPOTENCY_KEY_HOURS],
  );
  const inserted = await client.query(
    `INSERT INTO gateway_idempotency_keys
       (tenant_id, consumer_id, idempotency_key, request_digest, integration_id, resource_type, resource_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
    [
      claim.tenantId,
      claim.consumerId,
      claim.key,
      claim.requestDigest,
      claim.integrationId,
      claim.resourceType,
      claim.resourceId,
    ],
  );
  if (inserted.rowCount === 1) return { claimed: true };
  const earlier = await client.query<{
    request_digest: string;
    integration_id: string;
    resource_type: string;
    resource_id: string;
  }>(
    `SELECT request_digest, integration_id, resource_type, resource_id FROM gateway_idempotency_keys
      WHERE tenant_id = $1 AND consumer_id = $2 AND idempotency_key = $3`,
    [claim.tenantId, claim.consumerId, claim.key],
  );
  const row = earlier.rows[0];
  // Not there: it expired and another claim of the tenant removed it between the two statements (rare): the
  // create fails whole (500, nothing stored) and the consumer's retry claims the key afresh.
  if (!row) throw new Error('idempotency key claim raced a rollback');
  return {
    claimed: false,
    earlier: {
      requestDigest: row.request_digest,
      integrationId: row.integration_id,
      resourceType: row.resource_type,
      resourceId: row.resource_id,
    },
  };
}

/** The id the EHR gave a created resource once its change was sent, else undefined (still the local id). */
export async function vendorIdOfCreate(
  db: Queryable,
  key: { tenantId: string; integrationId: string; resourceType: string; resourceId: string },
): Promise<string | undefined> {
  const res = await db.query<{ vendor_resource_id: string | null }>(
    `SELECT vendor_resource_id FROM outbox_changes
      WHERE tenant_id = $1 AND integration_id = $2 AND resource_type = $3 AND resource_id = $4 AND kind = 'create'`,
    [key.tenantId, key.integrationId, key.resourceType, key.resourceId],
  );
  return res.rows[0]?.vendor_resource_id ?? undefined;
}
