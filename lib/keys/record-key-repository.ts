/**
 * Records (and queued vendor writes) by the DEK version their ciphertext's envelope header names, read
 * in SQL (`envelope_key_version`, migration 1733200001000) — the same bytes decryption trusts — never
 * from the `key_version` column beside it. The statements of tenant DEK re-encryption and retirement.
 */
import type { PoolClient, Queryable } from '../store/pool.js';

/** The DEK version a record's ciphertext header names (NULL for a malformed header), as SQL. */
const HEADER_VERSION = 'envelope_key_version(ciphertext)';

export interface StoredRecordRow {
  integration_id: string;
  resource_type: string;
  resource_id: string;
  version_id: string;
  header_version: number;
  ciphertext: Buffer;
}

/** Records of the tenant whose ciphertext header names a DEK version below `keyVersion`. */
export async function countRecordsBelowKeyVersion(
  db: Queryable,
  tenantId: string,
  keyVersion: number,
): Promise<number> {
  const { rows } = await db.query<{ n: string }>(
    `SELECT count(*) AS n FROM records WHERE tenant_id = $1 AND ${HEADER_VERSION} < $2`,
    [tenantId, keyVersion],
  );
  return Number(rows[0]?.n ?? 0);
}

/** Up to `limit` records whose header names a version below `keyVersion`, locked (SKIP LOCKED: batches share work). */
export async function lockRecordsBelowKeyVersion(
  client: PoolClient,
  tenantId: string,
  keyVersion: number,
  limit: number,
): Promise<StoredRecordRow[]> {
  const { rows } = await client.query<StoredRecordRow>(
    `SELECT integration_id, resource_type, resource_id, version_id, ${HEADER_VERSION}::int AS header_version, ciphertext
       FROM records WHERE tenant_id = $1 AND ${HEADER_VERSION} < $2
      ORDER BY integration_id, resource_type, resource_id LIMIT $3 FOR UPDATE SKIP LOCKED`,
    [tenantId, keyVersion, limit],
  );
  return rows;
}

/**
 * Stores the re-encrypted ciphertexts; a row is written only if its header still names the version
 * read (a sync write that landed in between is never overwritten). Returns how many were written.
 */
export async function storeReencryptedRecords(
  client: PoolClient,
  tenantId: string,
  keyVersion: number,
  rows: StoredRecordRow[],
  fresh: Buffer[],
): Promise<number> {
  const res = await client.query(
    `UPDATE records AS r SET ciphertext = t.ciphertext, key_version = $2
       FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::int[], $8::bytea[])
         AS t(integration_id, resource_type, resource_id, version_id, header_version, ciphertext)
      WHERE r.tenant_id = $1 AND r.integration_id = t.integration_id AND r.resource_type = t.resource_type
        AND r.resource_id = t.resource_id AND r.version_id = t.version_id
        AND envelope_key_version(r.ciphertext) = t.header_version`,
    [
      tenantId,
      keyVersion,
      rows.map((r) => r.integration_id),
      rows.map((r) => r.resource_type),
      rows.map((r) => r.resource_id),
      rows.map((r) => r.version_id),
      rows.map((r) => r.header_version),
      fresh,
    ],
  );
  return res.rowCount ?? 0;
}

/** Every record of the tenant, counted by whether its header names a version below, or exactly, `keyVersion`. */
export async function countRecordsByKeyVersion(
  db: Queryable,
  tenantId: string,
  keyVersion: number,
): Promise<{ records: number; older: number; current: number }> {
  const counts = await db.query<{ records: string; older: string; current: string }>(
    `SELECT count(*) AS records, count(*) FILTER (WHERE v < $2) AS older, count(*) FILTER (WHERE v = $2) AS current
       FROM (SELECT ${HEADER_VERSION} AS v FROM records WHERE tenant_id = $1) q`,
    [tenantId, keyVersion],
  );
  const row = counts.rows[0];
  return { records: Number(row?.records ?? 0), older: Number(row?.older ?? 0), current: Number(row?.current ?? 0) };
}

/** A random sample of the records whose header names `keyVersion`. */
export async function sampleRecordsUnderKeyVersion(
  db: Queryable,
  tenantId: string,
  keyVersion: number,
  sampleSize: number,
): Promise<Array<Omit<StoredRecordRow, 'version_id' | 'header_version'>>> {
  const sample = await db.query<Omit<StoredRecordRow, 'version_id' | 'header_version'>>(
    `SELECT integration_id, resource_type, resource_id, ciphertext FROM records
      WHERE tenant_id = $1 AND ${HEADER_VERSION} = $2 ORDER BY random() LIMIT $3`,
    [tenantId, keyVersion, sampleSize],
  );
  return sample.rows;
}

/** Records whose header names `keyVersion`, counted per integration and resource type, largest first. */
export async function recordGroupsUnderKeyVersion(
  client: PoolClient,
  tenantId: string,
  keyVersion: number,
): Promise<Array<{ integration_id: string; resource_type: string; n: string }>> {
  const { rows } = await client.query<{ integration_id: string; resource_type: string; n: string }>(
    `SELECT integration_id, resource_type, count(*) AS n FROM records WHERE tenant_id = $1 AND ${HEADER_VERSION} = $2
      GROUP BY integration_id, resource_type ORDER BY count(*) DESC, integration_id, resource_type`,
    [tenantId, keyVersion],
  );
  return rows;
}

/**
 * The DEK versions that what still waits to go to the vendor is encrypted under — writes queued during an
 * incident, write-back changes, open conflicts — read from the envelope header (lib/crypto/envelope.ts: format
 * byte, 2-byte key id length, key id, 4-byte key version).
 */
export async function versionsHeldByQueuedWrites(client: PoolClient, tenantId: string): Promise<Set<number>> {
  // Re-encryption moves records only. Writes queued during an incident, write-back changes not yet sent (or
  // refused, or parked on a conflict, whose resolution carries their values on) and open conflicts' two sides
  // keep the version they were encrypted under until they settle.
  const { rows } = await client.query<{ v: string }>(
    `SELECT DISTINCT v FROM (
       SELECT ${HEADER_VERSION} AS v FROM pending_vendor_actions WHERE tenant_id = $1 AND replayed_at IS NULL
       UNION ALL
       SELECT ${HEADER_VERSION} FROM outbox_changes
        WHERE tenant_id = $1 AND status IN ('pending', 'refused', 'conflict')
       UNION ALL
       SELECT ${HEADER_VERSION} FROM reconcile_conflicts WHERE tenant_id = $1 AND status = 'open') held
      WHERE v IS NOT NULL`,
    [tenantId],
  );
  return new Set(rows.map((r) => Number(r.v)));
}
