/**
 * The audit events of gateway reads: one per request (more when it served over 200 patients), written in one
 * transaction before the answer is returned — an answer whose events could not be written is replaced by a 500
 * and carries no data. Details hold identifiers, counts, codes and patient pseudonyms, never content or ids of
 * patients: consumer, purpose, the scope used, resource type, how many resources, and the break-glass grant when
 * the access was under one.
 */
import type { AuditEvent } from '../../audit/chain.js';
import { appendAuditEvents } from '../../audit/chain.js';
import type { Pool } from '../../store/pool.js';
import { withTransaction } from '../../store/pool.js';
import type { GatewayAccess } from '../access.js';

/** Pseudonyms per event: keeps each event's details well under the 8 KB cap. */
const PSEUDONYMS_PER_EVENT = 200;

export type GatewayAction = 'gateway.read' | 'gateway.search' | 'gateway.everything' | 'gateway.request';

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

export async function writeReadAudit(pool: Pool, access: GatewayAccess, facts: ReadAudit): Promise<void> {
  await withTransaction(pool, (client) => appendAuditEvents(client, auditEvents(access, facts)));
}
