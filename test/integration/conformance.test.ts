/**
 * Vendor conformance: the same suite against every vendor personality of the sandbox — register with the
 * vendor's preferred auth method and parameters, authenticate the way the vendor does, full and incremental
 * syncs with the vendor profile's default read strategy (Bulk Data for Epic and Oracle Health, patient by
 * patient for the others) against a personality that refuses what its vendor refuses (system-wide clinical
 * searches, `_sort`), scope enforcement (over-scoped registration refused; a vendor that narrows our scopes later
 * makes that type skip with its reason), and revocation (the sync stops, no request reaches the vendor
 * afterwards). The profile says what to expect; the personality is the sandbox's own description of the vendor,
 * so a disagreement fails here.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerIntegration } from '../../lib/integrations/registration.js';
import { startSync, syncProgress, syncResult } from '../../client/sync-client.js';
import type { ResourceType } from '../../lib/domain.js';
import { createTenant } from '../../lib/store/tenants.js';
import { scopesFor } from '../../lib/vendors/profiles/adapters.js';
import { profileFor } from '../../lib/vendors/profiles/index.js';
import type { VendorId } from '../../lib/vendors/profiles/types.js';
import { revokeIntegration } from '../../lib/revocation/revoke.js';
import type { SandboxHandle } from '../../sandbox/index.js';
import { bulkLog, setBulkBehaviour } from '../../sandbox/test-bulk.js';
import { testEnv, uniqueId } from '../harness.js';
import {
  sandboxAdmin,
  sandboxManifest,
  startTestSandbox,
  storedVersions,
  testActor,
  useSyncHarness,
} from './support.js';

const VENDORS: ReadonlyArray<Exclude<VendorId, 'sandbox' | 'fhir-server'>> = [
  'epic',
  'oracle-health',
  'athenahealth',
  'meditech',
  'eclinicalworks',
  'nextgen',
];
const TYPES: ResourceType[] = ['Patient', 'Observation', 'Appointment'];
/** What each vendor needs besides credentials (profile extraParameters), with synthetic values. */
const PARAMS: Partial<Record<VendorId, Record<string, string>>> = {
  athenahealth: { practiceId: 'a-1.Practice-195900' },
  nextgen: { siteId: 'site-0001' },
};
/**
 * The practice's size (sandbox `size`: 10% of it are patients). The vendors with a published rate limit
 * (eClinicalWorks 250/min, athenahealth 10/s) read patient by patient at the pace of that limit: a request per
 * patient and type, so their syncs take as long as their patients make them. Every check here holds for any
 * size (one patient's records fit one page either way), so they get a smaller practice.
 */
const SIZE: Partial<Record<VendorId, number>> = { eclinicalworks: 50, athenahealth: 50 };

const harness = useSyncHarness({
  // Several pages per type, so each personality's paging style (keyset or offset links) is exercised;
  // endpoint queues for rate-limited vendors are picked up within a second. Our side paces eClinicalWorks at
  // 250 requests per 10 s instead of its published minute (EHR_VENDOR_RATE_LIMITS, for tests that cannot wait):
  // its endpoint queue is still the one every request goes through, and the personality keeps its own
  // 250/min limit, which this file's ~100 eClinicalWorks requests stay under. The limit's pacing itself is
  // checked in rate-limit.test.ts.
  config: {
    EHR_SYNC_PAGE_SIZE: '40',
    EHR_ENDPOINT_QUEUE_RECHECK_SECONDS: '1',
    EHR_VENDOR_RATE_LIMITS: 'eclinicalworks=250/10',
  },
});

/** A client secret "issued by the vendor", stored the way an operator would: a 0600 file. */
function issuedSecretRef(name: string): string {
  const file = path.join(testEnv().secretsDir, `${name}.client-secret`);
  fs.writeFileSync(file, randomBytes(32).toString('base64url'), { mode: 0o600 });
  return `file:${file}`;
}

