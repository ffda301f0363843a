/**
 * What every key administration operation shares: its argument checks, the shape of its audit
 * events, and the failure event it leaves (best effort) when it is refused.
 */
import type { AuditContext, AuditEvent } from '../audit/chain.js';
import { recordAuditEvent } from '../audit/chain.js';
import { ID_PATTERN } from '../domain.js';
import { EhrError, InvalidArgumentError } from '../errors/index.js';
import type { Pool } from '../store/pool.js';

export function assertKekVersion(v: number): void {
  if (!Number.isInteger(v) || v < 1 || v > 0x7fffffff)
    throw new InvalidArgumentError('kekVersion', 'must be a positive integer');
}

export function assertTenantId(tenantId: string): void {
  if (typeof tenantId !== 'string' || !ID_PATTERN.test(tenantId))
    throw new InvalidArgumentError('tenantId', 'is not a valid tenant id');
}

export function assertAudit(ctx: AuditContext): void {
  if (
    !ctx ||
    typeof ctx.actor !== 'string' ||
    ctx.actor === '' ||
    typeof ctx.correlationId !== 'string' ||
    ctx.correlationId === ''
  ) {
    throw new InvalidArgumentError('audit context', 'needs an actor and a correlation id');
  }
}

export function adminEvent(ctx: AuditContext, action: string, details: Record<string, unknown>): AuditEvent {
  return { actor: ctx.actor, action, outcome: 'success', correlationId: ctx.correlationId, details };
}

/** Best effort: the original error is what the caller sees. */
export async function auditAdminFailure(
  pool: Pool,
  action: string,
  ctx: AuditContext,
  details: Record<string, unknown>,
  err: unknown,
  tenantId?: string,
): Promise<void> {
  if (!ctx?.actor || !ctx?.correlationId) return;
  const errorCode = err instanceof EhrError ? err.code : 'UNCLASSIFIED';
  const failure = {
    ...adminEvent(ctx, action, { ...details, errorCode }),
    outcome: 'failure' as const,
    tenantId: tenantId ?? null,
  };
  await recordAuditEvent(pool, failure).catch(() => undefined);
}
