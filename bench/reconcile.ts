/**
 * `npm run bench:reconcile` — reconciliation of BENCH_SIZE (default 100,000) sandbox records with BENCH_DRIFT
 * (default 1 %) of them changed at the vendor before each of BENCH_RUNS (default 3) runs:
 *   1. the compare step alone, in this process: each page's stored ciphertexts decrypted, the vendor's copies
 *      minimised, both compared as RFC 8785 text and by keyed group digests where they differ, and decided
 *      (lib/reconcile/compare.ts compareBatch) — records/s (aim ≥ 50,000);
 *   2. the floor, measured in the same pass: the same pages fetched with a bearer token and parsed, and the same
 *      records SELECTed by id (no decryption, no digests, no decisions) — records/s;
 *   3. end to end: the reconcile workflow on a worker process (search pages through the vendor door, decisions
 *      applied and audited, unlisted records looked up, report) — records/s and seconds.
 *   4. write-back: BENCH_WRITES (default 200) status changes queued as the gateway queues them and drained by the
 *      writeBack workflow, against one client's plain GET + PUT with If-Match; duplicates from the sandbox's write
 *      ledger (bench/reconcile-writes.ts).
 * Medians of the runs. Figures, not pass/fail: a benchmark never fails on a number.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { startReconcile } from '../client/reconcile-client.js';
import { startSync, syncResult } from '../client/sync-client.js';
import { benchInfraEnv, median, withBenchInfra } from '../dev/ephemeral.js';
import { loadConfig } from '../lib/config/schema.js';
import type { ResourceType } from '../lib/domain.js';
import { readScopeFor } from '../lib/domain.js';
import { getIntegration } from '../lib/integrations/repository.js';
import { registerIntegration } from '../lib/integrations/registration.js';
import { createKekProvider } from '../lib/keys/kek-factory.js';
import { KeyHierarchy } from '../lib/keys/key-hierarchy.js';
import { TenantKeyring } from '../lib/keys/keyring.js';
import { openPayloadCodec } from '../lib/keys/open-purpose-keys.js';
import type { RemoteCopy } from '../lib/reconcile/compare.js';
import { compareBatch } from '../lib/reconcile/compare.js';
import { digestKeyFor } from '../lib/reconcile/digest.js';
import { baselines, localRecords, pendingOfRecords } from '../lib/reconcile/repository.js';
import type { Pool } from '../lib/store/pool.js';
import { createPool } from '../lib/store/pool.js';
import { countRecords } from '../lib/store/records.js';
import { createTenant } from '../lib/store/tenants.js';
import { writePolicyFor } from '../lib/writeback/authority.js';
import { startSandbox } from '../sandbox/index.js';
import type { SandboxHandle } from '../sandbox/index.js';
import { createTestClient } from '../sandbox/test-client.js';
import { trackedWorker } from './bench-worker.js';
import type { WriteBackFigures } from './reconcile-writes.js';
import { writeBackPhase } from './reconcile-writes.js';

const SIZE = Number(process.env.BENCH_SIZE ?? 100_000);
const DRIFT = Number(process.env.BENCH_DRIFT ?? 0.01);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const PAGE = Number(process.env.BENCH_PAGE_SIZE ?? 1_000);
const WRITES = Number(process.env.BENCH_WRITES ?? 200);
const TENANT = 'bench-rec';
const INTEGRATION = 'bench-rec-i';
const actor = { actor: 'bench:reconcile', correlationId: randomUUID() };

interface PassFigures {
  records: number;
  floorSeconds: number;
  compareSeconds: number;
  differing: number;
}

/**
 * One pass over every type: pages fetched and parsed and their records SELECTed (the floor, timed), then each page
 * compared and decided in memory (the compare step, timed on its own). Nothing is written.
 */
