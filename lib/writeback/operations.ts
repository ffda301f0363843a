/**
 * What an operator does with outbox changes (`ehrctl writes`): retry a refused change (back to pending, then
 * the integration's writeBack workflow is woken) and cancel a pending or refused one. Each transition is audited
 * in its transaction; a change is never deleted. Ids and statuses only.
 */
import type { AuditContext } from '../audit/chain.js';
import { appendAuditEvents } from '../audit/chain.js';
import { NotFoundError, OutboxTransitionError } from '../errors/index.js';
import type { Pool } from '../store/pool.js';
import { withTransaction } from '../store/pool.js';
import type { OutboxNotifier } from './notifier.js';
import type { OutboxChange } from './outbox-repository.js';
import { cancelOutboxChange, getOutboxChange, retryRefusedChange } from './outbox-repository.js';

async function transition(
  pool: Pool,
  id: string,
  operation: 'retry' | 'cancel',
  audit: AuditContext,
): Promise<OutboxChange> {
  return withTransaction(pool, async (client) => {
    const before = await getOutboxChange(client, id);
    if (!before) throw new NotFoundError('outbox change', id);
    const moved = operation === 'retry' ? await retryRefusedChange(client, id) : await cancelOutboxChange(client, id);
    if (!moved) throw new OutboxTransitionError(id, before.status, operation);
    await appendAuditEvents(client, [
      {
        ...audit,
        action: operation === 'retry' ? 'writeback.retried' : 'writeback.cancelled',
        outcome: 'success',
        tenantId: before.tenantId,
        integrationId: before.integrationId,
        details: {
          changeId: id,
          from: before.status,
          resourceType: before.resourceType,
          resourceId: before.resourceId,
          ...(before.vendorStatus !== null ? { vendorStatus: before.vendorStatus } : {}),
          ...(before.vendorOutcomeCode !== null ? { outcomeCode: before.vendorOutcomeCode } : {}),
        },
      },
    ]);
    return (await getOutboxChange(client, id)) as OutboxChange;
  });
}

/** refused → pending, audited; then the writeBack workflow is woken (a lost wake-up loses nothing: it is pending). */
export async function retryChange(
  pool: Pool,
  notifier: OutboxNotifier,
  id: string,
  audit: AuditContext,
): Promise<OutboxChange> {
  const change = await transition(pool, id, 'retry', audit);
  await notifier.changesQueued(change);
  return change;
}

/** pending | refused → cancelled, audited. A change already on its way may still be sent (it is then `sent`). */
export async function cancelChange(pool: Pool, id: string, audit: AuditContext): Promise<OutboxChange> {
  return transition(pool, id, 'cancel', audit);
}
