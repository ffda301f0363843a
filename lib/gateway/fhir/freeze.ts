/**
 * An incident freezes the reads of its scope: while a hold with `exports_frozen` (migrations/…_incidents.sql:
 * "exports and records reads refuse") covers the tenant, one of its integrations or their vendor, every gateway
 * read of the tenant is answered 503 — the whole tenant, not only the held integration's records, because a
 * search across integrations that silently left one out would answer wrongly rather than not at all.
 */
import { holdCovering } from '../../incidents/holds.js';
import type { Queryable } from '../../store/pool.js';
import { tenantIntegrationTargets } from '../../store/record-reads.js';

export interface ReadFreeze {
  incidentId: string;
  scope: string;
}

export async function readFreeze(db: Queryable, tenantId: string): Promise<ReadFreeze | undefined> {
  // Holds are rare: one query when there is none.
  if (!(await holdCovering(db, 'exports_frozen', undefined))) return undefined;
  const targets = [{ tenantId }, ...(await tenantIntegrationTargets(db, tenantId)).map((i) => ({ tenantId, ...i }))];
  for (const target of targets) {
    const hold = await holdCovering(db, 'exports_frozen', target);
    if (hold) return { incidentId: hold.incident_id, scope: hold.scope };
  }
  return undefined;
}

/** Thrown by a read that found its tenant frozen (handler.ts answers 503). */
export class ReadsFrozen extends Error {
  constructor(readonly freeze: ReadFreeze) {
    super('reads are frozen by an incident');
  }
}

/**
 * The freeze check, started beside a read's first query (a round trip less on every read); `check()` throws
 * ReadsFrozen before anything is decrypted.
 */
export class FreezeGate {
  readonly #pending: Promise<ReadFreeze | undefined>;

  constructor(db: Queryable, tenantId: string) {
    this.#pending = readFreeze(db, tenantId);
    // Awaited by check(); a request refused before it gets there must not leave an unhandled rejection.
    this.#pending.catch(() => undefined);
  }

  async check(): Promise<void> {
    const freeze = await this.#pending;
    if (freeze) throw new ReadsFrozen(freeze);
  }
}
