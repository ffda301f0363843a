/**
 * Break-glass as ehrctl (and tests) drive it: record the grant, then start its review workflow at once; send a
 * review as the workflow's `review` update. A review the workflow refuses (the requester reviewing their own
 * grant, a second review) is audited as refused and comes back as a usage error.
 */
import type { Client } from '@temporalio/client';
import { WorkflowIdReusePolicy, WorkflowUpdateFailedError } from '@temporalio/client';
import type { AuditContext } from '../lib/audit/chain.js';
import { recordAuditEvent } from '../lib/audit/chain.js';
import type { Config } from '../lib/config/schema.js';
import { ConfigError, ConflictError, InvalidArgumentError } from '../lib/errors/index.js';
import type { BreakGlassRecord, BreakGlassRequest, BreakGlassReview } from '../lib/gateway/break-glass.js';
import {
  breakGlassWorkflowId,
  getBreakGlassGrant,
  recordBreakGlassGrant,
  revokeBreakGlassGrant,
} from '../lib/gateway/break-glass.js';
import type { Pool } from '../lib/store/pool.js';
import type { BreakGlassReviewOutcome } from '../activities/break-glass.js';
import type { BreakGlassReviewInput, BreakGlassReviewState } from '../workflows/break-glass-review.js';

export type BreakGlassSettings = Pick<
  Config,
  | 'TEMPORAL_TASK_QUEUE'
  | 'EHR_BREAK_GLASS_MAX_MINUTES'
  | 'EHR_BREAK_GLASS_REMIND_SECONDS'
  | 'EHR_BREAK_GLASS_ESCALATE_SECONDS'
>;

/**
 * Records the grant (audited) and starts `break-glass/<id>`, which raises the alert. A grant whose review could not
 * be started is revoked again (audited) before the error is thrown: no break-glass goes unreviewed.
 */
export async function requestBreakGlass(
  pool: Pool,
  temporal: Client,
  settings: BreakGlassSettings,
  req: BreakGlassRequest,
  audit: AuditContext,
): Promise<BreakGlassRecord> {
  if (settings.EHR_BREAK_GLASS_ESCALATE_SECONDS <= settings.EHR_BREAK_GLASS_REMIND_SECONDS)
    throw new ConfigError('EHR_BREAK_GLASS_ESCALATE_SECONDS', 'must be longer than EHR_BREAK_GLASS_REMIND_SECONDS');
  const grant = await recordBreakGlassGrant(pool, req, { maxMinutes: settings.EHR_BREAK_GLASS_MAX_MINUTES, audit });
  const input: BreakGlassReviewInput = {
    grantId: grant.id,
    consumerId: grant.consumerId,
    requestedBy: grant.requestedBy,
    reasonCode: grant.reasonCode,
    remindAfterSeconds: settings.EHR_BREAK_GLASS_REMIND_SECONDS,
    escalateAfterSeconds: settings.EHR_BREAK_GLASS_ESCALATE_SECONDS,
  };
  try {
    await temporal.workflow.start('breakGlassReview', {
      workflowId: grant.reviewWorkflowId,
      taskQueue: settings.TEMPORAL_TASK_QUEUE,
      args: [input],
      workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
    });
  } catch (err) {
    await revokeBreakGlassGrant(pool, grant.id, {
      by: grant.requestedBy,
      reason: 'its review workflow could not be started',
      audit,
    }).catch(() => undefined);
    throw err;
  }
  return grant;
}

/** Sends the review; the workflow's validator decides whether it counts. */
export async function reviewBreakGlass(
  pool: Pool,
  temporal: Client,
  grantId: string,
  review: BreakGlassReview,
  audit: AuditContext,
): Promise<BreakGlassReviewOutcome> {
  const grant = await getBreakGlassGrant(pool, grantId);
  const refused = () =>
    recordAuditEvent(pool, {
      ...audit,
      action: 'break_glass.review_refused',
      outcome: 'failure',
      details: {
        grantId: grant.id,
        consumerId: grant.consumerId,
        reviewer: review.by,
        requestedBy: grant.requestedBy,
        fourEyes: review.by === grant.requestedBy,
      },
    });
  // A reviewed grant's workflow has completed: say so plainly rather than as a workflow error.
  if (grant.reviewedBy !== null) {
    await refused();
    throw new ConflictError('break-glass grant', grant.id, `was already reviewed by ${grant.reviewedBy}`);
  }
  const handle = temporal.workflow.getHandle(breakGlassWorkflowId(grant.id));
  try {
    return await handle.executeUpdate<BreakGlassReviewOutcome, [BreakGlassReview]>('review', { args: [review] });
  } catch (err) {
    if (!(err instanceof WorkflowUpdateFailedError) || !err.cause) throw err;
    await refused();
    throw new InvalidArgumentError('access review', err.cause.message);
  }
}

/** The review workflow's own view (status, alerts that went out, the review). */
export async function breakGlassReviewState(temporal: Client, grantId: string): Promise<BreakGlassReviewState> {
  return temporal.workflow.getHandle(breakGlassWorkflowId(grantId)).query<BreakGlassReviewState>('reviewState');
}
