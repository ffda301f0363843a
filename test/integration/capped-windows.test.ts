/**
 * A server that caps its result sets (a search, its Bundle.total included, stops after CAP matches while
 * `_summary=count` counts them all) and offers no `_sort` — HAPI FHIR with a result cap is one. The product reads
 * such a type in consecutive `_lastUpdated` windows, each counted and small enough to be served whole; the stored
 * ids and versions are then exactly the server's. One instant holding more than the cap cannot be read whole
 * without `_sort`: the type is reported incomplete with that instant, and its checkpoint stays before it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSync, syncResult } from '../../client/sync-client.js';
import type { ResourceType } from '../../lib/domain.js';
import { readCheckpoints } from '../../lib/store/checkpoints.js';
import { beginTransaction, modifyTied, setSearchBehaviour } from '../../sandbox/test-bulk.js';
import { registerSandboxTenant, sandboxAdmin, sandboxManifest, storedVersions, useSyncHarness } from './support.js';

const CAP = 30;
const PAGE = 25;
// 140 Observations, 80 Encounters, 40 each of Patient, Condition and MedicationRequest: all over the cap.
const harness = useSyncHarness({ sandbox: { size: 400 }, config: { EHR_SYNC_PAGE_SIZE: String(PAGE) } });

beforeAll(async () => {
  await setSearchBehaviour(harness.sandbox, { capResults: CAP, sortLastUpdated: false });
});
afterAll(async () => {
  await setSearchBehaviour(harness.sandbox, { capResults: null, sortLastUpdated: true });
});

type Integration = { tenantId: string; integrationId: string };

async function runSync(t: Integration, full = false) {
  const handle = await startSync(
    harness.temporal.client,
    harness.config.TEMPORAL_TASK_QUEUE,
    { ...t, vendor: 'sandbox' },
    { full },
  );
  return syncResult(handle);
}

async function integration(types: ResourceType[]): Promise<Integration> {
  const { tenantId, integrationIds } = await registerSandboxTenant(harness.pool, harness.sandbox, {
    resourceTypes: types,
  });
  return { tenantId, integrationId: integrationIds[0]! };
}

/** Modifies `count` records (the sandbox may pick one twice): the ids changed. */
async function modify(resourceType: ResourceType, count: number): Promise<string[]> {
  const res = await sandboxAdmin<{ modified: Array<{ id: string }> }>(
    harness.sandbox,
    'POST',
    '/admin/records/modify',
    {
      resourceType,
      count,
    },
  );
  return res.modified.map((r) => r.id);
}

/** Stored ids and versions equal the server's live records of the type, exactly. */
async function expectExact(t: Integration, type: ResourceType): Promise<void> {
  const manifest = (await sandboxManifest(harness.sandbox, type)).filter((m) => !('deleted' in m));
  const stored = await storedVersions(harness.pool, t.tenantId, t.integrationId, type);
  expect([...stored.keys()].sort(), `${type} ids`).toEqual(manifest.map((m) => m.id).sort());
  for (const m of manifest) expect(stored.get(m.id), `${type}/${m.id}`).toBe(m.versionId);
}

