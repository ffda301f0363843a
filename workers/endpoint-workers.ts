/**
 * Serves the activity task queue of every rate-limited vendor endpoint (lib/vendors/endpoint-queues.ts)
 * with an activity-only Worker whose `maxTaskQueueActivitiesPerSecond` is the endpoint's rate: the
 * Temporal server enforces it across every worker polling that queue. Endpoints are discovered from
 * the integrations table at start and re-checked periodically (new integrations); `stop()` drains them.
 */
import type { NativeConnection } from '@temporalio/worker';
import { Worker } from '@temporalio/worker';
import type { DataConverter } from '@temporalio/common';
import { activeEndpoints } from '../lib/integrations/repository.js';
import type { Logger } from '../lib/log/logger.js';
import type { Queryable } from '../lib/store/pool.js';
import type { EndpointQueue, EndpointQueuePolicy } from '../lib/vendors/endpoint-queues.js';
import { endpointQueuesFor } from '../lib/vendors/endpoint-queues.js';
import { HEARTBEAT_THROTTLE } from './worker-activities.js';

export interface EndpointWorkersOptions {
  connection: NativeConnection;
  namespace?: string;
  policy: EndpointQueuePolicy;
  db: Queryable;
  activities: object;
  dataConverter?: DataConverter;
  maxConcurrentActivityTaskExecutions: number;
  shutdownGraceTime?: number;
  recheckMs: number;
  logger?: Logger;
}

export class EndpointWorkers {
  private readonly running = new Map<string, { worker: Worker; done: Promise<void> }>();
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> = Promise.resolve();
  private stopped = false;

  private constructor(private readonly opts: EndpointWorkersOptions) {}

  static async start(opts: EndpointWorkersOptions): Promise<EndpointWorkers> {
    const workers = new EndpointWorkers(opts);
    await workers.refresh();
    workers.timer = setInterval(() => void workers.refresh(), opts.recheckMs);
    workers.timer.unref();
    return workers;
  }

  /** The queues being served now (for logs and tests). */
  queues(): string[] {
    return [...this.running.keys()];
  }

  /** Starts a worker for every rate-limited endpoint not served yet. Serialised; errors are logged, not thrown. */
  refresh(): Promise<void> {
    this.refreshing = this.refreshing.then(async () => {
      if (this.stopped) return;
      try {
        const wanted = endpointQueuesFor(this.opts.policy, await activeEndpoints(this.opts.db));
        for (const q of wanted) if (!this.running.has(q.taskQueue)) await this.serve(q);
      } catch (err) {
        this.opts.logger?.error({ err }, 'endpoint queue discovery failed; retrying at the next check');
      }
    });
    return this.refreshing;
  }

  private async serve(q: EndpointQueue): Promise<void> {
    const worker = await Worker.create({
      connection: this.opts.connection,
      namespace: this.opts.namespace ?? 'default',
      taskQueue: q.taskQueue,
      activities: this.opts.activities,
      ...(this.opts.dataConverter ? { dataConverter: this.opts.dataConverter } : {}),
      maxTaskQueueActivitiesPerSecond: q.activitiesPerSecond,
      maxConcurrentActivityTaskExecutions: this.opts.maxConcurrentActivityTaskExecutions,
      maxHeartbeatThrottleInterval: HEARTBEAT_THROTTLE,
      ...(this.opts.shutdownGraceTime !== undefined ? { shutdownGraceTime: this.opts.shutdownGraceTime } : {}),
    });
    // A clean stop only follows a shutdown (stop(), or the runtime's SIGTERM/SIGINT drain): it stays
    // listed so a check during the drain does not start it again. A failed worker is forgotten, so
    // the next check restarts it.
    const done = worker.run().then(
      () => undefined,
      (err: unknown) => {
        this.opts.logger?.error(
          { err, taskQueue: q.taskQueue },
          'endpoint queue worker failed; it is restarted at the next check',
        );
        if (!this.stopped) this.running.delete(q.taskQueue);
      },
    );
    this.running.set(q.taskQueue, { worker, done });
    this.opts.logger?.info(
      { taskQueue: q.taskQueue, vendor: q.vendor, activitiesPerSecond: q.activitiesPerSecond },
      'serving vendor endpoint queue',
    );
  }

  /** Stops discovery and drains every endpoint worker (in-flight activities finish within the grace time). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.refreshing;
    const all = [...this.running.values()];
    for (const { worker } of all) {
      if (worker.getState() === 'RUNNING') worker.shutdown();
    }
    await Promise.all(all.map((r) => r.done));
    this.running.clear();
  }
}
