/**
 * The gateway's reads of the encrypted store (lib/gateway/fhir/handler.ts): ciphertext and identifiers only,
 * always within one tenant, across all of its integrations.
 *
 * Which record is served when two integrations hold the same type and id: the one with the newest lastUpdated;
 * on a tie, the one of the lowest integration id (text order). Read by id, searches and $everything apply the same
 * rule (`ORDER BY …, last_updated DESC, integration_id`), and a search filters the winner — an older copy in
 * another integration never matches in its place.
 *
 * Search pages are keyset-paged by resource id (by type and id for $everything): a page starts after the last id
 * of the one before, so under concurrent writes no id is served twice in one paging and none present throughout it
 * is skipped (migrations/1733600000000_records-key-order.sql says which indexes serve them).
 */
import type { Queryable } from './pool.js';

export interface StoredRecordRow {
  integrationId: string;
  resourceType: string;
  resourceId: string;
  versionId: string;
  lastUpdated: Date;
  patientPseudonym: string | null;
  ciphertext: Buffer;
}

interface Row {
  integration_id: string;
  resource_type: string;
  resource_id: string;
  version_id: string;
  last_updated: Date;
  patient_pseudonym: string | null;
  ciphertext: Buffer;
}

const COLUMNS = 'integration_id, resource_type, resource_id, version_id, last_updated, patient_pseudonym, ciphertext';
const COLUMNS_OF_R = COLUMNS.split(', ')
  .map((column) => `r.${column}`)
  .join(', ');

function toRow(r: Row): StoredRecordRow {
  return {
    integrationId: r.integration_id,
    resourceType: r.resource_type,
    resourceId: r.resource_id,
    versionId: r.version_id,
    lastUpdated: r.last_updated,
    patientPseudonym: r.patient_pseudonym,
    ciphertext: r.ciphertext,
  };
}

/** The record served for one type and id of the tenant (the winner across its integrations), if any. */
export async function readWinningRecord(
  db: Queryable,
  tenantId: string,
  resourceType: string,
  resourceId: string,
): Promise<StoredRecordRow | undefined> {
  const res = await db.query<Row>(
    `SELECT ${COLUMNS} FROM records WHERE tenant_id = $1 AND resource_type = $2 AND resource_id = $3
      ORDER BY last_updated DESC, integration_id LIMIT 1`,
    [tenantId, resourceType, resourceId],
  );
  return res.rows[0] ? toRow(res.rows[0]) : undefined;
}

/** Whether a tenant other than `tenantId` holds this type and id (for the audit event of a refused read only). */
export async function heldByAnotherTenant(
  db: Queryable,
  tenantId: string,
  resourceType: string,
  resourceId: string,
): Promise<boolean> {
  // Tenant by tenant, so each probe is an index lookup (the primary key): `tenant_id <> $1` alone would
  // scan the table on PostgreSQL before 18 (no skip scan), on every refused read.
  const res = await db.query(
    `SELECT 1 FROM tenants t
      WHERE t.id <> $1
        AND EXISTS (SELECT 1 FROM records r WHERE r.tenant_id = t.id AND r.resource_type = $2 AND r.resource_id = $3)
      LIMIT 1`,
    [tenantId, resourceType, resourceId],
  );
  return (res.rowCount ?? 0) > 0;
}

/** A `_lastUpdated` bound: `op` against an instant (ISO 8601). */
export interface LastUpdatedBound {
  op: '>=' | '<';
  at: string;
}

export interface RecordSearch {
  tenantId: string;
  resourceType: string;
  /** Only these ids (`_id`); undefined: any. */
  ids?: readonly string[];
  /** Only records of these patients (`patient`, as pseudonyms); undefined: any. */
  patientPseudonyms?: readonly string[];
  /** Every bound must hold for the served record's lastUpdated. */
  lastUpdated: readonly LastUpdatedBound[];
  /** Keyset: ids after this one. */
  afterId?: string;
  limit: number;
}

/**
 * One page of winners in resource id order; `limit + 1` rows asked for tell whether there is a next page.
 *
 * Each row of the type is a candidate, in primary-key order (tenant, type, id, integration), and is served when it
 * is its id's winner (a correlated probe of the key's prefix: an id has a row per integration holding it). The
 * plan streams from the key and stops at the page's end, on a table of 20,000 rows or 300,000, vacuumed or not; a
 * DISTINCT ON over the type, or a DISTINCT subquery of ids, was planned for all its rows (a sort of the whole type
 * per page) whenever recent writes had left pages not all-visible, as syncs do.
 */
