/**
 * Audit rows leave only as whole checkpointed segments, oldest first: the events up to a signed checkpoint
 * (lib/audit/checkpoint.ts), once its last event is older than the audit retention (at least the longest
 * rule, lib/retention/rules.ts) and no legal hold covers a tenant or integration named in the segment. The
 * application role cannot delete audit rows; the owner function `retention_purge_audit_segment`
 * (migrations/1733400030000_retention.sql) does, records the boundary in `audit_purges`, and the verifier
 * (lib/audit/verify.ts) starts from the oldest kept signed checkpoint. The purge's audit event, the
 * deletion and the ledger row commit together.
 */
import type { AuditContext } from '../audit/chain.js';
import { appendAuditEvents } from '../audit/chain.js';
import type { Pool, PoolClient } from '../store/pool.js';
import { withTransaction } from '../store/pool.js';
import type { ActiveHold } from './holds.js';
import { activeLegalHolds, holdOver, lockHoldsForPurge } from './holds.js';

export interface AuditSegment {
  checkpointSeq: number;
  fromSeq: number;
  throughSeq: number;
  /** When its last event occurred. */
  lastOccurredAt: string;
}

export interface AuditSegmentPurgeResult {
  /** Audit rows purged by this batch (by its first attempt, when replayed). */
  rows: number;
  /** The segment purged (not told on a replay). */
  purged?: { checkpointSeq: number; fromSeq: number; throughSeq: number; rows: number };
  /** Why nothing (more) was purged: no segment past due, or a hold covers the oldest one. */
  stopped?: 'none-due' | 'held';
  heldBy?: string[];
  replayed: boolean;
}

/** The oldest segment still kept, if a checkpoint closes one below the head. */
export async function oldestKeptSegment(db: PoolClient | Pool): Promise<AuditSegment | undefined> {
  const res = await db.query<{ checkpoint_seq: string; boundary: string; event_seq: string; occurred_at: Date }>(
    `WITH b AS (SELECT coalesce(max(purged_through_seq), 0) AS boundary FROM audit_purges)
     SELECT c.checkpoint_seq::text, b.boundary::text, c.event_seq::text, e.occurred_at
       FROM audit_checkpoints c CROSS JOIN b JOIN audit_events e ON e.seq = c.event_seq
      WHERE c.event_seq > b.boundary AND c.event_seq < (SELECT seq FROM audit_head)
      ORDER BY c.event_seq, c.checkpoint_seq LIMIT 1`,
  );
  const r = res.rows[0];
  return r
    ? {
        checkpointSeq: Number(r.checkpoint_seq),
        fromSeq: Number(r.boundary) + 1,
        throughSeq: Number(r.event_seq),
        lastOccurredAt: r.occurred_at.toISOString(),
      }
    : undefined;
}

async function holdsOverSegment(
  client: PoolClient,
  holds: readonly ActiveHold[],
  segment: AuditSegment,
): Promise<string[]> {
  if (holds.length === 0) return [];
  const res = await client.query<{ tenant_id: string | null; integration_id: string | null; vendor: string | null }>(
    `SELECT DISTINCT e.tenant_id, e.integration_id, i.vendor
       FROM audit_events e LEFT JOIN integrations i ON i.id = e.integration_id
      WHERE e.seq BETWEEN $1 AND $2`,
    [segment.fromSeq, segment.throughSeq],
  );
  const ids = new Set<string>();
  for (const h of holds) if (h.scope === 'all') ids.add(h.id);
  for (const r of res.rows) {
    const tenantId = r.tenant_id ?? '';
    const h = holdOver(holds, {
      tenantId,
      ...(r.integration_id ? { integrationId: r.integration_id } : {}),
      ...(r.vendor ? { vendor: r.vendor } : {}),
    });
    if (h) ids.add(h.id);
  }
  return [...ids].sort();
}

/** Purges the oldest kept segment when its last event occurred before `cutoff` and no hold covers it. */
export async function purgeOldestAuditSegment(
  pool: Pool,
  input: { runId: string; batchKey: string; cutoff: string },
  ctx: AuditContext,
): Promise<AuditSegmentPurgeResult> {
  return withTransaction(pool, async (client) => {
    const seen = await client.query<{ purged: number }>(
      'SELECT purged FROM retention_purge_batches WHERE run_id = $1 AND batch_key = $2',
      [input.runId, input.batchKey],
    );
    const done = seen.rows[0];
    if (done) return { replayed: true, rows: done.purged, ...(done.purged === 0 ? { stopped: 'none-due' } : {}) };
    await lockHoldsForPurge(client);
    const segment = await oldestKeptSegment(client);
    let result: AuditSegmentPurgeResult = { replayed: false, rows: 0, stopped: 'none-due' };
    if (segment && Date.parse(segment.lastOccurredAt) < Date.parse(input.cutoff)) {
      const heldBy = await holdsOverSegment(client, await activeLegalHolds(client), segment);
      if (heldBy.length > 0) result = { replayed: false, rows: 0, stopped: 'held', heldBy };
      else {
        const res = await client.query<{ from_seq: string; through_seq: string; rows_purged: string }>(
          `SELECT from_seq::text, through_seq::text, rows_purged::text FROM retention_purge_audit_segment($1, $2)`,
          [segment.checkpointSeq, input.cutoff],
        );
        const r = res.rows[0]!;
        const purged = {
          checkpointSeq: segment.checkpointSeq,
          fromSeq: Number(r.from_seq),
          throughSeq: Number(r.through_seq),
          rows: Number(r.rows_purged),
        };
        await appendAuditEvents(client, [
          {
            ...ctx,
            action: 'retention.audit_segment_purged',
            outcome: 'success',
            details: { runId: input.runId, cutoff: input.cutoff, ...purged },
          },
        ]);
        result = { replayed: false, rows: purged.rows, purged };
      }
    }
    await client.query(
      `INSERT INTO retention_purge_batches (run_id, batch_key, kind, tenant_id, purged) VALUES ($1, $2, 'audit', NULL, $3)`,
      [input.runId, input.batchKey, result.rows],
    );
    return result;
  });
}
