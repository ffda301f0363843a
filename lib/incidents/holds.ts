/**
 * What a declared incident holds, as flags other code checks (incident_holds): `ehrctl audit export`
 * refuses (exports frozen), the webhook receiver refuses, vendor writes sent through
 * enqueueVendorWrite are queued (pending-writes.ts), and crypto-shredding the scope's tenants is
 * refused (legal hold, which outlives recovery until `incident release-legal-hold`). Checked against
 * the database on every call: holds are rare and must take effect at once in every process.
 */
import { NotFoundError, ScopeUnderIncidentError } from '../errors/index.js';
import type { Queryable } from '../store/pool.js';
import { scopeCovers } from './scope.js';

export type HoldFlag = 'exports_frozen' | 'webhooks_refused' | 'writes_queued' | 'legal_hold';

export interface HoldTarget {
  tenantId: string;
  integrationId?: string;
  vendor?: string;
}

interface HoldRow {
  incident_id: string;
  scope: string;
}

/**
 * The first active hold with the flag that covers the target (every hold when the target is undefined =
 * everything).
 */
export async function holdCovering(
  db: Queryable,
  flag: HoldFlag,
  target: HoldTarget | undefined,
): Promise<HoldRow | undefined> {
  const res = await db.query<HoldRow>(
    `SELECT incident_id, scope FROM incident_holds WHERE ${flag} ORDER BY created_at`,
  );
  return res.rows.find((h) => target === undefined || scopeCovers(h.scope, target));
}

async function targetOf(db: Queryable, integrationId: string): Promise<HoldTarget> {
  const res = await db.query<{ tenant_id: string; vendor: string }>(
    'SELECT tenant_id, vendor FROM integrations WHERE id = $1',
    [integrationId],
  );
  if (res.rowCount === 0) throw new NotFoundError('integration', integrationId);
  return { tenantId: res.rows[0]!.tenant_id, integrationId, vendor: res.rows[0]!.vendor };
}

/**
 * For `ehrctl audit export`: refuses while an incident freezes the tenant (or,
 * without a tenant filter, while any incident freezes anything — the export would include it).
 */
export async function assertExportAllowed(db: Queryable, operation: string, tenantId?: string): Promise<void> {
  const hold = await holdCovering(db, 'exports_frozen', tenantId === undefined ? undefined : { tenantId });
  if (hold) throw new ScopeUnderIncidentError(operation, hold.incident_id, hold.scope);
}

/**
 * For the webhook receiver: after the signature verifies (the hold is told only to a verified sender), before
 * storing.
 */
export async function assertWebhookAccepted(db: Queryable, integrationId: string): Promise<void> {
  const hold = await holdCovering(db, 'webhooks_refused', await targetOf(db, integrationId));
  if (hold) throw new ScopeUnderIncidentError('webhook delivery', hold.incident_id, hold.scope);
}

/**
 * Resumption belongs to the incident: restoring an integration (or unpausing or triggering its
 * schedule) while an unreleased hold covers it is refused, except for the recovery of the incident
 * that holds it (`byIncident`), which runs only after a second person approved.
 */
export async function assertResumptionAllowed(
  db: Queryable,
  operation: string,
  integrationId: string,
  byIncident?: string,
): Promise<void> {
  const target = await targetOf(db, integrationId);
  const res = await db.query<HoldRow>(
    'SELECT incident_id, scope FROM incident_holds WHERE released_at IS NULL ORDER BY created_at',
  );
  const hold = res.rows.find((h) => h.incident_id !== byIncident && scopeCovers(h.scope, target));
  if (hold) throw new ScopeUnderIncidentError(operation, hold.incident_id, hold.scope);
}

/** Whether vendor writes for the integration must be queued rather than sent. */
export async function writesHeld(db: Queryable, integrationId: string): Promise<HoldRow | undefined> {
  return holdCovering(db, 'writes_queued', await targetOf(db, integrationId));
}

/** The legal hold covering the tenant or any of its integrations, if one stands. */
export async function legalHoldCovering(db: Queryable, tenantId: string): Promise<HoldRow | undefined> {
  const holds = (
    await db.query<HoldRow>('SELECT incident_id, scope FROM incident_holds WHERE legal_hold ORDER BY created_at')
  ).rows;
  if (holds.length === 0) return undefined;
  const integrations = (
    await db.query<{ id: string; vendor: string }>('SELECT id, vendor FROM integrations WHERE tenant_id = $1', [
      tenantId,
    ])
  ).rows;
  const targets: HoldTarget[] = [
    { tenantId },
    ...integrations.map((i) => ({ tenantId, integrationId: i.id, vendor: i.vendor })),
  ];
  return holds.find((h) => targets.some((t) => scopeCovers(h.scope, t)));
}

export async function legalHoldActive(db: Queryable, tenantId: string): Promise<boolean> {
  return (await legalHoldCovering(db, tenantId)) !== undefined;
}

/**
 * Crypto-shredding a tenant (`ehrctl tenants shred`, KeyAdmin.destroyTenantKeys) makes its stored
 * records unreadable for good: refused while a legal hold covers the tenant. Nothing else in the
 * product deletes records.
 */
export async function assertNoLegalHold(db: Queryable, operation: string, tenantId: string): Promise<void> {
  const hold = await legalHoldCovering(db, tenantId);
  if (hold) throw new ScopeUnderIncidentError(operation, hold.incident_id, hold.scope);
}
