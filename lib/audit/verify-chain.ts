/**
 * Verifies the audit hash chain alone (DESIGN §4 invariant 6), streaming the events in seq order in
 * batches (constant memory; millions of rows) inside one REPEATABLE READ snapshot: edited rows, deleted
 * rows, rewritten links, swapped or reordered rows (seq is inside the hash), a head that does not match
 * the last row. lib/audit/verify.ts adds the signed checkpoints and the anchor; the rules and the
 * sequence number each reports are in chain-verifier.ts.
 */
import type { Pool, PoolClient } from '../store/pool.js';
import type { AnchoredHead, ChainHead } from './chain-verifier.js';
import { ChainVerifier } from './chain-verifier.js';
import { readChainRows } from './rows.js';

export interface AuditVerification {
  ok: boolean;
  /** Rows read and checked, including the first broken one. */
  eventsChecked: number;
  headSeq: number;
  /** The lowest seq at which the chain no longer holds. */
  firstBrokenSeq?: number;
  reason?: string;
}

export async function readHead(client: PoolClient): Promise<(ChainHead & { chainId: string | undefined }) | undefined> {
  // chain_id arrives with the checkpoint migration; tolerate its absence for the chain-only check.
  const head = await client.query<{ seq: string; hash: Buffer; chain_id?: string }>(
    "SELECT seq::text AS seq, hash, to_jsonb(h) ->> 'chain_id' AS chain_id FROM audit_head h",
  );
  const r = head.rows[0];
  return r ? { seq: Number(r.seq), hash: r.hash, chainId: r.chain_id ?? undefined } : undefined;
}

/**
 * Where the kept chain starts: the last audit segment purged by retention (lib/retention/audit-segments.ts)
 * ends at a signed checkpoint, and every event up to its seq is gone. Undefined when nothing was purged.
 */
export async function readPurgeBoundary(
  client: PoolClient,
): Promise<(ChainHead & { checkpointSeq: number }) | undefined> {
  const res = await client.query<{ seq: string; hash: Buffer; checkpoint_seq: string }>(
    `SELECT purged_through_seq::text AS seq, through_hash AS hash, checkpoint_seq::text AS checkpoint_seq
       FROM audit_purges ORDER BY purged_through_seq DESC LIMIT 1`,
  );
  const r = res.rows[0];
  return r ? { seq: Number(r.seq), hash: r.hash, checkpointSeq: Number(r.checkpoint_seq) } : undefined;
}

/** The problem when no trusted signed checkpoint ends exactly at the purge boundary (seq and head hash). */
export function unsignedBoundary(
  boundary: ChainHead & { checkpointSeq: number },
  trusted: readonly AnchoredHead[],
): { checkpointSeq: number; reason: string } | undefined {
  const signed = trusted.some(
    (c) =>
      c.checkpointSeq === boundary.checkpointSeq && c.eventSeq === boundary.seq && c.headHash.equals(boundary.hash),
  );
  return signed
    ? undefined
    : {
        checkpointSeq: boundary.checkpointSeq,
        reason:
          `audit events through seq ${boundary.seq} were purged, ` +
          `but no trusted signed checkpoint ${boundary.checkpointSeq} ends there`,
      };
}

/** Walks the chain from genesis, or from `from` (the trusted point the kept chain starts after). */
export async function walk(
  client: PoolClient,
  checkpoints: AnchoredHead[],
  head: ChainHead,
  batchSize: number,
  from?: ChainHead,
) {
  const v = new ChainVerifier(checkpoints, from);
  for await (const batch of readChainRows(client, { fromSeq: (from?.seq ?? 0) + 1, batchSize })) {
    for (const row of batch) {
      v.push(row);
      if (v.done) break;
    }
    if (v.done) break;
  }
  return v.finish(head);
}

export async function inSnapshot<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    return await fn(client);
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
    client.release();
  }
}

export function checkBatchSize(batchSize: number): void {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError('batchSize must be a positive integer');
}

export async function verifyAuditChain(pool: Pool, opts: { batchSize?: number } = {}): Promise<AuditVerification> {
  const batchSize = opts.batchSize ?? 2000;
  checkBatchSize(batchSize);
  return inSnapshot(pool, async (client) => {
    const head = await readHead(client);
    if (!head)
      return { ok: false, eventsChecked: 0, headSeq: 0, firstBrokenSeq: 1, reason: 'audit head row is missing' };
    // After a retention purge the chain alone can only start from the recorded boundary; verifyAuditTrail
    // checks that boundary against a signed checkpoint.
    const boundary = await readPurgeBoundary(client);
    const r = await walk(client, [], head, batchSize, boundary);
    return r.ok
      ? { ok: true, eventsChecked: r.eventsChecked, headSeq: head.seq }
      : {
          ok: false,
          eventsChecked: r.eventsChecked,
          headSeq: head.seq,
          firstBrokenSeq: r.firstBrokenSeq,
          reason: r.reason,
        };
  });
}
