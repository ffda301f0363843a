/**
 * One token request per refresh window (issue 4): 1,000 `probeVendor` activities for one integration
 * run at once on a worker that allows 1,000 concurrent executions; the sandbox sees exactly one token
 * request and 1,000 FHIR requests, all carrying that one token. With a short token lifetime, two waves
 * straddling the refresh point (half the lifetime, lib/vendors/token-manager.ts) cost exactly two.
 */
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { NativeConnection, Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities/index.js';
import { openPayloadCodec } from '../../lib/security/open-purpose-keys.js';
import { buildActivityDeps } from '../../workers/build-deps.js';
import { uniqueId } from '../harness.js';
import { registerSandboxTenant, sandboxAdmin, testConfig, testLogger, useSyncHarness } from './support.js';
import type { ProbeWaveResult, ProbeWavesInput } from './workflows/token-fanout.js';

/** Sandbox tokens live 12 s, so the token manager fetches a successor 6 s after the first request. */
const TOKEN_TTL_SECONDS = 12;
const harness = useSyncHarness({ sandbox: { size: 50, tokenTtlSeconds: TOKEN_TTL_SECONDS }, worker: false });

interface LedgerEntry {
  atMs: number;
  tokenHash: string;
  resource: string;
  status?: number;
}

let stopWorker: (() => Promise<void>) | undefined;
let taskQueue = '';

beforeAll(async () => {
  // The pool stays small (the config's 16 activities + 4): 1,000 probes share it, as they would in production.
  const config = testConfig();
  taskQueue = uniqueId('tq-fanout');
  testLogger();
  const deps = await buildActivityDeps(config);
  const connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  const worker = await Worker.create({
    connection,
    taskQueue,
    dataConverter: { payloadCodecs: [await openPayloadCodec(config, { pool: deps.pool, kek: deps.kek, actor: 'test:worker' })] },
    workflowsPath: path.resolve(__dirname, 'workflows/token-fanout.ts'),
    activities: createActivities(deps),
    maxConcurrentActivityTaskExecutions: 1_000,
    maxConcurrentActivityTaskPolls: 20,
  });
  const running = worker.run();
  stopWorker = async () => {
    worker.shutdown();
    await running;
    await connection.close();
    await deps.close();
  };
});

afterAll(async () => {
  await stopWorker?.();
});

async function probeWaves(input: Omit<ProbeWavesInput, 'tenantId' | 'integrationId'>): Promise<{ results: ProbeWaveResult[]; startedMs: number }> {
  const { tenantId, integrationIds } = await registerSandboxTenant(harness.pool, harness.sandbox, { resourceTypes: ['Patient'] });
  await sandboxAdmin(harness.sandbox, 'POST', '/admin/stats/reset');
  const startedMs = Date.now();
  const results = await harness.temporal.client.workflow.execute('probeWaves', {
    taskQueue,
    workflowId: `test/token-fanout/${randomUUID()}`,
    args: [{ tenantId, integrationId: integrationIds[0]!, ...input }],
    workflowExecutionTimeout: '2 minutes',
  });
  return { results: results as ProbeWaveResult[], startedMs };
}

async function stats(): Promise<{ tokenRequests: number; tokensIssued: number; searchRequests: number; rejectedTokens: number }> {
  return sandboxAdmin(harness.sandbox, 'GET', '/admin/stats');
}

async function probesSince(sinceMs: number): Promise<LedgerEntry[]> {
  const { entries } = await sandboxAdmin<{ entries: LedgerEntry[] }>(harness.sandbox, 'GET', `/admin/ledger?since=${sinceMs}`);
  return entries.filter((e) => e.resource === 'Patient');
}

describe('token fan-out', () => {
  it('1,000 concurrent probes of one integration cause exactly one token request', async () => {
    const { results, startedMs } = await probeWaves({ waves: [1_000], pauseBetweenWavesMs: 0 });
    expect(results).toEqual([{ statuses: { '200': 1_000 } }]);
    const s = await stats();
    expect(s.tokenRequests).toBe(1);
    expect(s.searchRequests).toBe(1_000);
    expect(s.rejectedTokens).toBe(0);
    const probes = await probesSince(startedMs);
    expect(probes).toHaveLength(1_000);
    expect(new Set(probes.map((p) => p.tokenHash)).size).toBe(1);
  });

  it('two waves straddling the refresh point cause exactly two token requests', async () => {
    // Wave one finishes well inside the first 6 s; the pause carries wave two past the refresh point
    // and wave two finishes long before the second token's own refresh point.
    const { results, startedMs } = await probeWaves({ waves: [250, 250], pauseBetweenWavesMs: (TOKEN_TTL_SECONDS / 2 + 1) * 1000 });
    expect(results).toEqual([{ statuses: { '200': 250 } }, { statuses: { '200': 250 } }]);
    const s = await stats();
    expect(s.tokenRequests).toBe(2);
    expect(s.searchRequests).toBe(500);
    const probes = (await probesSince(startedMs)).sort((a, b) => a.atMs - b.atMs);
    const tokens = [...new Set(probes.map((p) => p.tokenHash))];
    expect(tokens).toHaveLength(2);
    // Each wave used one token: the first 250 requests the first token, the last 250 the second.
    expect(new Set(probes.slice(0, 250).map((p) => p.tokenHash))).toEqual(new Set([tokens[0]]));
    expect(new Set(probes.slice(250).map((p) => p.tokenHash))).toEqual(new Set([tokens[1]]));
  });
});
