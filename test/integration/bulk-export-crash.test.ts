/**
 * Durability of a Bulk Data download: the worker process is SIGKILLed in the middle of a large NDJSON file
 * and started again. The retried activity downloads the file again, skips the lines its last heartbeat
 * had committed and goes on: every resource is stored exactly once and counted once.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decodeFromPayloadsAtIndex } from '@temporalio/common/lib/internal-non-workflow';
import { describe, expect, it } from 'vitest';
import { bulkLog, setBulkBehaviour } from '../../sandbox/test-bulk.js';
import { findLeaks } from '../security/leak-scan.js';
import { startBulkExport } from './bulk-support.js';
import { KILLED_WORKER_CONFIG, startChildWorker } from './child-worker.js';
import { registerSandboxTenant, sandboxAdmin, sandboxManifest, storedVersions, useSyncHarness } from './support.js';

const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ehr-bulk-worker-logs-'));
// 52,500 Observations in one file: long enough to be read for seconds however fast the store path gets.
const harness = useSyncHarness({ sandbox: { size: 150_000 }, config: KILLED_WORKER_CONFIG, worker: false });
/** The worker's store batch (workers/build-deps.ts): a resumed attempt repeats at most the uncommitted tail. */
const BATCH = 1_000;
/**
 * A dead worker's download is retried once Temporal misses its heartbeats this long: 10 s instead of the preset's
 * 30 s (the download heartbeats at least every 5 s, after each committed batch in between), so the test waits
 * 20 s less for the crash to be noticed. Resuming after the last heartbeat is what it checks, not the timeout.
 */
const HEARTBEAT_TIMEOUT_SECONDS = 10;

describe('bulk export: worker crash mid-download', () => {
  it('a SIGKILLed worker is restarted and every resource of the file is stored exactly once', async () => {
    await setBulkBehaviour(harness.sandbox, { retryAfterSeconds: 1 });
    const { tenantId, integrationIds } = await registerSandboxTenant(harness.pool, harness.sandbox, {
      resourceTypes: ['Observation'],
    });
    const integrationId = integrationIds[0]!;
    const first = await startChildWorker(harness.config, path.join(logDir, 'worker-1.log'));
    const handle = await startBulkExport(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, {
      tenantId,
      integrationId,
      types: ['Observation'],
      fileHeartbeatTimeoutSeconds: HEARTBEAT_TIMEOUT_SECONDS,
    });
    const stored = async (): Promise<number> =>
      (await storedVersions(harness.pool, tenantId, integrationId, 'Observation')).size;
    // The line the server holds as the download's last heartbeat (what a retried attempt resumes after).
    const heartbeatLine = async (): Promise<number> => {
      const { client } = harness.temporal;
      const { raw } = await client.workflow.getHandle(handle.workflowId).describe();
      const payloads = raw.pendingActivities?.[0]?.heartbeatDetails?.payloads;
      if (!payloads?.length) return 0;
      const details = await decodeFromPayloadsAtIndex<{ line: number }>(
        client.options.loadedDataConverter,
        0,
        payloads,
      );
      return details?.line ?? 0;
    };
    // Kill once the server holds a heartbeat after two committed batches: the retry must resume, not restart.
    let atCrash = 0;
    await expect.poll(async () => (await heartbeatLine()) >= 2 * BATCH, { timeout: 120_000, interval: 100 }).toBe(true);
    atCrash = await stored();
    first.child.kill('SIGKILL');
    await first.exited;
    const manifest = await sandboxManifest(harness.sandbox, 'Observation');
    expect(atCrash).toBeLessThan(manifest.length);

    const second = await startChildWorker(harness.config, path.join(logDir, 'worker-2.log'));
    try {
      const result = await handle.result();
      const obs = result.types[0]!;
      const versions = await storedVersions(harness.pool, tenantId, integrationId, 'Observation');
      expect(versions).toEqual(new Map(manifest.map((m) => [m.id, m.versionId])));
      // Counted once: fetched is the file's lines, not lines plus the re-read ones.
      expect(obs).toMatchObject({ files: 1, expected: manifest.length, fetched: manifest.length, malformedLines: 0 });
      expect(obs.inserted + obs.unchanged).toBe(manifest.length);
      // Resumed, not restarted: only the tail after the last heartbeat is stored again (found unchanged).
      expect(obs.unchanged).toBeLessThan(atCrash);
      expect(obs.checkpoint).toBe(result.transactionTime);
      const downloads = (await bulkLog(harness.sandbox)).downloads.filter((d) => d.status === 200);
      expect(downloads).toHaveLength(2);
    } finally {
      second.child.kill('SIGTERM');
      expect(await second.exited).toBe(0);
    }
    const { strings } = await sandboxAdmin<{ strings: string[] }>(harness.sandbox, 'GET', '/admin/identifiers');
    const logs = fs.readFileSync(first.logPath, 'utf8') + fs.readFileSync(second.logPath, 'utf8');
    expect(findLeaks(logs, strings)).toEqual([]);
  }, 240_000);
});
