/**
 * Shared pieces of the integration tests: a real Temporal dev server and real PostgreSQL come from
 * the global setup (test/global-setup.ts); each test file brings its own sandbox vendor, tenant,
 * integrations and an in-process worker on its own task queue.
 */
import type { ReadChoiceInput } from '../../lib/integrations/read-choice.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, inject } from 'vitest';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { WorkflowBundle } from '@temporalio/worker';
import type { Config } from '../../lib/config/schema.js';
import { loadConfig } from '../../lib/config/schema.js';
import { createLogger } from '../../lib/log/logger.js';
import type { Logger } from '../../lib/log/logger.js';
import { createPool } from '../../lib/store/pool.js';
import type { Pool } from '../../lib/store/pool.js';
import { createTenant } from '../../lib/store/tenants.js';
import { registerIntegration } from '../../lib/integrations/registration.js';
import { buildWorkerDeps } from '../../workers/build-deps.js';
import { writeWorkflowBundle } from '../../workers/workflow-bundle.js';
import { HEARTBEAT_THROTTLE, createWorkerActivities } from '../../workers/worker-activities.js';
import { withActivityFaults } from '../activity-faults.js';
import { openPayloadCodec } from '../../lib/keys/open-purpose-keys.js';
import { installTemporalLogging } from '../../workers/temporal-logging.js';
import { EndpointWorkers } from '../../workers/endpoint-workers.js';
import { incidentTaskQueue } from '../../lib/domain.js';
import { startSandbox } from '../../sandbox/index.js';
import type { SandboxHandle, SandboxOptions } from '../../sandbox/index.js';
import { testEnv, uniqueId } from '../harness.js';
import { leakLogFile, recordSandboxIdentifiers } from '../security/leak-registry.js';

export const testActor = { actor: 'test:integration', correlationId: randomUUID() };

/** Every log line written by in-process workers of this test file; the end-of-run leak scan reads it. */
export const logFile = leakLogFile('in-process-worker');
let logger: Logger | undefined;

export function testLogger(): Logger {
  if (!logger) {
    logger = createLogger({
      level: 'info',
      name: 'test-worker',
      destination: fs.createWriteStream(logFile, { flags: 'a' }),
    });
    installTemporalLogging(logger);
  }
  return logger;
}

const anchorPath = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ehr-anchor-')), 'audit-anchor.jsonl');

export function testConfig(overrides: Partial<Record<string, string>> = {}): Config {
  const env = testEnv();
  return loadConfig({
    TEMPORAL_ADDRESS: env.temporalAddress,
    DATABASE_URL: env.databaseUrl,
    EHR_KEK_DIR: env.kekDir,
    EHR_SECRETS_DIR: env.secretsDir,
    // One anchor per test file: the dev stack's .data anchor belongs to another chain.
    EHR_AUDIT_ANCHOR_PATH: anchorPath,
    TEMPORAL_TASK_QUEUE: uniqueId('tq'),
    LOG_LEVEL: 'info',
    ...overrides,
  });
}

let bundlePath: Promise<string> | undefined;
/**
 * The run's workflow bundle, built once per run rather than once per test file: the first file that asks
 * writes it where the global setup says, later files (and child worker processes, through the product's
 * WORKER_WORKFLOW_BUNDLE) load it. Without a run directory (EHR_TEST_INFRA=none), one per process.
 */
export function sharedWorkflowBundlePath(): Promise<string> {
  bundlePath ??= (async () => {
    const file = inject('workflowBundlePath') || path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ehr-wf-')), 'b.js');
    return fs.existsSync(file) ? file : writeWorkflowBundle(file);
  })();
  return bundlePath;
}

let bundle: Promise<WorkflowBundle> | undefined;
export function workflowBundle(): Promise<WorkflowBundle> {
  bundle ??= sharedWorkflowBundlePath().then((file) => ({ code: fs.readFileSync(file, 'utf8') }));
  return bundle;
}

export interface RunningWorker {
  stop(): Promise<void>;
}

