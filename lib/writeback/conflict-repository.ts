/**
 * The statements of reconciliation conflicts (migrations/1733500000000, `reconcile_conflicts`), and the settling of
 * the outbox changes a resolution supersedes (the local copy it replaces: lib/writeback/local-record-repository.ts).
 * Rows carry identifiers, element names and codes; the two sides are the ciphertext, which only
 * lib/writeback/conflicts.ts opens.
 */
import { equalityFilter } from '../store/equality-filter.js';
import type { SealedRow } from './outbox-repository.js';
import { sealedRow } from './outbox-repository.js';
import type { PoolClient, Queryable } from '../store/pool.js';

export type ConflictSource = 'reconcile' | 'write-back';
export type ConflictReason = 'both-changed' | 'deleted-remote' | 'missing-remote' | 'stale-write';
export type ConflictStatus = 'open' | 'resolved' | 'cancelled';
export type ConflictSide = 'local' | 'remote';

/** One conflict without its ciphertext: safe to list, log and carry in a workflow history. */
export interface ConflictRow {
  id: string;
  tenantId: string;
  integrationId: string;
  resourceType: string;
  resourceId: string;
  source: ConflictSource;
  runId: string | null;
  changeId: string | null;
  reason: ConflictReason;
  elements: string[];
  status: ConflictStatus;
  /** element -> side, once resolved. */
  resolution: Record<string, ConflictSide> | null;
  resolvedBy: string | null;
  openedAt: string;
  resolvedAt: string | null;
}

interface Row {
  id: string;
  tenant_id: string;
  integration_id: string;
  resource_type: string;
  resource_id: string;
  source: ConflictSource;
  run_id: string | null;
  change_id: string | null;
  reason: ConflictReason;
  elements: string[];
  status: ConflictStatus;
  resolution: Record<string, ConflictSide> | null;
  resolved_by: string | null;
  opened_at: Date;
  resolved_at: Date | null;
}

const COLUMNS = `id, tenant_id, integration_id, resource_type, resource_id, source, run_id, change_id, reason, elements,
  status, resolution, resolved_by, opened_at, resolved_at`;

function toConflict(r: Row): ConflictRow {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    integrationId: r.integration_id,
    resourceType: r.resource_type,
    resourceId: r.resource_id,
    source: r.source,
    runId: r.run_id,
    changeId: r.change_id,
    reason: r.reason,
    elements: r.elements,
    status: r.status,
    // In the conflict's element order (jsonb keeps its own key order).
    resolution:
      r.resolution === null
        ? null
        : Object.fromEntries(r.elements.flatMap((e) => (r.resolution?.[e] ? [[e, r.resolution[e]]] : []))),
    resolvedBy: r.resolved_by,
    openedAt: r.opened_at.toISOString(),
    resolvedAt: r.resolved_at === null ? null : r.resolved_at.toISOString(),
  };
}

export interface ConflictInsert {
  id: string;
  tenantId: string;
  integrationId: string;
  resourceType: string;
  resourceId: string;
  source: ConflictSource;
  runId: string | null;
  changeId: string | null;
  reason: ConflictReason;
  elements: readonly string[];
  keyVersion: number;
  ciphertext: Buffer;
}

/** The record's open conflict, if it has one. */
export async function openConflictOf(
  db: Queryable,
  record: { tenantId: string; integrationId: string; resourceType: string; resourceId: string },
): Promise<string | undefined> {
  const res = await db.query<{ id: string }>(
    `SELECT id FROM reconcile_conflicts WHERE tenant_id = $1 AND integration_id = $2 AND resource_type = $3
        AND resource_id = $4 AND status = 'open'`,
    [record.tenantId, record.integrationId, record.resourceType, record.resourceId],
  );
  return res.rows[0]?.id;
}

export async function insertConflictRow(db: Queryable, row: ConflictInsert): Promise<void> {
  await db.query(
    `INSERT INTO reconcile_conflicts (id, tenant_id, integration_id, resource_type, resource_id, source, run_id,
       change_id, reason, elements, key_version, ciphertext, status)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'open')`,
    [
      row.id,
      row.tenantId,
      row.integrationId,
      row.resourceType,
      row.resourceId,
      row.source,
      row.runId,
      row.changeId,
      row.reason,
      [...row.elements],
      row.keyVersion,
      row.ciphertext,
    ],
  );
}

export async function conflictCiphertext(db: Queryable, id: string): Promise<SealedRow | undefined> {
  return sealedRow(db, 'reconcile_conflicts', id);
}

export async function getConflict(db: Queryable, id: string): Promise<ConflictRow | undefined> {
  const res = await db.query<Row>(`SELECT ${COLUMNS} FROM reconcile_conflicts WHERE id = $1`, [id]);
  return res.rows[0] ? toConflict(res.rows[0]) : undefined;
}

