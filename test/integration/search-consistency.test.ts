/**
 * Incremental search reads that lose nothing, against the sandbox's consistency behaviours (each modelled on what
 * a real server did): a transaction stamped before the checkpoint but committed after it, a server that caps its
 * result set while its Bundle.total agrees with the cap, many resources sharing one timestamp across a page
 * boundary, a search cache, and deletions. After each, the stored ids and versions are exactly the server's.
 */
import { describe, expect, it } from 'vitest';
import { startSync, syncResult } from '../../client/sync-client.js';
import type { ResourceType } from '../../lib/domain.js';
import { beginTransaction, deleteRecords, modifyTied, setSearchBehaviour } from '../../sandbox/test-bulk.js';
import { registerSandboxTenant, sandboxAdmin, sandboxManifest, storedVersions, useSyncHarness } from './support.js';

const PAGE = 40;
const harness = useSyncHarness({ sandbox: { size: 400 }, config: { EHR_SYNC_PAGE_SIZE: String(PAGE) } });

async function runSync(tenantId: string, integrationId: string, full = false) {
  const handle = await startSync(
    harness.temporal.client,
    harness.config.TEMPORAL_TASK_QUEUE,
    { tenantId, integrationId, vendor: 'sandbox' },
    { full },
  );
  return syncResult(handle);
}

async function freshIntegration(types: ResourceType[]) {
  const { tenantId, integrationIds } = await registerSandboxTenant(harness.pool, harness.sandbox, {
    resourceTypes: types,
  });
  const integrationId = integrationIds[0]!;
  const first = await runSync(tenantId, integrationId);
  expect(first.outcome).toBe('completed');
  return { tenantId, integrationId };
}

/** Modifies `count` records (the sandbox may pick one twice); how many distinct records changed. */
async function modifiedIds(resourceType: ResourceType, count: number): Promise<number> {
  const res = await sandboxAdmin<{ modified: Array<{ id: string }> }>(
    harness.sandbox,
    'POST',
    '/admin/records/modify',
    {
      resourceType,
      count,
    },
  );
  return new Set(res.modified.map((r) => r.id)).size;
}

/** Stored ids and versions equal the server's live records of the type, exactly. */
async function expectExact(t: { tenantId: string; integrationId: string }, type: ResourceType): Promise<void> {
  const manifest = (await sandboxManifest(harness.sandbox, type)).filter((m) => !('deleted' in m));
  const stored = await storedVersions(harness.pool, t.tenantId, t.integrationId, type);
  expect([...stored.keys()].sort(), `${type} ids`).toEqual(manifest.map((m) => m.id).sort());
  for (const m of manifest) expect(stored.get(m.id), `${type}/${m.id}`).toBe(m.versionId);
}

describe('incremental search that loses nothing', () => {
  it('stores the writes of a transaction that committed during the previous sync', async () => {
    const t = await freshIntegration(['Observation']);
    const tx = await beginTransaction(harness.sandbox, 'Observation', 30);
    // Later writes, visible at once: the next sync's checkpoint passes the transaction's stamp.
    await sandboxAdmin(harness.sandbox, 'POST', '/admin/records/create', { resourceType: 'Observation', count: 5 });
    const during = await runSync(t.tenantId, t.integrationId);
    expect(during.totals.inserted).toBe(5);
    const committed = new Set((await tx.commit()).map((r) => r.id));
    expect(committed.size).toBeGreaterThan(20);

    const after = await runSync(t.tenantId, t.integrationId);
    expect(after.outcome).toBe('completed');
    expect(after.totals.updated).toBe(committed.size);
    await expectExact(t, 'Observation');
  });

  it('reads past a server that caps its result set and says its total is the cap', async () => {
    const t = await freshIntegration(['Observation']);
    const modified = await modifiedIds('Observation', 150);
    await setSearchBehaviour(harness.sandbox, { capResults: 60 });
    try {
      const report = await runSync(t.tenantId, t.integrationId);
      expect(report.outcome).toBe('completed');
      expect(report.totals.updated).toBe(modified);
      await expectExact(t, 'Observation');
    } finally {
      await setSearchBehaviour(harness.sandbox, { capResults: null });
    }
  });

  it('reads every one of many resources sharing one timestamp across a page boundary, none twice', async () => {
    const t = await freshIntegration(['Condition']);
    const tied = await modifyTied(harness.sandbox, 'Condition', PAGE + PAGE / 2);
    expect(new Set(tied.map((r) => r.lastUpdated)).size).toBe(1);
    const report = await runSync(t.tenantId, t.integrationId);
    expect(report.totals.updated).toBe(tied.length);
    expect(report.totals.inserted).toBe(0);
    expect(report.totals.fetched).toBe(tied.length + report.totals.unchanged);
    await expectExact(t, 'Condition');
  });

  it('asks for fresh results from a server that caches searches', async () => {
    const t = await freshIntegration(['Patient']);
    await setSearchBehaviour(harness.sandbox, { cacheSeconds: 60 });
    try {
      await runSync(t.tenantId, t.integrationId);
      const modified = await modifiedIds('Patient', 7);
      const report = await runSync(t.tenantId, t.integrationId);
      expect(report.totals.updated).toBe(modified);
      await expectExact(t, 'Patient');
    } finally {
      await setSearchBehaviour(harness.sandbox, { cacheSeconds: null });
    }
  });

  it('removes what the server deleted, on an incremental and on a full sync, and reports it', async () => {
    const t = await freshIntegration(['Encounter']);
    const first = await deleteRecords(harness.sandbox, 'Encounter', { count: 4 });
    const incremental = await runSync(t.tenantId, t.integrationId);
    expect(incremental.types[0]!.deleted).toBe(first.length);
    await expectExact(t, 'Encounter');

    const second = await deleteRecords(harness.sandbox, 'Encounter', { count: 3 });
    const full = await runSync(t.tenantId, t.integrationId, true);
    expect(full.types[0]!.deleted).toBe(second.length);
    await expectExact(t, 'Encounter');
    const { rows } = await harness.pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM record_tombstones WHERE tenant_id = $1 AND learned_how = 'history'`,
      [t.tenantId],
    );
    expect(Number(rows[0]!.n)).toBe(first.length + second.length);
  });
});