/** The real worker code path (workers/build-deps.ts, workers/worker-activities.ts) running in this process. */
export async function startInProcessWorker(config: Config): Promise<RunningWorker> {
  testLogger();
  const deps = await buildWorkerDeps(config);
  const connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  // The same payload codec as workers/worker.ts: every payload the tests produce is encrypted.
  const dataConverter = {
    payloadCodecs: [await openPayloadCodec(config, { pool: deps.pool, kek: deps.kek, actor: 'test:worker' })],
  };
  // Tests fail chosen activities on purpose (test/activity-faults.ts).
  const activities = withActivityFaults(createWorkerActivities(deps));
  const options = {
    connection,
    dataConverter,
    workflowBundle: await workflowBundle(),
    activities,
    maxConcurrentActivityTaskExecutions: config.WORKER_MAX_CONCURRENT_ACTIVITIES,
    maxHeartbeatThrottleInterval: HEARTBEAT_THROTTLE,
  };
  const worker = await Worker.create({ ...options, taskQueue: config.TEMPORAL_TASK_QUEUE });
  // Incidents have their own queue, as in workers/worker.ts.
  const incidentWorker = await Worker.create({ ...options, taskQueue: incidentTaskQueue(config.TEMPORAL_TASK_QUEUE) });
  const running = Promise.all([worker.run(), incidentWorker.run()]);
  // Rate-limited vendor endpoints get their own queues, as in workers/worker.ts.
  const endpoints = await EndpointWorkers.start({
    connection,
    policy: deps.endpointQueues,
    db: deps.pool,
    activities,
    dataConverter,
    maxConcurrentActivityTaskExecutions: config.WORKER_MAX_CONCURRENT_ACTIVITIES,
    recheckMs: config.EHR_ENDPOINT_QUEUE_RECHECK_SECONDS * 1000,
    logger: testLogger(),
  });
  return {
    async stop() {
      await endpoints.stop();
      worker.shutdown();
      incidentWorker.shutdown();
      await running;
      await connection.close();
      await deps.close();
    },
  };
}

/** A client with the product's payload codec (like client/context.ts); `raw: true` sees payloads as stored. */
export async function temporalClient(
  options: { raw?: boolean } = {},
): Promise<{ client: Client; close(): Promise<void> }> {
  const env = testEnv();
  const connection = await Connection.connect({ address: env.temporalAddress });
  const pool = options.raw ? undefined : createPool(env.databaseUrl, 2);
  const dataConverter = pool
    ? { payloadCodecs: [await openPayloadCodec({ EHR_KEK_DIR: env.kekDir }, { pool, actor: 'test:client' })] }
    : undefined;
  return {
    client: new Client({ connection, dataConverter }),
    close: async () => {
      await connection.close();
      await pool?.end();
    },
  };
}

export function testPool(): Pool {
  return createPool(testEnv().databaseUrl, 4);
}

/**
 * A sandbox whose synthetic identifying strings are registered with the end-of-run leak scan, at
 * start and again at close (tests create patients on the way).
 */
export async function startTestSandbox(opts: SandboxOptions = {}): Promise<SandboxHandle> {
  const sandbox = await startSandbox({ seed: 7, size: 700, ...opts });
  await recordSandboxIdentifiers(sandbox);
  const close = sandbox.close.bind(sandbox);
  return {
    ...sandbox,
    async close() {
      await recordSandboxIdentifiers(sandbox).catch(() => undefined);
      await close();
    },
  };
}

/** A fresh tenant with one sandbox integration registered through the real registration path. */
export async function registerSandboxTenant(
  pool: Pool,
  sandbox: SandboxHandle,
  options: {
    resourceTypes?: string[];
    alg?: 'ES384' | 'RS384';
    integrations?: number;
    jwksPublicUrl?: string;
    /** A read strategy and its options, as `integrations add --strategy …` takes them. */
    read?: ReadChoiceInput;
  } = {},
): Promise<{ tenantId: string; integrationIds: string[] }> {
  const tenantId = uniqueId('t');
  await createTenant(pool, { id: tenantId, name: 'Synthetic Test Clinic' }, testActor);
  const integrationIds: string[] = [];
  for (let i = 0; i < (options.integrations ?? 1); i++) {
    const id = uniqueId('i');
    await registerIntegration(
      pool,
      {
        id,
        tenantId,
        vendor: 'sandbox',
        baseUrl: sandbox.fhirBaseUrl,
        resourceTypes: options.resourceTypes,
        alg: options.alg,
        // With our hosted JWKS: the sandbox learns the keys from it (and its cache), not from registration.
        ...(options.jwksPublicUrl ? { jwksPublicUrl: options.jwksPublicUrl } : {}),
        ...(options.read ? { read: options.read } : {}),
        secretsDir: testEnv().secretsDir,
        sandboxAdmin: { url: sandbox.url, adminToken: sandbox.adminToken },
      },
      testActor,
    );
    integrationIds.push(id);
  }
  return { tenantId, integrationIds };
}

