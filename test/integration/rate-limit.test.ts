/**
 * A vendor endpoint's rate limit holds across every worker (issue 4 item 6): two eClinicalWorks
 * integrations on one eCW endpoint and a sandbox-vendor integration on another sandbox sync at once,
 * served by this process's worker and a child worker process. The eCW endpoint never sees more than
 * its limit in any window (the sandbox's request ledger), and the other vendor's sync finishes in
 * about the time it takes alone. The limit is lowered by EHR_VENDOR_RATE_LIMITS so the test takes
 * seconds, not minutes.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSync, syncResult } from '../../client/sync-client.js';
import { registerIntegration } from '../../lib/integrations/registration.js';
import { endpointQueueName } from '../../lib/vendors/endpoint-queues.js';
import { scopesFor } from '../../lib/vendors/profiles/adapters.js';
import { profileFor } from '../../lib/vendors/profiles/index.js';
import type { SandboxHandle } from '../../sandbox/index.js';
import { testEnv, uniqueId } from '../harness.js';
import { startChildWorker } from './child-worker.js';
import type { ChildWorker } from './child-worker.js';
import {
  registerSandboxTenant,
  sandboxAdmin,
  sandboxManifest,
  startTestSandbox,
  storedVersions,
  testActor,
  useSyncHarness,
} from './support.js';

const LIMIT = { requests: 20, perSeconds: 5 };
const harness = useSyncHarness({
  sandbox: { size: 1500 },
  config: {
    EHR_SYNC_PAGE_SIZE: '5',
    EHR_VENDOR_RATE_LIMITS: `eclinicalworks=${LIMIT.requests}/${LIMIT.perSeconds}`,
    EHR_ENDPOINT_QUEUE_RECHECK_SECONDS: '1',
  },
});
const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ehr-rate-limit-logs-'));
let ecw: SandboxHandle;
let child: ChildWorker | undefined;

beforeAll(async () => {
  // eClinicalWorks reads patient by patient (its profile's default): a request per patient, one patient per
  // activity on the limited queue, so a small practice keeps the paced run short. 20 patients: with two
  // integrations, twice as many requests as one window allows, so the limit has to hold them back.
  ecw = await startTestSandbox({ size: 200 });
});
afterAll(async () => {
  child?.child.kill('SIGTERM');
  await child?.exited;
  await ecw?.close();
});

/** Registered the way an operator would: our key generated and stored, the public key given to the vendor. */
async function registerEcw(tenantId: string): Promise<string> {
  const id = uniqueId('ecw');
  const clientId = uniqueId('ecw-client');
  const integration = await registerIntegration(
    harness.pool,
    {
      id,
      tenantId,
      vendor: 'eclinicalworks',
      baseUrl: ecw.fhirBaseUrl,
      resourceTypes: ['Patient'],
      clientId,
      alg: 'RS384',
      secretsDir: testEnv().secretsDir,
    },
    testActor,
  );
  await sandboxAdmin(ecw, 'POST', '/admin/clients', {
    client_id: clientId,
    jwks: { keys: [integration.publicJwk] },
    scopes: scopesFor(profileFor('eclinicalworks'), ['Patient']),
  });
  return id;
}

async function timedSync(
  tenantId: string,
  integrationId: string,
  vendor: string,
): Promise<{ ms: number; fetched: number }> {
  const started = Date.now();
  const handle = await startSync(
    harness.temporal.client,
    harness.config.TEMPORAL_TASK_QUEUE,
    { tenantId, integrationId, vendor },
    { full: true },
  );
  const report = await syncResult(handle);
  expect(report.outcome).toBe('completed');
  return { ms: Date.now() - started, fetched: report.totals.fetched };
}

/** The most requests that arrived within any window of the limit's length. */
function busiestWindow(times: number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[i]! - sorted[j]! >= windowMs) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

describe('rate limit per vendor endpoint', () => {
  it('holds across two workers while another vendor syncs at full speed', async () => {
    const { tenantId, integrationIds } = await registerSandboxTenant(harness.pool, harness.sandbox, {
      resourceTypes: ['Patient'],
    });
    const other = integrationIds[0]!;
    const limited = [await registerEcw(tenantId), await registerEcw(tenantId)];
    const queue = endpointQueueName(harness.config.TEMPORAL_TASK_QUEUE, 'eclinicalworks', ecw.fhirBaseUrl);

    // A second worker process serving the same queues: the limit is the server's, not a worker's.
    child = await startChildWorker(harness.config, path.join(logDir, 'child-worker.log'));
    await expect
      .poll(() => fs.readFileSync(child!.logPath, 'utf8').includes(queue), { timeout: 30_000, interval: 200 })
      .toBe(true);

    const alone = await timedSync(tenantId, other, 'sandbox');
    const patients = (await sandboxManifest(ecw, 'Patient')).length;
    const since = Date.now();
    const [otherRun, ...limitedRuns] = await Promise.all([
      timedSync(tenantId, other, 'sandbox'),
      ...limited.map((id) => timedSync(tenantId, id, 'eclinicalworks')),
    ]);

    // Nothing lost on the limited endpoint, and the other vendor was not held back by it.
    for (const [i, id] of limited.entries()) {
      expect(limitedRuns[i]!.fetched).toBe(patients);
      expect((await storedVersions(harness.pool, tenantId, id, 'Patient')).size).toBe(patients);
    }
    expect(otherRun.fetched).toBe(alone.fetched);
    expect(otherRun.ms).toBeLessThan(alone.ms * 2 + 3_000);

    const ledger = ecw.ledger(since);
    const pages = Math.ceil(patients / 5) * limited.length;
    expect(ledger.length).toBeGreaterThanOrEqual(pages);
    expect(
      busiestWindow(
        ledger.map((e) => e.atMs),
        LIMIT.perSeconds * 1000,
      ),
    ).toBeLessThanOrEqual(LIMIT.requests);
    // The limit, not the work, set the pace: the limited syncs took at least the windows their requests needed
    // (counted from the ledger: a request per patient besides the roster pages, so more than the pages).
    expect(ledger.length).toBeGreaterThan(2 * LIMIT.requests);
    const slowest = Math.max(...limitedRuns.map((r) => r.ms));
    expect(slowest).toBeGreaterThanOrEqual(
      ((ledger.length - LIMIT.requests) / LIMIT.requests) * LIMIT.perSeconds * 1000,
    );
    // And both workers served the limited queue.
    const childLog = fs.readFileSync(child.logPath, 'utf8');
    expect(childLog).toContain('serving vendor endpoint queue');
  });
});
