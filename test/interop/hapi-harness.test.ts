/**
 * The interop harness itself: a real HAPI FHIR JPA server (a server this project did not write)
 * builds, starts on loopback, takes a synthetic corpus, pages a _lastUpdated search, shows updates
 * and deletes in _history, honours Cache-Control: no-cache, runs Bulk Data $export at every level,
 * keeps each file's partition of the run's shared server to itself, and leaves no java process
 * behind. The product's interop sync tests stand on these guarantees.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { findOnPath, stopChild, waitForPidExit } from '../../dev/process.js';
import { PROCESS_MARK_ENV, newProcessMark, processesMarked, waitForNoneMarked } from '../process-scan.js';
import { describeWhenAvailable } from '../suites-not-run.js';
import { StopList } from '../../dev/stop-list.js';
import { ensureHapiJar, startHapi, type HapiServer } from './hapi.js';
import { sharedHapiPartition, startHapiBroker, type SharedHapiPartition } from './hapi-shared.js';
import { cachedHapiJarPath, resolveJava } from './hapi-build.js';
import { allPages, bulkExport, fhirJson, postBundle, typeHistory, type Bundle } from './hapi-fhir.js';
import {
  currentVersions,
  deleteResources,
  loadCorpus,
  resourcesPerPatient,
  updateInTransaction,
  type Corpus,
} from './hapi-data.js';

const javaHome = process.env.JAVA_HOME ? path.join(process.env.JAVA_HOME, 'bin', 'java') : undefined;
const jarCached = fs.existsSync(cachedHapiJarPath());
const javaAndMaven = {
  missing:
    !(javaHome && fs.existsSync(javaHome)) && !findOnPath('java')
      ? 'no java (JDK ≥ 17) on PATH or in JAVA_HOME'
      : !jarCached && !findOnPath('mvn')
        ? 'no mvn on PATH to build the HAPI FHIR server'
        : undefined,
  fix: 'apt-get install -y openjdk-17-jdk-headless maven (.ci/run builds the server once)',
};

const PATIENTS = 12;
const PER_PATIENT = 2;

describeWhenAvailable(
  __filename,
  'HAPI FHIR interop harness (a partition of the shared server)',
  [javaAndMaven],
  () => {
    let partition: SharedHapiPartition;
    let base: string;
    let corpus: Corpus;
    let loadedFrom: string;

    beforeAll(async () => {
      partition = await sharedHapiPartition();
      base = partition.baseUrl;
      loadedFrom = new Date(Date.now() - 1_000).toISOString();
      corpus = await loadCorpus(base, { patients: PATIENTS, perPatient: PER_PATIENT, patientsPerBundle: 5 });
    }, 900_000);

    it('serves an R4 CapabilityStatement that declares search, history and $export', async () => {
      const cs = await fhirJson<{
        fhirVersion: string;
        rest: { resource: { type: string; operation?: { name: string }[] }[]; operation?: { name: string }[] }[];
      }>(`${base}/metadata`);
      expect(cs.fhirVersion).toBe('4.0.1');
      expect(cs.rest[0]!.operation?.map((o) => o.name)).toContain('export');
      const patient = cs.rest[0]!.resource.find((r) => r.type === 'Patient');
      expect(patient?.operation?.map((o) => o.name)).toContain('export');
      expect(partition.baseUrl).toBe(`${partition.serverUrl}/${partition.partition}`);
      expect(partition.serverUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/fhir$/);
    });

    it('creates the corpus through transactions, BP panels with components and lab panels with members', async () => {
      expect(corpus.patients).toHaveLength(PATIENTS);
      expect(corpus.refs).toHaveLength(PATIENTS * resourcesPerPatient(PER_PATIENT) + 1);
      const { entries } = await allPages(`${base}/Observation?code=http://loinc.org|85354-9&_count=50`, {
        fresh: true,
      });
      expect(entries).toHaveLength(PATIENTS * PER_PATIENT);
      const components = (entries[0]!.resource!.component as { code: { coding: { code: string }[] } }[]).map(
        (c) => c.code.coding[0]!.code,
      );
      expect(components).toEqual(['8480-6', '8462-4']);
      const panels = await allPages(`${base}/Observation?code=http://loinc.org|24323-8&_count=50`, { fresh: true });
      expect((panels.entries[0]!.resource!.hasMember as unknown[]).length).toBe(2);
    });

    it('pages a _lastUpdated search with _count, following next links to exactly the stored set', async () => {
      const expected = corpus.byType.Observation!.map((r) => r.id).sort();
      const url = `${base}/Observation?_lastUpdated=ge${loadedFrom}&_count=25&_sort=_lastUpdated&_total=accurate`;
      const { entries, pages, total } = await allPages(url, { fresh: true });
      expect(total).toBe(expected.length);
      expect(pages).toBe(Math.ceil(expected.length / 25));
      expect(entries.map((e) => e.resource!.id!).sort()).toEqual(expected);
      const count = await fhirJson<Bundle>(`${base}/Observation?_summary=count`, { fresh: true });
      expect(count.total).toBe(expected.length);
      expect(count.entry).toBeUndefined();
    });

    it('reuses a cached search for 60 s by default, and Cache-Control: no-cache asks for fresh results', async () => {
      const url = `${base}/Patient?_total=accurate&_count=1&_sort=_id`;
      const first = await fhirJson<Bundle>(url);
      await postBundle(base, 'transaction', [
        {
          resource: { resourceType: 'Patient', name: [{ family: 'SyntheticLate' }] },
          request: { method: 'POST', url: 'Patient' },
        },
      ]);
      const reused = await fhirJson<Bundle>(url);
      const fresh = await fhirJson<Bundle>(url, { fresh: true });
      expect(reused.total).toBe(first.total);
      expect(fresh.total).toBe(first.total! + 1);
    });

    it('updates many resources in one transaction and deletes others, visible in _history with _since', async () => {
      const conditions = corpus.byType.Condition!;
      const toUpdate = conditions.slice(0, 10);
      const toDelete = conditions.slice(10, 13);
      const since = new Date(Date.now() - 1_000).toISOString();
      const updated = await updateInTransaction(base, toUpdate);
      expect(updated.map((r) => [r.id, r.versionId])).toEqual(toUpdate.map((r) => [r.id, '2']));
      await deleteResources(base, toDelete);

      const current = await currentVersions(base, 'Condition');
      expect(current.size).toBe(conditions.length - toDelete.length);
      for (const r of toUpdate) expect(current.get(r.id)).toBe('2');
      for (const r of toDelete) expect(current.has(r.id)).toBe(false);

      const history = await typeHistory(base, 'Condition', since, 5);
      const deletes = history.filter((h) => h.method === 'DELETE');
      expect(deletes.map((h) => h.id).sort()).toEqual(toDelete.map((r) => r.id).sort());
      expect(deletes.every((h) => h.versionId === '2' && h.resource === undefined)).toBe(true);
      expect(
        history
          .filter((h) => h.method === 'PUT')
          .map((h) => h.id)
          .sort(),
      ).toEqual(toUpdate.map((r) => r.id).sort());
    });

    it('exports in bulk at system, Patient and Group level, deleted resources left out', async () => {
      const conditions = [...(await currentVersions(base, 'Condition')).keys()].sort();
      const system = await bulkExport(base, { kind: 'system' }, { types: ['Patient', 'Condition'] });
      expect(system.resources.Condition!.map((r) => r.id!).sort()).toEqual(conditions);
      expect(system.resources.Patient!.length).toBe(PATIENTS + 1);
      const patient = await bulkExport(base, { kind: 'patient' }, { types: ['Condition'] });
      expect(patient.resources.Condition!.map((r) => r.id!).sort()).toEqual(conditions);
      const group = await bulkExport(base, { kind: 'group', groupId: corpus.group.id }, { types: ['Observation'] });
      expect(group.resources.Observation!.length).toBe(corpus.byType.Observation!.length);
    });
    it("keeps a partition's data to itself: searches, their 60 s reuse, history and $export", async () => {
      const other = await sharedHapiPartition({ label: 'harness-other' });
      expect(other.serverUrl).toBe(partition.serverUrl);
      expect(other.partition).not.toBe(partition.partition);
      const url = (at: string) => `${at}/Patient?_total=accurate&_count=1&_sort=_id`;
      // Asked here first, the same search elsewhere must not be answered from this partition's reused results.
      const here = await fhirJson<Bundle>(url(base));
      expect(here.total).toBeGreaterThanOrEqual(PATIENTS);
      expect((await fhirJson<Bundle>(url(other.baseUrl))).total).toBe(0);
      const created = await postBundle(other.baseUrl, 'transaction', [
        {
          resource: { resourceType: 'Patient', name: [{ family: 'SyntheticElsewhere' }] },
          request: { method: 'POST', url: 'Patient' },
        },
      ]);
      const elsewhere = created.entry![0]!.response!.location!.split('/')[1]!;
      expect((await fhirJson<Bundle>(url(other.baseUrl), { fresh: true })).total).toBe(1);
      expect((await currentVersions(base, 'Patient')).has(elsewhere)).toBe(false);
      const read = await fetch(`${base}/Patient/${elsewhere}`, { headers: { accept: 'application/fhir+json' } });
      await read.body?.cancel();
      expect(read.status).toBe(404);
      expect((await typeHistory(other.baseUrl, 'Patient')).map((e) => e.id)).toEqual([elsewhere]);
      const exported = await bulkExport(other.baseUrl, { kind: 'system' }, { types: ['Patient', 'Observation'] });
      expect(exported.resources.Patient!.map((r) => r.id)).toEqual([elsewhere]);
      expect(exported.resources.Observation).toBeUndefined();
      expect(exported.output.every((f) => f.url.startsWith(`${other.baseUrl}/`))).toBe(true);
    });
  },
);

describeWhenAvailable(
  __filename,
  'HAPI FHIR interop harness, a differently configured instance',
  [javaAndMaven],
  () => {
    const mark = newProcessMark();
    let server: HapiServer;

    beforeAll(async () => {
      await ensureHapiJar({ onProgress: (l) => process.stderr.write(`${l}\n`) });
      server = await startHapi({
        env: { ...process.env, [PROCESS_MARK_ENV]: mark },
        defaultPageSize: 7,
        maxPageSize: 9,
        reuseCachedSearchResultsMillis: 0,
        resultCap: 10,
        bulkExport: false,
      });
      await loadCorpus(server.baseUrl, { patients: 3, perPatient: 1 }); // 12 Observations
    }, 900_000);

    afterAll(async () => {
      await server?.stop();
    });

    it('takes its page sizes, result cap, search reuse and $export from the options', async () => {
      const base = server.baseUrl;
      const page = await fhirJson<Bundle>(`${base}/Observation`);
      expect(page.entry).toHaveLength(7);
      const capped = await fhirJson<Bundle>(`${base}/Observation?_count=50`);
      expect(capped.entry).toHaveLength(9);
      // 12 Observations stored; the cap truncates the search and its total alike (HAPI loads cap + 1).
      const truncated = await allPages(`${base}/Observation?_count=3&_total=accurate`);
      expect(truncated.entries).toHaveLength(11);
      expect(truncated.total).toBe(11);
      const url = `${base}/Patient?_total=accurate`;
      const before = await fhirJson<Bundle>(url);
      await postBundle(base, 'transaction', [
        {
          resource: { resourceType: 'Patient', name: [{ family: 'SyntheticLate' }] },
          request: { method: 'POST', url: 'Patient' },
        },
      ]);
      expect((await fhirJson<Bundle>(url)).total).toBe(before.total! + 1);
      const kickoff = await fetch(`${base}/$export`, { headers: { prefer: 'respond-async' } });
      await kickoff.body?.cancel();
      expect(kickoff.status).not.toBe(202);
    });

    it('throws with the end of the log when the JVM cannot start, leaving no JVM', async () => {
      const failedMark = newProcessMark();
      const env = { ...process.env, [PROCESS_MARK_ENV]: failedMark };
      const err = await startHapi({ env, maxHeap: '1m' }).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(err?.message).toMatch(/HAPI FHIR server: the JVM exited .*the end of its log:/s);
      expect(err?.message).toMatch(/heap/i);
      expect(await waitForNoneMarked(failedMark, 10_000)).toEqual([]);
    });

    it('exits by itself when the process that started it is gone', async () => {
      const parent = spawn('sleep', ['600'], { stdio: 'ignore' });
      const jvm = spawn(
        await resolveJava(),
        ['-Xmx256m', '-jar', await ensureHapiJar(), '--server.port=0', `--interop.parent-pid=${parent.pid}`],
        { stdio: 'ignore' },
      );
      try {
        await new Promise((r) => setTimeout(r, 1_500));
        expect(jvm.exitCode).toBeNull();
        parent.kill('SIGKILL');
        expect(await waitForPidExit(jvm.pid!, 10_000)).toBe(true);
      } finally {
        parent.kill('SIGKILL');
        await stopChild(jvm, 5_000);
      }
    });

    it('lets the shared server start fail cleanly: every file asking hears why, and no JVM is left', async () => {
      const failedMark = newProcessMark();
      const stops = new StopList();
      const lines: string[] = [];
      const broker = await startHapiBroker({
        stops,
        log: (l) => lines.push(l),
        server: { env: { ...process.env, [PROCESS_MARK_ENV]: failedMark }, maxHeap: '1m', partitioning: true },
      });
      try {
        const asked = await Promise.allSettled([
          sharedHapiPartition({ label: 'first', broker: broker.url }),
          sharedHapiPartition({ label: 'second', broker: broker.url }),
        ]);
        for (const a of asked) {
          expect(a.status).toBe('rejected');
          expect((a as PromiseRejectedResult).reason.message).toMatch(/shared HAPI FHIR server: .*JVM exited/s);
        }
        expect(lines.filter((l) => l.startsWith('starting the shared'))).toHaveLength(1);
        expect(broker.started()).toBe(true);
      } finally {
        await broker.close();
        await stops.stopAll();
      }
      expect(stops.names()).toEqual([]);
      expect(await waitForNoneMarked(failedMark, 10_000)).toEqual([]);
    });

    it('stops, leaving no java process behind', async () => {
      expect(
        processesMarked(mark)
          .map((p) => p.command)
          .join('\n'),
      ).toContain('java');
      await server.stop();
      expect(await waitForNoneMarked(mark, 10_000)).toEqual([]);
    });
  },
);
