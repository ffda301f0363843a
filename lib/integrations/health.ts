/**
 * Circuit breaker transitions per integration (migrations/1732900001000_integration-health.sql). A
 * transition older than the stored one is ignored, so a slow write cannot hide a newer state.
 */
import type { BreakerState, BreakerTransition } from '../vendors/circuit-breaker.js';
import type { Queryable } from '../store/pool.js';

export interface IntegrationHealth {
  integrationId: string;
  tenantId: string;
  breakerState: BreakerState;
  consecutiveFailures: number;
  retryAt: Date | null;
  lastErrorCode: string | null;
  updatedAt: Date;
  updatedBy: string;
}

interface Row {
  integration_id: string;
  tenant_id: string;
  breaker_state: BreakerState;
  consecutive_failures: number;
  retry_at: Date | null;
  last_error_code: string | null;
  updated_at: Date;
  updated_by: string;
}

export async function recordBreakerTransition(db: Queryable, t: BreakerTransition, by: string): Promise<void> {
  await db.query(
    `INSERT INTO integration_health (integration_id, tenant_id, breaker_state, consecutive_failures, retry_at,
       last_error_code, updated_at, updated_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (integration_id) DO UPDATE SET
       breaker_state = EXCLUDED.breaker_state, consecutive_failures = EXCLUDED.consecutive_failures,
       retry_at = EXCLUDED.retry_at, last_error_code = EXCLUDED.last_error_code,
       updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by
     WHERE integration_health.updated_at <= EXCLUDED.updated_at`,
    [t.integrationId, t.tenantId, t.state, t.consecutiveFailures, t.retryAt, t.lastErrorCode, t.at, by],
  );
}

/** Health rows by integration id; an integration without a row has never left `closed`. */
export async function readIntegrationHealth(
  db: Queryable,
  integrationIds: readonly string[],
): Promise<Map<string, IntegrationHealth>> {
  if (integrationIds.length === 0) return new Map();
  const res = await db.query<Row>('SELECT * FROM integration_health WHERE integration_id = ANY($1)', [integrationIds]);
  return new Map(
    res.rows.map((r) => [
      r.integration_id,
      {
        integrationId: r.integration_id,
        tenantId: r.tenant_id,
        breakerState: r.breaker_state,
        consecutiveFailures: r.consecutive_failures,
        retryAt: r.retry_at,
        lastErrorCode: r.last_error_code,
        updatedAt: r.updated_at,
        updatedBy: r.updated_by,
      },
    ]),
  );
}