export async function searchWinningRecords(db: Queryable, search: RecordSearch): Promise<StoredRecordRow[]> {
  const params: unknown[] = [search.tenantId, search.resourceType];
  const where: string[] = ['r.tenant_id = $1', 'r.resource_type = $2'];
  if (search.afterId !== undefined) {
    params.push(search.afterId);
    where.push(`r.resource_id > $${params.length}`);
  }
  if (search.ids) {
    params.push(search.ids);
    where.push(`r.resource_id = ANY($${params.length}::text[])`);
  }
  if (search.patientPseudonyms) {
    // The winner must be the patient's: a record another integration holds newer under another patient is not.
    params.push(search.patientPseudonyms);
    where.push(`r.patient_pseudonym = ANY($${params.length}::text[])`);
  }
  for (const bound of search.lastUpdated) {
    params.push(bound.at);
    where.push(`r.last_updated ${bound.op} $${params.length}::timestamptz`);
  }
  // The row is its id's winner: no other integration's row of the id is newer, or as new with a lower id. OFFSET 0
  // keeps it a per-row check: pulled up into an anti-join it was planned as a merge from the type's first row, and
  // written as `integration_id = (SELECT … LIMIT 1)` its default selectivity (0.5 %) made the planner scan and sort
  // the whole type for every page.
  where.push(
    `NOT EXISTS (SELECT 1 FROM records o
        WHERE o.tenant_id = $1 AND o.resource_type = $2 AND o.resource_id = r.resource_id
          AND (o.last_updated > r.last_updated OR (o.last_updated = r.last_updated AND o.integration_id < r.integration_id))
        OFFSET 0)`,
  );
  params.push(search.limit);
  const res = await db.query<Row>(
    `SELECT ${COLUMNS_OF_R} FROM records r
      WHERE ${where.join(' AND ')}
      ORDER BY r.resource_id LIMIT $${params.length}`,
    params,
  );
  return res.rows.map(toRow);
}

export interface CompartmentSearch {
  tenantId: string;
  patientPseudonym: string;
  resourceTypes: readonly string[];
  /** Keyset: (type, id) pairs after this one. */
  after?: { resourceType: string; resourceId: string };
  limit: number;
}

/** One page of a patient's records (winners only) of the given types, in (type, id) order. */
export async function searchPatientCompartment(db: Queryable, search: CompartmentSearch): Promise<StoredRecordRow[]> {
  const after = search.after
    ? 'AND (resource_type, resource_id) > ($4, $5)'
    : 'AND $4::text IS NULL AND $5::text IS NULL';
  const res = await db.query<Row>(
    `SELECT ${COLUMNS} FROM (
       SELECT DISTINCT ON (resource_type, resource_id) ${COLUMNS} FROM records
        WHERE tenant_id = $1
          AND (resource_type, resource_id) IN (
            SELECT resource_type, resource_id FROM records
             WHERE tenant_id = $1 AND patient_pseudonym = $2 AND resource_type = ANY($3::text[]))
          ${after}
        ORDER BY resource_type, resource_id, last_updated DESC, integration_id) w
      WHERE w.patient_pseudonym = $2
      ORDER BY w.resource_type, w.resource_id LIMIT $6`,
    [
      search.tenantId,
      search.patientPseudonym,
      search.resourceTypes,
      search.after?.resourceType ?? null,
      search.after?.resourceId ?? null,
      search.limit,
    ],
  );
  return res.rows.map(toRow);
}

/** Integrations of the tenant, with their vendor (incident holds are scoped by tenant, integration or vendor). */
export async function tenantIntegrationTargets(
  db: Queryable,
  tenantId: string,
): Promise<Array<{ integrationId: string; vendor: string }>> {
  const res = await db.query<{ id: string; vendor: string }>(
    'SELECT id, vendor FROM integrations WHERE tenant_id = $1 ORDER BY id',
    [tenantId],
  );
  return res.rows.map((r) => ({ integrationId: r.id, vendor: r.vendor }));
}
