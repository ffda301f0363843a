/**
 * The audit chain verifier as a pure, streaming state machine: rows go in in seq order, the first
 * break comes out. The database verifier (verify.ts) feeds it batches from PostgreSQL; property
 * tests feed it arrays (`verifyChainRows`), so both check exactly the same rules.
 *
 * Rules, and the sequence number each one reports as `firstBrokenSeq`:
 * - a missing seq (deleted row): the missing seq;
 * - prev_hash not linking to the previous row: that row — except when the row is an original row
 *   shifted up by one (its prev_hash is the hash two back and its hash recomputes at seq - 1): then a
 *   forged row was inserted before it, and the inserted row's seq is reported;
 * - a stored hash that does not recompute (edited field, swapped rows: seq is inside the hash): that row;
 * - a row whose hash differs from the hash a signed checkpoint anchors at its seq (the chain was
 *   rebuilt with recomputed hashes): the first seq after the last checkpoint that still matched — the
 *   rewrite lies somewhere in that checkpoint interval and the hashes alone cannot say where;
 * - fewer rows than a checkpoint (or the head) says exist (the tail was truncated): last row + 1;
 * - rows beyond the head: head + 1; a head hash that does not match the last row: the last row.
 */
import { timingSafeEqual } from 'node:crypto';
import { AUDIT_GENESIS_HASH, auditHashWithDetails, canonicalJsonValue } from './chain.js';
import type { AuditOutcome } from './chain.js';

/** One audit row as stored. `occurredAt`/`details` are undefined when the stored value cannot be read. */
export interface ChainRow {
  seq: number;
  occurredAt: string | undefined;
  actor: string;
  action: string;
  outcome: string;
  tenantId: string | null;
  integrationId: string | null;
  correlationId: string;
  details: Record<string, unknown> | undefined;
  prevHash: Buffer;
  hash: Buffer;
}

/** What a trusted (signature-verified) checkpoint says: the chain had eventSeq events, ending in headHash. */
export interface AnchoredHead {
  checkpointSeq: number;
  eventSeq: number;
  headHash: Buffer;
}

export interface ChainHead {
  seq: number;
  hash: Buffer;
}

export interface ChainResult {
  ok: boolean;
  eventsChecked: number;
  lastSeq: number;
  firstBrokenSeq?: number;
  reason?: string;
}

export function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

export function rowHash(prevHash: Buffer, seq: number, row: ChainRow): Buffer | undefined {
  if (row.occurredAt === undefined || row.details === undefined) return undefined;
  let details: string;
  try {
    details = canonicalJsonValue(row.details);
  } catch {
    return undefined;
  }
  return auditHashWithDetails(
    prevHash,
    {
      seq,
      occurredAt: row.occurredAt,
      actor: row.actor,
      action: row.action,
      outcome: row.outcome as AuditOutcome,
      tenantId: row.tenantId,
      integrationId: row.integrationId,
      correlationId: row.correlationId,
      details: row.details,
    },
    details,
  );
}

export class ChainVerifier {
  private expectedSeq = 1;
  private prevHash: Buffer = AUDIT_GENESIS_HASH;
  private prevPrevHash: Buffer | undefined;
  private checked = 0;
  private lastMatchedCheckpointSeq = 0; // eventSeq of the last checkpoint that matched
  private readonly anchored = new Map<number, AnchoredHead[]>();
  private readonly maxAnchored: AnchoredHead | undefined;
  private pendingRewrite: { from: number; at: number; checkpointSeq: number } | undefined;
  private broken: { seq: number; reason: string } | undefined;

  /**
   * `from`: start after a trusted point (an event seq and its hash, e.g. the last checkpoint) instead
   * of at genesis; used to verify only what is new before signing a checkpoint.
   */
  constructor(checkpoints: readonly AnchoredHead[] = [], from?: ChainHead) {
    if (from && from.seq > 0) {
      this.expectedSeq = from.seq + 1;
      this.prevHash = from.hash;
      this.lastMatchedCheckpointSeq = from.seq;
    }
    let max: AnchoredHead | undefined;
    for (const cp of checkpoints) {
      const list = this.anchored.get(cp.eventSeq);
      if (list) list.push(cp);
      else this.anchored.set(cp.eventSeq, [cp]);
      if (!max || cp.eventSeq > max.eventSeq) max = cp;
    }
    this.maxAnchored = max;
    // A checkpoint of the empty chain anchors the genesis hash.
    if (!from || from.seq === 0)
      for (const cp of this.anchored.get(0) ?? []) {
        if (!sameBytes(cp.headHash, AUDIT_GENESIS_HASH))
          this.fail(1, `checkpoint ${cp.checkpointSeq} anchors an empty chain with a non-genesis hash`);
      }
  }

