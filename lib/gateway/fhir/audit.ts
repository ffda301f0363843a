/**
 * The audit events of gateway reads: one per request (more when it served over 200 patients), committed (with
 * those of concurrent requests: group commit) before the answer is returned — an answer whose events could not be
 * written is replaced by a 500 and carries no data. Details hold identifiers, counts, codes and patient
 * pseudonyms, never content or ids of patients: consumer, purpose, the scope used, resource type, how many
 * resources, and the break-glass grant when the access was under one.
 */
import type { AuditEvent } from '../../audit/chain.js';
import { appendAuditEvents } from '../../audit/chain.js';
import type { Pool } from '../../store/pool.js';
import { withTransaction } from '../../store/pool.js';
import type { GatewayAccess } from '../access.js';

/** Pseudonyms per event: keeps each event's details well under the 8 KB cap. */
const PSEUDONYMS_PER_EVENT = 200;

export type GatewayAction =
  'gateway.read' | 'gateway.search' | 'gateway.everything' | 'gateway.request' | 'gateway.write';

export interface ReadAudit {
  action: GatewayAction;
  status: number;
  resourceType?: string;
  /** The scope that granted the access (absent when none did). */
  scope?: string;
  /** $everything: every scope used. */
  scopes?: string[];
  /** $everything: the types it searched. */
  types?: string[];
  breakGlassIds?: string[];
  count: number;
  patients: string[];
  integrationIds?: string[];
  /** Why it was refused or failed (a stable code, e.g. `not-found`, `scope`, `incident-hold`). */
  reason?: string;
  /** Identifiers only (an incident id, a parameter name). */
  extra?: Record<string, unknown>;
}

export function auditEvents(access: GatewayAccess, facts: ReadAudit): AuditEvent[] {
  const bg = [...new Set(facts.breakGlassIds ?? [])];
  const integrations = [...new Set(facts.integrationIds ?? [])];
  const first: Record<string, unknown> = {
    consumerId: access.consumerId,
    purpose: access.purpose,
    status: facts.status,
    count: facts.count,
    ...(facts.resourceType !== undefined ? { resourceType: facts.resourceType } : {}),
    ...(facts.scope !== undefined ? { scope: facts.scope } : {}),
    ...(facts.scopes !== undefined ? { scopes: facts.scopes } : {}),
    ...(facts.types !== undefined ? { types: facts.types } : {}),
    ...(integrations.length > 0 ? { integrations } : {}),
    ...(facts.reason !== undefined ? { reason: facts.reason } : {}),
    ...facts.extra,
  };
  const patients = [...new Set(facts.patients)];
  const events: AuditEvent[] = [];
  for (let i = 0; i === 0 || i < patients.length; i += PSEUDONYMS_PER_EVENT) {
    events.push({
      actor: `consumer:${access.consumerId}`,
      action: facts.action,
      outcome: facts.status < 400 ? 'success' : 'failure',
      tenantId: access.tenantId,
      integrationId: integrations.length === 1 ? integrations[0] : null,
      correlationId: access.correlationId,
      details: {
        ...(i === 0 ? first : { consumerId: access.consumerId, continued: true }),
        // Every event of an access under break-glass carries the grant's id.
        ...(bg.length > 0 ? { breakGlassId: bg[0], ...(bg.length > 1 ? { breakGlassIds: bg } : {}) } : {}),
        patients: patients.slice(i, i + PSEUDONYMS_PER_EVENT),
      },
    });
  }
  return events;
}

/** Events of concurrent requests committed together at most this many at a time. */
const MAX_BATCH_EVENTS = 500;

interface Waiting {
  events: AuditEvent[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit: the chain is serialised by one head row, so one transaction per request caps reads at one commit
 * each. Requests arriving while a batch commits wait for the next one, which takes them all; each still gets its
 * answer only once its own events are committed. A batch that fails is retried request by request, so one
 * request's bad event never fails another's.
 */
class AuditBatcher {
  readonly #queue: Waiting[] = [];
  #draining = false;

  constructor(private readonly pool: Pool) {}

  append(events: AuditEvent[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ events, resolve, reject });
      if (!this.#draining) void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#draining = true;
    try {
      while (this.#queue.length > 0) {
        const batch: Waiting[] = [];
        let size = 0;
        while (
          this.#queue.length > 0 &&
          (batch.length === 0 || size + this.#queue[0]!.events.length <= MAX_BATCH_EVENTS)
        ) {
          const next = this.#queue.shift()!;
          batch.push(next);
          size += next.events.length;
        }
        try {
          await withTransaction(this.pool, (client) =>
            appendAuditEvents(
              client,
              batch.flatMap((w) => w.events),
            ),
          );
          for (const w of batch) w.resolve();
        } catch (err) {
          if (batch.length === 1) batch[0]!.reject(err);
          else
            for (const w of batch)
              await withTransaction(this.pool, (client) => appendAuditEvents(client, w.events)).then(
                w.resolve,
                w.reject,
              );
        }
      }
    } finally {
      this.#draining = false;
    }
  }
}

const batchers = new WeakMap<Pool, AuditBatcher>();

/** Resolves once the request's audit events are committed in the chain; rejects (nothing may be served) otherwise. */
export async function writeReadAudit(pool: Pool, access: GatewayAccess, facts: ReadAudit): Promise<void> {
  let batcher = batchers.get(pool);
  if (!batcher) batchers.set(pool, (batcher = new AuditBatcher(pool)));
  await batcher.append(auditEvents(access, facts));
}
