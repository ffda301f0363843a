/**
 * The statements of the write-back outbox (migrations/1733500000000). Rows carry identifiers, element names and
 * vendor status codes; the change itself is the ciphertext, which only lib/writeback/outbox.ts opens.
 */
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

/** The change's ciphertext and the key version its header names (for decryption and key rotation). */
export async function outboxCiphertext(
  db: Queryable,
  id: string,
): Promise<{ tenantId: string; integrationId: string; ciphertext: Buffer } | undefined> {
  const res = await db.query<{ tenant_id: string; integration_id: string; ciphertext: Buffer }>(
    'SELECT tenant_id, integration_id, ciphertext FROM outbox_changes WHERE id = $1',
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
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (sql: string, value: unknown): void => {
    params.push(value);
    where.push(sql.replace('?', `$${params.length}`));
  };
  if (filter.tenantId !== undefined) add('tenant_id = ?', filter.tenantId);
  if (filter.integrationId !== undefined) add('integration_id = ?', filter.integrationId);
  if (filter.status !== undefined) add('status = ?', filter.status);
  params.push(filter.limit ?? 1000);
  const res = await db.query<Row>(
    `SELECT ${COLUMNS} FROM outbox_changes ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY created_at, id LIMIT $${params.length}`,
    params,
  );
  return res.rows.map(toChange);
}

/** Pending changes of one record other than `exceptId`, oldest first (a record's changes are sent in order). */
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
