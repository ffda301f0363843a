/**
 * The incident row and its hold (migrations/1733000001000_incidents.sql). Every function is
 * idempotent: the containment workflow's activities may run again after a crash.
 */
import type { AuditContext } from '../audit/chain.js';
import { appendAuditEvents } from '../audit/chain.js';
import { ConflictError, InvalidArgumentError, NotFoundError } from '../errors/index.js';
import type { Pool, Queryable } from '../store/pool.js';
import { withTransaction } from '../store/pool.js';
import type { IncidentScope, ScopedIntegration } from './scope.js';
import { integrationsInScope } from './scope.js';

export interface IncidentRecord {
  id: string;
  scope: IncidentScope;
  severity: string;
  reason: string;
  declaredBy: string;
  drill: boolean;
  declaredAt: Date;
  affected: ScopedIntegration[];
  status: 'containing' | 'contained' | 'recovered';
  timeToContainMs: number | null;
  timeToRecoverMs: number | null;
}

interface Row {
  id: string;
  scope: IncidentScope;
  severity: string;
  reason: string;
  declared_by: string;
  drill: boolean;
  declared_at: Date;
  affected: ScopedIntegration[];
  status: IncidentRecord['status'];
  time_to_contain_ms: number | null;
  time_to_recover_ms: number | null;
}

const fromRow = (r: Row): IncidentRecord => ({
  id: r.id,
  scope: r.scope,
  severity: r.severity,
  reason: r.reason,
  declaredBy: r.declared_by,
  drill: r.drill,
  declaredAt: r.declared_at,
  affected: r.affected,
  status: r.status,
  timeToContainMs: r.time_to_contain_ms,
  timeToRecoverMs: r.time_to_recover_ms,
});

export async function getIncident(db: Queryable, id: string): Promise<IncidentRecord | undefined> {
  const res = await db.query<Row>('SELECT * FROM incidents WHERE id = $1', [id]);
  return res.rows[0] ? fromRow(res.rows[0]) : undefined;
}

export async function listIncidents(db: Queryable): Promise<IncidentRecord[]> {
  return (await db.query<Row>('SELECT * FROM incidents ORDER BY declared_at DESC')).rows.map(fromRow);
}

/**
 * Records the incident with a snapshot of the integrations in scope (and their status then) and
 * raises its hold. A second call returns the first snapshot unchanged.
 */
