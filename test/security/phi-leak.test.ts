/**
 * Invariant 1 and 6: no synthetic identifying string from the sandbox appears in any workflow
 * history produced by a sync (payloads decoded and scanned), in any log line the worker wrote, or
 * in any audit row. The scanner is first shown to find a planted string, so it cannot pass vacuously.
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { startSync, syncResult } from '../../client/sync-client.js';
import { logFile, registerSandboxTenant, sandboxAdmin, useSyncHarness } from '../integration/support.js';
import { findLeaks, historyText } from './leak-scan.js';

const harness = useSyncHarness({ sandbox: { seed: 11, size: 600 }, config: { EHR_SYNC_PAGE_SIZE: '50' } });

describe('PHI leak scan', () => {
  it('finds no synthetic identifier in histories, worker logs or audit rows of a real sync', async () => {
    const { strings } = await sandboxAdmin<{ strings: string[] }>(harness.sandbox, 'GET', '/admin/identifiers');
    expect(strings.length).toBeGreaterThan(100);
    // The scanner finds what it must: a planted identifier inside base64 payload-like data and plain text.
    expect(findLeaks(`xx ${strings[3]} yy`, strings)).toEqual([strings[3]]);

    const { tenantId, integrationIds } = await registerSandboxTenant(harness.pool, harness.sandbox, {
      integrations: 2,
    });
    // Both integrations sync side by side: a full sync each, then 10 patients change, then an incremental each.
    const syncAll = () =>
      Promise.all(
        integrationIds.map(async (integrationId) => {
          const handle = await startSync(harness.temporal.client, harness.config.TEMPORAL_TASK_QUEUE, {
            tenantId,
            integrationId,
            vendor: 'sandbox',
          });
          await syncResult(handle);
          return handle;
        }),
      );
    const fulls = await syncAll();
    await sandboxAdmin(harness.sandbox, 'POST', '/admin/records/modify', { resourceType: 'Patient', count: 10 });
    const incrementals = await syncAll();
    const handles = [...fulls, ...incrementals];
    expect(handles).toHaveLength(4);

    for (const handle of handles) {
      const text = historyText(await handle.fetchHistory());
      expect(text.length).toBeGreaterThan(1000);
      expect(findLeaks(text, strings), handle.workflowId).toEqual([]);
    }
    const logs = fs.readFileSync(logFile, 'utf8');
    expect(findLeaks(logs, strings)).toEqual([]);
    const audit = await harness.pool.query<{ row: string }>(
      'SELECT row_to_json(a)::text AS row FROM audit_events a WHERE tenant_id = $1',
      [tenantId],
    );
    expect(audit.rows.length).toBeGreaterThan(10);
    expect(findLeaks(audit.rows.map((r) => r.row).join('\n'), strings)).toEqual([]);
  });
});