describe.each(VENDORS)('conformance: %s', (vendor) => {
  const profile = profileFor(vendor);
  const method = profile.auth.methods.value[0]!;
  let sandbox: SandboxHandle;
  let tenantId: string;
  let integrationId: string;
  let clientId: string;
  /** The personality's roster Group (the vendor's Group id an operator would be given). */
  let groupId: string;

  beforeAll(async () => {
    // The personality's own rate limit stays on (eClinicalWorks: 250/min); this suite makes far fewer calls.
    // A small practice: the patient strategy makes a request per patient and type within the vendor's rate limit.
    sandbox = await startTestSandbox({ personality: vendor, size: SIZE[vendor] ?? 250 });
    tenantId = uniqueId('t');
    await createTenant(harness.pool, { id: tenantId, name: 'Synthetic Conformance Clinic' }, testActor);
    groupId = (await sandboxAdmin<{ reads: { groupId: string } }>(sandbox, 'GET', '/admin/read-paths')).reads.groupId;
  });
  afterAll(async () => {
    await sandbox.close();
  });

  const sync = async (): Promise<Awaited<ReturnType<typeof syncResult>>> =>
    syncResult(
      await startSync(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, { tenantId, integrationId, vendor }),
    );

  const register = (id: string, extra: { purpose?: string; resourceTypes?: string[] } = {}) =>
    registerIntegration(
      harness.pool,
      {
        id,
        tenantId,
        vendor,
        baseUrl: sandbox.fhirBaseUrl,
        resourceTypes: extra.resourceTypes ?? TYPES,
        ...(extra.purpose ? { purpose: extra.purpose } : {}),
        secretsDir: testEnv().secretsDir,
        sandboxAdmin: { url: sandbox.url, adminToken: sandbox.adminToken },
        ...(method === 'client_secret_basic' || method === 'client_secret_post'
          ? { clientSecretRef: issuedSecretRef(id) }
          : {}),
        ...(PARAMS[vendor] ? { vendorParams: PARAMS[vendor] } : {}),
        // The vendor's default strategy, given the Group id it needs (Group $export, or the patient roster).
        read: { groupId },
      },
      testActor,
    );

  it(`registers with ${method} and the vendor's parameters; an over-scoped purpose is refused`, async () => {
    await expect(
      register(uniqueId('i'), { purpose: 'scheduling-sync', resourceTypes: ['Patient', 'Observation'] }),
    ).rejects.toThrow(/purpose scheduling-sync does not allow resource type\(s\) Observation/);
    integrationId = uniqueId('i');
    const integration = await register(integrationId);
    expect(integration).toMatchObject({ vendor, authMethod: method, vendorParams: PARAMS[vendor] ?? {} });
    clientId = integration.clientId!;
  });

  it('authenticates the way the vendor does and a full sync stores exactly its records', async () => {
    const report = await sync();
    expect(report.outcome).toBe('completed');
    for (const type of TYPES) {
      const manifest = await sandboxManifest(sandbox, type);
      expect(manifest.length).toBeGreaterThan(0);
      expect(await storedVersions(harness.pool, tenantId, integrationId, type)).toEqual(
        new Map(manifest.map((r) => [r.id, r.versionId])),
      );
    }
    const client = await sandboxAdmin<{ token_endpoint_auth_method: string; authentications: number }>(
      sandbox,
      'GET',
      `/admin/clients/${clientId}`,
    );
    expect(client.token_endpoint_auth_method).toBe(method);
    expect(client.authentications).toBeGreaterThanOrEqual(1);
    const stats = await sandboxAdmin<{ tokenRequestsRejected: number }>(sandbox, 'GET', '/admin/stats');
    expect(stats.tokenRequestsRejected).toBe(0);
    // The vendor's own read path: it refused nothing (a throttled attempt, e.g. athenahealth's 10/s, is retried).
    const refused = sandbox.ledger().filter((e) => (e.status ?? 0) >= 400 && e.status !== 429);
    expect(refused).toEqual([]);
    const strategy = profile.reads.value.defaultStrategy;
    const kickoffs = (await bulkLog(sandbox)).kickoffs.length;
    expect(kickoffs > 0, `bulk kick-offs with the ${strategy} strategy`).toBe(strategy === 'bulk');
  });

  it('an incremental sync fetches only what the vendor changed', async () => {
    for (const type of TYPES)
      await sandboxAdmin(sandbox, 'POST', '/admin/records/modify', { resourceType: type, count: 2 });
    const report = await sync();
    expect(report.outcome).toBe('completed');
    // What changed is stored once; where the vendor offers no incremental read (_since, _lastUpdated) the rest is
    // read again and counted unchanged.
    expect(report.totals).toMatchObject({ updated: 2 * TYPES.length, inserted: 0 });
    expect(report.totals.fetched).toBe(2 * TYPES.length + report.totals.unchanged);
    for (const type of TYPES) {
      const manifest = await sandboxManifest(sandbox, type);
      expect(await storedVersions(harness.pool, tenantId, integrationId, type)).toEqual(
        new Map(manifest.map((r) => [r.id, r.versionId])),
      );
    }
  });

  it('a vendor that narrows our scopes later makes that type skip with its reason; the others sync', async () => {
    const kept = TYPES.filter((t) => t !== 'Observation');
    await fetch(`${sandbox.url}/admin/clients/${clientId}/scopes`, {
      method: 'PUT',
      headers: { 'x-sandbox-admin': sandbox.adminToken, 'content-type': 'application/json' },
      body: JSON.stringify({ scopes: scopesFor(profile, kept) }),
    }).then((r) => expect(r.status).toBe(200));
    await sandboxAdmin(sandbox, 'POST', '/admin/records/modify', { resourceType: 'Patient', count: 1 });
    const report = await sync();
    expect(report.outcome).toBe('completed');
    expect(report.skipped).toEqual([
      expect.objectContaining({ resourceType: 'Observation', reason: 'VENDOR_SCOPE_NOT_GRANTED' }),
    ]);
    expect(report.totals.updated).toBe(1);
  });

  it('revoked during a sync: the sync stops with INTEGRATION_REVOKED and nothing more reaches the vendor', async () => {
    // Slow pages (or an export that keeps preparing), so the sync is still running when the revocation lands.
    await sandboxAdmin(sandbox, 'POST', '/admin/faults', { kind: 'slow', delayMs: 1_500, times: 1_000 });
    await setBulkBehaviour(sandbox, { preparePolls: 10_000, retryAfterSeconds: 1 });
    const startedMs = Date.now();
    const handle = await startSync(
      harness.temporal.client,
      harness.config.TEMPORAL_TASK_QUEUE,
      { tenantId, integrationId, vendor },
      { full: true },
    );
    // The first request of this sync has reached the vendor and been answered; the sync goes on.
    await expect
      .poll(() => sandbox.ledger(startedMs).filter((e) => (e.status ?? 500) < 400).length, {
        timeout: 60_000,
        interval: 50,
      })
      .toBeGreaterThan(0);
    await expect.poll(async () => (await syncProgress(handle)).status, { timeout: 30_000 }).toBe('running');

    const result = await revokeIntegration(harness.pool, integrationId, testActor, { reason: 'conformance' });
    const returnedMs = Date.now();
    expect(result.alreadyRevoked).toBe(false);
    const tokenRequests = async () =>
      (await sandboxAdmin<{ tokenRequests: number }>(sandbox, 'GET', '/admin/stats')).tokenRequests;
    const tokenRequestsAtRevoke = await tokenRequests();

    const failure = await syncResult(handle).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    // Through the activity (search, patient) or the bulkExport child and its activity: the same stable code.
    expect(rootFailureType(failure)).toBe('INTEGRATION_REVOKED');
    // The revocation stopped a sync under way: its pages had reached the vendor, and it did not complete.
    expect(sandbox.ledger(startedMs).filter((e) => e.atMs <= returnedMs).length).toBeGreaterThan(0);
    // The guarantee: no FHIR request and no token request reached the vendor after revoke returned.
    expect(sandbox.ledger(returnedMs + 1)).toEqual([]);
    expect(await tokenRequests()).toBe(tokenRequestsAtRevoke);
    await sandboxAdmin(sandbox, 'DELETE', '/admin/faults');
    await setBulkBehaviour(sandbox, null);
  });
});

/** The type of the innermost ApplicationFailure under a workflow failure. */
function rootFailureType(err: unknown): string | undefined {
  let type: string | undefined;
  for (let e = err as { cause?: unknown; type?: unknown } | undefined; e; e = e.cause as typeof e) {
    if (typeof e.type === 'string') type = e.type;
  }
  return type;
}
