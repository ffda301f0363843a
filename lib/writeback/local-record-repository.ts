/**
 * The local copy of a disputed record, as a conflict's resolution reads and replaces it (lib/writeback/
 * conflict-resolution.ts): ciphertext and identifiers only, in the caller's transaction.
 */
import type { PoolClient } from '../store/pool.js';

/** The local copy of a record (ciphertext and version), locked for the caller's transaction. */
export async function lockLocalRecord(
  client: PoolClient,
  record: { tenantId: string; integrationId: string; resourceType: string; resourceId: string },
): Promise<{ versionId: string; lastUpdated: Date; ciphertext: Buffer } | undefined> {
  const res = await client.query<{ version_id: string; last_updated: Date; ciphertext: Buffer }>(
    `SELECT version_id, last_updated, ciphertext FROM records
      WHERE tenant_id = $1 AND integration_id = $2 AND resource_type = $3 AND resource_id = $4 FOR UPDATE`,
    [record.tenantId, record.integrationId, record.resourceType, record.resourceId],
  );
  const r = res.rows[0];
  return r ? { versionId: r.version_id, lastUpdated: r.last_updated, ciphertext: r.ciphertext } : undefined;
}

/**
 * Replaces the local copy of a record with what a resolution decided, whatever version it held (the sync upsert
 * keeps a newer local version; a person's decision overrides it). A tombstone of the record goes: it is live.
 */
export async function replaceLocalRecord(
  client: PoolClient,
  record: {
    tenantId: string;
    integrationId: string;
    resourceType: string;
    resourceId: string;
    versionId: string;
    lastUpdated: string;
    patientPseudonym: string | null;
    keyVersion: number;
    ciphertext: Buffer;
  },
): Promise<void> {
  const key = [record.tenantId, record.integrationId, record.resourceType, record.resourceId];
  await client.query(
    `INSERT INTO records (tenant_id, integration_id, resource_type, resource_id, version_id, last_updated,
       patient_pseudonym, key_version, ciphertext)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
     ON CONFLICT (tenant_id, integration_id, resource_type, resource_id) DO UPDATE
       SET version_id = EXCLUDED.version_id, last_updated = EXCLUDED.last_updated,
           patient_pseudonym = EXCLUDED.patient_pseudonym, key_version = EXCLUDED.key_version,
           ciphertext = EXCLUDED.ciphertext, stored_at = now()`,
    [...key, record.versionId, record.lastUpdated, record.patientPseudonym, record.keyVersion, record.ciphertext],
  );
  await client.query(
    `DELETE FROM record_tombstones
      WHERE tenant_id = $1 AND integration_id = $2 AND resource_type = $3 AND resource_id = $4`,
    key,
  );
}
