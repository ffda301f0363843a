/**
 * Legal holds for retention: an incident's (incident_holds.legal_hold, lib/incidents/holds.ts — it stands
 * until counsel releases it with `incident release-legal-hold`) and manual ones (`ehrctl holds place`,
 * table retention_holds). Either stops every purge in its scope (`all`, `tenant:T`, `integration:I`,
 * `vendor:V`, lib/incidents/scope.ts).
 *
 * A purge batch reads the holds under `lockHoldsForPurge` (SHARE locks on both tables): a hold placed while
 * a batch runs waits for that batch to commit, and the next batch sees it. So no record is purged after
 * the hold covering it committed.
 */
import { randomBytes } from 'node:crypto';
import type { AuditContext } from '../audit/chain.js';
import { appendAuditEvents } from '../audit/chain.js';
import { ConflictError, InvalidArgumentError, NotFoundError } from '../errors/index.js';
import { parseScope, scopeCovers } from '../incidents/scope.js';
import type { Pool, PoolClient, Queryable } from '../store/pool.js';
import { withTransaction } from '../store/pool.js';

export interface ActiveHold {
  source: 'incident' | 'manual';
  /** The incident id, or the manual hold's id (`hold-…`). */
  id: string;
  scope: string;
}

export interface ManualHold {
  id: string;
  scope: string;
  reason: string;
  placedBy: string;
  placedAt: string;
  releasedBy: string | null;
  releasedAt: string | null;
}

const REASON = /^[\x20-\x7e]{1,200}$/;

function checkReason(reason: string, flag: string): void {
  if (!REASON.test(reason)) throw new InvalidArgumentError(flag, '1-200 printable ASCII characters (no PHI)');
}

/** Every legal hold that stands now, incidents' first. */
export async function activeLegalHolds(db: Queryable): Promise<ActiveHold[]> {
  const res = await db.query<{ source: 'incident' | 'manual'; id: string; scope: string }>(
    `SELECT 'incident' AS source, incident_id AS id, scope FROM incident_holds WHERE legal_hold
     UNION ALL
     SELECT 'manual' AS source, id, scope FROM retention_holds WHERE released_at IS NULL
     ORDER BY source, id`,
  );
  return res.rows;
}

/** Blocks new and released holds until the calling transaction ends (purge batches take it first). */
export async function lockHoldsForPurge(client: PoolClient): Promise<void> {
  await client.query('LOCK TABLE incident_holds, retention_holds IN SHARE MODE');
}

/** The first hold covering the target (a tenant, or one of its integrations with its vendor). */
export function holdOver(
  holds: readonly ActiveHold[],
  target: { tenantId: string; integrationId?: string; vendor?: string },
): ActiveHold | undefined {
  return holds.find((h) => scopeCovers(h.scope, target));
}

/**
 * Which of the tenant's integrations a hold covers. `tenant` is the hold on the tenant as a whole (every
 * integration held), when there is one.
 */
export async function heldIntegrations(
  db: Queryable,
  holds: readonly ActiveHold[],
  tenantId: string,
): Promise<{ tenant: ActiveHold | undefined; integrations: Map<string, ActiveHold> }> {
  const tenant = holdOver(holds, { tenantId });
  const res = await db.query<{ id: string; vendor: string }>(
    'SELECT id, vendor FROM integrations WHERE tenant_id = $1 ORDER BY id',
    [tenantId],
  );
  const integrations = new Map<string, ActiveHold>();
  for (const i of res.rows) {
    const h = tenant ?? holdOver(holds, { tenantId, integrationId: i.id, vendor: i.vendor });
    if (h) integrations.set(i.id, h);
  }
  return { tenant, integrations };
}

/** `ehrctl holds place --scope S --reason R`: audited in the same transaction. */
export async function placeLegalHold(
  pool: Pool,
  input: { scope: string; reason: string },
  ctx: AuditContext,
): Promise<ManualHold> {
  const scope = parseScope(input.scope);
  checkReason(input.reason, '--reason');
  const id = `hold-${randomBytes(6).toString('hex')}`;
  return withTransaction(pool, async (client) => {
    const res = await client.query<DbHold>(
      `INSERT INTO retention_holds (id, scope, reason, placed_by) VALUES ($1, $2, $3, $4) RETURNING ${COLUMNS}`,
      [id, scope, input.reason, ctx.actor],
    );
    await appendAuditEvents(client, [
      {
        ...ctx,
        action: 'retention.hold_placed',
        outcome: 'success',
        tenantId: scope.startsWith('tenant:') ? scope.slice(7) : null,
        details: { holdId: id, scope, reason: input.reason },
      },
    ]);
    return fromDb(res.rows[0]!);
  });
}

/** `ehrctl holds release <id> --reason R`: audited; releasing a released hold is a conflict. */
export async function releaseLegalHold(
  pool: Pool,
  input: { id: string; reason: string },
  ctx: AuditContext,
): Promise<ManualHold> {
  checkReason(input.reason, '--reason');
  return withTransaction(pool, async (client) => {
    const found = await client.query<DbHold>(`SELECT ${COLUMNS} FROM retention_holds WHERE id = $1 FOR UPDATE`, [
      input.id,
    ]);
    const row = found.rows[0];
    if (!row) throw new NotFoundError('legal hold', input.id);
    if (row.released_at) throw new ConflictError('legal hold', input.id, 'was released already');
    const res = await client.query<DbHold>(
      `UPDATE retention_holds SET released_by = $2, released_at = now(), release_reason = $3 WHERE id = $1
       RETURNING ${COLUMNS}`,
      [input.id, ctx.actor, input.reason],
    );
    await appendAuditEvents(client, [
      {
        ...ctx,
        action: 'retention.hold_released',
        outcome: 'success',
        tenantId: row.scope.startsWith('tenant:') ? row.scope.slice(7) : null,
        details: { holdId: input.id, scope: row.scope, reason: input.reason },
      },
    ]);
    return fromDb(res.rows[0]!);
  });
}

/** Manual holds (standing ones unless `all`) and the incidents' legal holds, for `ehrctl holds list`. */
export async function listLegalHolds(
  db: Queryable,
  opts: { all?: boolean } = {},
): Promise<{ manual: ManualHold[]; incidents: ActiveHold[] }> {
  const res = await db.query<DbHold>(
    `SELECT ${COLUMNS} FROM retention_holds ${opts.all ? '' : 'WHERE released_at IS NULL'} ORDER BY placed_at, id`,
  );
  const incidents = (await activeLegalHolds(db)).filter((h) => h.source === 'incident');
  return { manual: res.rows.map(fromDb), incidents };
}

interface DbHold {
  id: string;
  scope: string;
  reason: string;
  placed_by: string;
  placed_at: Date;
  released_by: string | null;
  released_at: Date | null;
}

const COLUMNS = 'id, scope, reason, placed_by, placed_at, released_by, released_at';

function fromDb(r: DbHold): ManualHold {
  return {
    id: r.id,
    scope: r.scope,
    reason: r.reason,
    placedBy: r.placed_by,
    placedAt: r.placed_at.toISOString(),
    releasedBy: r.released_by,
    releasedAt: r.released_at ? r.released_at.toISOString() : null,
  };
}
