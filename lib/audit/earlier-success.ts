/**
 * The audit trail as an idempotency record: a workflow step that already committed (its reply lost,
 * its worker crashed) finds its own success event by the workflow's correlation id and returns what it
 * did, instead of doing it a second time.
 */
import type { Queryable } from '../store/pool.js';

/** The details of the latest successful `action` under `correlationId` (and tenant, when given), if any. */
export async function earlierSuccessDetails(
  db: Queryable,
  where: { correlationId: string; action: string; tenantId?: string },
): Promise<Record<string, unknown> | undefined> {
  const { rows } = await db.query<{ details: Record<string, unknown> }>(
    `SELECT details FROM audit_events
      WHERE correlation_id = $1 AND action = $2 AND outcome = 'success' AND ($3::text IS NULL OR tenant_id = $3)
      ORDER BY seq DESC LIMIT 1`,
    [where.correlationId, where.action, where.tenantId ?? null],
  );
  return rows[0]?.details;
}
