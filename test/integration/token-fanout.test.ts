/**
 * One token request per refresh window (issue 4): 1,000 `probeVendor` activities for one integration
 * run at once on a worker that allows 1,000 concurrent executions; the sandbox sees exactly one token
 * request and 1,000 FHIR requests, all carrying that one token. With a short token lifetime (a second
 * sandbox), two waves straddling the refresh point (half the lifetime, lib/vendors/token-manager.ts)
 * cost exactly two.
 */
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPayloadCodec } from '../../lib/keys/open-purpose-keys.js';
import { buildWorkerDeps } from '../../workers/build-deps.js';
import { createVendorProbeActivities } from './vendor-probe-activities.js';
import { uniqueId } from '../harness.js';
import {
  registerSandboxTenant,
  sandboxAdmin,
  startTestSandbox,
  testConfig,
  testLogger,
  useSyncHarness,
} from './support.js';
import type { LedgerEntry, SandboxHandle } from '../../sandbox/index.js';
import type { ProbeWaveResult, ProbeWavesInput } from './workflows/token-fanout.js';

/** The harness sandbox keeps the default 300 s tokens: one refresh window spans the whole fan-out. */
const harness = useSyncHarness({ sandbox: { size: 50 }, worker: false });
/**
 * The short-lived sandbox's tokens live 20 s, so the token manager fetches a successor 10 s after the first
 * request.
 */
const SHORT_TTL_SECONDS = 20;
let shortLived: SandboxHandle | undefined;

let stopWorker: (() => Promise<void>) | undefined;
let taskQueue = '';

beforeAll(async () => {
  // The pool stays small (the config's 16 activities + 4): 1,000 probes share it, as they would in production.
  const config = testConfig();
  taskQueue = uniqueId('tq-fanout');
  testLogger();
  const deps = await buildWorkerDeps(config);
  const connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  const worker = await Worker.create({
    connection,
    taskQueue,
    dataConverter: {
      payloadCodecs: [await openPayloadCodec(config, { pool: deps.pool, kek: deps.kek, actor: 'test:worker' })],
    },
    workflowsPath: path.resolve(__dirname, 'workflows/token-fanout.ts'),
    activities: createVendorProbeActivities(deps.sync),
    maxConcurrentActivityTaskExecutions: 1_000,
    maxConcurrentActivityTaskPolls: 20,
  });
  const running = worker.run();
  shortLived = await startTestSandbox({ size: 50, tokenTtlSeconds: SHORT_TTL_SECONDS });
  stopWorker = async () => {
    worker.shutdown();
    await running;
    await connection.close();
    await deps.close();
  };
});

afterAll(async () => {
  await stopWorker?.();
  await shortLived?.close();
});

async function probeWaves(
  sandbox: SandboxHandle,
  input: Omit<ProbeWavesInput, 'tenantId' | 'integrationId'>,
): Promise<{ results: ProbeWaveResult[]; startedMs: number }> {
  const { tenantId, integrationIds } = await registerSandboxTenant(harness.pool, sandbox, {
    resourceTypes: ['Patient'],
  });
  await sandboxAdmin(sandbox, 'POST', '/admin/stats/reset');
  const startedMs = Date.now();
  const results = await harness.temporal.client.workflow.execute('probeWaves', {
    taskQueue,
    workflowId: `test/token-fanout/${randomUUID()}`,
    args: [{ tenantId, integrationId: integrationIds[0]!, ...input }],
    workflowExecutionTimeout: '2 minutes',
    // Completing 1,000 activity results is one large workflow task; a loaded 2-core machine needs slack.
    workflowTaskTimeout: '30 seconds',
  });
  return { results: results as ProbeWaveResult[], startedMs };
}

async function stats(
  sandbox: SandboxHandle,
): Promise<{ tokenRequests: number; tokensIssued: number; searchRequests: number; rejectedTokens: number }> {
  return sandboxAdmin(sandbox, 'GET', '/admin/stats');
}

async function probesSince(sandbox: SandboxHandle, sinceMs: number): Promise<LedgerEntry[]> {
  const entries = sandbox.ledger(sinceMs);
  return entries.filter((e) => e.resource === 'Patient');
}

describe('token fan-out', () => {
  it('1,000 concurrent probes of one integration cause exactly one token request', async () => {
    const { results, startedMs } = await probeWaves(harness.sandbox, { waves: [1_000], pauseBetweenWavesMs: 0 });
    expect(results).toEqual([{ statuses: { '200': 1_000 } }]);
    const s = await stats(harness.sandbox);
    expect(s.tokenRequests).toBe(1);
    expect(s.searchRequests).toBe(1_000);
    expect(s.rejectedTokens).toBe(0);
    const probes = await probesSince(harness.sandbox, startedMs);
    expect(probes).toHaveLength(1_000);
    expect(new Set(probes.map((p) => p.tokenHash)).size).toBe(1);
  });

  it('two waves straddling the refresh point cause exactly two token requests', async () => {
    // Wave one finishes well inside the first 10 s; the pause carries wave two past the refresh point
    // and wave two finishes long before the second token's own refresh point.
    const sandbox = shortLived!;
    const { results, startedMs } = await probeWaves(sandbox, {
      waves: [100, 100],
      pauseBetweenWavesMs: (SHORT_TTL_SECONDS / 2 + 1) * 1000,
    });
    expect(results).toEqual([{ statuses: { '200': 100 } }, { statuses: { '200': 100 } }]);
    const s = await stats(sandbox);
    expect(s.tokenRequests).toBe(2);
    expect(s.searchRequests).toBe(200);
    const probes = (await probesSince(sandbox, startedMs)).sort((a, b) => a.atMs - b.atMs);
    const tokens = [...new Set(probes.map((p) => p.tokenHash))];
    expect(tokens).toHaveLength(2);
    // Each wave used one token: the first 100 requests the first token, the last 100 the second.
    expect(new Set(probes.slice(0, 100).map((p) => p.tokenHash))).toEqual(new Set([tokens[0]]));
    expect(new Set(probes.slice(100).map((p) => p.tokenHash))).toEqual(new Set([tokens[1]]));
  });
});
