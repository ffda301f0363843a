/**
 * The typed client side of the webhook delta sync: its workflow id, signal-with-start, and the
 * `pending` query. The webhook receiver, tests and ehrctl go through it.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import type {
  ChangeNotification,
  PendingNotifications,
  WebhookDeltaSyncInput,
} from '../workflows/webhook-delta-sync.js';
import { IntegrationIdKey, TenantIdKey, VendorKey, type SyncTarget } from './sync-client.js';

export function deltaSyncWorkflowId(t: Pick<SyncTarget, 'tenantId' | 'integrationId'>): string {
  return `webhook-sync/${t.tenantId}/${t.integrationId}`;
}

/** Starts the integration's delta-sync workflow if it is not running, and hands it the notification. */
export async function notifyDeltaSync(
  client: Client,
  taskQueue: string,
  target: SyncTarget,
  notification: ChangeNotification,
  options: { debounceSeconds?: number; maxBatchesPerRun?: number } = {},
): Promise<void> {
  const input: WebhookDeltaSyncInput = {
    tenantId: target.tenantId,
    integrationId: target.integrationId,
    vendor: target.vendor,
  };
  if (options.debounceSeconds !== undefined) input.debounceSeconds = options.debounceSeconds;
  if (options.maxBatchesPerRun !== undefined) input.maxBatchesPerRun = options.maxBatchesPerRun;
  await client.workflow.signalWithStart('webhookDeltaSync', {
    taskQueue,
    workflowId: deltaSyncWorkflowId(target),
    args: [input],
    signal: 'changeNotified',
    signalArgs: [notification],
    typedSearchAttributes: [
      { key: TenantIdKey, value: target.tenantId },
      { key: IntegrationIdKey, value: target.integrationId },
      { key: VendorKey, value: target.vendor },
    ],
  });
}

export async function pendingNotifications(handle: WorkflowHandle): Promise<PendingNotifications> {
  return handle.query<PendingNotifications>('pending');
}