export async function sandboxAdmin<T>(
  sandbox: SandboxHandle,
  method: 'GET' | 'POST' | 'DELETE',
  route: string,
  body?: unknown,
): Promise<T> {
  const res = await fetch(`${sandbox.url}${route}`, {
    method,
    headers: {
      'x-sandbox-admin': sandbox.adminToken,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`sandbox admin ${method} ${route} answered ${res.status}`);
  return (await res.json()) as T;
}

export interface ManifestEntry {
  id: string;
  versionId: string;
  lastUpdated: string;
}

export async function sandboxManifest(sandbox: SandboxHandle, type: string): Promise<ManifestEntry[]> {
  return (await sandboxAdmin<{ records: ManifestEntry[] }>(sandbox, 'GET', `/admin/manifest?type=${type}`)).records;
}

export async function storedVersions(
  pool: Pool,
  tenantId: string,
  integrationId: string,
  type: string,
): Promise<Map<string, string>> {
  const res = await pool.query<{ resource_id: string; version_id: string }>(
    'SELECT resource_id, version_id FROM records WHERE tenant_id = $1 AND integration_id = $2 AND resource_type = $3',
    [tenantId, integrationId, type],
  );
  return new Map(res.rows.map((r) => [r.resource_id, r.version_id]));
}

export interface SyncHarness {
  readonly sandbox: SandboxHandle;
  readonly pool: Pool;
  readonly config: Config;
  /** A client with the product's payload codec. */
  readonly temporal: { client: Client; close(): Promise<void> };
  /** A client that sees payloads as stored; only with `raw: true`. */
  readonly raw: { client: Client; close(): Promise<void> };
}

/**
 * The usual integration-test file setup, registered as beforeAll/afterAll: a test sandbox, a pool,
 * a config (own task queue), an in-process worker (unless `worker: false`) and a Temporal client.
 * The returned object's fields are readable from the first test on.
 */
export function useSyncHarness(options: {
  sandbox?: SandboxOptions;
  config?: Partial<Record<string, string>>;
  worker?: boolean;
  raw?: boolean;
}): SyncHarness {
  let sandbox: SandboxHandle | undefined;
  let pool: Pool | undefined;
  let config: Config | undefined;
  let worker: RunningWorker | undefined;
  let temporal: { client: Client; close(): Promise<void> } | undefined;
  let raw: { client: Client; close(): Promise<void> } | undefined;
  beforeAll(async () => {
    sandbox = await startTestSandbox(options.sandbox);
    pool = testPool();
    config = testConfig(options.config);
    if (options.worker !== false) worker = await startInProcessWorker(config);
    temporal = await temporalClient();
    if (options.raw) raw = await temporalClient({ raw: true });
  });
  afterAll(async () => {
    await worker?.stop();
    await temporal?.close();
    await raw?.close();
    await pool?.end();
    await sandbox?.close();
  });
  const ready = <T>(value: T | undefined, name: string): T => {
    if (value === undefined) throw new Error(`useSyncHarness: ${name} is not set up (read it inside a test or hook)`);
    return value;
  };
  return {
    get sandbox() {
      return ready(sandbox, 'sandbox');
    },
    get pool() {
      return ready(pool, 'pool');
    },
    get config() {
      return ready(config, 'config');
    },
    get temporal() {
      return ready(temporal, 'temporal');
    },
    get raw() {
      return ready(raw, 'raw');
    },
  };
}
