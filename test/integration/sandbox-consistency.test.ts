/**
 * The sandbox's consistency behaviours for incremental-sync tests, over real HTTP: Bundle.total and
 * _summary=count, deletions (search, 410, _history), a transaction visible only at commit, a lying
 * result-set cap, ties at a page boundary, a 60-second search cache, page-size clamping, patient-scoped
 * and _id searches, and the patient index agreeing with the generated references.
 */
import { NOT_PATIENT_SCOPED } from '../../lib/sync/read-strategy.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RESOURCE_TYPES } from '../../lib/domain.js';
import { startSandbox, type SandboxHandle } from '../../sandbox/index.js';
import { patientIndexOf } from '../../sandbox/patient-index.js';
import { RecordStore } from '../../sandbox/store.js';
import { adminJson, createTestClient } from '../../sandbox/test-client.js';
import { beginTransaction, deleteRecords, modifyTied, setSearchBehaviour } from '../../sandbox/test-bulk.js';

type Bundle = {
  total?: number;
  entry?: Array<{
    resource?: { id: string; meta: { lastUpdated: string } };
    request?: { method: string; url: string };
  }>;
  link: Array<{ relation: string; url: string }>;
};

let sb: SandboxHandle;
let token: string;
beforeAll(async () => {
  sb = await startSandbox({ size: 500 });
  const client = await createTestClient(sb, { scopes: ['system/*.rs'] });
  token = await client.token();
});
afterAll(async () => {
  await sb.close();
});