describe('a capped server without _sort, read in counted windows', () => {
  it('really caps and refuses _sort', async () => {
    const base = harness.sandbox.fhirBaseUrl;
    const metadata = await (await fetch(`${base}/metadata`)).text();
    expect(metadata).not.toContain('"_sort"');
    const behaviour = await sandboxAdmin<{ capResults: number; sortLastUpdated: boolean }>(
      harness.sandbox,
      'GET',
      '/admin/search-behaviour',
    );
    expect(behaviour).toMatchObject({ capResults: CAP, sortLastUpdated: false });
    expect(await sandboxManifest(harness.sandbox, 'Observation')).toHaveLength(140);
  });

  it('syncs every capped type whole on a full run: completed, every id and version exact', async () => {
    const t = await integration(['Observation', 'Patient']);
    const report = await runSync(t, true);
    expect(report.outcome).toBe('completed');
    expect(report.incomplete).toBeUndefined();
    for (const type of report.types) {
      expect(type.done, type.resourceType).toBe(true);
      expect(type.inserted, type.resourceType).toBe(type.resourceType === 'Observation' ? 140 : 40);
    }
    await expectExact(t, 'Observation');
    await expectExact(t, 'Patient');
    const checkpoints = await readCheckpoints(harness.pool, t.tenantId, t.integrationId);
    expect([...checkpoints.keys()].sort()).toEqual(['Observation', 'Patient']);
  });

  it('stores updates over the cap, and a transaction that committed during the previous run, each once', async () => {
    const t = await integration(['Encounter']);
    expect((await runSync(t)).outcome).toBe('completed');
    const changed = new Set(await modify('Encounter', 45));
    expect(changed.size).toBeGreaterThan(CAP);
    // Stamped now but invisible until it commits, after the next run has passed its stamp with later writes.
    const tx = await beginTransaction(harness.sandbox, 'Encounter', 12);
    await sandboxAdmin(harness.sandbox, 'POST', '/admin/records/create', { resourceType: 'Encounter', count: 5 });
    const during = await runSync(t);
    expect(during.outcome).toBe('completed');
    expect(during.types[0]).toMatchObject({ updated: changed.size, inserted: 5 });
    await expectExact(t, 'Encounter');

    const committed = new Set((await tx.commit()).map((r) => r.id));
    const after = await runSync(t);
    expect(after.outcome).toBe('completed');
    expect(after.types[0]).toMatchObject({ updated: committed.size, inserted: 0 });
    await expectExact(t, 'Encounter');
  });

  it('reads as many resources as the cap sharing one timestamp, between others, once', async () => {
    const t = await integration(['Condition']);
    expect((await runSync(t)).outcome).toBe('completed');
    const before = await modify('Condition', 6);
    const tied = await modifyTied(harness.sandbox, 'Condition', CAP);
    const after = await modify('Condition', 6);
    expect(new Set(tied.map((r) => r.lastUpdated)).size).toBe(1);
    const changed = new Set([...before, ...tied.map((r) => r.id), ...after]);
    const report = await runSync(t);
    expect(report.outcome).toBe('completed');
    expect(report.types[0]).toMatchObject({ updated: changed.size, inserted: 0 });
    await expectExact(t, 'Condition');
  });

  it('reports an instant holding more than the cap incomplete, keeps its checkpoint before it, reads past it', async () => {
    const t = await integration(['MedicationRequest']);
    expect((await runSync(t)).outcome).toBe('completed');
    const checkpointBefore = (await readCheckpoints(harness.pool, t.tenantId, t.integrationId)).get(
      'MedicationRequest',
    );
    const tied = await modifyTied(harness.sandbox, 'MedicationRequest', CAP + 5);
    const instant = tied[0]!.lastUpdated;
    const tiedIds = new Set(tied.map((r) => r.id));
    const others = (await sandboxManifest(harness.sandbox, 'MedicationRequest')).filter((m) => !tiedIds.has(m.id));
    const later = (
      await sandboxAdmin<{ modified: Array<{ id: string }> }>(harness.sandbox, 'POST', '/admin/records/modify', {
        resourceType: 'MedicationRequest',
        ids: others.slice(0, 3).map((m) => m.id),
      })
    ).modified.map((r) => r.id);
    expect(later).toHaveLength(3);

    const report = await runSync(t);
    expect(report.outcome).toBe('incomplete');
    expect(report.incomplete).toEqual([
      {
        resourceType: 'MedicationRequest',
        reason: 'SYNC_SHORTFALL',
        detail: expect.stringContaining(
          `${new Set(tied.map((r) => r.id)).size} MedicationRequest share lastUpdated ${instant}`,
        ),
      },
    ]);
    expect(report.incomplete![0]!.detail).toContain(`(${CAP})`);
    const checkpoint = (await readCheckpoints(harness.pool, t.tenantId, t.integrationId)).get('MedicationRequest');
    expect(checkpoint).toBe(checkpointBefore);
    expect(Date.parse(checkpoint!)).toBeLessThan(Date.parse(instant));
    // Windows after the instant were still read: those updates are stored at the server's versions.
    const manifest = new Map((await sandboxManifest(harness.sandbox, 'MedicationRequest')).map((m) => [m.id, m]));
    const stored = await storedVersions(harness.pool, t.tenantId, t.integrationId, 'MedicationRequest');
    for (const id of later) {
      expect(Date.parse(manifest.get(id)!.lastUpdated)).toBeGreaterThan(Date.parse(instant));
      expect(stored.get(id), id).toBe(manifest.get(id)!.versionId);
    }
  });
});