async function floorAndComparePass(
  sandbox: SandboxHandle,
  pool: Pool,
  keyring: TenantKeyring,
  token: string,
  types: readonly ResourceType[],
  purpose: Parameters<typeof compareBatch>[2]['scope']['purpose'],
): Promise<PassFigures> {
  const key = await digestKeyFor(keyring, TENANT);
  const figures: PassFigures = { records: 0, floorSeconds: 0, compareSeconds: 0, differing: 0 };
  for (const type of types) {
    const scope = { tenantId: TENANT, integrationId: INTEGRATION, resourceType: type, purpose };
    const policy = await writePolicyFor(pool, scope, type);
    let url: string | undefined = `${sandbox.fhirBaseUrl}/${type}?_count=${PAGE}`;
    while (url) {
      const floorStart = performance.now();
      const res = await fetch(url, { headers: { authorization: `Bearer ${token}`, accept: 'application/fhir+json' } });
      const bundle = (await res.json()) as {
        entry?: Array<{ resource: Record<string, unknown> & { id: string; meta: Record<string, string> } }>;
        link?: Array<{ relation: string; url: string }>;
      };
      const remote: RemoteCopy[] = (bundle.entry ?? []).map((e) => ({
        id: e.resource.id,
        versionId: e.resource.meta.versionId ?? '',
        lastUpdated: e.resource.meta.lastUpdated ?? '',
        resource: e.resource,
      }));
      const ids = remote.map((r) => r.id);
      const rows = await localRecords(pool, scope, ids);
      figures.floorSeconds += (performance.now() - floorStart) / 1000;
      const [base, pending] = await Promise.all([baselines(pool, scope, ids), pendingOfRecords(pool, scope, ids)]);
      const compareStart = performance.now();
      const compared = await compareBatch(
        keyring,
        key,
        { scope, runId: 'bench', policy, remote, batchKey: url },
        { rows, base, pending },
      );
      figures.compareSeconds += (performance.now() - compareStart) / 1000;
      figures.records += remote.length;
      figures.differing += compared.decided.filter((d) => d.decision.class !== 'in-sync').length;
      url = bundle.link?.find((l) => l.relation === 'next')?.url;
    }
  }
  return figures;
}