async function get(path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Bundle }> {
  const url = path.startsWith('http') ? path : `${sb.fhirBaseUrl}/${path}`;
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}`, ...headers } });
  return { status: res.status, body: (await res.json()) as Bundle };
}

async function all(path: string, headers: Record<string, string> = {}): Promise<{ ids: string[]; totals: number[] }> {
  const ids: string[] = [];
  const totals: number[] = [];
  for (let url: string | undefined = path; url;) {
    const { status, body } = await get(url, headers);
    expect(status).toBe(200);
    ids.push(...(body.entry ?? []).map((e) => e.resource?.id as string));
    totals.push(body.total as number);
    url = body.link.find((l) => l.relation === 'next')?.url;
  }
  return { ids, totals };
}

describe('sandbox consistency behaviours', () => {
  it('Bundle.total and _summary=count tell the true count', async () => {
    const manifest = await adminJson<{ records: unknown[] }>(sb, '/admin/manifest?type=Condition');
    expect((await get('Condition?_count=5')).body.total).toBe(manifest.records.length);
    const count = await get('Condition?_summary=count');
    expect(count.body.total).toBe(manifest.records.length);
    expect(count.body.entry).toBeUndefined();
  });

  it('deleted records: searches omit them, reads answer 410, _history lists them as DELETE entries', async () => {
    const since = new Date(Date.now() - 1).toISOString();
    const before = (await get('AllergyIntolerance?_summary=count')).body.total as number;
    const gone = await deleteRecords(sb, 'AllergyIntolerance', { count: 3 });
    expect((await get('AllergyIntolerance?_summary=count')).body.total).toBe(before - 3);
    const { ids } = await all('AllergyIntolerance?_count=1000');
    for (const g of gone) expect(ids).not.toContain(g.id);
    expect((await get(`AllergyIntolerance/${gone[0]?.id}`)).status).toBe(410);
    const history = await get(`AllergyIntolerance/_history?_since=${encodeURIComponent(since)}`);
    const deletes = (history.body.entry ?? []).filter((e) => e.request?.method === 'DELETE');
    expect(deletes.map((e) => e.request?.url.split('/')[1]).sort()).toEqual(gone.map((g) => g.id).sort());
  });

  it('a transaction stamped at its start is invisible until commit, then appears with the early lastUpdated', async () => {
    const tx = await beginTransaction(sb, 'Encounter', 4);
    await new Promise((r) => setTimeout(r, 5));
    const later = await adminJson<{ modified: Array<{ lastUpdated: string }> }>(sb, '/admin/records/modify', {
      resourceType: 'Encounter',
      count: 1,
    });
    const newest = later.modified[0]?.lastUpdated as string;
    const after = `Encounter?_lastUpdated=ge${encodeURIComponent(tx.startedAt)}&_count=100`;
    expect((await all(after)).ids).toHaveLength(1);
    const committed = await tx.commit();
    expect(committed.every((c) => c.lastUpdated === tx.startedAt)).toBe(true);
    expect(committed.every((c) => c.lastUpdated < newest)).toBe(true);
    const seen = (await all(after)).ids;
    expect(seen).toHaveLength(5);
    // A sync that resumed strictly after the newest lastUpdated it saw misses every committed write.
    expect((await all(`Encounter?_lastUpdated=gt${encodeURIComponent(newest)}`)).ids).toHaveLength(0);
  });

  it('a result-set cap: searches stop at N and say total N, _summary=count tells the truth', async () => {
    const truth = (await get('Observation?_summary=count')).body.total as number;
    await setSearchBehaviour(sb, { capResults: 30 });
    const { ids, totals } = await all('Observation?_count=7');
    expect(ids).toHaveLength(30);
    expect(new Set(totals)).toEqual(new Set([30]));
    expect((await get('Observation?_summary=count')).body.total).toBe(truth);
    await setSearchBehaviour(sb, { capResults: null });
  });

  it('many records sharing one lastUpdated page across a boundary without loss or repetition', async () => {
    const tied = await modifyTied(sb, 'MedicationRequest', 12);
    expect(new Set(tied.map((t) => t.lastUpdated)).size).toBe(1);
    const at = tied[0]?.lastUpdated as string;
    const { ids } = await all(`MedicationRequest?_lastUpdated=ge${encodeURIComponent(at)}&_count=5`);
    expect(ids.sort()).toEqual(tied.map((t) => t.id).sort());
  });

  it('a search cache answers identical searches from memory unless Cache-Control: no-cache', async () => {
    await setSearchBehaviour(sb, { cacheSeconds: 60 });
    const q = 'Appointment?_count=1000';
    const first = (await all(q)).ids.length;
    await adminJson(sb, '/admin/records/create', { resourceType: 'Appointment', count: 2 });
    expect((await all(q)).ids).toHaveLength(first);
    expect((await all(q, { 'cache-control': 'no-cache' })).ids).toHaveLength(first + 2);
    await setSearchBehaviour(sb, { cacheSeconds: null });
  });

  it('a larger _count is clamped to the maximum page size', async () => {
    await setSearchBehaviour(sb, { maxPageSize: 4 });
    const page = await get('Patient?_count=50');
    expect(page.body.entry).toHaveLength(4);
    expect(new URL(page.body.link.find((l) => l.relation === 'next')?.url as string).searchParams.get('_count')).toBe(
      '4',
    );
    await setSearchBehaviour(sb, { maxPageSize: 5000 });
  });

  it("patient-scoped and _id searches answer exactly the patient's records", async () => {
    const store = new RecordStore(42, 500);
    const obs = store.manifest('Observation');
    const patientIdx = patientIndexOf(42, store.ctx.patientCount, 'Observation', obs[0]?.index as number);
    const patientId = store.render(store.ref('Patient', patientIdx)!).id as string;
    const expected = obs.filter(
      (r) => patientIndexOf(42, store.ctx.patientCount, 'Observation', r.index) === patientIdx,
    );
    const { ids } = await all(`Observation?patient=Patient/${patientId}&_count=2`);
    expect(ids.sort()).toEqual(expected.map((r) => r.id).sort());
    const byId = await get(`Patient?_id=${patientId}`);
    expect(byId.body.entry?.map((e) => e.resource?.id)).toEqual([patientId]);
  });

  it("the patient index agrees with every generated record's patient reference", () => {
    const store = new RecordStore(7, 300);
    for (const type of RESOURCE_TYPES) {
      if (type === 'Patient') continue;
      for (const ref of store.manifest(type).slice(0, 40)) {
        const json = JSON.stringify(store.render(ref));
        const m = /"reference":"Patient\/([^"]+)"/.exec(json);
        // Directory types (Practitioner, Organization…) belong to no patient: nothing to index.
        if (NOT_PATIENT_SCOPED.has(type)) {
          expect(m).toBeNull();
          continue;
        }
        const expected = store.ref('Patient', patientIndexOf(7, store.ctx.patientCount, type, ref.index))?.id;
        expect(m?.[1]).toBe(expected);
      }
    }
  });
});
