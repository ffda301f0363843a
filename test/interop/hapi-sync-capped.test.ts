/**
 * A HAPI FHIR JPA server that caps its result sets (the harness's result cap: every search, its Bundle.total
 * included, stops after about CAP matches). The product checks each search against `_summary=count`: it reads a
 * capped type in consecutive windows when HAPI's CapabilityStatement offers `_sort`, else it reports the type
 * incomplete (SYNC_SHORTFALL) and leaves its checkpoint. Which one applies is read from HAPI's own metadata, and
 * the product is held to it; types under the cap are stored exactly either way.
 */
import { beforeAll, expect, it } from 'vitest';
import { parseCapabilityStatement } from '../../lib/fhir/capabilities.js';
import { storedVersions } from '../integration/support.js';
import { describeWhenAvailable } from '../suites-not-run.js';
import { allPages, fhirJson, type Bundle } from './hapi-fhir.js';
import { currentVersions, loadCorpus, updateInTransaction, type Corpus } from './hapi-data.js';
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
const PER_PATIENT = 2; // 48 Observations (over the cap); at most 12 of any other type

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
      corpus = await loadCorpus(base, { patients: PATIENTS, perPatient: PER_PATIENT });
      recordCorpusIdentifiers(PATIENTS);
      ids = await registerHapi(h);
      const metadata = Buffer.from(await (await fetch(`${base}/metadata`)).text());
      sortable = parseCapabilityStatement(metadata).sortable.includes('Observation');
    }, 300_000);

    const under = SYNCED_TYPES.filter((t) => t !== 'Observation');

    it('really caps: a search stops short while _summary=count counts every match', async () => {
      const observations = corpus.byType.Observation!.length;
      expect(observations).toBeGreaterThan(CAP + 10);
      // Pages of the product's size stop short of the matches.
      const pages = await allPages(`${base}/Observation?_count=10`, { fresh: true });
      expect(pages.entries.length).toBeLessThan(observations);
      const count = await fhirJson<Bundle>(`${base}/Observation?_summary=count`, { fresh: true });
      expect(count.total).toBe(observations);
      for (const type of under) expect(corpus.byType[type]!.length, type).toBeLessThan(CAP);
    });

    it('reads every capped type whole if HAPI offers _sort, else reports it incomplete and keeps no checkpoint', async () => {
      const first = await runSync(h, ids, true);
      const obs = typeOf(first, 'Observation');
      await expectStoredExactly(h, ids, under);
      for (const type of under) expect(typeOf(first, type).incompleteReason, type).toBeUndefined();
      if (sortable) {
        expect(first.outcome).toBe('completed');
        expect(obs.inserted).toBe(corpus.byType.Observation!.length);
        await expectStoredExactly(h, ids);
        return;
      }
      expect(first.outcome).toBe('incomplete');
      expect(first.incomplete).toEqual([
        { resourceType: 'Observation', reason: 'SYNC_SHORTFALL', detail: expect.stringMatching(/counted 48 /) },
      ]);
      expect(obs.done).toBe(false);
      const cps = await checkpoints(h, ids);
      expect(cps.has('Observation')).toBe(false);
      for (const type of under) expect(cps.has(type), type).toBe(true);
      // What it did read is stored at the server's versions, nothing invented.
      const server = await currentVersions(base, 'Observation');
      const stored = await storedVersions(h.harness.pool, ids.tenantId, ids.integrationId, 'Observation');
      expect(stored.size).toBe(obs.fetched);
      for (const [id, version] of stored) expect(server.get(id), id).toBe(version);
    });

    it('loses nothing over the following runs: updates, more runs, every stored version exact or the type still flagged', async () => {
      const changed = [...corpus.byType.Observation!.slice(0, 30), ...corpus.byType.Condition!.slice(0, 3)];
      await updateInTransaction(base, changed);
      const second = await runSync(h, ids);
      const third = await runSync(h, ids);
      expect(typeOf(second, 'Condition')).toMatchObject({ updated: 3, inserted: 0 });
      await expectStoredExactly(h, ids, under);
      if (sortable) {
        expect([second.outcome, third.outcome]).toEqual(['completed', 'completed']);
        expect(typeOf(second, 'Observation').updated).toBe(30);
        await expectStoredExactly(h, ids);
        return;
      }
      for (const report of [second, third]) {
        expect(report.outcome).toBe('incomplete');
        expect(report.incomplete?.map((t) => t.resourceType)).toEqual(['Observation']);
      }
      expect((await checkpoints(h, ids)).has('Observation')).toBe(false);
    });
  },
);
