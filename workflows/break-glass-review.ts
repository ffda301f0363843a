/**
 * breakGlassReview (`break-glass/<grant id>`): started when a break-glass grant is made. It raises the alert at
 * once, then waits for a second person's review — the `review` update, whose validator refuses the requester
 * (four eyes), a second review, and malformed input. Not reviewed after `remindAfterSeconds`: a reminder; after
 * `escalateAfterSeconds`: an escalation (both durable timers, both log and alert hook). The recorded review
 * (row and audit event, written by an activity) completes the workflow. Its history carries ids, codes, the
 * reviewer's identity and note; the requester's reason stays in the database.
 */
import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  defineQuery,
  defineUpdate,
  log,
  proxyActivities,
  setHandler,
} from '@temporalio/workflow';
import type { BreakGlassActivities } from '../activities/index.js';
import type { BreakGlassReviewOutcome } from '../activities/break-glass.js';
import type { BreakGlassAlertEvent } from '../lib/gateway/break-glass-alerts.js';
import type { BreakGlassReview } from '../lib/gateway/break-glass.js';

export interface BreakGlassReviewInput {
  grantId: string;
  consumerId: string;
  requestedBy: string;
  reasonCode: string;
  /** EHR_BREAK_GLASS_REMIND_SECONDS / _ESCALATE_SECONDS when the grant was made (tests pass seconds). */
  remindAfterSeconds: number;
  escalateAfterSeconds: number;
}

export type BreakGlassReviewStatus = 'alerting' | 'awaiting-review' | 'reminded' | 'escalated' | 'reviewed';

export interface BreakGlassReviewState {
  grantId: string;
  status: BreakGlassReviewStatus;
  /** Alerts that went out (the hook took them or none is configured); a hook that kept failing is not listed. */
  alerts: BreakGlassAlertEvent[];
  review: BreakGlassReviewOutcome | null;
}

export const reviewUpdate = defineUpdate<BreakGlassReviewOutcome, [BreakGlassReview]>('review');
export const reviewStateQuery = defineQuery<BreakGlassReviewState>('reviewState');

const ACTOR = /^[A-Za-z0-9@._:+-]{1,128}$/;
const TEXT = /^[\x20-\x7e]{1,500}$/;

const store = proxyActivities<Pick<BreakGlassActivities, 'recordBreakGlassReview'>>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 10 },
});
/** A hook that is down is retried for several minutes (ten attempts); the log event went out on the first one. */
const alerts = proxyActivities<Pick<BreakGlassActivities, 'raiseBreakGlassAlert'>>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '2 minutes', maximumAttempts: 10 },
});

function invalid(message: string): never {
  throw ApplicationFailure.nonRetryable(message, 'INVALID_ARGUMENT');
}

export async function breakGlassReview(input: BreakGlassReviewInput): Promise<BreakGlassReviewOutcome> {
  // The reminder and escalation count from the start, which is when the grant was made.
  const startedMs = Date.now();
  const state: BreakGlassReviewState = { grantId: input.grantId, status: 'alerting', alerts: [], review: null };
  let recording = false;
  setHandler(reviewStateQuery, () => state);
  setHandler(
    reviewUpdate,
    async (r) => {
      recording = true;
      try {
        state.review = await store.recordBreakGlassReview(input.grantId, r);
        state.status = 'reviewed';
        return state.review;
      } finally {
        recording = false;
      }
    },
    {
      validator: (r) => {
        if (!ACTOR.test(r.by)) invalid('reviewer: expected an identity (letters, digits, @._:+-)');
        if (r.verdict !== 'appropriate' && r.verdict !== 'inappropriate')
          invalid('verdict: appropriate or inappropriate');
        if (!TEXT.test(r.note)) invalid('note: 1-500 printable ASCII characters (no patient data)');
        if (state.review) invalid(`break-glass ${input.grantId} was already reviewed by ${state.review.reviewedBy}`);
        if (recording) invalid(`another review of break-glass ${input.grantId} is being recorded`);
        // Four eyes: whoever broke the glass cannot also say it was appropriate.
        if (r.by === input.requestedBy)
          invalid(`break-glass ${input.grantId} must be reviewed by someone other than its requester (four eyes)`);
      },
    },
  );
  const reviewed = (): boolean => state.review !== null;
  const alert = async (event: BreakGlassAlertEvent): Promise<void> => {
    try {
      await alerts.raiseBreakGlassAlert(input.grantId, event);
      state.alerts.push(event);
    } catch {
      // The hook stayed down: the grant, its audit event and the log event stand; `access reviews` lists it.
      log.warn('break-glass alert hook gave up', { grantId: input.grantId, event });
    }
  };

  await alert('break-glass.granted');
  if (!reviewed()) state.status = 'awaiting-review';
  const remindMs = input.remindAfterSeconds * 1000;
  const escalateMs = Math.max(input.escalateAfterSeconds * 1000, remindMs + 1000);
  if (!(await condition(reviewed, Math.max(1, startedMs + remindMs - Date.now())))) {
    state.status = 'reminded';
    await alert('break-glass.review-reminder');
    if (!(await condition(reviewed, Math.max(1, startedMs + escalateMs - Date.now())))) {
      state.status = 'escalated';
      await alert('break-glass.review-escalated');
    }
  }
  await condition(reviewed);
  await condition(allHandlersFinished);
  return state.review!;
}
