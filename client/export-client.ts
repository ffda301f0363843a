/**
 * Starting, scheduling and following batch exports (workflows/export.ts): workflow ids, search attributes
 * and schedule policies in one place for the CLI and the tests.
 */
import { randomBytes } from 'node:crypto';
import type { Client, ScheduleHandle, WorkflowHandle } from '@temporalio/client';
import { ScheduleOverlapPolicy, WorkflowIdReusePolicy } from '@temporalio/client';
import type { ExportInput, ExportProgress } from '../workflows/export-api.js';
import { TenantIdKey } from './sync-client.js';

/** `YYYYMMDD-HHMMSS-<8 hex>`: sortable, readable, unique per start. */
export function newExportJobId(now = new Date()): string {
  const t = now.toISOString().replace(/[-:]/g, '');
  return `${t.slice(0, 8)}-${t.slice(9, 15)}-${randomBytes(4).toString('hex')}`;
}

export function exportWorkflowId(tenantId: string, jobId: string): string {
  return `export/${tenantId}/${jobId}`;
}

export async function startExport(
  client: Client,
  taskQueue: string,
  input: ExportInput & { jobId: string },
): Promise<WorkflowHandle> {
  return client.workflow.start('batchExport', {
    taskQueue,
    workflowId: exportWorkflowId(input.tenantId, input.jobId),
    workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
    args: [input],
    typedSearchAttributes: [{ key: TenantIdKey, value: input.tenantId }],
  });
}

export async function exportProgress(handle: WorkflowHandle): Promise<ExportProgress> {
  return handle.query<ExportProgress>('exportProgress');
}

const WRITTEN: ReadonlySet<ExportProgress['phase']> = new Set(['retained', 'shred-deferred', 'shredded']);

/**
 * Waits until the files and the signed manifest are written (the workflow then waits out the retention
 * period, so its result comes days later). A failed export throws its WorkflowFailedError.
 */
export async function waitUntilWritten(handle: WorkflowHandle, pollMs = 500): Promise<ExportProgress> {
  for (;;) {
    const { status } = await handle.describe();
    if (status.name !== 'RUNNING') {
      await handle.result();
      return exportProgress(handle);
    }
    const progress = await exportProgress(handle).catch(() => undefined);
    if (progress && WRITTEN.has(progress.phase)) return progress;
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/**
 * A Schedule of exports for one tenant and purpose (`export/<tenant>/<purpose>`): overlap ALLOW_ALL, since
 * each run lives on through its retention period; one hour of catch-up after an outage.
 */
export async function scheduleExport(
  client: Client,
  taskQueue: string,
  input: Omit<ExportInput, 'jobId'>,
  at: { hours: number[]; minute: number; timezone: string },
): Promise<ScheduleHandle> {
  return client.schedule.create({
    scheduleId: `export/${input.tenantId}/${input.purpose}`,
    spec: { calendars: [{ hour: at.hours, minute: at.minute }], timezone: at.timezone },
    action: {
      type: 'startWorkflow',
      workflowType: 'batchExport',
      taskQueue,
      workflowId: `export/${input.tenantId}/scheduled-${input.purpose}`,
      args: [input],
      typedSearchAttributes: [{ key: TenantIdKey, value: input.tenantId }],
    },
    policies: { overlap: ScheduleOverlapPolicy.ALLOW_ALL, catchupWindow: '1 hour' },
    memo: { tenantId: input.tenantId, purpose: input.purpose },
  });
}
