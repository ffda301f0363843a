/**
 * The statements of the write-back outbox (migrations/1733500000000). Rows carry identifiers, element names and
 * vendor status codes; the change itself is the ciphertext, which only lib/writeback/outbox.ts opens.
 */
import { equalityFilter } from '../store/equality-filter.js';
import type { Queryable } from '../store/pool.js';

export const OUTBOX_STATUSES = ['pending', 'sent', 'refused', 'conflict', 'cancelled'] as const;
export type OutboxStatus = (typeof OUTBOX_STATUSES)[number];
export type ChangeKind = 'create' | 'update';
export type ChangeOrigin = 'gateway' | 'reconcile' | 'resolution';

/** One outbox row without its ciphertext: safe to log, list and carry in a workflow history. */
export interface OutboxChange {
  id: string;
  tenantId: string;
  integrationId: string;
  resourceType: string;
  resourceId: string;
  kind: ChangeKind;
  origin: ChangeOrigin;
  requestedBy: string;
  baseVersionId: string | null;
  changedElements: string[];
  idempotencyKey: string;
  status: OutboxStatus;
  attempts: number;
  vendorStatus: number | null;
  vendorOutcomeCode: string | null;
  vendorResourceId: string | null;
  vendorVersionId: string | null;
  conflictId: string | null;
  createdAt: string;
  updatedAt: string;
  sentAt: string | null;
}

export type OutboxRowInsert = Pick<
  OutboxChange,
  'id' | 'tenantId' | 'integrationId' | 'resourceType' | 'resourceId' | 'kind' | 'origin' | 'requestedBy'
> & {
  baseVersionId: string | null;
  changedElements: readonly string[];
  keyVersion: number;
  ciphertext: Buffer;
  idempotencyKey: string;
};

interface Row {
  id: string;
  tenant_id: string;
  integration_id: string;
  resource_type: string;
  resource_id: string;
  kind: ChangeKind;
  origin: ChangeOrigin;
  requested_by: string;
  base_version_id: string | null;
  changed_elements: string[];
  idempotency_key: string;
  status: OutboxStatus;
  attempts: number;
  vendor_status: number | null;
  vendor_outcome_code: string | null;
  vendor_resource_id: string | null;
  vendor_version_id: string | null;
  conflict_id: string | null;
  created_at: Date;
  updated_at: Date;
  sent_at: Date | null;
}

const COLUMNS = `id, tenant_id, integration_id, resource_type, resource_id, kind, origin, requested_by, base_version_id,
  changed_elements, idempotency_key, status, attempts, vendor_status, vendor_outcome_code, vendor_resource_id,
  vendor_version_id, conflict_id, created_at, updated_at, sent_at`;

function toChange(r: Row): OutboxChange {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    integrationId: r.integration_id,
    resourceType: r.resource_type,
    resourceId: r.resource_id,
    kind: r.kind,
    origin: r.origin,
    requestedBy: r.requested_by,
    baseVersionId: r.base_version_id,
    changedElements: r.changed_elements,
    idempotencyKey: r.idempotency_key,
    status: r.status,
    attempts: r.attempts,
    vendorStatus: r.vendor_status,
    vendorOutcomeCode: r.vendor_outcome_code,
    vendorResourceId: r.vendor_resource_id,
    vendorVersionId: r.vendor_version_id,
    conflictId: r.conflict_id,
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
    sentAt: r.sent_at === null ? null : r.sent_at.toISOString(),
  };
}

/** Inserts a pending change; false when the integration already holds a change with that idempotency key. */
export async function insertOutboxRow(db: Queryable, row: OutboxRowInsert): Promise<boolean> {
  const res = await db.query(
    `INSERT INTO outbox_changes (id, tenant_id, integration_id, resource_type, resource_id, kind, origin, requested_by,
       base_version_id, changed_elements, key_version, ciphertext, idempotency_key, status)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'pending')
     ON CONFLICT (integration_id, idempotency_key) DO NOTHING`,
    [
      row.id,
      row.tenantId,
      row.integrationId,
      row.resourceType,
      row.resourceId,
      row.kind,
      row.origin,
      row.requestedBy,
      row.baseVersionId,
      [...row.changedElements],
      row.keyVersion,
      row.ciphertext,
      row.idempotencyKey,
    ],
  );
  return res.rowCount === 1;
}

export async function getOutboxChange(db: Queryable, id: string): Promise<OutboxChange | undefined> {
  const res = await db.query<Row>(`SELECT ${COLUMNS} FROM outbox_changes WHERE id = $1`, [id]);
  return res.rows[0] ? toChange(res.rows[0]) : undefined;
}

/** The change's ciphertext and the row's tenant and integration (its AAD), for decryption. */
export async function outboxCiphertext(db: Queryable, id: string): Promise<SealedRow | undefined> {
  return sealedRow(db, 'outbox_changes', id);
}

export interface SealedRow {
  tenantId: string;
  integrationId: string;
  ciphertext: Buffer;
}

