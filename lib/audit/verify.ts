/**
 * Verifies the audit hash chain, streaming rows in seq order in batches (constant memory; works for
 * millions of rows). Reads everything in one REPEATABLE READ snapshot so concurrent appends do not
 * make the head and the rows disagree.
 *
 * Detects: an edited row (hash mismatch), a deleted row (seq gap), a rewritten link (prev_hash does
 * not match the previous row's hash), swapped or reordered rows (seq is inside the hash), and a head
 * that does not match the last row (truncated tail). A hash chain alone cannot detect a chain rebuilt
 * from scratch together with its head — signed checkpoints kept outside the database can.
 */
import { timingSafeEqual } from 'node:crypto';
import type { Pool } from '../store/pool.js';
import { AUDIT_GENESIS_HASH, computeAuditHash } from './chain.js';
import type { AuditOutcome } from './chain.js';

export interface AuditVerification {
  ok: boolean;
  /** Rows read and checked, including the first broken one. */
  eventsChecked: number;
  headSeq: number;
  /** The lowest seq at which the chain no longer holds. */
  firstBrokenSeq?: number;
  reason?: string;
}

interface AuditRow {
  seq: string;
  occurred_us: string;
  actor: string;
  action: string;
  outcome: string;
  tenant_id: string | null;
  integration_id: string | null;
  correlation_id: string;
  details: string;
  prev_hash: Buffer;
  hash: Buffer;
}

function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Recomputes one row's hash from the running previous hash; undefined when the row cannot be read. */
function recompute(prevHash: Buffer, seq: number, row: AuditRow): Buffer | undefined {
  // occurred_at is compared at microsecond precision: we only ever write whole milliseconds.
  const micros = BigInt(row.occurred_us);
  if (micros % 1000n !== 0n) return undefined;
  const occurred = new Date(Number(micros / 1000n));
  if (Number.isNaN(occurred.getTime())) return undefined;
  let details: unknown;
  try {
    details = JSON.parse(row.details);
  } catch {
    return undefined;
  }
  if (typeof details !== 'object' || details === null || Array.isArray(details)) return undefined;
  return computeAuditHash(prevHash, {
    seq,
    occurredAt: occurred.toISOString(),
    actor: row.actor,
    action: row.action,
    outcome: row.outcome as AuditOutcome,
    tenantId: row.tenant_id,
    integrationId: row.integration_id,
    correlationId: row.correlation_id,
    details: details as Record<string, unknown>,
  });
}

export async function verifyAuditChain(pool: Pool, opts: { batchSize?: number } = {}): Promise<AuditVerification> {
  const batchSize = opts.batchSize ?? 5000;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError('batchSize must be a positive integer');

  const client = await pool.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const head = await client.query<{ seq: string; hash: Buffer }>('SELECT seq::text AS seq, hash FROM audit_head');
    const headRow = head.rows[0];
    if (!headRow) return { ok: false, eventsChecked: 0, headSeq: 0, firstBrokenSeq: 1, reason: 'audit head row is missing' };
    const headSeq = Number(headRow.seq);

    let expectedSeq = 1;
    let prevHash = AUDIT_GENESIS_HASH;
    let checked = 0;
    const broken = (seq: number, reason: string): AuditVerification => ({
      ok: false,
      eventsChecked: checked,
      headSeq,
      firstBrokenSeq: seq,
      reason,
    });

    for (;;) {
      // Text casts keep this independent of any global pg type parsers.
      const batch = await client.query<AuditRow>(
        `SELECT seq::text AS seq,
                (EXTRACT(EPOCH FROM occurred_at) * 1000000)::numeric(30,0)::text AS occurred_us,
                actor, action, outcome, tenant_id, integration_id, correlation_id,
                details::text AS details, prev_hash, hash
           FROM audit_events
          WHERE audit_events.seq >= $1
          ORDER BY audit_events.seq
          LIMIT $2`,
        [String(expectedSeq), batchSize],
      );
      for (const row of batch.rows) {
        checked += 1;
        const seq = Number(row.seq);
        if (seq !== expectedSeq) return broken(expectedSeq, 'sequence gap: an event is missing');
        if (!sameBytes(row.prev_hash, prevHash)) return broken(seq, 'prev_hash does not link to the preceding event');
        const hash = recompute(prevHash, seq, row);
        if (!hash || !sameBytes(hash, row.hash)) return broken(seq, 'hash mismatch: event content was altered');
        prevHash = row.hash;
        expectedSeq += 1;
      }
      if (batch.rows.length < batchSize) break;
    }

    const lastSeq = expectedSeq - 1;
    if (headSeq > lastSeq) return broken(lastSeq + 1, 'head is beyond the last event: the tail was truncated');
    if (headSeq < lastSeq) return broken(headSeq + 1, 'events exist beyond the head');
    if (!sameBytes(headRow.hash, prevHash)) return broken(Math.max(lastSeq, 1), 'head hash does not match the last event');
    return { ok: true, eventsChecked: checked, headSeq };
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
    client.release();
  }
}
