/**
 * The product's search strategy against HAPI FHIR JPA (a server this project did not write; HAPI's defaults, its
 * 60 s search reuse included), through an open `fhir-server` integration on loopback: a full sync of a generated
 * corpus, an incremental sync after updates, deletions on an incremental and a full sync, and a search cache left
 * on. After each, the stored ids and versions are exactly the server's; BP and lab panels keep their structure.
 * The transaction that commits during a sync is in hapi-sync-race.test.ts.
 */
import { beforeAll, expect, it } from 'vitest';
import type { ResourceType } from '../../lib/domain.js';
import { parseCapabilityStatement } from '../../lib/fhir/capabilities.js';
import { describeWhenAvailable } from '../suites-not-run.js';
import { allPages, fhirJson, postBundle, type Bundle, type ResourceRef } from './hapi-fhir.js';
import { deleteResources, loadCorpus, readResource, updateInTransaction, type Corpus } from './hapi-data.js';
import { javaAndMaven } from './hapi-requirement.js';
import {
  SYNCED_TYPES,
  checkpoints,
  decryptStored,
  expectStoredExactly,
  recordCorpusIdentifiers,
  registerHapi,
  runSync,
  tombstones,
  typeOf,
  useHapiSync,
  type Ids,
} from './hapi-sync-support.js';

const PATIENTS = 16;
const PER_PATIENT = 2;
const PAGE = 40;