/** A write-back table's row ciphertext with the tenant and integration its AAD names. */
export async function sealedRow(
  db: Queryable,
  table: 'outbox_changes' | 'reconcile_conflicts',
  id: string,
): Promise<SealedRow | undefined> {
  const res = await db.query<{ tenant_id: string; integration_id: string; ciphertext: Buffer }>(
    `SELECT tenant_id, integration_id, ciphertext FROM ${table} WHERE id = $1`,
    [id],
  );
  const r = res.rows[0];
  return r ? { tenantId: r.tenant_id, integrationId: r.integration_id, ciphertext: r.ciphertext } : undefined;
}

export interface OutboxFilter {
  tenantId?: string;
  integrationId?: string;
  status?: OutboxStatus;
  limit?: number;
}

/** Changes, oldest first. */
export async function listOutboxChanges(db: Queryable, filter: OutboxFilter = {}): Promise<OutboxChange[]> {
  const { where, params } = equalityFilter({
    tenant_id: filter.tenantId,
    integration_id: filter.integrationId,
    status: filter.status,
  });
  params.push(filter.limit ?? 1000);
  const res = await db.query<Row>(
    `SELECT ${COLUMNS} FROM outbox_changes ${where} ORDER BY created_at, id LIMIT $${params.length}`,
    params,
  );
  return res.rows.map(toChange);
}

/** Pending changes of one record, oldest first (a record's changes are sent in order). */
export async function pendingChangesOfRecord(
  db: Queryable,
  record: { tenantId: string; integrationId: string; resourceType: string; resourceId: string },
): Promise<OutboxChange[]> {
  const res = await db.query<Row>(
    `SELECT ${COLUMNS} FROM outbox_changes
      WHERE tenant_id = $1 AND integration_id = $2 AND resource_type = $3 AND resource_id = $4 AND status = 'pending'
      ORDER BY created_at, id`,
    [record.tenantId, record.integrationId, record.resourceType, record.resourceId],
  );
  return res.rows.map(toChange);
}

/*
 * Status transitions (writeBack and `ehrctl writes`). Each moves a row only from the statuses it names, so a
 * repeated activity or a race with an operator changes nothing the second time: the caller learns from the
 * returned boolean whether its transition happened.
 *   pending → sent | refused | conflict | cancelled;   refused → pending (retry) | cancelled
 */

/** Ids of an integration's pending changes, oldest first (the order writeBack sends them in). */
export async function pendingChangeIds(db: Queryable, integrationId: string, limit: number): Promise<string[]> {
  const res = await db.query<{ id: string }>(
    `SELECT id FROM outbox_changes WHERE integration_id = $1 AND status = 'pending' ORDER BY created_at, id LIMIT $2`,
    [integrationId, limit],
  );
  return res.rows.map((r) => r.id);
}

/** One more send attempt of a pending change (for `writes show`). */
export async function countSendAttempt(db: Queryable, id: string): Promise<void> {
  await db.query(`UPDATE outbox_changes SET attempts = attempts + 1, updated_at = now() WHERE id = $1`, [id]);
}

/** Sent: from pending, or from cancelled when an operator cancelled it while it was on its way (the vendor has it). */
export async function markChangeSent(
  db: Queryable,
  id: string,
  vendor: { status: number; resourceId: string; versionId: string | null },
): Promise<boolean> {
  const res = await db.query(
    `UPDATE outbox_changes SET status = 'sent', vendor_status = $2, vendor_resource_id = $3, vendor_version_id = $4,
       vendor_outcome_code = NULL, sent_at = now(), updated_at = now()
      WHERE id = $1 AND status IN ('pending', 'cancelled')`,
    [id, vendor.status, vendor.resourceId, vendor.versionId],
  );
  return res.rowCount === 1;
}

/** The vendor refused it: kept with the HTTP status and the OperationOutcome's issue code, never dropped. */
export async function markChangeRefused(
  db: Queryable,
  id: string,
  vendor: { status: number | null; outcomeCode: string | null },
): Promise<boolean> {
  const res = await db.query(
    `UPDATE outbox_changes SET status = 'refused', vendor_status = $2, vendor_outcome_code = $3, updated_at = now()
      WHERE id = $1 AND status = 'pending'`,
    [id, vendor.status, vendor.outcomeCode],
  );
  return res.rowCount === 1;
}

export async function markChangeConflict(db: Queryable, id: string, conflictId: string): Promise<boolean> {
  const res = await db.query(
    `UPDATE outbox_changes SET status = 'conflict', conflict_id = $2, updated_at = now()
      WHERE id = $1 AND status = 'pending'`,
    [id, conflictId],
  );
  return res.rowCount === 1;
}

/** A refused change goes back to pending (its vendor status and code stay until the next answer replaces them). */
export async function retryRefusedChange(db: Queryable, id: string): Promise<boolean> {
  const res = await db.query(
    `UPDATE outbox_changes SET status = 'pending', updated_at = now() WHERE id = $1 AND status = 'refused'`,
    [id],
  );
  return res.rowCount === 1;
}

/** A pending or refused change is cancelled: its row stays (the application never deletes one). */
export async function cancelOutboxChange(db: Queryable, id: string): Promise<boolean> {
  const res = await db.query(
    `UPDATE outbox_changes SET status = 'cancelled', updated_at = now()
      WHERE id = $1 AND status IN ('pending', 'refused')`,
    [id],
  );
  return res.rowCount === 1;
}
