/**
 * The product's Bulk Data strategy against HAPI FHIR JPA's `$export` (system level; HAPI's own job engine, its
 * files served by HAPI's Binary endpoint): the nightly sync runs its bulkExport child, and the stored ids and
 * versions are exactly HAPI's. The next run sends `_since` = the previous manifest's transactionTime; HAPI exports
 * only what changed since, and the stored set is exact again.
 *
 * HAPI's status answers carry `Retry-After: 120` (an export of this corpus is ready in about 2 s) and the product
 * waits what the vendor asks, so each export would take over two minutes: the shared instance says 1 s instead
 * (SHARED_HAPI_SETTINGS, interop.bulk-retry-after-seconds; nothing else of HAPI's answer changes). This file's data
 * is in a partition of its own on the run's shared server, so a system-level export is this file's corpus only.
 */
import { beforeAll, expect, it } from 'vitest';
import { describeWhenAvailable } from '../suites-not-run.js';
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

const PATIENTS = 10;
const PER_PATIENT = 2;
const EXPORT_MS = 120_000;

describeWhenAvailable(__filename, 'the product exporting from HAPI FHIR JPA (bulk)', [javaAndMaven], () => {
  const h = useHapiSync();
  let base: string;
  let corpus: Corpus;
  let ids: Ids;

  beforeAll(async () => {
    base = h.hapi.baseUrl;
    corpus = await loadCorpus(base, { patients: PATIENTS, perPatient: PER_PATIENT });
    recordCorpusIdentifiers(PATIENTS);
    ids = await registerHapi(h, { read: { strategy: 'bulk', bulkLevel: 'system' } });
  }, 300_000);

  it(
    'a system-level $export stores every resource of every type exactly, checkpoints at its transactionTime',
    async () => {
      const report = await runSync(h, ids, true);
      expect(report.outcome).toBe('completed');
      for (const type of SYNCED_TYPES) {
        const n = corpus.byType[type]!.length;
        expect(typeOf(report, type), type).toMatchObject({ fetched: n, inserted: n, updated: 0, done: true });
      }
      await expectStoredExactly(h, ids);
      const cps = await checkpoints(h, ids);
      const stamps = new Set(SYNCED_TYPES.map((t) => cps.get(t)));
      expect(stamps.size).toBe(1);
      expect(Date.parse([...stamps][0]!)).toBeGreaterThan(Date.now() - 600_000);
    },
    EXPORT_MS,
  );

  it('the next $export sends _since, HAPI exports only the changes, and the stored set is exact again', async () => {
    const before = await checkpoints(h, ids);
    const changed = [...corpus.byType.Observation!.slice(0, 6), ...corpus.byType.Patient!.slice(0, 2)];
    await updateInTransaction(base, changed);
    const report = await runSync(h, ids);
    expect(report.outcome).toBe('completed');
    for (const type of SYNCED_TYPES) {
      const n = changed.filter((r) => r.type === type).length;
      expect(typeOf(report, type), type).toMatchObject({ fetched: n, updated: n, inserted: 0 });
    }
    await expectStoredExactly(h, ids);
    const after = await checkpoints(h, ids);
    for (const type of SYNCED_TYPES)
      expect(Date.parse(after.get(type)!)).toBeGreaterThan(Date.parse(before.get(type)!));
  });
});
