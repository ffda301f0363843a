/**
 * A HAPI FHIR JPA server that caps its result sets (the harness's result cap: every search, its Bundle.total
 * included, stops after about CAP matches) and offers no `_sort` in its CapabilityStatement. The product checks each
 * search against `_summary=count` and reads a capped type whole in consecutive `_lastUpdated` windows, each counted
 * and small enough for HAPI to serve whole: the first run and the runs after updates complete with every stored id
 * and version exactly the server's. HAPI stamps every entry of a transaction with one instant: the data here is
 * written in transactions under the cap, and one transaction over it is an instant no window can read whole without
 * `_sort` — reported incomplete with that instant, the checkpoint kept before it.
 */
import { beforeAll, expect, it } from 'vitest';
import { parseCapabilityStatement } from '../../lib/fhir/capabilities.js';
import { readCheckpoints } from '../../lib/store/checkpoints.js';
import { storedVersions } from '../integration/support.js';
import { describeWhenAvailable } from '../suites-not-run.js';
import { allPages, fhirJson, postBundle, type Bundle, type ResourceRef } from './hapi-fhir.js';
import { loadCorpus, updateInTransaction, type Corpus } from './hapi-data.js';
import { javaAndMaven } from './hapi-requirement.js';
import {
  SYNCED_TYPES,
  checkpoints,
  expectStoredExactly,
  recordCorpusIdentifiers,
  registerHapi,
  runSync,
  typeOf,
  useHapiSync,
  type Ids,
} from './hapi-sync-support.js';

const CAP = 20;
const PATIENTS = 6;
const PER_PATIENT = 2; // 48 Observations (over the cap), 8 per patient; at most 12 of any other type

/** Current versions of these resources, read one by one in a batch (a search would stop at the cap). */
async function versionsOf(base: string, refs: readonly ResourceRef[]): Promise<Map<string, string>> {
  const answer = await postBundle(
    base,
    'batch',
    refs.map((r) => ({ request: { method: 'GET', url: `${r.type}/${r.id}` } })),
  );
  const out = new Map<string, string>();
  for (const e of answer.entry ?? []) {
    if (e.resource?.id && e.resource.meta?.versionId) out.set(e.resource.id, e.resource.meta.versionId);
  }
  expect(out.size).toBe(refs.length);
  return out;
}

/** Updates in transactions of at most `per` resources each (HAPI stamps a transaction's entries alike). */
async function updateInTransactionsOf(base: string, refs: readonly ResourceRef[], per: number): Promise<void> {
  for (let i = 0; i < refs.length; i += per) await updateInTransaction(base, refs.slice(i, i + per));
}

describeWhenAvailable(
  __filename,
  'the product syncing from a HAPI FHIR JPA server that caps its results',
  [javaAndMaven],
  () => {
    const h = useHapiSync({ hapi: { resultCap: CAP }, config: { EHR_SYNC_PAGE_SIZE: '10' } });
    let base: string;
    let corpus: Corpus;
    let ids: Ids;
    let sortable: boolean;

    beforeAll(async () => {
      base = h.hapi.baseUrl;
      // One transaction per patient: HAPI stamps its entries alike, and 8 Observations are under the cap.
      corpus = await loadCorpus(base, { patients: PATIENTS, perPatient: PER_PATIENT, patientsPerBundle: 1 });
      recordCorpusIdentifiers(PATIENTS);
      ids = await registerHapi(h);
      const metadata = Buffer.from(await (await fetch(`${base}/metadata`)).text());
      sortable = parseCapabilityStatement(metadata).sortable.includes('Observation');
    }, 300_000);

    const under = SYNCED_TYPES.filter((t) => t !== 'Observation');
    /** Stored Observations are exactly the server's, id for id and version for version. */
    const expectObservationsExact = async () => {
      const server = await versionsOf(base, corpus.byType.Observation!);
      const stored = await storedVersions(h.harness.pool, ids.tenantId, ids.integrationId, 'Observation');
      expect([...stored.entries()].sort()).toEqual([...server.entries()].sort());
    };

    it('really caps, without _sort: a search stops short while _summary=count counts every match', async () => {
      expect(sortable, 'HAPI offers no _sort: the counted windows are what this suite proves').toBe(false);
      const observations = corpus.byType.Observation!.length;
      expect(observations).toBeGreaterThan(CAP + 10);
      // Pages of the product's size stop short of the matches.
      const pages = await allPages(`${base}/Observation?_count=10`, { fresh: true });
      expect(pages.entries.length).toBeLessThan(observations);
      const count = await fhirJson<Bundle>(`${base}/Observation?_summary=count`, { fresh: true });
      expect(count.total).toBe(observations);
      for (const type of under) expect(corpus.byType[type]!.length, type).toBeLessThan(CAP);
    });

    it('reads the capped type whole in counted windows: completed, every id and version exact', async () => {
      const first = await runSync(h, ids, true);
      expect(first.outcome).toBe('completed');
      expect(first.incomplete).toBeUndefined();
      const obs = typeOf(first, 'Observation');
      expect(obs).toMatchObject({ done: true, inserted: corpus.byType.Observation!.length });
      await expectStoredExactly(h, ids, under);
      await expectObservationsExact();
      const cps = await checkpoints(h, ids);
      for (const type of SYNCED_TYPES) expect(cps.has(type), type).toBe(true);
    });

    it('stores every update over the following runs once: completed, exact', async () => {
      await updateInTransactionsOf(base, corpus.byType.Observation!.slice(0, 30), 10);
      await updateInTransaction(base, corpus.byType.Condition!.slice(0, 3));
      const second = await runSync(h, ids);
      expect(second.outcome).toBe('completed');
      expect(typeOf(second, 'Observation')).toMatchObject({ updated: 30, inserted: 0 });
      expect(typeOf(second, 'Condition')).toMatchObject({ updated: 3, inserted: 0 });
      await expectStoredExactly(h, ids, under);
      await expectObservationsExact();
      const third = await runSync(h, ids);
      expect(third.outcome).toBe('completed');
      expect(typeOf(third, 'Observation')).toMatchObject({ updated: 0, inserted: 0 });
      await expectObservationsExact();
    });

    it('reports one transaction updating more than the cap (one instant) incomplete, its checkpoint before it', async () => {
      const before = (await readCheckpoints(h.harness.pool, ids.tenantId, ids.integrationId)).get('Observation');
      const big = corpus.byType.Observation!.slice(0, 2 * CAP);
      const updated = await updateInTransaction(base, big);
      const stamp = (await fhirJson(`${base}/Observation/${updated[0]!.id}`, { fresh: true })).meta?.lastUpdated;
      const report = await runSync(h, ids);
      expect(report.outcome).toBe('incomplete');
      expect(report.incomplete).toEqual([
        {
          resourceType: 'Observation',
          reason: 'SYNC_SHORTFALL',
          detail: expect.stringMatching(new RegExp(`^${big.length} Observation share lastUpdated `)),
        },
      ]);
      expect(typeOf(report, 'Condition').incompleteReason).toBeUndefined();
      const after = (await readCheckpoints(h.harness.pool, ids.tenantId, ids.integrationId)).get('Observation');
      expect(after).toBe(before);
      expect(Date.parse(after!)).toBeLessThan(Date.parse(stamp!));
    });
  },
);
