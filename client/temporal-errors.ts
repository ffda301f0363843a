/**
 * Temporal's "no such workflow / schedule" in the product's terms, in one place for every ehrctl
 * command: NotFoundError (exit 3, README) naming the id, or ConflictError when the workflow exists but
 * has already closed (a signal or update to a finished run). Anything else passes through unchanged.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { ScheduleNotFoundError, WorkflowNotFoundError, isGrpcServiceError } from '@temporalio/client';
import { ConflictError, NotFoundError } from '../lib/errors/index.js';

const GRPC_NOT_FOUND = 5;
const INCIDENT_PREFIX = 'incident/';

export function fromTemporalError(err: unknown): unknown {
  if (err instanceof WorkflowNotFoundError) {
    const finished = /already completed/i.test(err.message);
    if (finished) return new ConflictError('workflow', err.workflowId, 'has already completed');
    return err.workflowId.startsWith(INCIDENT_PREFIX)
      ? new NotFoundError('incident', err.workflowId.slice(INCIDENT_PREFIX.length))
      : new NotFoundError('workflow', err.workflowId);
  }
  if (err instanceof ScheduleNotFoundError) return new NotFoundError('schedule', err.scheduleId);
  return err;
}

/**
 * A workflow's history as stored. The SDK's `fetchHistory` passes a gRPC NOT_FOUND through raw,
 * without the workflow id; this names it, so fromTemporalError can say which.
 */
export async function fetchWorkflowHistory(handle: WorkflowHandle): ReturnType<WorkflowHandle['fetchHistory']> {
  try {
    return await handle.fetchHistory();
  } catch (err) {
    if (isGrpcServiceError(err) && err.code === GRPC_NOT_FOUND) {
      throw new WorkflowNotFoundError(err.details || 'workflow not found', handle.workflowId, undefined);
    }
    throw err;
  }
}
