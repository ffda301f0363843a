/**
 * Revocation fails closed (issue 4 item 4): two running workers (this process and a child process on
 * the same task queue) under a running sync; `revokeIntegration` returns once both have confirmed;
 * from then on no request with the old access token reaches the vendor (the sandbox's ledger), the
 * sync fails at its next call with INTEGRATION_REVOKED, the tokens were revoked at the vendor
 * (RFC 7009), everything is audited, and `restoreIntegration` issues a new key that syncs again.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { startSync, syncProgress, syncResult } from '../../client/sync-client.js';
import { IntegrationRevokedError } from '../../lib/errors/index.js';
import { getIntegration } from '../../lib/integrations/repository.js';
import { RevocationWatcher } from '../../lib/revocation/watcher.js';
import { restoreIntegration } from '../../lib/revocation/restore.js';
import { revokeIntegration } from '../../lib/revocation/revoke.js';
import { testEnv } from '../harness.js';
import { startChildWorker } from './child-worker.js';
import { registerSandboxTenant, sandboxAdmin, sandboxManifest, testActor, useSyncHarness } from './support.js';

const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ehr-revocation-logs-'));
const harness = useSyncHarness({ sandbox: { size: 1000 }, config: { EHR_SYNC_PAGE_SIZE: '5' } });

const ledger = (since = 0) => harness.sandbox.ledger(since);

async function auditActions(
  integrationId: string,
): Promise<Array<{ action: string; outcome: string; actor: string; correlation_id: string }>> {
  const res = await harness.pool.query<{ action: string; outcome: string; actor: string; correlation_id: string }>(
    'SELECT action, outcome, actor, correlation_id FROM audit_events WHERE integration_id = $1 ORDER BY seq',
    [integrationId],
  );
  return res.rows;
}

describe('revocation', () => {
  it('stops both workers before revoke returns, fails the sync with INTEGRATION_REVOKED, and restore syncs with a new key', async () => {
    const child = await startChildWorker(harness.config, path.join(logDir, 'child-worker.log'));
    try {
      const { tenantId, integrationIds } = await registerSandboxTenant(harness.pool, harness.sandbox, {
        resourceTypes: ['Patient'],
      });
      const integrationId = integrationIds[0]!;
      const before = await getIntegration(harness.pool, integrationId);
      const handle = await startSync(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, {
        tenantId,
        integrationId,
        vendor: 'sandbox',
      });
      // Both workers are fetching pages: two different access tokens served.
      await expect
        .poll(async () => new Set((await ledger()).filter((e) => e.status === 200).map((e) => e.tokenHash)).size, {
          timeout: 60_000,
          interval: 100,
        })
        .toBeGreaterThanOrEqual(2);
      expect((await syncProgress(handle)).status).not.toBe('completed');

      const result = await revokeIntegration(harness.pool, integrationId, testActor, { reason: 'test containment' });
      const returnedMs = Date.now();
      const oldTokens = new Set((await ledger()).filter((e) => e.atMs <= returnedMs).map((e) => e.tokenHash));
      expect(result.alreadyRevoked).toBe(false);
      expect(result.generation).toBe(before.credentialGeneration + 1);
      expect(result.workers).toBeGreaterThanOrEqual(2);
      expect(result.acknowledged).toBe(result.workers);

      // The sync stops at its next call, non-retryably, with the named error.
      const failure = await handle.result().then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(failure).toBeInstanceOf(WorkflowFailedError);
      const cause = (failure as WorkflowFailedError).cause?.cause as { type?: string } | undefined;
      expect(cause?.type).toBe('INTEGRATION_REVOKED');

      // The guarantee: nothing with an old token arrived after revoke returned (0 ms grace).
      const late = (await ledger(returnedMs + 1)).filter((e) => oldTokens.has(e.tokenHash));
      expect(late).toEqual([]);
      // And the vendor was told (RFC 7009): both workers revoked the token they held.
      const stats = await sandboxAdmin<{ tokensRevoked: number }>(harness.sandbox, 'GET', '/admin/stats');
      expect(stats.tokensRevoked).toBeGreaterThanOrEqual(1);

      const events = await auditActions(integrationId);
      const revoked = events.find((e) => e.action === 'integration.revoked');
      expect(revoked).toMatchObject({
        outcome: 'success',
        actor: testActor.actor,
        correlation_id: testActor.correlationId,
      });
      expect(events.find((e) => e.action === 'integration.revocation_propagated')?.outcome).toBe('success');
      expect(
        events.filter((e) => e.action === 'vendor.token_revocation' && e.outcome === 'success').length,
      ).toBeGreaterThanOrEqual(2);

      // Restore: a fresh key registered with the vendor, a new generation, and a sync that completes.
      const restored = await restoreIntegration(harness.pool, integrationId, testActor, {
        secretsDir: testEnv().secretsDir,
        sandboxAdmin: { url: harness.sandbox.url, adminToken: harness.sandbox.adminToken },
      });
      expect(restored.status).toBe('active');
      expect(restored.signingKid).not.toBe(before.signingKid);
      expect(restored.credentialGeneration).toBe(result.generation + 1);
      const again = await startSync(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, {
        tenantId,
        integrationId,
        vendor: 'sandbox',
      });
      const report = await syncResult(again);
      expect(report.outcome).toBe('completed');
      expect(report.totals.fetched).toBe((await sandboxManifest(harness.sandbox, 'Patient')).length);
      expect((await auditActions(integrationId)).some((e) => e.action === 'integration.restored')).toBe(true);
    } finally {
      child.child.kill('SIGTERM');
      await child.exited;
    }
  });

  it('refuses a revoked integration from the database on every call while the watcher is disconnected', async () => {
    const { integrationIds } = await registerSandboxTenant(harness.pool, harness.sandbox, {
      resourceTypes: ['Patient'],
    });
    const integrationId = integrationIds[0]!;
    const watcher = new RevocationWatcher({ databaseUrl: testEnv().databaseUrl, db: harness.pool });
    await watcher.start();
    try {
      expect(watcher.connected).toBe(true);
      expect((await watcher.check(integrationId)).status).toBe('active'); // now cached in memory
      watcher.simulateDisconnect({ reconnect: false });
      expect(watcher.connected).toBe(false);
      // No notification can reach it; the cache must not be trusted.
      await revokeIntegration(harness.pool, integrationId, testActor, { awaitWorkersMs: 0 });
      await expect(watcher.check(integrationId)).rejects.toBeInstanceOf(IntegrationRevokedError);
      await expect(watcher.check(integrationId)).rejects.toMatchObject({ code: 'INTEGRATION_REVOKED' });
    } finally {
      await watcher.close();
    }
  });

  it('a connected watcher learns of a revocation by notification', async () => {
    const { integrationIds } = await registerSandboxTenant(harness.pool, harness.sandbox, {
      resourceTypes: ['Patient'],
    });
    const integrationId = integrationIds[0]!;
    const watcher = new RevocationWatcher({ databaseUrl: testEnv().databaseUrl, db: harness.pool });
    await watcher.start();
    try {
      await watcher.check(integrationId);
      const seen = new Promise<string>((resolve) =>
        watcher.onChange((s) => {
          if (s.integrationId === integrationId) resolve(s.status);
        }),
      );
      await revokeIntegration(harness.pool, integrationId, testActor, { awaitWorkersMs: 0 });
      expect(await seen).toBe('revoked');
      await expect(watcher.check(integrationId)).rejects.toBeInstanceOf(IntegrationRevokedError);
    } finally {
      await watcher.close();
    }
  });
});
