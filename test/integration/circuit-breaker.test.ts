/**
 * The circuit breaker per integration during a real sync: a burst of 503s opens it (visible where
 * `ehrctl integrations list` reads it), the next attempt fails fast without reaching the vendor, the
 * half-open probe after the cool-down closes it, and the sync completes with every record stored
 * exactly once.
 */
import { describe, expect, it } from 'vitest';
import { startSync, syncResult } from '../../client/sync-client.js';
import { readIntegrationHealth } from '../../lib/integrations/health.js';
import { registerSandboxTenant, sandboxAdmin, sandboxManifest, storedVersions, useSyncHarness } from './support.js';

const harness = useSyncHarness({
  sandbox: { size: 700 },
  config: { EHR_SYNC_PAGE_SIZE: '20', EHR_CIRCUIT_BREAKER: 'strict', EHR_CIRCUIT_COOLDOWN_MS: '3000' },
});

async function breakerState(integrationId: string): Promise<string> {
  return (await readIntegrationHealth(harness.pool, [integrationId])).get(integrationId)?.breakerState ?? 'closed';
}

describe('circuit breaker', () => {
  it('opens on a 5xx burst, fails fast, closes on the half-open probe, and the sync loses and duplicates nothing', async () => {
    const { tenantId, integrationIds } = await registerSandboxTenant(harness.pool, harness.sandbox, {
      resourceTypes: ['Patient'],
    });
    const integrationId = integrationIds[0]!;
    // strict preset: 3 consecutive failures open the breaker; each 503 asks for a 1 s wait.
    await sandboxAdmin(harness.sandbox, 'POST', '/admin/faults', {
      kind: 'status',
      status: 503,
      retryAfterSeconds: 1,
      resourceType: 'Patient',
      times: 3,
    });
    const searchesBefore = (await sandboxAdmin<{ searchRequests: number }>(harness.sandbox, 'GET', '/admin/stats'))
      .searchRequests;

    const handle = await startSync(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, {
      tenantId,
      integrationId,
      vendor: 'sandbox',
    });
    await expect.poll(() => breakerState(integrationId), { timeout: 30_000, interval: 100 }).toBe('open');
    const open = (await readIntegrationHealth(harness.pool, [integrationId])).get(integrationId)!;
    expect(open).toMatchObject({ tenantId, consecutiveFailures: 3, lastErrorCode: 'VENDOR_UNAVAILABLE' });
    expect(open.retryAt!.getTime()).toBeGreaterThan(open.updatedAt.getTime());

    const report = await syncResult(handle);
    expect(report.outcome).toBe('completed');
    await expect.poll(() => breakerState(integrationId), { timeout: 10_000, interval: 100 }).toBe('closed');
    // The outage's start, probe and end are in the audit trail, in that order.
    const transitions = async () =>
      (
        await harness.pool.query<{ action: string }>(
          `SELECT action FROM audit_events WHERE integration_id = $1
              AND action LIKE 'integration.circuit_%' ORDER BY seq`,
          [integrationId],
        )
      ).rows.map((r) => r.action);
    await expect
      .poll(transitions, { timeout: 10_000, interval: 100 })
      .toEqual(['integration.circuit_open', 'integration.circuit_half_open', 'integration.circuit_closed']);

    const manifest = await sandboxManifest(harness.sandbox, 'Patient');
    const stored = await storedVersions(harness.pool, tenantId, integrationId, 'Patient');
    expect(stored.size).toBe(manifest.length);
    for (const m of manifest) expect(stored.get(m.id), m.id).toBe(m.versionId);
    expect(report.totals).toMatchObject({
      fetched: manifest.length,
      inserted: manifest.length,
      updated: 0,
      unchanged: 0,
    });

    // While open, an attempt was refused here (audited) instead of reaching the vendor: the vendor
    // saw the 3 failed searches (the count before the first page), then the count and the pages.
    const calls = await harness.pool.query<{ error_code: string | null }>(
      `SELECT details->>'errorCode' AS error_code FROM audit_events WHERE integration_id = $1
          AND action = 'vendor.call' ORDER BY seq`,
      [integrationId],
    );
    expect(calls.rows.filter((r) => r.error_code === 'VENDOR_CIRCUIT_OPEN').length).toBeGreaterThanOrEqual(1);
    const searches =
      (await sandboxAdmin<{ searchRequests: number }>(harness.sandbox, 'GET', '/admin/stats')).searchRequests -
      searchesBefore;
    expect(searches).toBe(3 + 1 + report.totals.pages);
  });
});
