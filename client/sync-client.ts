/**
 * The small typed client API for syncs: start, schedule, signal, query. The CLI, the demo, tests and
 * benchmarks all go through it, so workflow ids, search attributes and schedule policies are
 * decided in one place.
 */
import type { Client, ScheduleHandle, WorkflowHandle, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { ScheduleOverlapPolicy, WorkflowIdReusePolicy } from '@temporalio/client';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { NightlySyncInput, SyncProgress, SyncReport } from '../workflows/nightly-sync.js';
import { SEARCH_ATTRIBUTES, scheduleIdFor } from '../lib/domain.js';

export const TenantIdKey = defineSearchAttributeKey(SEARCH_ATTRIBUTES.tenantId, SearchAttributeType.KEYWORD);
export const IntegrationIdKey = defineSearchAttributeKey(SEARCH_ATTRIBUTES.integrationId, SearchAttributeType.KEYWORD);
export const VendorKey = defineSearchAttributeKey(SEARCH_ATTRIBUTES.vendor, SearchAttributeType.KEYWORD);

export interface SyncTarget {
  tenantId: string;
  integrationId: string;
  vendor: string;
}

function searchAttributesFor(t: SyncTarget) {
  return [
    { key: TenantIdKey, value: t.tenantId },
    { key: IntegrationIdKey, value: t.integrationId },
    { key: VendorKey, value: t.vendor },
  ];
}

/**
 * `sync/<tenant>/<integration>/<UTC date and time, ms>`: readable in the Web UI, and unique per start
 * (two operators starting a sync in the same second get two runs, not an "already started" error).
 */
export function manualSyncWorkflowId(t: SyncTarget, now = new Date()): string {
  return `sync/${t.tenantId}/${t.integrationId}/${now.toISOString()}`;
}

export async function startSync(
  client: Client,
  taskQueue: string,
  target: SyncTarget,
  options: {
    full?: boolean;
    historyEventLimit?: number;
    workflowId?: string;
    pageHeartbeatTimeoutSeconds?: number;
  } = {},
): Promise<WorkflowHandleWithFirstExecutionRunId> {
  const input: NightlySyncInput = {
    tenantId: target.tenantId,
    integrationId: target.integrationId,
    full: options.full ?? false,
  };
  if (options.historyEventLimit !== undefined) input.historyEventLimit = options.historyEventLimit;
  if (options.pageHeartbeatTimeoutSeconds !== undefined)
    input.pageHeartbeatTimeoutSeconds = options.pageHeartbeatTimeoutSeconds;
  return client.workflow.start('nightlySync', {
    taskQueue,
    workflowId: options.workflowId ?? manualSyncWorkflowId(target),
    workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
    args: [input],
    typedSearchAttributes: searchAttributesFor(target),
  });
}

export async function syncProgress(handle: WorkflowHandle): Promise<SyncProgress> {
  return handle.query<SyncProgress>('progress');
}

export async function syncResult(handle: WorkflowHandle): Promise<SyncReport> {
  return (await handle.result()) as SyncReport;
}

/**
 * A nightly Schedule: overlap SKIP (a slow night never stacks runs), one hour of catch-up after an outage.
 * `everyHours` (a divisor of 24, default 24) runs it more often, at `at` and every that many hours
 * after it in local time: the compensating control for vendors that cannot push changes.
 */
export async function scheduleNightlySync(
  client: Client,
  taskQueue: string,
  target: SyncTarget,
  at: { hour: number; minute: number; timezone: string; everyHours?: number },
): Promise<ScheduleHandle> {
  const input: NightlySyncInput = { tenantId: target.tenantId, integrationId: target.integrationId };
  const every = at.everyHours ?? 24;
  const hours = Array.from({ length: Math.max(1, Math.floor(24 / every)) }, (_, k) => (at.hour + k * every) % 24).sort(
    (a, b) => a - b,
  );
  return client.schedule.create({
    scheduleId: scheduleIdFor(target),
    spec: { calendars: [{ hour: hours, minute: at.minute }], timezone: at.timezone },
    action: {
      type: 'startWorkflow',
      workflowType: 'nightlySync',
      taskQueue,
      workflowId: `sync/${target.tenantId}/${target.integrationId}/nightly`,
      args: [input],
      typedSearchAttributes: searchAttributesFor(target),
    },
    policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour' },
    memo: { tenantId: target.tenantId, integrationId: target.integrationId },
  });
}