export async function openIncident(
  pool: Pool,
  incident: {
    id: string;
    scope: IncidentScope;
    severity: string;
    reason: string;
    declaredBy: string;
    drill: boolean;
    declaredAt: Date;
  },
  ctx: AuditContext,
): Promise<IncidentRecord> {
  return withTransaction(pool, async (client) => {
    const existing = await getIncident(client, incident.id);
    if (existing) return existing;
    const affected = await integrationsInScope(client, incident.scope);
    await client.query(
      `INSERT INTO incidents (id, scope, severity, reason, declared_by, drill, declared_at, affected)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [
        incident.id,
        incident.scope,
        incident.severity,
        incident.reason,
        incident.declaredBy,
        incident.drill,
        incident.declaredAt,
        JSON.stringify(affected),
      ],
    );
    await appendAuditEvents(client, [
      {
        ...ctx,
        action: 'incident.declared',
        outcome: 'success',
        details: {
          incidentId: incident.id,
          scope: incident.scope,
          severity: incident.severity,
          declaredBy: incident.declaredBy,
          drill: incident.drill,
          integrations: affected.length,
        },
      },
    ]);
    return (await getIncident(client, incident.id))!;
  });
}

/** Exports frozen, webhooks refused, vendor writes queued, legal hold on. */
export async function raiseHold(pool: Pool, incidentId: string, scope: string, ctx: AuditContext): Promise<void> {
  await withTransaction(pool, async (client) => {
    const inserted = await client.query(
      'INSERT INTO incident_holds (incident_id, scope) VALUES ($1, $2) ON CONFLICT DO NOTHING',
      [incidentId, scope],
    );
    if (inserted.rowCount === 0) return;
    await appendAuditEvents(client, [
      {
        ...ctx,
        action: 'incident.hold_raised',
        outcome: 'success',
        details: { incidentId, scope, exportsFrozen: true, webhooksRefused: true, writesQueued: true, legalHold: true },
      },
    ]);
  });
}

/** Recovery lifts the operational flags; the legal hold stays until counsel releases it. */
export async function liftHold(pool: Pool, incidentId: string, ctx: AuditContext): Promise<void> {
  await withTransaction(pool, async (client) => {
    const updated = await client.query(
      `UPDATE incident_holds SET exports_frozen = false, webhooks_refused = false, writes_queued = false,
         released_at = now()
        WHERE incident_id = $1 AND released_at IS NULL`,
      [incidentId],
    );
    if (updated.rowCount === 0) return;
    await appendAuditEvents(client, [
      { ...ctx, action: 'incident.hold_lifted', outcome: 'success', details: { incidentId, legalHold: true } },
    ]);
  });
}

export async function markIncident(
  pool: Pool,
  incidentId: string,
  status: 'contained' | 'recovered',
  elapsedMs: number,
  ctx: AuditContext,
): Promise<void> {
  await withTransaction(pool, async (client) => {
    const sql =
      status === 'contained'
        ? `UPDATE incidents SET status = 'contained', contained_at = now(), time_to_contain_ms = $2
            WHERE id = $1 AND status = 'containing'`
        : `UPDATE incidents SET status = 'recovered', recovered_at = now(), time_to_recover_ms = $2
            WHERE id = $1 AND status <> 'recovered'`;
    const updated = await client.query(sql, [incidentId, Math.round(elapsedMs)]);
    if (updated.rowCount === 0) return;
    await appendAuditEvents(client, [
      {
        ...ctx,
        action: `incident.${status}`,
        outcome: 'success',
        details: { incidentId, elapsedMs: Math.round(elapsedMs) },
      },
    ]);
  });
}

/** Records (once per incident, with its audit event) which schedules the incident paused. */
export async function recordPausedSchedules(
  pool: Pool,
  incidentId: string,
  schedules: string[],
  ctx: AuditContext,
): Promise<void> {
  await withTransaction(pool, async (client) => {
    const updated = await client.query(
      'UPDATE incidents SET paused_schedules = $2 WHERE id = $1 AND paused_schedules IS NULL',
      [incidentId, JSON.stringify(schedules)],
    );
    if (updated.rowCount === 0 || schedules.length === 0) return;
    await appendAuditEvents(client, [
      { ...ctx, action: 'incident.schedules_paused', outcome: 'success', details: { incidentId, schedules } },
    ]);
  });
}

/**
 * Releases the incident's legal hold (counsel's decision, outside the incident): only after recovery
 * lifted its operational hold, with who and why audited. False when it was already released.
 */
export async function releaseLegalHold(
  pool: Pool,
  incidentId: string,
  release: { by: string; reason: string },
  ctx: AuditContext,
): Promise<boolean> {
  if (!/^[\x20-\x7e]{1,200}$/.test(release.reason))
    throw new InvalidArgumentError('--reason', '1-200 printable ASCII characters (no PHI)');
  return withTransaction(pool, async (client) => {
    const hold = await client.query<{ legal_hold: boolean; released_at: Date | null }>(
      'SELECT legal_hold, released_at FROM incident_holds WHERE incident_id = $1 FOR UPDATE',
      [incidentId],
    );
    const row = hold.rows[0];
    if (!row) throw new NotFoundError('incident hold', incidentId);
    if (!row.legal_hold) return false;
    if (!row.released_at)
      throw new ConflictError(
        'incident',
        incidentId,
        'has not recovered: its hold still stands, and the legal hold with it',
      );
    await client.query(
      `UPDATE incident_holds
          SET legal_hold = false, legal_hold_released_at = now(), legal_hold_released_by = $2 WHERE incident_id = $1`,
      [incidentId, release.by],
    );
    await appendAuditEvents(client, [
      {
        ...ctx,
        action: 'incident.legal_hold_released',
        outcome: 'success',
        details: { incidentId, by: release.by, reason: release.reason },
      },
    ]);
    return true;
  });
}
