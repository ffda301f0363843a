/** Waits until some worker polls a task queue (the server lists it as a poller). */
import { Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { InfrastructureUnavailableError } from '../lib/errors/index.js';
import { sleep } from './process.js';

export async function waitForWorkerPolling(
  address: string,
  namespace: string,
  taskQueue: string,
  options: { timeoutMs: number; abortIf?: () => string | undefined },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  const connection = await Connection.connect({ address, connectTimeout: '10s' });
  try {
    for (;;) {
      const aborted = options.abortIf?.();
      if (aborted)
        throw new InfrastructureUnavailableError(
          'temporal',
          address,
          `no worker on task queue ${taskQueue}: ${aborted}`,
        );
      const described = await connection.workflowService.describeTaskQueue({
        namespace,
        taskQueue: { name: taskQueue, kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
        taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
      });
      if ((described.pollers ?? []).length > 0) return;
      if (Date.now() >= deadline) {
        throw new InfrastructureUnavailableError(
          'temporal',
          address,
          `no worker polled task queue ${taskQueue} within ${Math.round(options.timeoutMs / 1000)} s`,
        );
      }
      await sleep(500);
    }
  } finally {
    await connection.close();
  }
}
