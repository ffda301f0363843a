/**
 * Conflicts as ehrctl (and tests) drive them: the conflictResolution workflow's state (query) and the `resolve`
 * update, which returns once the resolution is applied. A resolution the workflow refuses (an unknown element, a
 * partial decision, a second resolution) is audited as refused and comes back as a usage error.
 */
import type { Client } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError, WorkflowUpdateFailedError } from '@temporalio/client';
import type { AuditContext } from '../lib/audit/chain.js';
import { recordAuditEvent } from '../lib/audit/chain.js';
import { ConflictError, InvalidArgumentError, NotFoundError } from '../lib/errors/index.js';
import type { Pool } from '../lib/store/pool.js';
import { getConflict } from '../lib/writeback/conflict-repository.js';
import type { ResolutionOutcome } from '../lib/writeback/conflict-resolution.js';
import { conflictWorkflowId } from '../lib/writeback/notifier.js';
import type { ResolveRequest } from '../workflows/conflict-resolve-request.js';
import type { ConflictResolutionInput, ConflictResolutionState } from '../workflows/conflict-resolution.js';

export async function conflictState(temporal: Client, conflictId: string): Promise<ConflictResolutionState> {
  return temporal.workflow.getHandle(conflictWorkflowId(conflictId)).query<ConflictResolutionState>('conflictState');
}

/**
 * Starts an open conflict's workflow when it is not running (its start after the conflict was opened failed, or it
 * was terminated): the same start as ConflictNotifier.conflictOpened, so a running one stands.
 */
async function ensureConflictWorkflow(temporal: Client, taskQueue: string, input: ConflictResolutionInput) {
  try {
    await temporal.workflow.start('conflictResolution', {
      workflowId: conflictWorkflowId(input.conflictId),
      taskQueue,
      args: [input],
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
}

/**
 * Sends the resolution to the conflict's workflow; its validator decides whether it counts. With `taskQueue`, an
 * open conflict whose workflow is not running gets it started first.
 */
export async function resolveConflict(
  pool: Pool,
  temporal: Client,
  conflictId: string,
  request: ResolveRequest,
  audit: AuditContext,
  opts: { taskQueue?: string } = {},
): Promise<ResolutionOutcome> {
  const conflict = await getConflict(pool, conflictId);
  if (!conflict) throw new NotFoundError('conflict', conflictId);
  const refused = (problem: string) =>
    recordAuditEvent(pool, {
      ...audit,
      action: 'reconcile.conflict_resolve_refused',
      outcome: 'failure',
      tenantId: conflict.tenantId,
      integrationId: conflict.integrationId,
      details: { conflictId, by: request.by, problem: problem.slice(0, 300) },
    });
  // A resolved conflict's workflow has completed: say so plainly rather than as a workflow error.
  if (conflict.status !== 'open') {
    const detail = conflict.resolvedBy ? `was already resolved by ${conflict.resolvedBy}` : `is ${conflict.status}`;
    await refused(detail);
    throw new ConflictError('conflict', conflictId, detail);
  }
  if (opts.taskQueue !== undefined)
    await ensureConflictWorkflow(temporal, opts.taskQueue, {
      tenantId: conflict.tenantId,
      integrationId: conflict.integrationId,
      conflictId,
    });
  // The workflow loads the conflict first (one activity); wait for it rather than be refused for it.
  for (let i = 0; i < 50 && (await conflictState(temporal, conflictId)).status === 'loading'; i++)
    await new Promise((resolve) => setTimeout(resolve, 200));
  const handle = temporal.workflow.getHandle(conflictWorkflowId(conflictId));
  try {
    return await handle.executeUpdate<ResolutionOutcome, [ResolveRequest]>('resolve', { args: [request] });
  } catch (err) {
    if (!(err instanceof WorkflowUpdateFailedError) || !err.cause) throw err;
    // A validator's refusal is the cause; an activity's (the resolution could not be applied) is the cause's cause.
    const inner: unknown = err.cause.cause;
    const problem = inner instanceof Error ? inner.message : err.cause.message;
    await refused(problem);
    throw new InvalidArgumentError('reconcile resolve', problem);
  }
}
