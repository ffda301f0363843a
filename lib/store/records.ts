/**
 * Encrypted records, upserted by (tenant, integration, type, id) with a version check: re-running
 * a page (after a crash, timeout or retry) leaves the same state (DESIGN §4 invariant 9).
 */
import type { PoolClient, Queryable } from './pool.js';

export interface EncryptedRecord {
  resourceId: string;
  versionId: string;
  lastUpdated: string;
  patientPseudonym: string | null;
  keyVersion: number;
  ciphertext: Buffer;
}

export interface UpsertCounts {
  inserted: number;
  updated: number;
  unchanged: number;
}

/**
 * Records as columns, one entry per resource (ids unique), their ciphertexts laid end to end in one buffer and
 * cut by offset and length: how a batch sealed as it streams holds them (no object and buffer per record kept
 * while the batch fills), and how they travel to PostgreSQL.
 */
export interface RecordColumns {
  resourceIds: string[];
  versionIds: string[];
  lastUpdated: string[];
  patientPseudonyms: Array<string | null>;
  keyVersions: number[];
  /** The ciphertexts end to end; entry i is ciphertexts[offsets[i] .. offsets[i] + lengths[i]). */
  ciphertexts: Buffer;
  offsets: number[];
  lengths: number[];
}

export async function upsertRecords(
  client: PoolClient,
  scope: { tenantId: string; integrationId: string; resourceType: string },
  records: EncryptedRecord[],
): Promise<UpsertCounts> {
  const unique = latestPerId(records);
  const offsets: number[] = [];
  const lengths: number[] = [];
  let offset = 0;
  for (const r of unique) {
    offsets.push(offset);
    lengths.push(r.ciphertext.byteLength);
    offset += r.ciphertext.byteLength;
  }
  return upsertRecordColumns(client, scope, {
    resourceIds: unique.map((r) => r.resourceId),
    versionIds: unique.map((r) => r.versionId),
    lastUpdated: unique.map((r) => r.lastUpdated),
    patientPseudonyms: unique.map((r) => r.patientPseudonym),
    keyVersions: unique.map((r) => r.keyVersion),
    ciphertexts: Buffer.concat(
      unique.map((r) => r.ciphertext),
      offset,
    ),
    offsets,
    lengths,
  });
}

/** upsertRecords for records already in columns (ids unique within them). */
export async function upsertRecordColumns(
  client: PoolClient,
  scope: { tenantId: string; integrationId: string; resourceType: string },
  columns: RecordColumns,
): Promise<UpsertCounts> {
  const count = columns.resourceIds.length;
  if (count === 0) return { inserted: 0, updated: 0, unchanged: 0 };
  // The ciphertexts travel as one bytea parameter, sent in binary, and are cut in SQL by offset and length: a
  // bytea[] parameter goes as hex text (twice the bytes, encoded here and decoded there).
  const res = await client.query<{ inserted: boolean }>(
    `INSERT INTO records AS r (tenant_id, integration_id, resource_type, resource_id, version_id,
       last_updated, patient_pseudonym, key_version, ciphertext)
     SELECT $1, $2, $3, t.resource_id, t.version_id, t.last_updated, t.patient_pseudonym, t.key_version,
            substring($9::bytea FROM t.ct_offset + 1 FOR t.ct_length)
       FROM unnest($4::text[], $5::text[], $6::timestamptz[], $7::text[], $8::int[], $10::int[], $11::int[])
         AS t(resource_id, version_id, last_updated, patient_pseudonym, key_version, ct_offset, ct_length)
      -- A version the vendor had already deleted (an overlap window re-reading it, a slow replica) stays deleted.
      WHERE NOT EXISTS (
        SELECT 1 FROM record_tombstones tb
         WHERE tb.tenant_id = $1 AND tb.integration_id = $2 AND tb.resource_type = $3
           AND tb.resource_id = t.resource_id AND tb.deleted_at >= t.last_updated)
     ON CONFLICT (tenant_id, integration_id, resource_type, resource_id) DO UPDATE
       SET version_id = EXCLUDED.version_id, last_updated = EXCLUDED.last_updated,
           patient_pseudonym = EXCLUDED.patient_pseudonym, key_version = EXCLUDED.key_version,
           ciphertext = EXCLUDED.ciphertext, stored_at = now()
       WHERE r.version_id IS DISTINCT FROM EXCLUDED.version_id AND r.last_updated <= EXCLUDED.last_updated
     RETURNING (xmax = 0) AS inserted`,
    [
      scope.tenantId,
      scope.integrationId,
      scope.resourceType,
      columns.resourceIds,
      columns.versionIds,
      columns.lastUpdated,
      columns.patientPseudonyms,
      columns.keyVersions,
      columns.ciphertexts,
      columns.offsets,
      columns.lengths,
    ],
  );
  // A resource re-created after its deletion (a newer version) is live again: its tombstone goes.
  await client.query(
    `DELETE FROM record_tombstones tb USING records r
      WHERE tb.tenant_id = $1 AND tb.integration_id = $2 AND tb.resource_type = $3 AND tb.resource_id = ANY($4)
        AND r.tenant_id = tb.tenant_id AND r.integration_id = tb.integration_id AND r.resource_type = tb.resource_type
        AND r.resource_id = tb.resource_id AND r.last_updated > tb.deleted_at`,
    [scope.tenantId, scope.integrationId, scope.resourceType, columns.resourceIds],
  );
  const inserted = res.rows.filter((r) => r.inserted).length;
  const updated = res.rows.length - inserted;
  return { inserted, updated, unchanged: count - res.rows.length };
}