describeWhenAvailable(__filename, 'the product syncing from HAPI FHIR JPA (search)', [javaAndMaven], () => {
  const h = useHapiSync({ config: { EHR_SYNC_PAGE_SIZE: String(PAGE) } });
  let base: string;
  let corpus: Corpus;
  let ids: Ids;

  beforeAll(async () => {
    base = h.hapi.baseUrl;
    corpus = await loadCorpus(base, { patients: PATIENTS, perPatient: PER_PATIENT, patientsPerBundle: 8 });
    recordCorpusIdentifiers(PATIENTS);
    ids = await registerHapi(h);
  }, 300_000);

  const countOf = (type: ResourceType) => corpus.byType[type]?.length ?? 0;

  it('a full sync stores every resource of every type exactly, BP and lab panels whole', async () => {
    const report = await runSync(h, ids, true);
    expect(report.outcome).toBe('completed');
    expect(report.incomplete).toBeUndefined();
    for (const type of SYNCED_TYPES) {
      expect(typeOf(report, type), type).toMatchObject({ fetched: countOf(type), inserted: countOf(type), updated: 0 });
      expect(countOf(type), type).toBeGreaterThan(0);
    }
    expect(typeOf(report, 'Observation').pages).toBeGreaterThan(1);
    await expectStoredExactly(h, ids);

    const [bpId] = await idsWithCode('85354-9');
    const bp = await decryptStored(h, ids, 'Observation', bpId!);
    const bpAtServer = await readResource(base, { type: 'Observation', id: bpId! });
    expect(bp.component).toEqual(bpAtServer.component);
    expect(codesOf(bp.component)).toEqual(['8480-6', '8462-4']);
    const quantities = (bp.component as Array<{ valueQuantity?: { value?: unknown; unit?: unknown } }>).map((c) => [
      typeof c.valueQuantity?.value,
      c.valueQuantity?.unit,
    ]);
    expect(quantities).toEqual([
      ['number', 'mm[Hg]'],
      ['number', 'mm[Hg]'],
    ]);

    const [panelId] = await idsWithCode('24323-8');
    const panel = await decryptStored(h, ids, 'Observation', panelId!);
    const panelAtServer = await readResource(base, { type: 'Observation', id: panelId! });
    expect(panel.hasMember).toEqual(panelAtServer.hasMember);
    const members = (panel.hasMember as Array<{ reference: string }>).map((m) => m.reference);
    expect(members).toHaveLength(2);
    const memberIds = new Set(corpus.byType.Observation!.map((r) => `Observation/${r.id}`));
    expect(members.every((m) => memberIds.has(m))).toBe(true);
  });

  it('an incremental sync after updates counts only the changes as inserted or updated', async () => {
    const changed = [
      ...corpus.byType.Patient!.slice(0, 3),
      ...corpus.byType.Observation!.slice(5, 12),
      ...corpus.byType.Condition!.slice(0, 4),
    ];
    await updateInTransaction(base, changed);
    const created = await createResources('Patient', 2);
    const report = await runSync(h, ids);
    expect(report.outcome).toBe('completed');
    for (const type of SYNCED_TYPES) {
      const t = typeOf(report, type);
      const expected = { inserted: created.filter((r) => r.type === type).length };
      expect({ inserted: t.inserted, updated: t.updated }, type).toEqual({
        ...expected,
        updated: changed.filter((r) => r.type === type).length,
      });
      // The overlap window reads some unchanged resources again; they are counted as such, never stored twice.
      expect(t.fetched, type).toBe(t.inserted + t.updated + t.unchanged);
    }
    await expectStoredExactly(h, ids);
  });

  it('deletions become tombstones: on an incremental sync, and on a full sync after more deletions', async () => {
    const first = [...corpus.byType.Condition!.slice(4, 7), ...corpus.byType.MedicationRequest!.slice(0, 2)];
    await deleteResources(base, first);
    const incremental = await runSync(h, ids);
    expect(incremental.outcome).toBe('completed');
    expect(typeOf(incremental, 'Condition').deleted).toBe(3);
    expect(typeOf(incremental, 'MedicationRequest').deleted).toBe(2);
    expect(incremental.totals.deleted).toBe(first.length);
    await expectStoredExactly(h, ids);

    const second = [...corpus.byType.AllergyIntolerance!.slice(0, 2), ...corpus.byType.Condition!.slice(7, 8)];
    await deleteResources(base, second);
    const full = await runSync(h, ids, true);
    expect(full.outcome).toBe('completed');
    expect(typeOf(full, 'AllergyIntolerance').deleted).toBe(2);
    expect(typeOf(full, 'Condition').deleted).toBe(1);
    expect(full.totals.deleted).toBe(second.length);
    expect(full.totals.inserted).toBe(0);
    await expectStoredExactly(h, ids);

    const gone = [...first, ...second].map((r) => ({ type: r.type, id: r.id, how: 'history' }));
    const byKey = (a: { type: string; id: string }, b: { type: string; id: string }) =>
      a.type === b.type ? a.id.localeCompare(b.id) : a.type.localeCompare(b.type);
    expect((await tombstones(h, ids)).sort(byKey)).toEqual(gone.sort(byKey));
  });

  it("leaves HAPI's 60 s search reuse on, and the next sync still sees changes made right after a sync", async () => {
    const quiet = await runSync(h, ids);
    expect(quiet.totals.inserted + quiet.totals.updated).toBe(0);
    // The Observation search the next sync sends (its checkpoint less the overlap, sorted if HAPI says it can be),
    // asked once without no-cache. HAPI keeps the matches as a result set and answers the same search from it
    // for 60 s: resources created since then are not in it (updated ones come at their current version).
    const since = (await checkpoints(h, ids)).get('Observation')!;
    const from = new Date(Date.parse(since) - 300_000).toISOString();
    const sortable = parseCapabilityStatement(Buffer.from(await (await fetch(`${base}/metadata`)).text())).sortable;
    const search = new URL(`${base}/Observation`);
    search.searchParams.set('_lastUpdated', `ge${from}`);
    search.searchParams.set('_count', String(PAGE));
    if (sortable.includes('Observation')) search.searchParams.set('_sort', '_lastUpdated');
    const primed = await allPages(search.toString());
    expect(primed.pages).toBeGreaterThan(1);
    const changed = corpus.byType.Observation!.slice(20, 26);
    await updateInTransaction(base, changed);
    const created = await createResources('Observation', 4);
    const cached = await allPages(search.toString());
    expect(cached.entries).toHaveLength(primed.entries.length);
    const cachedIds = new Set(cached.entries.map((e) => e.resource!.id!));
    expect(created.filter((r) => cachedIds.has(r.id))).toEqual([]);

    const report = await runSync(h, ids);
    expect(typeOf(report, 'Observation')).toMatchObject({ inserted: created.length, updated: changed.length });
    expect(report.totals.inserted + report.totals.updated).toBe(created.length + changed.length);
    await expectStoredExactly(h, ids);
  });

  async function idsWithCode(code: string): Promise<string[]> {
    const bundle = await fhirJson<Bundle>(`${base}/Observation?code=http://loinc.org|${code}&_count=5&_elements=id`, {
      fresh: true,
    });
    return (bundle.entry ?? []).map((e) => e.resource!.id!);
  }

  /** New Patients, or new Observations of the corpus's first patient. */
  async function createResources(type: 'Patient' | 'Observation', n: number): Promise<ResourceRef[]> {
    const subject = { reference: `Patient/${corpus.patients[0]!.id}` };
    const entries = Array.from({ length: n }, (_, i) => ({
      resource:
        type === 'Patient'
          ? { resourceType: type, name: [{ family: `SyntheticNew${i}` }] }
          : { resourceType: type, status: 'final', code: { text: 'Synthetic late reading' }, subject },
      request: { method: 'POST', url: type },
    }));
    const res = await postBundle(base, 'transaction', entries);
    return (res.entry ?? []).map((e) => {
      const m = /^(\w+)\/([^/]+)\//.exec(e.response!.location!);
      return { type: m![1]!, id: m![2]!, versionId: '1' };
    });
  }
});

function codesOf(components: unknown): string[] {
  return (components as Array<{ code: { coding: Array<{ code: string }> } }>).map((c) => c.code.coding[0]!.code);
}
