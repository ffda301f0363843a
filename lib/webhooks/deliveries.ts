/**
 * Durable webhook intake: a delivery row (the dedupe record) and its `webhook.received` audit event
 * commit in one transaction, or neither does. Refusals are audited too, at most once per integration
 * and reason per window (a misconfigured sender retrying a bad signature would otherwise fill the
 * chain); the next audited refusal says how many were left out.
 */
import type { AuditContext } from '../audit/chain.js';
import { appendAuditEvents, recordAuditEvent } from '../audit/chain.js';
import type { RefusalAuditLimiter } from '../audit/refusal-limiter.js';
import type { Pool, Queryable } from '../store/pool.js';
import { withTransaction } from '../store/pool.js';
import type { NotificationSummary } from './notification.js';

export interface DeliveryTarget {
  tenantId: string;
  integrationId: string;
  vendor: string;
}

export interface IncomingDelivery {
  webhookId: string;
  summary: NotificationSummary;
  bodyBytes: number;
  /** Which accepted secret verified it: `current`, or `previous` during a rotation's window. */
  verifiedWith: 'current' | 'previous';
}

export type StoreOutcome = { stored: true } | { stored: false; signalled: boolean };

/**
 * Stores the delivery and audits it, unless its webhook id was stored before (then says whether that one was
 * signalled).
 */
export async function storeDelivery(
  pool: Pool,
  target: DeliveryTarget,
  d: IncomingDelivery,
  ctx: AuditContext,
): Promise<StoreOutcome> {
  return withTransaction(pool, async (client) => {
    const inserted = await client.query(
      `INSERT INTO webhook_deliveries (tenant_id, integration_id, webhook_id, event_type, resource_types,
         entry_count, body_bytes)
       VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (integration_id, webhook_id) DO NOTHING`,
      [
        target.tenantId,
        target.integrationId,
        d.webhookId,
        d.summary.eventType,
        d.summary.resourceTypes,
        d.summary.entryCount,
        d.bodyBytes,
      ],
    );
    if (inserted.rowCount === 0) {
      const prior = await client.query<{ signalled: boolean }>(
        `SELECT signalled_at IS NOT NULL AS signalled FROM webhook_deliveries
            WHERE integration_id = $1 AND webhook_id = $2`,
        [target.integrationId, d.webhookId],
      );
      return { stored: false, signalled: prior.rows[0]?.signalled ?? true };
    }
    await appendAuditEvents(client, [
      {
        ...ctx,
        action: 'webhook.received',
        outcome: 'success',
        tenantId: target.tenantId,
        integrationId: target.integrationId,
        details: {
          webhookId: d.webhookId,
          vendor: target.vendor,
          eventType: d.summary.eventType,
          kind: d.summary.kind,
          resourceTypes: d.summary.resourceTypes,
          unknownTypes: d.summary.unknownTypes,
          entryCount: d.summary.entryCount,
          bodyBytes: d.bodyBytes,
          verifiedWith: d.verifiedWith,
        },
      },
    ]);
    return { stored: true };
  });
}

/** The delta-sync workflow has the notification (or needs none: handshakes, heartbeats). */
export async function markDeliverySignalled(db: Queryable, integrationId: string, webhookId: string): Promise<void> {
  await db.query(
    `UPDATE webhook_deliveries SET signalled_at = now() WHERE integration_id = $1
        AND webhook_id = $2 AND signalled_at IS NULL`,
    [integrationId, webhookId],
  );
}

export interface Refusal {
  status: number;
  /** What happened, for the audit row. */
  reason: string;
  /** What the sender is told, when it must differ from `reason` (an unverified sender learns only "bad signature"). */
  answerReason?: string;
  /** Known only once the integration was found. */
  target?: DeliveryTarget;
  details?: Record<string, unknown>;
}

/** The integration a delivery names, with its status; undefined when there is none. */
export async function findWebhookIntegration(
  db: Queryable,
  integrationId: string,
): Promise<(DeliveryTarget & { status: string }) | undefined> {
  const res = await db.query<{ tenant_id: string; vendor: string; status: string }>(
    'SELECT tenant_id, vendor, status FROM integrations WHERE id = $1',
    [integrationId],
  );
  const row = res.rows[0];
  return row && { tenantId: row.tenant_id, integrationId, vendor: row.vendor, status: row.status };
}

export async function auditRefusal(
  pool: Pool,
  limiter: RefusalAuditLimiter,
  r: Refusal,
  ctx: AuditContext,
): Promise<boolean> {
  const suppressed = limiter.admit(`${r.target?.integrationId ?? '?'}|${r.reason}`);
  if (suppressed === undefined) return false;
  await recordAuditEvent(pool, {
    ...ctx,
    action: 'webhook.refused',
    outcome: 'failure',
    tenantId: r.target?.tenantId ?? null,
    integrationId: r.target?.integrationId ?? null,
    details: {
      status: r.status,
      reason: r.reason,
      ...(r.target ? { vendor: r.target.vendor } : {}),
      ...r.details,
      suppressedBefore: suppressed,
    },
  });
  return true;
}

/**
 * What `ehrctl webhooks status` shows of an integration's stored deliveries: how many, how many not yet
 * signalled, the last.
 */
export async function deliverySummary(
  db: Queryable,
  integrationId: string,
): Promise<{ deliveries: number; unsignalled: number; lastReceivedAt: Date | null }> {
  const counts = await db.query<{ deliveries: string; unsignalled: string; last: Date | null }>(
    `SELECT count(*)::text AS deliveries, count(*) FILTER (WHERE signalled_at IS NULL)::text AS unsignalled,
       max(received_at) AS last
       FROM webhook_deliveries WHERE integration_id = $1`,
    [integrationId],
  );
  const row = counts.rows[0]!;
  return { deliveries: Number(row.deliveries), unsignalled: Number(row.unsignalled), lastReceivedAt: row.last };
}
