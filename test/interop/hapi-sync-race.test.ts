/**
 * A HAPI FHIR JPA transaction that commits while the product's sync is reading: HAPI stamps the transaction's
 * resources before they become visible, so a sync can read past their stamp without seeing them (its checkpoint
 * then lies after updates it never stored). The race is made to happen — a write of its own lands after the
 * transaction began, and the sync runs before it commits — and checked to have happened; the next sync then
 * stores every update of the transaction, none twice.
 */
import { beforeAll, expect, it } from 'vitest';
import { sleep } from '../../dev/process.js';
import { storedVersions } from '../integration/support.js';
import { describeWhenAvailable } from '../suites-not-run.js';
import { allPages, type ResourceRef } from './hapi-fhir.js';
import { loadCorpus, updateInTransaction, type Corpus } from './hapi-data.js';
import { javaAndMaven } from './hapi-requirement.js';
import {
  checkpoints,
  expectStoredExactly,
  recordCorpusIdentifiers,
  registerHapi,
  runSync,
  typeOf,
  useHapiSync,
  type Ids,
} from './hapi-sync-support.js';

const PATIENTS = 40;
const PER_PATIENT = 4; // 16 Observations each: 640
const ATTEMPTS = 4;

describeWhenAvailable(__filename, 'the product syncing from HAPI FHIR JPA during a transaction', [javaAndMaven], () => {
  const h = useHapiSync({ config: { EHR_SYNC_PAGE_SIZE: '100' } });
  let base: string;
  let corpus: Corpus;
  let ids: Ids;

  beforeAll(async () => {
    base = h.hapi.baseUrl;
    corpus = await loadCorpus(base, { patients: PATIENTS, perPatient: PER_PATIENT, patientsPerBundle: 10 });
    recordCorpusIdentifiers(PATIENTS);
    ids = await registerHapi(h, { types: ['Observation'] });
    expect((await runSync(h, ids, true)).outcome).toBe('completed');
  }, 300_000);

  it('stores every update of a transaction that committed during the previous sync, none twice', async () => {
    const [own, ...rest] = corpus.byType.Observation!;
    let raced: { missed: ResourceRef[]; stampedBeforeCheckpoint: number } | undefined;
    for (let attempt = 1; attempt <= ATTEMPTS && !raced; attempt++) {
      const transaction = updateInTransaction(base, rest);
      // Let the transaction begin (its batch read, then its writes), then a write of our own that commits at once.
      await sleep(400 * attempt);
      await updateInTransaction(base, [own!]);
      const during = await runSync(h, ids);
      expect(during.outcome).toBe('completed');
      const committed = await transaction;
      const checkpoint = (await checkpoints(h, ids)).get('Observation')!;
      const stored = await storedVersions(h.harness.pool, ids.tenantId, ids.integrationId, 'Observation');
      const missed = committed.filter((r) => stored.get(r.id) !== r.versionId);
      const stamps = await lastUpdatedOf(missed);
      const stampedBeforeCheckpoint = missed.filter((r) => stamps.get(r.id)! <= Date.parse(checkpoint)).length;
      if (stampedBeforeCheckpoint > 0) {
        raced = { missed, stampedBeforeCheckpoint };
        break;
      }
      // No race this time (the transaction committed before the sync read it, or the sync ran first): catch up.
      await runSync(h, ids);
      await expectStoredExactly(h, ids, ['Observation']);
    }
    expect(raced, `a sync ran while the transaction was uncommitted, in ${ATTEMPTS} attempts`).toBeDefined();

    const after = await runSync(h, ids);
    expect(after.outcome).toBe('completed');
    expect(typeOf(after, 'Observation')).toMatchObject({ updated: raced!.missed.length, inserted: 0 });
    await expectStoredExactly(h, ids, ['Observation']);
  });

  /** Each resource's meta.lastUpdated on the server now (ms since the epoch). */
  async function lastUpdatedOf(refs: readonly ResourceRef[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (let i = 0; i < refs.length; i += 100) {
      const chunk = refs.slice(i, i + 100).map((r) => r.id);
      const { entries } = await allPages(`${base}/Observation?_id=${chunk.join(',')}&_count=100&_elements=id`, {
        fresh: true,
      });
      for (const e of entries) out.set(e.resource!.id!, Date.parse(e.resource!.meta!.lastUpdated!));
    }
    return out;
  }
});
