/**
 * The product's patient strategy and Group-level Bulk Data `$export` against HAPI FHIR JPA (a server this project
 * did not write), each on its own tenant and integration, data in this file's partition of the shared server.
 *
 * The patient strategy (`--strategy patient --group-id …`): the roster is a Group loaded into HAPI; each type is
 * read per roster patient (`[type]?patient=…`, `_lastUpdated` on incremental runs). Patients outside the Group are
 * never read; a stored patient who left the Group is read once more (Patient only), so one deleted at HAPI
 * becomes a tombstone (410 on read); records deleted at HAPI are learned from each type's `_history`. Group
 * `$export` (`--strategy bulk --bulk-level group`): HAPI's own export of the Group's patient compartments; the second
 * run sends `_since`; HAPI's manifest lists no deletions, so each type's `_history` after the export tells them.
 */
import { beforeAll, expect, it } from 'vitest';
import type { ResourceType } from '../../lib/domain.js';
import { storedVersions } from '../integration/support.js';
import { describeWhenAvailable } from '../suites-not-run.js';
import { fhirJson, postBundle, refFromLocation, type FhirResource, type ResourceRef } from './hapi-fhir.js';
import {
  currentVersionsByType,
  deleteResources,
  loadCorpus,
  resourcesPerPatient,
  updateInTransaction,
  type Corpus,
} from './hapi-data.js';
import { javaAndMaven } from './hapi-requirement.js';
import {
  SYNCED_TYPES,
  checkpoints,
  recordCorpusIdentifiers,
  registerHapi,
  runSync,
  tombstones,
  typeOf,
  useHapiSync,
  type HapiSync,
  type Ids,
} from './hapi-sync-support.js';

const PATIENTS = 8;
const PER_PATIENT = 2;
/** Patients 0–5 are the roster Group; 6 and 7 are patients of the server the integration must not read. */
const ROSTER = [0, 1, 2, 3, 4, 5];
/** The Group that Group-level $export exports (patients 6 and 7 are outside it). */
const EXPORT_GROUP = [0, 3, 4];
const EXPORT_MS = 120_000;

