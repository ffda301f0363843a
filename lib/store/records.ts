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

export async function upsertRecords(
  client: PoolClient,
  scope: { tenantId: string; integrationId: string; resourceType: string },
  records: EncryptedRecord[],
): Promise<UpsertCounts> {
  const unique = latestPerId(records);
  if (unique.length === 0) return { inserted: 0, updated: 0, unchanged: 0 };
  const res = await client.query<{ inserted: boolean }>(
    `INSERT INTO records AS r (tenant_id, integration_id, resource_type, resource_id, version_id,
       last_updated, patient_pseudonym, key_version, ciphertext)
     SELECT $1, $2, $3, t.resource_id, t.version_id, t.last_updated, t.patient_pseudonym, t.key_version, t.ciphertext
       FROM unnest($4::text[], $5::text[], $6::timestamptz[], $7::text[], $8::int[], $9::bytea[])
         AS t(resource_id, version_id, last_updated, patient_pseudonym, key_version, ciphertext)
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
      unique.map((r) => r.resourceId),
      unique.map((r) => r.versionId),
      unique.map((r) => r.lastUpdated),
      unique.map((r) => r.patientPseudonym),
      unique.map((r) => r.keyVersion),
      unique.map((r) => r.ciphertext),
    ],
  );
  const inserted = res.rows.filter((r) => r.inserted).length;
  const updated = res.rows.length - inserted;
  return { inserted, updated, unchanged: unique.length - res.rows.length };
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
