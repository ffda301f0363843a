/**
 * Durability: the worker process is SIGKILLed in the middle of a sync and started again. The sync
 * completes with every sandbox record stored exactly once. Also: SIGTERM drains and exits 0.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startSync, syncProgress, syncResult } from '../../client/sync-client.js';
import { KILLED_WORKER_CONFIG, startChildWorker } from './child-worker.js';
import { findLeaks } from '../security/leak-scan.js';
import { registerSandboxTenant, sandboxAdmin, sandboxManifest, storedVersions, useSyncHarness } from './support.js';

const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ehr-worker-logs-'));

const harness = useSyncHarness({
  sandbox: { size: 2000 },
  config: { EHR_SYNC_PAGE_SIZE: '25', ...KILLED_WORKER_CONFIG },
  worker: false,
});

describe('worker crash', () => {
  it('a SIGKILLed worker is restarted and the sync completes with no lost and no duplicated record', async () => {
    const types = ['Encounter', 'Observation'];
    const { tenantId, integrationIds } = await registerSandboxTenant(harness.pool, harness.sandbox, {
      resourceTypes: types,
    });
    const integrationId = integrationIds[0]!;
    const first = await startChildWorker(harness.config, path.join(logDir, 'worker-1.log'));
    // A dead worker's page is retried elsewhere after 8 s without a heartbeat instead of the preset's 20 s (a page
    // heartbeats as it fetches and as it stores): the test waits less for the crash to be noticed. A page
    // retried while still running is one the assertions below already allow for (found stored, counted unchanged).
    const handle = await startSync(
      harness.temporal.client,
      harness.config.TEMPORAL_TASK_QUEUE,
      { tenantId, integrationId, vendor: 'sandbox' },
      { pageHeartbeatTimeoutSeconds: 8 },
    );
    let pagesAtCrash = 0;
    await expect
      .poll(async () => (pagesAtCrash = (await syncProgress(handle)).totals.pages), { timeout: 60_000, interval: 100 })
      .toBeGreaterThanOrEqual(3);
    first.child.kill('SIGKILL');
    await first.exited;

    const second = await startChildWorker(harness.config, path.join(logDir, 'worker-2.log'));
    try {
      const report = await syncResult(handle);
      expect(report.outcome).toBe('completed');
      expect(report.totals.pages).toBeGreaterThan(pagesAtCrash);
      let expected = 0;
      for (const type of types) {
        const manifest = await sandboxManifest(harness.sandbox, type);
        const stored = await storedVersions(harness.pool, tenantId, integrationId, type);
        expected += manifest.length;
        expect(stored.size).toBe(manifest.length);
        for (const m of manifest) expect(stored.get(m.id)).toBe(m.versionId);
      }
      // A page whose commit raced the crash is re-run: its records are found stored (counted
      // unchanged), never inserted twice. So inserted <= expected, and inserted + unchanged covers all.
      expect(report.totals.inserted).toBeLessThanOrEqual(expected);
      expect(report.totals.inserted + report.totals.unchanged).toBeGreaterThanOrEqual(expected);
      expect(report.totals.updated).toBe(0);
      const rows = await harness.pool.query<{ n: string }>('SELECT count(*) AS n FROM records WHERE tenant_id = $1', [
        tenantId,
      ]);
      expect(Number(rows.rows[0]!.n)).toBe(expected);
    } finally {
      second.child.kill('SIGTERM');
      expect(await second.exited).toBe(0);
    }
    // Nothing identifying reached either worker's log, crash included.
    const { strings } = await sandboxAdmin<{ strings: string[] }>(harness.sandbox, 'GET', '/admin/identifiers');
    const logs = fs.readFileSync(first.logPath, 'utf8') + fs.readFileSync(second.logPath, 'utf8');
    expect(logs).toContain('worker drained and stopped');
    expect(findLeaks(logs, strings)).toEqual([]);
  });
});