export type DeletionSource = 'bulk-deleted' | 'read-gone' | 'history';

export interface Deletion {
  resourceId: string;
  /** When the vendor deleted it (its history entry, the export's transactionTime), else when we learned it. */
  deletedAt: string;
  /**
   * True when deletedAt is only when we learned it (a history entry without a time, a read answering 410). Such
   * a time never moves an existing tombstone forward: each run that learns the deletion again would otherwise
   * push it later, and block a version re-created in between.
   */
  learned?: boolean;
}

export interface TombstoneCounts {
  /** Stored records removed (their ciphertext is gone). */
  removed: number;
  /** Tombstones written or moved forward (a deletion of a resource never stored still counts here). */
  tombstoned: number;
  /** Pseudonyms of the patients whose records were removed, for the audit event. */
  pseudonyms: string[];
}

/**
 * Records deletions: each becomes a tombstone (kept at its latest deletion time) and the stored record, when it
 * is not newer than the deletion, is removed. Runs in the caller's transaction, beside its audit event.
 */
export async function tombstoneRecords(
  client: PoolClient,
  scope: { tenantId: string; integrationId: string; resourceType: string },
  deletions: readonly Deletion[],
  how: DeletionSource,
  runId: string,
): Promise<TombstoneCounts> {
  if (deletions.length === 0) return { removed: 0, tombstoned: 0, pseudonyms: [] };
  const latest = new Map<string, Deletion>();
  for (const d of deletions) {
    const seen = latest.get(d.resourceId);
    if (!seen || Date.parse(seen.deletedAt) < Date.parse(d.deletedAt)) latest.set(d.resourceId, d);
  }
  const ids = [...latest.keys()];
  const times = ids.map((id) => latest.get(id)!.deletedAt);
  const learned = ids.map((id) => latest.get(id)!.learned === true);
  // A learned time is written for a resource with no tombstone yet; an existing tombstone keeps its time.
  const tomb = await client.query(
    `INSERT INTO record_tombstones AS tb (tenant_id, integration_id, resource_type, resource_id, deleted_at,
       learned_how, run_id)
     SELECT $1, $2, $3, t.resource_id, t.deleted_at, $6, $7
       FROM unnest($4::text[], $5::timestamptz[], $8::boolean[]) AS t(resource_id, deleted_at, learned)
      WHERE NOT (t.learned AND EXISTS (
        SELECT 1 FROM record_tombstones old
         WHERE old.tenant_id = $1 AND old.integration_id = $2 AND old.resource_type = $3
           AND old.resource_id = t.resource_id))
     ON CONFLICT (tenant_id, integration_id, resource_type, resource_id) DO UPDATE
       SET deleted_at = EXCLUDED.deleted_at, learned_at = now(), learned_how = EXCLUDED.learned_how,
           run_id = EXCLUDED.run_id
       WHERE tb.deleted_at < EXCLUDED.deleted_at`,
    [scope.tenantId, scope.integrationId, scope.resourceType, ids, times, how, runId, learned],
  );
  const removed = await client.query<{ patient_pseudonym: string | null }>(
    `DELETE FROM records r USING unnest($4::text[], $5::timestamptz[]) AS t(resource_id, deleted_at)
      WHERE r.tenant_id = $1 AND r.integration_id = $2 AND r.resource_type = $3
        AND r.resource_id = t.resource_id AND r.last_updated <= t.deleted_at
     RETURNING r.patient_pseudonym`,
    [scope.tenantId, scope.integrationId, scope.resourceType, ids, times],
  );
  const pseudonyms = new Set(removed.rows.flatMap((r) => (r.patient_pseudonym ? [r.patient_pseudonym] : [])));
  return { removed: removed.rowCount ?? 0, tombstoned: tomb.rowCount ?? 0, pseudonyms: [...pseudonyms] };
}

/** A page may, in principle, carry one id twice; one statement may not touch a row twice. */
function latestPerId(records: EncryptedRecord[]): EncryptedRecord[] {
  const byId = new Map<string, EncryptedRecord>();
  for (const r of records) {
    const seen = byId.get(r.resourceId);
    if (!seen || Date.parse(seen.lastUpdated) <= Date.parse(r.lastUpdated)) byId.set(r.resourceId, r);
  }
  return [...byId.values()];
}

export async function countRecords(
  db: Queryable,
  filter: { tenantId?: string; integrationId?: string },
): Promise<Array<{ tenantId: string; integrationId: string; resourceType: string; count: number }>> {
  const res = await db.query<{ tenant_id: string; integration_id: string; resource_type: string; count: string }>(
    `SELECT tenant_id, integration_id, resource_type, count(*) AS count FROM records
      WHERE ($1::text IS NULL OR tenant_id = $1) AND ($2::text IS NULL OR integration_id = $2)
      GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
    [filter.tenantId ?? null, filter.integrationId ?? null],
  );
  return res.rows.map((r) => ({
    tenantId: r.tenant_id,
    integrationId: r.integration_id,
    resourceType: r.resource_type,
    count: Number(r.count),
  }));
}
