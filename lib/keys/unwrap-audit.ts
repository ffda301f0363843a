/**
 * The audit of unwrapping a key (a tenant's data key, its pseudonym key), shared by the keyring and the
 * pseudonym key cache: the success event is written before the key is used, and if it cannot be
 * written the unwrapped bytes are zeroed and the error thrown (fail closed); a failure event is best
 * effort, so the caller sees the original error.
 */
import type { AuditContext } from '../audit/chain.js';
import { recordAuditEvent } from '../audit/chain.js';
import { EhrError } from '../errors/index.js';
import type { Pool } from '../store/pool.js';

export interface UnwrapEvent {
  action: string;
  tenantId: string;
  audit: AuditContext;
  details: Record<string, unknown>;
}

export async function auditUnwrapped(pool: Pool, e: UnwrapEvent, raw: Buffer): Promise<void> {
  try {
    await recordAuditEvent(pool, {
      actor: e.audit.actor,
      action: e.action,
      outcome: 'success',
      tenantId: e.tenantId,
      correlationId: e.audit.correlationId,
      details: e.details,
    });
  } catch (err) {
    raw.fill(0);
    throw err;
  }
}

export async function auditUnwrapFailure(pool: Pool, e: UnwrapEvent, err: unknown): Promise<void> {
  const errorCode = err instanceof EhrError ? err.code : 'UNCLASSIFIED';
  await recordAuditEvent(pool, {
    actor: e.audit.actor,
    action: e.action,
    outcome: 'failure',
    tenantId: e.tenantId,
    correlationId: e.audit.correlationId,
    details: { ...e.details, errorCode },
  }).catch(() => undefined);
}