  /** True once a break has been found; further rows are ignored. */
  get done(): boolean {
    return this.broken !== undefined;
  }

  private fail(seq: number, reason: string): void {
    this.broken ??= { seq, reason };
  }

  /** Feeds the next row in ascending seq order. */
  push(row: ChainRow): void {
    if (this.broken) return;
    this.checked += 1;
    const seq = row.seq;
    const expected = this.expectedSeq;
    if (seq !== expected) {
      this.resolvePending();
      return this.fail(expected, `sequence gap: event ${expected} is missing`);
    }
    if (!sameBytes(row.prevHash, this.prevHash)) {
      if (seq >= 2 && this.prevPrevHash && sameBytes(row.prevHash, this.prevPrevHash)) {
        const shifted = rowHash(this.prevPrevHash, seq - 1, row);
        if (shifted && sameBytes(shifted, row.hash)) {
          // Event seq-1 was inserted: the original rows from there on were renumbered up by one.
          if (this.pendingRewrite && this.pendingRewrite.at === seq - 1) this.pendingRewrite = undefined;
          this.resolvePending();
          return this.fail(
            seq - 1,
            `forged event inserted at seq ${seq - 1}: seq ${seq} is the original event ${seq - 1} renumbered`,
          );
        }
      }
      this.resolvePending();
      return this.fail(seq, `prev_hash of event ${seq} does not link to the preceding event`);
    }
    const hash = rowHash(this.prevHash, seq, row);
    if (!hash || !sameBytes(hash, row.hash)) {
      this.resolvePending();
      return this.fail(seq, `hash mismatch: event ${seq} was altered`);
    }
    this.resolvePending();
    if (this.broken) return;
    for (const cp of this.anchored.get(seq) ?? []) {
      if (sameBytes(cp.headHash, row.hash)) continue;
      // Decide at the next row: it may show that this row was inserted (a more precise answer).
      this.pendingRewrite = { from: this.lastMatchedCheckpointSeq + 1, at: seq, checkpointSeq: cp.checkpointSeq };
      break;
    }
    if (!this.pendingRewrite && this.anchored.has(seq)) this.lastMatchedCheckpointSeq = seq;
    this.prevPrevHash = this.prevHash;
    this.prevHash = row.hash;
    this.expectedSeq = seq + 1;
  }

  private resolvePending(): void {
    const p = this.pendingRewrite;
    if (!p) return;
    this.pendingRewrite = undefined;
    this.fail(
      p.from,
      `chain rewritten: the hash at seq ${p.at} differs from the one signed in checkpoint ${p.checkpointSeq}; ` +
        `the rewrite lies in events ${p.from}..${p.at}`,
    );
  }

  /** Ends the walk: checks the tail against the checkpoints and (when given) the stored head. */
  finish(head?: ChainHead): ChainResult {
    this.resolvePending();
    const lastSeq = this.expectedSeq - 1;
    if (!this.broken) {
      const max = this.maxAnchored;
      if (max && max.eventSeq > lastSeq) {
        this.fail(
          lastSeq + 1,
          `the tail was truncated: checkpoint ${max.checkpointSeq} signed ${max.eventSeq} events, ` +
            `only ${lastSeq} remain`,
        );
      } else if (head && head.seq > lastSeq) {
        this.fail(lastSeq + 1, `the tail was truncated: the head is at seq ${head.seq}, the last event is ${lastSeq}`);
      } else if (head && head.seq < lastSeq) {
        this.fail(head.seq + 1, `events exist beyond the head (seq ${head.seq})`);
      } else if (head && !sameBytes(head.hash, this.prevHash)) {
        this.fail(Math.max(lastSeq, 1), 'head hash does not match the last event');
      }
    }
    const b = this.broken;
    return b
      ? { ok: false, eventsChecked: this.checked, lastSeq, firstBrokenSeq: b.seq, reason: b.reason }
      : { ok: true, eventsChecked: this.checked, lastSeq };
  }
}

/** In-memory verification of rows (any order; sorted by seq here) against trusted checkpoints. */
export function verifyChainRows(
  rows: readonly ChainRow[],
  checkpoints: readonly AnchoredHead[] = [],
  head?: ChainHead,
): ChainResult {
  const v = new ChainVerifier(checkpoints);
  const sorted = [...rows].sort((a, b) => a.seq - b.seq);
  for (const row of sorted) {
    v.push(row);
    if (v.done) break;
  }
  return v.finish(head);
}