describeWhenAvailable(
  __filename,
  'the product reading HAPI FHIR JPA patient by patient, and by Group $export',
  [javaAndMaven],
  () => {
    const h = useHapiSync({ config: { EHR_SYNC_PAGE_SIZE: '5' } });
    let base: string;
    let corpus: Corpus;
    /** Every resource of patient i (the Patient first), as loaded; later versions are read from the server. */
    let owned: ResourceRef[][];
    let rosterGroup: string;

    beforeAll(async () => {
      base = h.hapi.baseUrl;
      corpus = await loadCorpus(base, { patients: PATIENTS, perPatient: PER_PATIENT, patientsPerBundle: 4 });
      recordCorpusIdentifiers(PATIENTS);
      const per = resourcesPerPatient(PER_PATIENT);
      owned = corpus.patients.map((_, i) => corpus.refs.slice(i * per, (i + 1) * per));
      expect(owned.map((refs) => refs[0]!.id)).toEqual(corpus.patients.map((p) => p.id));
      rosterGroup = await createGroup(ROSTER);
    }, 300_000);

    patientStrategyTests();
    groupExportTests();

    function patientStrategyTests(): void {
      let ids: Ids;
      /** What this integration should hold: the ids of resources it has read (the server says at which version). */
      const reached = new Set<string>();
      const reach = (refs: readonly ResourceRef[]) => refs.forEach((r) => reached.add(key(r)));

      it('a full sync reads exactly the roster patients’ resources, every type, at the server’s versions', async () => {
        ids = await registerHapi(h, { read: { strategy: 'patient', groupId: rosterGroup } });
        const report = await runSync(h, ids, true);
        expect(report.outcome).toBe('completed');
        expect(report.skipped).toEqual([]);
        ROSTER.forEach((i) => reach(owned[i]!));
        for (const type of SYNCED_TYPES) {
          const n = ROSTER.flatMap((i) => owned[i]!).filter((r) => r.type === type).length;
          expect(n, type).toBeGreaterThan(0);
          expect(typeOf(report, type), type).toMatchObject({ fetched: n, inserted: n, updated: 0, done: true });
        }
        // Each patient's 8 Observations span two pages of 5: the counts above hold only if next links are followed.
        await expectStored(h, ids, reached);
        expect((await checkpoints(h, ids)).size).toBe(SYNCED_TYPES.length);
      });

      it('an incremental sync stores exactly the roster patients’ changes, and none of the others', async () => {
        const changed = [
          owned[0]![0]!, // a Patient
          ...ofType(owned[1]!, 'Observation').slice(0, 3),
          ...ofType(owned[2]!, 'Condition'),
          ...ofType(owned[5]!, 'MedicationRequest').slice(0, 1),
        ];
        const outside = [owned[6]![0]!, ...ofType(owned[7]!, 'Observation').slice(0, 2)];
        await updateInTransaction(base, [...changed, ...outside]);
        const created = await createObservation(corpus.patients[3]!.id);
        owned[3]!.push(created);
        reach([created]);

        const report = await runSync(h, ids);
        expect(report.outcome).toBe('completed');
        for (const type of SYNCED_TYPES) {
          const t = typeOf(report, type);
          const updated = changed.filter((r) => r.type === type).length;
          const inserted = type === 'Observation' ? 1 : 0;
          expect({ inserted: t.inserted, updated: t.updated }, type).toEqual({ inserted, updated });
          // The overlap window reads recent unchanged resources again: counted as such, never stored twice.
          expect(t.fetched, type).toBe(t.inserted + t.updated + t.unchanged);
        }
        await expectStored(h, ids, reached);
      });

      it('a patient deleted at HAPI with its records: every one a tombstone; a patient who only left is kept', async () => {
        const left = corpus.patients[1]!; // leaves the Group, stays at HAPI
        const deleted = corpus.patients[2]!; // leaves the Group and is deleted with all of its records
        await putGroupMembers(
          rosterGroup,
          ROSTER.filter((i) => i !== 1 && i !== 2),
        );
        await deleteResources(base, owned[2]!);

        const report = await runSync(h, ids);
        expect(report.outcome).toBe('completed');
        // The Patient read answers 410 (the patient is re-read once off the roster); the records no per-patient
        // search reaches any more are learned from each type's `_history`, which HAPI offers.
        expect(typeOf(report, 'Patient')).toMatchObject({ deleted: 1, inserted: 0, updated: 0 });
        for (const type of SYNCED_TYPES) {
          const n = ofType(owned[2]!, type).length;
          expect(typeOf(report, type).deleted ?? 0, type).toBe(n);
        }
        expect(report.totals.deleted).toBe(owned[2]!.length);
        // Every record's tombstone says `history` but the Patient's, which the read's 410 tombstoned first. HAPI's
        // deletion entries carry no `response.lastModified`: stamped with the moment they were learned, they never
        // move a tombstone already there (a later learning would block a version re-created in between).
        const gone = owned[2]!.map((r) => ({
          type: r.type,
          id: r.id,
          how: r.type === 'Patient' ? 'read-gone' : 'history',
        }));
        expect((await tombstones(h, ids)).sort(byKey)).toEqual(gone.sort(byKey));
        owned[2]!.forEach((r) => reached.delete(key(r)));
        // The patient who left is read again (Patient only) and kept at the server's version, with the records
        // last read (the patient strategy reads no type but Patient for anyone off the roster).
        const stored = await storedVersions(h.harness.pool, ids.tenantId, ids.integrationId, 'Patient');
        expect(stored.has(left.id)).toBe(true);
        expect(stored.has(deleted.id)).toBe(false);
        await expectStored(h, ids, reached);
      });

      it('a record of a roster patient deleted at HAPI becomes a tombstone, on a full sync too', async () => {
        // A BP panel of a roster patient (no other resource refers to it, so HAPI lets it go alone).
        const bp = ofType(owned[3]!, 'Observation')[0]!;
        const bpNow = await fhirJson<FhirResource>(`${base}/Observation/${bp.id}`, { fresh: true });
        expect((bpNow.code as { text?: string }).text).toBe('Blood pressure panel');
        await deleteResources(base, [bp]);
        reached.delete(key(bp));
        const report = await runSync(h, ids, true);
        expect(report.outcome).toBe('completed');
        expect(report.totals.deleted).toBe(1);
        expect(typeOf(report, 'Observation').deleted).toBe(1);
        expect(await tombstones(h, ids)).toContainEqual({ type: 'Observation', id: bp.id, how: 'history' });
        await expectStored(h, ids, reached);
      });
    }

    function groupExportTests(): void {
      let ids: Ids;
      const exported = new Set<string>();

      it(
        'a Group-level $export stores exactly the Group’s patients and their records, checkpoints at its transactionTime',
        async () => {
          const group = await createGroup(EXPORT_GROUP);
          ids = await registerHapi(h, { read: { strategy: 'bulk', bulkLevel: 'group', groupId: group } });
          const server = await currentVersionsByType(base, SYNCED_TYPES);
          for (const i of EXPORT_GROUP) for (const r of owned[i]!) if (server[r.type]?.has(r.id)) exported.add(key(r));
          const report = await runSync(h, ids, true);
          expect(report.outcome).toBe('completed');
          for (const type of SYNCED_TYPES) {
            const n = [...exported].filter((k) => k.startsWith(`${type}/`)).length;
            expect(n, type).toBeGreaterThan(0);
            expect(typeOf(report, type), type).toMatchObject({ fetched: n, inserted: n, updated: 0, done: true });
          }
          await expectStored(h, ids, exported);
          const stamps = new Set((await checkpoints(h, ids)).values());
          expect(stamps.size).toBe(1);
        },
        EXPORT_MS,
      );

      it(
        'the next Group $export sends _since: HAPI exports only the members’ changes, and the stored set is exact',
        async () => {
          const before = await checkpoints(h, ids);
          const changed = [owned[0]![0]!, ...ofType(owned[3]!, 'Condition'), ...ofType(owned[4]!, 'Encounter')];
          const outside = [owned[5]![0]!, ...ofType(owned[6]!, 'Condition')];
          await updateInTransaction(base, [...changed, ...outside]);
          const report = await runSync(h, ids);
          expect(report.outcome).toBe('completed');
          for (const type of SYNCED_TYPES) {
            const n = changed.filter((r) => r.type === type).length;
            expect(typeOf(report, type), type).toMatchObject({ fetched: n, updated: n, inserted: 0 });
          }
          await expectStored(h, ids, exported);
          const after = await checkpoints(h, ids);
          for (const type of SYNCED_TYPES)
            expect(Date.parse(after.get(type)!), type).toBeGreaterThan(Date.parse(before.get(type)!));
        },
        EXPORT_MS,
      );

      // HAPI's $export manifest has no deleted[] (HAPI 8.8 exports current resources only, with or without _since):
      // after the export, the run reads each type's `_history` (HAPI offers history-type) since its checkpoint as
      // planned, before the export moved it.
      it(
        'a record deleted at HAPI between Group exports becomes a tombstone, learned from the type’s history',
        async () => {
          const [condition] = ofType(owned[4]!, 'Condition');
          // History is type-wide: the earlier runs already learned (and tombstoned, nothing stored to remove) what
          // the patient-strategy tests deleted within the overlap window. Only the new tombstone is this run's.
          const before = new Set((await tombstones(h, ids)).map(key));
          await deleteResources(base, [condition!]);
          exported.delete(key(condition!));
          const report = await runSync(h, ids);
          expect(report.outcome).toBe('completed');
          expect(typeOf(report, 'Condition').deleted).toBe(1);
          expect(report.totals.deleted).toBe(1);
          const learned = (await tombstones(h, ids)).filter((t) => !before.has(key(t)));
          expect(learned).toEqual([{ type: 'Condition', id: condition!.id, how: 'history' }]);
          await expectStored(h, ids, exported);
        },
        EXPORT_MS,
      );
    }

    /** A Group (person, actual) of the corpus patients at these indexes; returns its id. */
    async function createGroup(members: readonly number[]): Promise<string> {
      const res = await postBundle(base, 'transaction', [
        { resource: groupOf(members), request: { method: 'POST', url: 'Group' } },
      ]);
      return refFromLocation(res.entry![0]!.response!.location!).id;
    }

    async function putGroupMembers(groupId: string, members: readonly number[]): Promise<void> {
      await fhirJson(`${base}/Group/${groupId}`, { method: 'PUT', body: { ...groupOf(members), id: groupId } });
    }

    function groupOf(members: readonly number[]): FhirResource {
      return {
        resourceType: 'Group',
        type: 'person',
        actual: true,
        name: 'Synthetic roster',
        member: members.map((i) => ({ entity: { reference: `Patient/${corpus.patients[i]!.id}` } })),
      };
    }

    async function createObservation(patientId: string): Promise<ResourceRef> {
      const res = await postBundle(base, 'transaction', [
        {
          resource: {
            resourceType: 'Observation',
            status: 'final',
            code: { text: 'Synthetic late reading' },
            subject: { reference: `Patient/${patientId}` },
          },
          request: { method: 'POST', url: 'Observation' },
        },
      ]);
      return refFromLocation(res.entry![0]!.response!.location!);
    }
  },
);

const key = (r: Pick<ResourceRef, 'type' | 'id'>) => `${r.type}/${r.id}`;
const byKey = (a: { type: string; id: string }, b: { type: string; id: string }) => key(a).localeCompare(key(b));
const ofType = (refs: readonly ResourceRef[], type: ResourceType) => refs.filter((r) => r.type === type);

/** Per type, the stored ids and versions are exactly `expected`'s still at the server, at its current versions. */
async function expectStored(h: HapiSync, ids: Ids, expected: ReadonlySet<string>): Promise<void> {
  const server = await currentVersionsByType(h.hapi.baseUrl, SYNCED_TYPES);
  for (const type of SYNCED_TYPES) {
    const want = new Map<string, string>();
    for (const [id, version] of server[type]!) if (expected.has(`${type}/${id}`)) want.set(id, version);
    const stored = await storedVersions(h.harness.pool, ids.tenantId, ids.integrationId, type);
    const sorted = (m: Map<string, string>) => [...m.entries()].sort(([a], [b]) => a.localeCompare(b));
    expect(sorted(stored), `${type}: stored ids and versions`).toEqual(sorted(want));
  }
}
