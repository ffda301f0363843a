/**
 * Why a sync failed, in the product's terms: the root cause's stable error code (the ApplicationFailure
 * type an activity raised from lib/errors) and its message, walked down from Temporal's WorkflowFailedError
 * (workflow → activity or child workflow → the application failure). A workflow terminated, cancelled or
 * timed out has no application cause: its code says which.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure, TerminatedFailure, TimeoutFailure } from '@temporalio/common';
import { exitCodeForCode } from '../lib/errors/exit-codes.js';

export interface SyncFailure {
  /** The workflow's state: failed, terminated, cancelled or timed-out. */
  status: string;
  code: string;
  message: string;
  exitCode: number;
}

const CLOSED_UNSUCCESSFULLY: Record<string, string> = {
  FAILED: 'failed',
  TERMINATED: 'terminated',
  CANCELLED: 'cancelled',
  TIMED_OUT: 'timed-out',
};

function describeCause(err: unknown): { code: string; message: string } {
  let deepest: ApplicationFailure | undefined;
  let last: unknown = err;
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 20; e = e.cause, depth++) {
    if (e instanceof ApplicationFailure) deepest = e;
    last = e;
  }
  if (deepest) return { code: deepest.type ?? 'WORKFLOW_FAILED', message: deepest.message };
  if (last instanceof TerminatedFailure) return { code: 'WORKFLOW_TERMINATED', message: last.message };
  if (last instanceof CancelledFailure) return { code: 'WORKFLOW_CANCELLED', message: last.message };
  if (last instanceof TimeoutFailure) return { code: 'WORKFLOW_TIMED_OUT', message: last.message };
  return { code: 'WORKFLOW_FAILED', message: last instanceof Error ? last.message : String(last) };
}

/** The failure behind a WorkflowFailedError (anything else: undefined, so the caller rethrows it). */
export function syncFailureOf(err: unknown, status = 'failed'): SyncFailure | undefined {
  if (!(err instanceof WorkflowFailedError)) return undefined;
  const cause = describeCause(err.cause ?? err);
  const closed =
    err.cause instanceof TerminatedFailure
      ? 'terminated'
      : err.cause instanceof CancelledFailure
        ? 'cancelled'
        : err.cause instanceof TimeoutFailure
          ? 'timed-out'
          : status;
  return { status: closed, ...cause, exitCode: exitCodeForCode(cause.code) };
}

/** A closed, unsuccessful sync's failure; undefined while it runs or once it completed. */
export async function closedSyncFailure(handle: WorkflowHandle): Promise<SyncFailure | undefined> {
  const { status } = await handle.describe();
  const closed = CLOSED_UNSUCCESSFULLY[status.name];
  if (!closed) return undefined;
  try {
    await handle.result();
  } catch (err) {
    return syncFailureOf(err, closed) ?? { status: closed, ...describeCause(err), exitCode: 1 };
  }
  return undefined;
}

export function failureLine(workflowId: string, f: SyncFailure): string {
  return `sync ${workflowId}: ${f.status} — ${f.code}: ${f.message}`;
}
