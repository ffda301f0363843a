/**
 * Changes to the record store that incremental-sync tests need and real servers produce: deletions
 * (a new version flagged deleted: searches omit it, reads answer 410, history and bulk `deleted[]` list
 * it), transactions (entries stamped with the transaction's start but visible only at commit), many
 * records sharing one exact lastUpdated, and the type-level history those changes leave.
 */
import { randomUUID } from 'node:crypto';
import type { ResourceType } from '../lib/domain.js';
import { resourceId } from './data.js';
import { firstLogPosition, type LogEntry, type PendingWrite, type RecordRef, type RecordStore } from './store.js';

export interface Transaction {
  id: string;
  startedMs: number;
  writes: PendingWrite[];
}

/** Picks `count` distinct live records of the type spread over it (deleted ones skipped). */
function pickLive(store: RecordStore, type: ResourceType, count: number, ids?: readonly string[]): RecordRef[] {
  if (ids) {
    const out: RecordRef[] = [];
    for (const id of ids) {
      const ref = store.lookup(type, id);
      if (!ref) throw new RangeError(`unknown ${type} id`);
      if (!ref.deleted && !out.some((r) => r.index === ref.index)) out.push(ref);
    }
    return out;
  }
  const n = store.count(type);
  const out: RecordRef[] = [];
  const seen = new Set<number>();
  for (let j = 0; j < n && out.length < count; j++) {
    // A stride coprime with most sizes spreads the picks over the whole type.
    const index = (j * 7919 + 13) % n;
    if (seen.has(index)) continue;
    seen.add(index);
    const ref = store.ref(type, index);
    if (ref && !ref.deleted) out.push(ref);
  }
  return out;
}

export class StoreChanges {
  private readonly transactions = new Map<string, Transaction>();

  constructor(private readonly store: RecordStore) {}

  /** Deletes records now: each gets a new version flagged deleted, with its own fresh lastUpdated. */
  delete(type: ResourceType, opts: { ids?: readonly string[]; count?: number }): RecordRef[] {
    const recs = this.store.recs(type);
    return pickLive(this.store, type, opts.count ?? 0, opts.ids).map((ref) =>
      this.store.writeAt(type, ref.index, ref.version + 1, this.store.nextOverlayMs(recs), true),
    );
  }

  /** Modifies records so that all of them carry one and the same lastUpdated (a tie). */
  modifyTied(type: ResourceType, count: number): RecordRef[] {
    const recs = this.store.recs(type);
    const ms = this.store.nextOverlayMs(recs);
    return pickLive(this.store, type, count).map((ref) => this.store.writeAt(type, ref.index, ref.version + 1, ms));
  }

  /**
   * Begins a transaction: its writes are stamped now (later writes outside it get later stamps) but
   * stay invisible — searches, reads and exports see the old versions — until commit.
   */
  begin(type: ResourceType, count: number, deletes = 0): Transaction {
    const recs = this.store.recs(type);
    const picked = pickLive(this.store, type, count + deletes);
    const startedMs = this.store.nextOverlayMs(recs);
    const writes: PendingWrite[] = picked.map((ref, i) => ({
      type,
      index: ref.index,
      lastUpdatedMs: startedMs,
      ...(i >= count ? { deleted: true as const } : {}),
    }));
    const tx: Transaction = { id: randomUUID(), startedMs, writes };
    this.transactions.set(tx.id, tx);
    return tx;
  }

  /** Commits: every write becomes visible at the lastUpdated it was stamped with at begin. */
  commit(id: string): RecordRef[] | undefined {
    const tx = this.transactions.get(id);
    if (!tx) return undefined;
    this.transactions.delete(id);
    return tx.writes.map((w) => {
      const current = this.store.ref(w.type, w.index) as RecordRef;
      return this.store.writeAt(w.type, w.index, current.version + 1, w.lastUpdatedMs, w.deleted === true);
    });
  }

  rollback(id: string): boolean {
    return this.transactions.delete(id);
  }

  open(): Array<{ id: string; startedAt: string; writes: number }> {
    return [...this.transactions.values()].map((t) => ({
      id: t.id,
      startedAt: new Date(t.startedMs).toISOString(),
      writes: t.writes.length,
    }));
  }

  /**
   * Type-level history after `sinceMs` (exclusive), newest first as FHIR orders history: every
   * version written through the overlay, deletions included (generated base versions are not history).
   */
  history(type: ResourceType, sinceMs: number | undefined): RecordRef[] {
    const recs = this.store.recs(type);
    const from = sinceMs === undefined ? 0 : firstLogPosition(recs.log, sinceMs + 1);
    const out: RecordRef[] = [];
    for (let p = recs.log.length - 1; p >= from; p--) {
      const e = recs.log[p] as LogEntry;
      out.push({
        type,
        index: e.index,
        id: resourceId(this.store.seed, type, e.index),
        version: e.version,
        lastUpdatedMs: e.lastUpdatedMs,
        ...(e.deleted ? { deleted: true as const } : {}),
      });
    }
    return out;
  }

  /** Records of the type deleted after `sinceMs` (exclusive) and still deleted at `untilMs` (inclusive). */
  deletedBetween(type: ResourceType, sinceMs: number | undefined, untilMs: number): RecordRef[] {
    const recs = this.store.recs(type);
    const out: RecordRef[] = [];
    for (const [index, state] of recs.overlay) {
      if (!state.deleted || state.lastUpdatedMs > untilMs) continue;
      if (sinceMs !== undefined && state.lastUpdatedMs <= sinceMs) continue;
      out.push({ type, index, id: resourceId(this.store.seed, type, index), ...state, deleted: true });
    }
    return out.sort((a, b) => a.lastUpdatedMs - b.lastUpdatedMs);
  }
}
