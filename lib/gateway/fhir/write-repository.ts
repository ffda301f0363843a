/**
 * The gateway's write-side statements: the stored record's version taken under a row lock (so two writes to one
 * record are serialised and the second sees the first), and the vendor version a local copy was based on.
 * Identifiers only.
 */
import type { PoolClient, Queryable } from '../../store/pool.js';

export interface RecordKey {
  tenantId: string;
  integrationId: string;
  resourceType: string;
  resourceId: string;
}

/** The record's current version id, its row locked until the transaction ends; undefined: not stored. */
export async function lockRecordVersion(client: PoolClient, key: RecordKey): Promise<string | undefined> {
  const res = await client.query<{ version_id: string }>(
    `SELECT version_id FROM records
      WHERE tenant_id = $1 AND integration_id = $2 AND resource_type = $3 AND resource_id = $4 FOR UPDATE`,
    [key.tenantId, key.integrationId, key.resourceType, key.resourceId],
  );
  return res.rows[0]?.version_id;
}

/**
 * The vendor version a local copy stands on when the stored version is itself local: the base of the record's
 * earliest pending change; else, when none is pending, the version the latest settled change produced at the
 * vendor (or was made against). Null when the record has no change at all (then nothing is known).
 */
export async function vendorBaseOfLocalCopy(db: Queryable, key: RecordKey): Promise<string | null> {
  const res = await db.query<{ base: string | null }>(
    `(SELECT base_version_id AS base, 0 AS rank, created_at FROM outbox_changes
        WHERE tenant_id = $1 AND integration_id = $2 AND resource_type = $3 AND resource_id = $4
          AND status = 'pending' ORDER BY created_at, id LIMIT 1)
     UNION ALL
     (SELECT COALESCE(vendor_version_id, base_version_id) AS base, 1 AS rank, created_at FROM outbox_changes
        WHERE tenant_id = $1 AND integration_id = $2 AND resource_type = $3 AND resource_id = $4
          AND status <> 'pending' ORDER BY created_at DESC, id DESC LIMIT 1)
     ORDER BY rank LIMIT 1`,
    [key.tenantId, key.integrationId, key.resourceType, key.resourceId],
  );
  return res.rows[0]?.base ?? null;
}

/** Whether the record's create is still waiting in the outbox (it has no vendor id yet). */
export async function createPending(db: Queryable, key: RecordKey): Promise<boolean> {
  const res = await db.query(
    `SELECT 1 FROM outbox_changes WHERE tenant_id = $1 AND integration_id = $2 AND resource_type = $3
        AND resource_id = $4 AND kind = 'create' AND status = 'pending' LIMIT 1`,
    [key.tenantId, key.integrationId, key.resourceType, key.resourceId],
  );
  return (res.rowCount ?? 0) > 0;
}
