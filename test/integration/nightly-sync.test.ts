/**
 * The nightly sync end to end: real Temporal dev server, real PostgreSQL, the sandbox vendor over
 * real HTTP with real JWTs. What a user notices: the right records land, encrypted; a second run
 * fetches only changes; a mid-sync token expiry is survived; a bad vendor page writes nothing.
 */
import { describe, expect, it } from 'vitest';
import { WorkflowFailedError } from '@temporalio/client';
import { isResourceType } from '../../lib/domain.js';
import { PURPOSE_POLICIES } from '../../lib/fhir/classification.js';
import { minimise } from '../../lib/fhir/minimise.js';
import { decryptRecord } from '../../lib/crypto/envelope.js';
import { LocalKekProvider } from '../../lib/keys/local-kek.js';
import { TenantKeyring } from '../../lib/keys/keyring.js';
import { startSync, syncResult } from '../../client/sync-client.js';
import { registerSandboxTenant, sandboxAdmin, sandboxManifest, storedVersions, useSyncHarness } from './support.js';
import { testEnv } from '../harness.js';

interface Stats {
  served: Record<string, number>;
  tokensIssued: number;
  rejectedTokens: number;
}

const harness = useSyncHarness({ sandbox: { size: 700 }, config: { EHR_SYNC_PAGE_SIZE: '40' } });

async function runSync(tenantId: string, integrationId: string, full = false) {
  const handle = await startSync(
    harness.temporal.client,
    harness.config.TEMPORAL_TASK_QUEUE,
    { tenantId, integrationId, vendor: 'sandbox' },
    { full },
  );
  return { handle, report: await syncResult(handle) };
}

