/**
 * The writeBack workflow's activities (workflows/write-back.ts): list an integration's pending changes, and
 * send one through the vendor door (lib/writeback/sender.ts). Results carry ids, element names, statuses and
 * codes only; the change's values stay encrypted in the outbox and travel only inside the activity.
 */
import { Context } from '@temporalio/activity';
import { PolicyViolationError } from '../lib/errors/index.js';
import type { SendResult } from '../lib/writeback/sender.js';
import { sendChange } from '../lib/writeback/sender.js';
import { getOutboxChange, pendingChangeIds } from '../lib/writeback/outbox-repository.js';
import { activityAuditContext } from './audit-context.js';
import type { WriteBackActivityDeps } from './deps.js';

export type { SendResult } from '../lib/writeback/sender.js';

export interface WriteBackScope {
  tenantId: string;
  integrationId: string;
}

export function createWriteBackActivities(deps: WriteBackActivityDeps) {
  return {
    /** The integration's pending change ids, oldest first. */
    async listPendingChanges(input: WriteBackScope & { limit: number }): Promise<string[]> {
      return pendingChangeIds(deps.pool, input.integrationId, input.limit);
    },

    /** Sends one change (or finds it held, or no longer pending). 429/5xx/network: thrown, retried. */
    async sendOutboxChange(input: WriteBackScope & { changeId: string }): Promise<SendResult> {
      const change = await getOutboxChange(deps.pool, input.changeId);
      if (change && (change.tenantId !== input.tenantId || change.integrationId !== input.integrationId))
        throw new PolicyViolationError('tenant-isolation', `change ${input.changeId} is not of this integration`);
      // Heartbeats while the vendor answers: a dead worker is noticed within the preset's heartbeat timeout and
      // the send is retried elsewhere (harmlessly: sender.ts), a slow vendor is not mistaken for one.
      const context = Context.current();
      context.heartbeat();
      const beat = setInterval(() => context.heartbeat(), 2_000);
      try {
        return await sendChange(deps, input.changeId, activityAuditContext());
      } finally {
        clearInterval(beat);
      }
    },
  };
}
