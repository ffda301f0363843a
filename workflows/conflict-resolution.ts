/**
 * conflictResolution (`conflict-<id>`): one open reconciliation conflict waiting for a person. Started by
 * ConflictNotifier.conflictOpened when reconciliation or write-back opens it. It loads the conflict's reason and
 * element names (an activity; no values ever reach the history), then waits for the `resolve` update — whose
 * validator refuses a malformed argument, an element the conflict does not dispute, a partial `fields` that
 * leaves one undecided, and a second resolution. The update returns once the resolution is applied (an activity:
 * local copy, write-back change, audit event in one transaction), so the caller can say what happened. Not
 * resolved after EHR_CONFLICT_REMIND_SECONDS: a reminder; after EHR_CONFLICT_ESCALATE_SECONDS: an escalation
 * (durable timers counted from when the conflict was opened; each an audit event, a log event and the alert
 * hook). A query tells its state.
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
import type { ConflictActivities } from '../activities/index.js';
import type { ConflictAlertEvent } from '../lib/writeback/conflict-alerts.js';
import type { ResolutionOutcome } from '../lib/writeback/conflict-resolution.js';
import type { ResolveRequest } from './conflict-resolve-request.js';
import { checkResolveRequest } from './conflict-resolve-request.js';
import { alertHookPreset, conflictResolvePreset, storePreset } from './presets.js';

export interface ConflictResolutionInput {
  tenantId: string;
  integrationId: string;
  conflictId: string;
}

export type ConflictResolutionStatus = 'loading' | 'awaiting-resolution' | 'reminded' | 'escalated' | 'resolved';

export interface ConflictResolutionState {
  conflictId: string;
  status: ConflictResolutionStatus;
  reason: string | null;
  elements: string[];
  openedAt: string | null;
  /** Reminder and escalation, once raised (audit and log; the hook may still be retrying). */
  alerts: ConflictAlertEvent[];
  outcome: ResolutionOutcome | null;
}

export const resolveUpdate = defineUpdate<ResolutionOutcome, [ResolveRequest]>('resolve');
export const conflictStateQuery = defineQuery<ConflictResolutionState>('conflictState');

const store = proxyActivities<Pick<ConflictActivities, 'loadConflict' | 'noteConflictAlert'>>(storePreset);
const resolver = proxyActivities<Pick<ConflictActivities, 'resolveConflict'>>(conflictResolvePreset);
const hook = proxyActivities<Pick<ConflictActivities, 'postConflictAlert'>>(alertHookPreset);

function invalid(message: string): never {
  throw ApplicationFailure.nonRetryable(message, 'INVALID_ARGUMENT');
}

export async function conflictResolution(input: ConflictResolutionInput): Promise<ResolutionOutcome | null> {
  const { conflictId } = input;
  const state: ConflictResolutionState = {
    conflictId,
    status: 'loading',
    reason: null,
    elements: [],
    openedAt: null,
    alerts: [],
    outcome: null,
  };
  let applying = false;
  setHandler(conflictStateQuery, () => state);
  setHandler(
    resolveUpdate,
    async (request) => {
      applying = true;
      try {
        state.outcome = await resolver.resolveConflict(conflictId, request);
        state.status = 'resolved';
        return state.outcome;
      } finally {
        applying = false;
      }
    },
    {
      validator: (request) => {
        if (state.outcome) invalid(`conflict ${conflictId} was already resolved by ${state.outcome.resolvedBy}`);
        if (applying) invalid(`another resolution of conflict ${conflictId} is being applied`);
        if (state.reason === null) invalid(`conflict ${conflictId} is still loading; try again in a moment`);
        const check = checkResolveRequest(request, { reason: state.reason, elements: state.elements });
        if (!check.ok) invalid(check.problem);
      },
    },
  );

  const facts = await store.loadConflict(conflictId);
  state.reason = facts.reason;
  state.elements = facts.elements;
  state.openedAt = facts.openedAt;
  if (facts.status !== 'open') {
    // Settled before this workflow ran (a restarted workflow, a conflict cancelled): nothing to wait for.
    state.status = 'resolved';
    return null;
  }
  state.status = 'awaiting-resolution';
  const resolved = (): boolean => state.outcome !== null;
  const alert = async (event: ConflictAlertEvent): Promise<void> => {
    await store.noteConflictAlert(conflictId, event);
    state.alerts.push(event);
    try {
      await hook.postConflictAlert(conflictId, event);
    } catch {
      // The hook stayed down: the audit event and the log event went out; `reconcile conflicts` lists it.
      log.warn('conflict alert hook gave up', { conflictId, event });
    }
  };
  const openedMs = Date.parse(facts.openedAt);
  const remindMs = facts.remindAfterSeconds * 1000;
  const escalateMs = facts.escalateAfterSeconds * 1000;
  if (!(await condition(resolved, Math.max(1, openedMs + remindMs - Date.now())))) {
    state.status = 'reminded';
    await alert('reconcile.conflict-reminder');
    if (!(await condition(resolved, Math.max(1, openedMs + escalateMs - Date.now())))) {
      state.status = 'escalated';
      await alert('reconcile.conflict-escalated');
    }
  }
  await condition(resolved);
  await condition(allHandlersFinished);
  return state.outcome;
}
