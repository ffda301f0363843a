/**
 * What a retention run has to look at: per tenant, the kinds with something stored before their cutoff
 * (cutoffs fixed here, once per run, so every retry of every batch uses the same instant), and the audit
 * trail's cutoff. Holds are not decided here: each batch reads them under its lock.
 */
import { isResourceType } from '../domain.js';
import type { Queryable } from '../store/pool.js';
import type { EvidenceTask } from './evidence.js';
import { evidenceDue } from './evidence.js';
import type { RecordsKind, RetentionKind } from './rules.js';
import { auditRetentionDays, retentionClassOf, retentionDaysFor } from './rules.js';

export type PurgeKind = RecordsKind | 'webhook-deliveries';

export interface PurgeTask {
  tenantId: string;
  kind: PurgeKind;
  days: number;
  cutoff: string;
}

export interface RetentionPlan {
  plannedAt: string;
  tasks: PurgeTask[];
  /** Absent when the run is limited to one tenant (the audit trail is every tenant's). */
  audit?: { days: number; cutoff: string };
  /** Incidents whose evidence is past due (full runs only: an incident may span tenants). */
  evidence?: EvidenceTask[];
}

const DAY_MS = 24 * 3600 * 1000;

function cutoffOf(now: Date, days: number): string {
  return new Date(now.getTime() - days * DAY_MS).toISOString();
}

export async function planRetention(
  db: Queryable,
  opts: { tenantId?: string; now?: Date } = {},
): Promise<RetentionPlan> {
  const now = opts.now ?? new Date();
  const tenants = (
    await db.query<{ id: string }>(
      `SELECT id FROM tenants ${opts.tenantId === undefined ? '' : 'WHERE id = $1'} ORDER BY id`,
      opts.tenantId === undefined ? [] : [opts.tenantId],
    )
  ).rows.map((r) => r.id);
  const tasks: PurgeTask[] = [];
  for (const tenantId of tenants) {
    const oldest = await db.query<{ resource_type: string; oldest: Date }>(
      'SELECT resource_type, min(stored_at) AS oldest FROM records WHERE tenant_id = $1 GROUP BY resource_type',
      [tenantId],
    );
    const kinds = new Map<RecordsKind, Date>();
    for (const r of oldest.rows) {
      if (!isResourceType(r.resource_type)) continue;
      const kind: RecordsKind = `records:${retentionClassOf(r.resource_type)}`;
      const known = kinds.get(kind);
      if (!known || r.oldest < known) kinds.set(kind, r.oldest);
    }
    const webhooks = await db.query<{ oldest: Date | null }>(
      'SELECT min(received_at) AS oldest FROM webhook_deliveries WHERE tenant_id = $1 AND signalled_at IS NOT NULL',
      [tenantId],
    );
    const candidates: Array<[PurgeKind, Date | null | undefined]> = [
      ...[...kinds.entries()].sort(([a], [b]) => a.localeCompare(b)),
      ['webhook-deliveries', webhooks.rows[0]?.oldest],
    ];
    for (const [kind, oldestAt] of candidates) {
      if (!oldestAt) continue;
      const days = await retentionDaysFor(db, tenantId, kind satisfies RetentionKind);
      const cutoff = cutoffOf(now, days);
      if (oldestAt.getTime() < Date.parse(cutoff)) tasks.push({ tenantId, kind, days, cutoff });
    }
  }
  const plan: RetentionPlan = { plannedAt: now.toISOString(), tasks };
  if (opts.tenantId === undefined) {
    const days = await auditRetentionDays(db);
    plan.audit = { days, cutoff: cutoffOf(now, days) };
    plan.evidence = await evidenceDue(db, now);
  }
  return plan;
}