describe('nightly sync', () => {
  it('stores exactly the sandbox records, encrypted, and decrypts back to the minimised resources', async () => {
    const { tenantId, integrationIds } = await registerSandboxTenant(harness.pool, harness.sandbox);
    const integrationId = integrationIds[0]!;
    const { report } = await runSync(tenantId, integrationId);
    expect(report.outcome).toBe('completed');

    let expectedTotal = 0;
    // The default types of a clinical-sync integration: the whole record but Coverage (billing).
    for (const type of PURPOSE_POLICIES['clinical-sync'].resourceTypes) {
      const manifest = await sandboxManifest(harness.sandbox, type);
      const stored = await storedVersions(harness.pool, tenantId, integrationId, type);
      expectedTotal += manifest.length;
      expect(stored.size, type).toBe(manifest.length);
      for (const m of manifest) expect(stored.get(m.id), `${type}/${m.id}`).toBe(m.versionId);
    }
    expect(report.totals.fetched).toBe(expectedTotal);
    expect(report.totals.inserted).toBe(expectedTotal);

    // Spot samples: decrypting gives back the sandbox's resource after minimisation.
    const keyring = new TenantKeyring({ pool: harness.pool, kek: await LocalKekProvider.load(testEnv().kekDir) });
    const samples = await harness.pool.query<{ resource_type: string; resource_id: string; ciphertext: Buffer }>(
      `SELECT resource_type, resource_id, ciphertext FROM records WHERE tenant_id = $1
          AND integration_id = $2 ORDER BY md5(resource_id) LIMIT 12`,
      [tenantId, integrationId],
    );
    expect(samples.rows.length).toBe(12);
    for (const row of samples.rows) {
      if (!isResourceType(row.resource_type)) throw new Error('unexpected type');
      const plaintext = await decryptRecord(
        row.ciphertext,
        { tenantId, integrationId, resourceType: row.resource_type, resourceId: row.resource_id },
        (t, v) => keyring.dataKey(t, v),
      );
      const original = await sandboxAdmin<Record<string, unknown>>(
        harness.sandbox,
        'GET',
        `/admin/resource/${row.resource_type}/${row.resource_id}`,
      );
      expect(JSON.parse(plaintext.toString('utf8'))).toEqual(minimise(row.resource_type, original));
      // The stored bytes are not the plaintext.
      expect(row.ciphertext.includes(Buffer.from(String(row.resource_id)))).toBe(false);
    }
  });

  it('a second sync fetches only what changed since the checkpoint', async () => {
    const { tenantId, integrationIds } = await registerSandboxTenant(harness.pool, harness.sandbox, {
      resourceTypes: ['Patient', 'Observation', 'Condition'],
    });
    const integrationId = integrationIds[0]!;
    await runSync(tenantId, integrationId);

    const modifiedObs = await sandboxAdmin<{ modified: unknown[] }>(harness.sandbox, 'POST', '/admin/records/modify', {
      resourceType: 'Observation',
      count: 5,
    });
    const modifiedPat = await sandboxAdmin<{ modified: unknown[] }>(harness.sandbox, 'POST', '/admin/records/modify', {
      resourceType: 'Patient',
      count: 3,
    });
    await sandboxAdmin(harness.sandbox, 'POST', '/admin/records/create', { resourceType: 'Condition', count: 2 });
    await sandboxAdmin(harness.sandbox, 'POST', '/admin/stats/reset');

    const { report } = await runSync(tenantId, integrationId);
    const stats = await sandboxAdmin<Stats>(harness.sandbox, 'GET', '/admin/stats');
    expect(modifiedObs.modified).toHaveLength(5);
    expect(modifiedPat.modified).toHaveLength(3);
    // The search reaches back by the overlap window before the checkpoint: what it reads again is stored once
    // (unchanged), never twice, and every change is stored.
    expect(report.totals).toMatchObject({ inserted: 2, updated: 8 });
    expect(report.totals.fetched).toBe(10 + report.totals.unchanged);
    expect(stats.served.Encounter).toBe(0);
    for (const type of ['Patient', 'Observation', 'Condition']) {
      const manifest = await sandboxManifest(harness.sandbox, type);
      const stored = await storedVersions(harness.pool, tenantId, integrationId, type);
      expect(stored.size).toBe(manifest.length);
      for (const m of manifest) expect(stored.get(m.id)).toBe(m.versionId);
    }
  });

  it('refreshes a token the vendor expired mid-sync and completes', async () => {
    const { tenantId, integrationIds } = await registerSandboxTenant(harness.pool, harness.sandbox, {
      resourceTypes: ['Observation'],
      alg: 'RS384',
    });
    const integrationId = integrationIds[0]!;
    await sandboxAdmin(harness.sandbox, 'POST', '/admin/stats/reset');
    const handle = await startSync(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, {
      tenantId,
      integrationId,
      vendor: 'sandbox',
    });
    // Wait until a few pages are in, then expire every token the sandbox has issued.
    await expect
      .poll(async () => (await handle.query<{ totals: { pages: number } }>('progress')).totals.pages, {
        timeout: 30_000,
      })
      .toBeGreaterThanOrEqual(2);
    await sandboxAdmin(harness.sandbox, 'POST', '/admin/tokens/expire', {});
    const report = await syncResult(handle);
    const stats = await sandboxAdmin<Stats>(harness.sandbox, 'GET', '/admin/stats');
    const manifest = await sandboxManifest(harness.sandbox, 'Observation');
    expect(report.outcome).toBe('completed');
    expect(report.totals.fetched).toBe(manifest.length);
    expect(stats.rejectedTokens).toBeGreaterThanOrEqual(1);
    expect(stats.tokensIssued).toBeGreaterThanOrEqual(2);
  });

  for (const kind of ['malformed-json', 'wrong-resource-type', 'truncated-body'] as const) {
    it(`fails a ${kind} vendor page non-retryably and writes nothing from it`, async () => {
      const { tenantId, integrationIds } = await registerSandboxTenant(harness.pool, harness.sandbox, {
        resourceTypes: ['Condition'],
      });
      const integrationId = integrationIds[0]!;
      await sandboxAdmin(harness.sandbox, 'POST', '/admin/faults', { kind, resourceType: 'Condition', times: 1 });
      const { handle } = await startSync(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, {
        tenantId,
        integrationId,
        vendor: 'sandbox',
      }).then((h) => ({ handle: h }));
      const failure = await handle.result().then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(failure).toBeInstanceOf(WorkflowFailedError);
      const cause = (failure as WorkflowFailedError).cause?.cause as
        { type?: string; nonRetryable?: boolean; message?: string } | undefined;
      expect(cause?.type).toBe('VENDOR_DATA_MALFORMED');
      expect(cause?.message).toMatch(/malformed Condition page/);
      const history = await handle.fetchHistory();
      const attempts = history.events
        ?.filter((e) => e.activityTaskStartedEventAttributes)
        .map((e) => e.activityTaskStartedEventAttributes!.attempt);
      expect(attempts?.at(-1)).toBe(1); // not retried
      expect((await storedVersions(harness.pool, tenantId, integrationId, 'Condition')).size).toBe(0);
    });
  }
});

describe('vendor throttling and outages', () => {
  it('retries a 503 with Retry-After and a 429, then completes with every record', async () => {
    const { tenantId, integrationIds } = await registerSandboxTenant(harness.pool, harness.sandbox, {
      resourceTypes: ['Condition'],
    });
    const integrationId = integrationIds[0]!;
    await sandboxAdmin(harness.sandbox, 'POST', '/admin/faults', {
      kind: 'status',
      status: 503,
      retryAfterSeconds: 1,
      resourceType: 'Condition',
      times: 1,
    });
    await sandboxAdmin(harness.sandbox, 'POST', '/admin/faults', {
      kind: 'status',
      status: 429,
      retryAfterSeconds: 1,
      resourceType: 'Condition',
      times: 1,
    });
    const { handle, report } = await runSync(tenantId, integrationId);
    expect(report.outcome).toBe('completed');
    expect(report.totals.fetched).toBe((await sandboxManifest(harness.sandbox, 'Condition')).length);
    const failures = await harness.pool.query<{ code: string }>(
      `SELECT details->>'errorCode' AS code FROM audit_events WHERE integration_id = $1
          AND action = 'vendor.call' AND outcome = 'failure' ORDER BY seq`,
      [integrationId],
    );
    expect(failures.rows.map((r) => r.code)).toEqual(['VENDOR_UNAVAILABLE', 'VENDOR_RATE_LIMITED']);
    expect(handle.workflowId).toMatch(new RegExp(`^sync/${tenantId}/${integrationId}/`));
  });
});
