/**
 * The Temporal side of lib/writeback/notifier.ts: signal-with-start of the integration's writeBack workflow, so
 * a change queued while none runs starts one, and one queued while it drains wakes it; and the start of an
 * opened conflict's conflictResolution workflow.
 */
import type { Client } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { ConflictNotifier, OutboxNotifier } from '../lib/writeback/notifier.js';
import { conflictWorkflowId, writeBackWorkflowId } from '../lib/writeback/notifier.js';
import { conflictResolution } from '../workflows/conflict-resolution.js';
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

export function temporalConflictNotifier(client: Client, taskQueue: string): ConflictNotifier {
  return {
    async conflictOpened(c) {
      try {
        await client.workflow.start(conflictResolution, {
          workflowId: conflictWorkflowId(c.conflictId),
          taskQueue,
          args: [{ tenantId: c.tenantId, integrationId: c.integrationId, conflictId: c.conflictId }],
        });
      } catch (err) {
        // Opened twice (a retried activity): the first start stands.
        if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      }
    },
  };
}
