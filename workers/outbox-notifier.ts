/**
 * The Temporal side of lib/writeback/notifier.ts: signal-with-start of the integration's writeBack workflow, so
 * a change queued while none runs starts one, and one queued while it drains wakes it.
 */
import type { Client } from '@temporalio/client';
import type { OutboxNotifier } from '../lib/writeback/notifier.js';
import { writeBackWorkflowId } from '../lib/writeback/notifier.js';
import { outboxChangedSignal, writeBack } from '../workflows/write-back.js';

export function temporalOutboxNotifier(client: Client, taskQueue: string): OutboxNotifier {
  return {
    async changesQueued(scope) {
      await client.workflow.signalWithStart(writeBack, {
        workflowId: writeBackWorkflowId(scope.integrationId),
        taskQueue,
        args: [{ tenantId: scope.tenantId, integrationId: scope.integrationId }],
        signal: outboxChangedSignal,
        signalArgs: [],
      });
    },
  };
}