/** Changes DRIFT of each type's records at the vendor (a new version with a changed clinical field). */
async function plantDrift(sandbox: SandboxHandle, counts: Map<string, number>): Promise<number> {
  let planted = 0;
  for (const [type, n] of counts) {
    const count = Math.round(n * DRIFT);
    if (count === 0) continue;
    const res = await fetch(`${sandbox.url}/admin/records/modify`, {
      method: 'POST',
      headers: { 'x-sandbox-admin': sandbox.adminToken, 'content-type': 'application/json' },
      body: JSON.stringify({ resourceType: type, count }),
    });
    if (!res.ok) throw new Error(`planting drift in ${type} answered ${res.status}`);
    planted += ((await res.json()) as { modified: unknown[] }).modified.length;
  }
  return planted;
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  console.log(
    `bench:reconcile — ${SIZE} records, ${(DRIFT * 100).toFixed(1)} % drift per run, page size ${PAGE}, ` +
      `${RUNS} runs; machine: ${os.cpus().length} cores`,
  );
  await withBenchInfra(
    (line) => console.log(line),
    async (infra) => {
      const sandbox = await startSandbox({ seed: 2026, size: SIZE, maxPageSize: 5_000 });
      infra.onStop('sandbox', () => sandbox.close());
      const pool = createPool(infra.databaseUrl, 4);
      infra.onStop('pool', () => pool.end());
      const config = loadConfig({
        ...benchInfraEnv(infra),
        TEMPORAL_TASK_QUEUE: 'bench-reconcile',
        EHR_SYNC_PAGE_SIZE: String(PAGE),
        LOG_LEVEL: 'info',
      });
      await trackedWorker(infra, config, path.join(infra.root, 'worker.log'));
      const connection = await Connection.connect({ address: infra.temporalAddress });
      infra.onStop('client connection', () => connection.close());
      const client = new Client({
        connection,
        dataConverter: { payloadCodecs: [await openPayloadCodec(config, { pool, actor: 'bench:client' })] },
      });
      const kek = await KeyHierarchy.open({ pool, backend: await createKekProvider(config) });
      const keyring = new TenantKeyring({ pool, kek });
      await createTenant(pool, { id: TENANT, name: 'Reconcile Bench Clinic (synthetic)' }, actor);
      await registerIntegration(
        pool,
        {
          id: INTEGRATION,
          tenantId: TENANT,
          vendor: 'sandbox',
          baseUrl: sandbox.fhirBaseUrl,
          secretsDir: infra.secretsDir,
          sandboxAdmin: { url: sandbox.url, adminToken: sandbox.adminToken },
        },
        actor,
      );
      const integration = await getIntegration(pool, INTEGRATION);
      const target = { tenantId: TENANT, integrationId: INTEGRATION };
      const syncStart = performance.now();
      const synced = await syncResult(
        await startSync(client, config.TEMPORAL_TASK_QUEUE, { ...target, vendor: 'sandbox' }),
      );
      console.log(
        `setup: synced ${synced.totals.inserted} records in ${((performance.now() - syncStart) / 1000).toFixed(1)} s`,
      );
      const counts = new Map((await countRecords(pool, target)).map((c) => [c.resourceType, c.count] as const));
      const floorClient = await createTestClient(sandbox, { scopes: integration.resourceTypes.map(readScopeFor) });
      const writerClient = await createTestClient(sandbox, {
        scopes: ['system/Appointment.cu', 'system/Appointment.rs'],
      });
      const writeTarget = {
        sandbox,
        pool,
        keyring,
        temporal: client,
        taskQueue: config.TEMPORAL_TASK_QUEUE,
        ...target,
      };
      const writes: WriteBackFigures[] = [];

      const compareRates: number[] = [];
      const floorRates: number[] = [];
      const e2eRates: number[] = [];
      const e2eSeconds: number[] = [];
      for (let run = 1; run <= RUNS; run++) {
        const planted = await plantDrift(sandbox, counts);
        const pass = await floorAndComparePass(
          sandbox,
          pool,
          keyring,
          await floorClient.token(),
          integration.resourceTypes,
          integration.purpose,
        );
        const started = performance.now();
        const report = await (await startReconcile(client, config.TEMPORAL_TASK_QUEUE, target)).result();
        const seconds = (performance.now() - started) / 1000;
        const compared = Object.values(report.counts)
          .flatMap((byClass) => Object.values(byClass))
          .reduce((a, b) => a + b, 0);
        const found = Object.values(report.counts)
          .flatMap((byClass) => Object.entries(byClass))
          .filter(([cls]) => cls !== 'in-sync')
          .reduce((a, [, n]) => a + n, 0);
        compareRates.push(pass.records / pass.compareSeconds);
        floorRates.push(pass.records / pass.floorSeconds);
        e2eRates.push(compared / seconds);
        e2eSeconds.push(seconds);
        console.log(
          `run ${run}: planted ${planted}; compare step ${(pass.records / pass.compareSeconds).toFixed(0)} records/s ` +
            `(${pass.differing} differing); floor ${(pass.records / pass.floorSeconds).toFixed(0)} records/s; ` +
            `end to end ${seconds.toFixed(1)} s, ${(compared / seconds).toFixed(0)} records/s, ${found} not in sync, ` +
            `${report.decisions.writeBacksQueued ?? 0} write-backs queued, ${report.pages} batches`,
        );
        const w = await writeBackPhase(writeTarget, {
          offset: (run - 1) * WRITES * 2,
          count: WRITES,
          floorToken: await writerClient.token(),
        });
        writes.push(w);
        console.log(
          `run ${run}: write-back ${w.sent}/${w.changes} sent in ${w.seconds.toFixed(1)} s ` +
            `(${(w.changes / w.seconds).toFixed(0)}/s), ${w.duplicates} duplicates; ` +
            `floor ${(w.changes / w.floorSeconds).toFixed(0)} writes/s`,
        );
      }
      const compareMedian = median(compareRates);
      console.log('\nresults (medians)');
      console.log(
        `  compare step (decrypt + minimise + RFC 8785 + keyed digests + decide): ${compareMedian.toFixed(0)} records/s`,
      );
      console.log(
        `  floor (fetch + parse + SELECT by id, no digests, no decisions):       ${median(floorRates).toFixed(0)} records/s`,
      );
      console.log(
        `  end to end (reconcile workflow, decisions applied and audited):        ${median(e2eRates).toFixed(0)} records/s, ` +
          `${median(e2eSeconds).toFixed(1)} s`,
      );
      console.log(`  end to end / floor: ${(median(e2eRates) / median(floorRates)).toFixed(2)}`);
      const writeRate = median(writes.map((w) => w.changes / w.seconds));
      const writeFloor = median(writes.map((w) => w.changes / w.floorSeconds));
      console.log(
        `  write-back (outbox → writeBack → GET + PUT If-Match → stored): ${writeRate.toFixed(0)} changes/s; ` +
          `floor (GET + PUT If-Match, one client): ${writeFloor.toFixed(0)} writes/s; ` +
          `duplicates ${writes.reduce((n, w) => n + w.duplicates, 0)} of ${writes.reduce((n, w) => n + w.changes, 0)}`,
      );
      console.log(`  goal: compare step >= 50000 records/s ${compareMedian >= 50_000 ? 'met' : 'NOT met'}`);
    },
  );
}

main().catch((err: unknown) => {
  console.error(`bench failed: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
