/**
 * The statements of batch exports: export jobs (with their wrapped job keys) and the stored records an
 * export reads, in keyset pages. Identifiers and counts only leave here; ciphertexts go to the exporter.
 */
import type { WrappedKey } from '../keys/kek-provider.js';
import type { PoolClient, Queryable } from '../store/pool.js';

export type ExportJobStatus = 'writing' | 'written' | 'failed' | 'shredded';

export interface ExportJob {
  id: string;
  tenantId: string;
  workflowId: string;
  purpose: string;
  resourceTypes: string[];
  since: string | null;
  directory: string;
  keyId: string;
  /** Undefined once the key is destroyed (shredded, or a failed job). */
  wrapped: WrappedKey | undefined;
  status: ExportJobStatus;
  requestedBy: string;
  counts: Record<string, { count: number; bytes: number }> | null;
  retainUntil: string | null;
  createdAt: string;
  writtenAt: string | null;
  shreddedAt: string | null;
}

interface JobRow {
  id: string;
  tenant_id: string;
  workflow_id: string;
  purpose: string;
  resource_types: string[];
  since: Date | null;
  directory: string;
  key_id: string;
  kek_id: string;
  kek_version: number;
  wrapped_key: Buffer | null;
  status: ExportJobStatus;
  requested_by: string;
  counts: Record<string, { count: number; bytes: number }> | null;
  retain_until: Date | null;
  created_at: Date;
  written_at: Date | null;
  shredded_at: Date | null;
}

const iso = (d: Date | null): string | null => (d === null ? null : d.toISOString());

function toJob(r: JobRow): ExportJob {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    workflowId: r.workflow_id,
    purpose: r.purpose,
    resourceTypes: r.resource_types,
    since: iso(r.since),
    directory: r.directory,
    keyId: r.key_id,
    wrapped: r.wrapped_key ? { kekId: r.kek_id, kekVersion: r.kek_version, wrapped: r.wrapped_key } : undefined,
    status: r.status,
    requestedBy: r.requested_by,
    counts: r.counts,
    retainUntil: iso(r.retain_until),
    createdAt: r.created_at.toISOString(),
    writtenAt: iso(r.written_at),
    shreddedAt: iso(r.shredded_at),
  };
}

export interface NewExportJob {
  id: string;
  tenantId: string;
  workflowId: string;
  purpose: string;
  resourceTypes: string[];
  since: string | null;
  directory: string;
  keyId: string;
  wrapped: WrappedKey;
  requestedBy: string;
}

/** Inserts the job; false when a job with this id exists already (a retried start). */
export async function insertExportJob(client: PoolClient, j: NewExportJob): Promise<boolean> {
  const res = await client.query(
    `INSERT INTO export_jobs (id, tenant_id, workflow_id, purpose, resource_types, since, directory, key_id, kek_id,
                              kek_version, wrapped_key, status, requested_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'writing', $12) ON CONFLICT (id) DO NOTHING`,
    [
      j.id,
      j.tenantId,
      j.workflowId,
      j.purpose,
      j.resourceTypes,
      j.since,
      j.directory,
      j.keyId,
      j.wrapped.kekId,
      j.wrapped.kekVersion,
      j.wrapped.wrapped,
      j.requestedBy,
    ],
  );
  return (res.rowCount ?? 0) > 0;
}

export async function readExportJob(db: Queryable, jobId: string, forUpdate = false): Promise<ExportJob | undefined> {
  const res = await db.query<JobRow>(`SELECT * FROM export_jobs WHERE id = $1${forUpdate ? ' FOR UPDATE' : ''}`, [
    jobId,
  ]);
  return res.rows[0] ? toJob(res.rows[0]) : undefined;
}

export async function listExportJobs(db: Queryable, tenantId?: string, limit = 100): Promise<ExportJob[]> {
  const res = await db.query<JobRow>(
    `SELECT * FROM export_jobs WHERE ($1::text IS NULL OR tenant_id = $1) ORDER BY created_at DESC LIMIT $2`,
    [tenantId ?? null, limit],
  );
  return res.rows.map(toJob);
}

export async function markExportWritten(
  client: PoolClient,
  jobId: string,
  counts: Record<string, { count: number; bytes: number }>,
  retainUntil: string,
): Promise<void> {
  await client.query(
    `UPDATE export_jobs SET status = 'written', counts = $2, retain_until = $3, written_at = now()
      WHERE id = $1 AND status = 'writing'`,
    [jobId, JSON.stringify(counts), retainUntil],
  );
}

/** Destroys the job key: the row keeps what was exported, loses the key bytes. True when this call destroyed it. */
export async function destroyJobKey(
  client: PoolClient,
  jobId: string,
  status: 'failed' | 'shredded',
): Promise<boolean> {
  const res = await client.query(
    `UPDATE export_jobs SET wrapped_key = NULL, status = $2, shredded_at = now()
      WHERE id = $1 AND wrapped_key IS NOT NULL`,
    [jobId, status],
  );
  return (res.rowCount ?? 0) > 0;
}

/** Resource types the tenant has stored records of, among `types`. */
export async function storedTypes(db: Queryable, tenantId: string, types: readonly string[]): Promise<string[]> {
  const res = await db.query<{ resource_type: string }>(
    `SELECT DISTINCT resource_type FROM records WHERE tenant_id = $1 AND resource_type = ANY($2::text[])`,
    [tenantId, types],
  );
  return res.rows.map((r) => r.resource_type);
}

export interface StoredRecordRow {
  integrationId: string;
  resourceId: string;
  patientPseudonym: string | null;
  ciphertext: Buffer;
}

/** One page of the tenant's records of a type (since `since`), after the keyset position `after`. */
export async function recordPage(
  db: Queryable,
  q: { tenantId: string; resourceType: string; since: string | null },
  after: { integrationId: string; resourceId: string } | null,
  limit: number,
): Promise<StoredRecordRow[]> {
  const res = await db.query<{
    integration_id: string;
    resource_id: string;
    patient_pseudonym: string | null;
    ciphertext: Buffer;
  }>(
    `SELECT integration_id, resource_id, patient_pseudonym, ciphertext FROM records
      WHERE tenant_id = $1 AND resource_type = $2 AND ($3::timestamptz IS NULL OR last_updated >= $3)
        AND ($4::text IS NULL OR (resource_id, integration_id) > ($5, $4))
      ORDER BY resource_id, integration_id LIMIT $6`,
    [q.tenantId, q.resourceType, q.since, after?.integrationId ?? null, after?.resourceId ?? null, limit],
  );
  return res.rows.map((r) => ({
    integrationId: r.integration_id,
    resourceId: r.resource_id,
    patientPseudonym: r.patient_pseudonym,
    ciphertext: r.ciphertext,
  }));
}

/** The tenant's integrations with their vendors (an incident on any of them holds part of what an export reads). */
export async function tenantIntegrations(
  db: Queryable,
  tenantId: string,
): Promise<Array<{ id: string; vendor: string }>> {
  const res = await db.query<{ id: string; vendor: string }>(
    'SELECT id, vendor FROM integrations WHERE tenant_id = $1 ORDER BY id',
    [tenantId],
  );
  return res.rows;
}
