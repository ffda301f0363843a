/**
 * The typed client API for reconciliation runs: start, schedule, progress. The CLI, tests and the benchmark go
 * through it, so workflow ids and schedule policies are decided in one place.
 */
import type { Client, ScheduleHandle, WorkflowHandle, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { ScheduleOverlapPolicy, WorkflowIdReusePolicy } from '@temporalio/client';
import { reconcileScheduleIdFor } from '../lib/domain.js';
import { IntegrationIdKey, TenantIdKey } from './sync-client.js';
import type { ReconcileInput, ReconcileProgress, ReconcileReport, reconcile } from '../workflows/reconcile.js';

export interface ReconcileTarget {
  tenantId: string;
  integrationId: string;
}

/** TenantId and IntegrationId: so containment finds (and cancels) a run in its scope, and the Web UI lists it. */
function searchAttributesFor(t: ReconcileTarget) {
  return [
    { key: TenantIdKey, value: t.tenantId },
    { key: IntegrationIdKey, value: t.integrationId },
  ];
}

/** `reconcile/<tenant>/<integration>/<UTC time, ms>`: also the run's id in reconcile_runs and the report. */
export function reconcileWorkflowId(t: ReconcileTarget, now = new Date()): string {
  return `reconcile/${t.tenantId}/${t.integrationId}/${now.toISOString()}`;
}

export function reconcileScheduleId(t: ReconcileTarget): string {
  return reconcileScheduleIdFor(t);
}

export async function startReconcile(
  client: Client,
  taskQueue: string,
  target: ReconcileTarget,
  options: { types?: string[]; historyEventLimit?: number; workflowId?: string } = {},
): Promise<WorkflowHandleWithFirstExecutionRunId<typeof reconcile>> {
  const input: ReconcileInput = { tenantId: target.tenantId, integrationId: target.integrationId };
  if (options.types?.length) input.types = options.types;
  if (options.historyEventLimit !== undefined) input.historyEventLimit = options.historyEventLimit;
  return client.workflow.start<typeof reconcile>('reconcile', {
    taskQueue,
    workflowId: options.workflowId ?? reconcileWorkflowId(target),
    workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
    args: [input],
    typedSearchAttributes: searchAttributesFor(target),
  });
}

export async function reconcileProgress(handle: WorkflowHandle): Promise<ReconcileProgress> {
  return handle.query<ReconcileProgress>('progress');
}

export type { ReconcileProgress, ReconcileReport };

/**
 * A daily (or every `everyHours`) reconciliation Schedule: overlap SKIP (a slow run never stacks), one hour of
 * catch-up. Temporal appends the scheduled time to the workflow id, so each run has its own id (and report).
 */
export async function scheduleReconcile(
  client: Client,
  taskQueue: string,
  target: ReconcileTarget,
  at: { hour: number; minute: number; timezone: string; everyHours?: number; types?: string[] },
): Promise<ScheduleHandle> {
  const input: ReconcileInput = { tenantId: target.tenantId, integrationId: target.integrationId };
  if (at.types?.length) input.types = at.types;
  const every = at.everyHours ?? 24;
  const hours = Array.from({ length: Math.max(1, Math.floor(24 / every)) }, (_, k) => (at.hour + k * every) % 24).sort(
    (a, b) => a - b,
  );
  return client.schedule.create({
    scheduleId: reconcileScheduleId(target),
    spec: { calendars: [{ hour: hours, minute: at.minute }], timezone: at.timezone },
    action: {
      type: 'startWorkflow',
      workflowType: 'reconcile',
      taskQueue,
      workflowId: `reconcile/${target.tenantId}/${target.integrationId}/scheduled`,
      args: [input],
      typedSearchAttributes: searchAttributesFor(target),
    },
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour' },
    memo: { tenantId: target.tenantId, integrationId: target.integrationId },
  });
}
