/**
 * Break-glass review activities (workflows/break-glass-review.ts): raise an alert (structured log event and the
 * alert hook) and record the review. Idempotent: a retried alert records its reminder or escalation once, a
 * retried review finds its own committed row. They return ids, codes and times only.
 */
import { Context, log } from '@temporalio/activity';
import {
  REVOKED_BY_REVIEW,
  getBreakGlassGrant,
  recordBreakGlassAlert,
  recordBreakGlassReview,
} from '../lib/gateway/break-glass.js';
import type { BreakGlassReview } from '../lib/gateway/break-glass.js';
import type { BreakGlassAlertEvent } from '../lib/gateway/break-glass-alerts.js';
import { breakGlassAlert, postBreakGlassAlert } from '../lib/gateway/break-glass-alerts.js';
import { activityAuditContext } from './audit-context.js';
import type { BreakGlassActivityDeps } from './deps.js';

export interface BreakGlassAlertResult {
  event: BreakGlassAlertEvent;
  /** Whether the alert hook took it (false: no hook is configured). */
  hook: boolean;
}

export interface BreakGlassReviewOutcome {
  grantId: string;
  verdict: BreakGlassReview['verdict'];
  reviewedBy: string;
  reviewedAt: string;
  /** The review revoked a grant that was still in force (an inappropriate verdict). */
  revoked: boolean;
}

const LOG_MESSAGES: Record<BreakGlassAlertEvent, string> = {
  'break-glass.granted': 'break-glass access granted',
  'break-glass.review-reminder': 'break-glass access still awaits its review',
  'break-glass.review-escalated': 'break-glass access not reviewed in time: escalated',
};

export function createBreakGlassActivities(deps: BreakGlassActivityDeps) {
  return {
    async raiseBreakGlassAlert(grantId: string, event: BreakGlassAlertEvent): Promise<BreakGlassAlertResult> {
      const grant = await getBreakGlassGrant(deps.pool, grantId);
      const now = new Date();
      if (event !== 'break-glass.granted') {
        const kind = event === 'break-glass.review-reminder' ? 'reminder' : 'escalation';
        await recordBreakGlassAlert(deps.pool, grantId, kind, activityAuditContext(), now);
      }
      const alert = breakGlassAlert(event, grant, now);
      const attempt = Context.current().info.attempt;
      // The log event goes out on the first attempt, before the hook is tried: a hook that is down delays nothing.
      if (attempt === 1) log.warn(LOG_MESSAGES[event], { ...alert, alertHook: deps.alertHookRef !== undefined });
      try {
        return { event, hook: await postBreakGlassAlert(alert, { ref: deps.alertHookRef }) };
      } catch (err) {
        const failed = { event: 'break-glass.alert-hook-failed', alert: event, grantId, attempt };
        log.warn('break-glass alert hook failed', { ...failed, error: (err as Error).message });
        throw err;
      }
    },

    async recordBreakGlassReview(grantId: string, review: BreakGlassReview): Promise<BreakGlassReviewOutcome> {
      const after = await recordBreakGlassReview(deps.pool, grantId, review, activityAuditContext());
      log.info('break-glass access reviewed', { event: 'break-glass.reviewed', grantId, verdict: after.reviewVerdict });
      return {
        grantId,
        verdict: after.reviewVerdict!,
        reviewedBy: after.reviewedBy!,
        reviewedAt: after.reviewedAt!.toISOString(),
        revoked: after.revokedBy === review.by && after.revokeReason === REVOKED_BY_REVIEW,
      };
    },
  };
}