/** The conflict, locked for the caller's transaction (a resolution settles it once). */
export async function lockConflict(client: PoolClient, id: string): Promise<ConflictRow | undefined> {
  const res = await client.query<Row>(`SELECT ${COLUMNS} FROM reconcile_conflicts WHERE id = $1 FOR UPDATE`, [id]);
  return res.rows[0] ? toConflict(res.rows[0]) : undefined;
}

export interface ConflictFilter {
  tenantId?: string;
  integrationId?: string;
  /** Default: open only. */
  status?: ConflictStatus | 'all';
  limit?: number;
}

/** Conflicts, oldest first. */
export async function listConflicts(db: Queryable, filter: ConflictFilter = {}): Promise<ConflictRow[]> {
  const status = filter.status ?? 'open';
  const { where, params } = equalityFilter({
    tenant_id: filter.tenantId,
    integration_id: filter.integrationId,
    status: status === 'all' ? undefined : status,
  });
  params.push(filter.limit ?? 1000);
  const res = await db.query<Row>(
    `SELECT ${COLUMNS} FROM reconcile_conflicts ${where} ORDER BY opened_at, id LIMIT $${params.length}`,
    params,
  );
  return res.rows.map(toConflict);
}

export async function markConflictResolved(
  client: PoolClient,
  id: string,
  resolution: Record<string, ConflictSide>,
  resolvedBy: string,
): Promise<ConflictRow> {
  const res = await client.query<Row>(
    `UPDATE reconcile_conflicts SET status = 'resolved', resolution = $2, resolved_by = $3, resolved_at = now()
      WHERE id = $1 AND status = 'open' RETURNING ${COLUMNS}`,
    [id, JSON.stringify(resolution), resolvedBy],
  );
  if (!res.rows[0]) throw new Error(`conflict ${id} was not open`);
  return toConflict(res.rows[0]);
}

/**
 * The unsent outbox changes a resolution supersedes, oldest first, locked: the change that opened the conflict,
 * and those write-back parked on it since (status `conflict`, naming it).
 */
export async function supersededChanges(
  client: PoolClient,
  conflictId: string,
  changeId: string | null,
): Promise<Array<{ id: string; kind: 'create' | 'update' }>> {
  const res = await client.query<{ id: string; kind: 'create' | 'update' }>(
    `SELECT id, kind FROM outbox_changes
      WHERE (id = $2 OR (conflict_id = $1 AND status = 'conflict')) AND status IN ('pending', 'conflict', 'refused')
      ORDER BY created_at, id FOR UPDATE`,
    [conflictId, changeId],
  );
  return res.rows;
}

/** Cancels a superseded change (its row stays, naming the conflict that superseded it); true when it was unsent. */
export async function cancelSupersededChange(
  client: PoolClient,
  changeId: string,
  conflictId: string,
): Promise<boolean> {
  const res = await client.query(
    `UPDATE outbox_changes SET status = 'cancelled', conflict_id = $2, updated_at = now()
      WHERE id = $1 AND status IN ('pending', 'conflict', 'refused')`,
    [changeId, conflictId],
  );
  return res.rowCount === 1;
}

/** The change a resolution queued names its conflict (for `writes show`). */
export async function linkChangeToConflict(client: PoolClient, changeId: string, conflictId: string): Promise<void> {
  await client.query('UPDATE outbox_changes SET conflict_id = $2 WHERE id = $1', [changeId, conflictId]);
}

/** The change a resolution queued (its idempotency key names the conflict), if any. */
export async function resolutionChangeOf(
  db: Queryable,
  conflictId: string,
): Promise<{ id: string; kind: 'create' | 'update' } | undefined> {
  const res = await db.query<{ id: string; kind: 'create' | 'update' }>(
    `SELECT id, kind FROM outbox_changes WHERE conflict_id = $1 AND origin = 'resolution' AND idempotency_key = $2`,
    [conflictId, `resolution-${conflictId}`],
  );
  return res.rows[0];
}

/** One step of a conflict's timeline, from its audit events: when, who, what (ids, element names, sides). */
export interface ConflictTimelineEntry {
  at: string;
  actor: string;
  action: string;
  outcome: string;
  details: Record<string, unknown>;
}

/** The audit events naming a conflict, oldest first (opened, reminded, escalated, decoded, refused, resolved). */
export async function conflictTimeline(db: Queryable, conflictId: string): Promise<ConflictTimelineEntry[]> {
  const res = await db.query<{ occurred_at: Date; actor: string; action: string; outcome: string; details: object }>(
    `SELECT occurred_at, actor, action, outcome, details FROM audit_events
      WHERE details ? 'conflictId' AND details->>'conflictId' = $1 ORDER BY seq LIMIT 200`,
    [conflictId],
  );
  return res.rows.map((r) => ({
    at: r.occurred_at.toISOString(),
    actor: r.actor,
    action: r.action,
    outcome: r.outcome,
    details: r.details as Record<string, unknown>,
  }));
}
