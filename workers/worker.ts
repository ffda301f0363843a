/**
 * The worker process. Configuration comes only from the environment (lib/config/schema.ts) and is
 * validated before anything starts. SIGINT/SIGTERM drain in-flight activities, then exit 0.
 */
import os from 'node:os';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { Config } from '../lib/config/schema.js';
import { loadConfig } from '../lib/config/schema.js';
import { exitCodeForError } from '../lib/errors/exit-codes.js';
import { EhrError, InfrastructureUnavailableError } from '../lib/errors/index.js';
import { createLogger } from '../lib/log/logger.js';
import { buildWorkerDeps } from './build-deps.js';
import { HEARTBEAT_THROTTLE, createWorkerActivities } from './worker-activities.js';
import { incidentTaskQueue } from '../lib/domain.js';
import { CheckpointScheduler } from '../lib/audit/checkpoint-scheduler.js';
import { FileAuditAnchor } from '../lib/audit/anchor.js';
import { createPayloadCodec } from '../lib/crypto/payload-codec.js';
import { openPurposeKeys } from '../lib/keys/open-purpose-keys.js';
import { installTemporalLogging } from './temporal-logging.js';
import { EndpointWorkers } from './endpoint-workers.js';
import { startJwksServer } from './jwks-server.js';
import { publishedSigningKeys } from '../lib/keys/signing-key-repository.js';
import { WORKFLOWS_PATH, bundleWorkflowsApart } from './workflow-bundle.js';

export async function runWorker(config: Config): Promise<void> {
  const logger = createLogger({ level: config.LOG_LEVEL, name: 'worker' });
  installTemporalLogging(logger);
  const deps = await buildWorkerDeps(config);
  const purposeKeys = await openPurposeKeys(config, {
    pool: deps.pool,
    kek: deps.kek,
    actor: `worker:${os.hostname()}:${process.pid}`,
  });
  const codec = createPayloadCodec(purposeKeys.payload);
  const checkpoints =
    config.EHR_AUDIT_CHECKPOINT_WRITER === 'on'
      ? new CheckpointScheduler({
          pool: deps.pool,
          signer: purposeKeys.auditSigning,
          anchor: new FileAuditAnchor(config.EHR_AUDIT_ANCHOR_PATH),
          everyEvents: config.EHR_AUDIT_CHECKPOINT_EVERY,
          everySeconds: config.EHR_AUDIT_CHECKPOINT_SECONDS,
          onError: (err) => logger.error({ err }, 'audit checkpoint failed'),
        })
      : undefined;
  // Our hosted JWKS, when configured: vendors fetch integrations' public keys from it.
  const jwks = config.JWKS_LISTEN
    ? await startJwksServer({ published: (id) => publishedSigningKeys(deps.pool, id), listen: config.JWKS_LISTEN })
    : undefined;
  if (jwks) logger.info({ url: jwks.url }, 'jwks server started');
  let connection: NativeConnection;
  try {
    connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  } catch (err) {
    await jwks?.close();
    await deps.close();
    throw new InfrastructureUnavailableError(
      'temporal',
      config.TEMPORAL_ADDRESS,
      `${(err as Error).message}. Start it with \`ehrctl dev up\` or set TEMPORAL_ADDRESS.`,
    );
  }
  let endpoints: EndpointWorkers | undefined;
  try {
    const activities = createWorkerActivities(deps);
    const workerOptions = {
      connection,
      namespace: config.TEMPORAL_NAMESPACE,
      // Every payload (inputs, results, signals, heartbeats, failures' details) is encrypted (DESIGN §4.2).
      dataConverter: { payloadCodecs: [codec] },
      workflowBundle: config.WORKER_WORKFLOW_BUNDLE
        ? { codePath: config.WORKER_WORKFLOW_BUNDLE }
        : await bundleWorkflowsApart(WORKFLOWS_PATH),
      activities,
      maxConcurrentActivityTaskExecutions: config.WORKER_MAX_CONCURRENT_ACTIVITIES,
      maxHeartbeatThrottleInterval: HEARTBEAT_THROTTLE,
      shutdownGraceTime: config.WORKER_SHUTDOWN_GRACE_MS,
      ...(config.WORKER_STICKY_QUEUE_TIMEOUT_MS
        ? { stickyQueueScheduleToStartTimeout: config.WORKER_STICKY_QUEUE_TIMEOUT_MS }
        : {}),
    };
    const worker = await Worker.create({ ...workerOptions, taskQueue: config.TEMPORAL_TASK_QUEUE });
    // Incidents have their own queue so containment never waits behind the syncs it contains.
    const incidentWorker = await Worker.create({
      ...workerOptions,
      taskQueue: incidentTaskQueue(config.TEMPORAL_TASK_QUEUE),
    });
    // Rate-limited vendor endpoints: one activity queue each, rate enforced by the Temporal server.
    endpoints = await EndpointWorkers.start({
      connection,
      namespace: config.TEMPORAL_NAMESPACE,
      policy: deps.endpointQueues,
      db: deps.pool,
      activities,
      dataConverter: { payloadCodecs: [codec] },
      maxConcurrentActivityTaskExecutions: config.WORKER_MAX_CONCURRENT_ACTIVITIES,
      shutdownGraceTime: config.WORKER_SHUTDOWN_GRACE_MS,
      recheckMs: config.EHR_ENDPOINT_QUEUE_RECHECK_SECONDS * 1000,
      logger,
    });
    checkpoints?.start();
    logger.info({ taskQueue: config.TEMPORAL_TASK_QUEUE, namespace: config.TEMPORAL_NAMESPACE }, 'worker started');
    await Promise.all([worker.run(), incidentWorker.run()]);
    await endpoints.stop();
    // A last signed checkpoint covers everything this worker recorded before it stopped.
    await checkpoints?.stop({ final: true });
    logger.info('worker drained and stopped');
  } finally {
    await endpoints?.stop();
    await checkpoints?.stop();
    await jwks?.close();
    await connection.close();
    await deps.close();
  }
}

if (require.main === module) {
  Promise.resolve()
    .then(() => runWorker(loadConfig()))
    .then(
      () => process.exit(0),
      (err: unknown) => {
        const message =
          err instanceof EhrError ? err.message : `unexpected failure: ${(err as Error)?.message ?? String(err)}`;
        process.stderr.write(`worker: ${message}\n`);
        process.exit(exitCodeForError(err));
      },
    );
}
