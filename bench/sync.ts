/**
 * `npm run bench:sync` — end-to-end nightly-sync throughput on a 50k-resource sandbox dataset, beside
 * a floor measured in the same run: the same pages fetched and inserted by plain code, without
 * Temporal or encryption. Prints medians of BENCH_RUNS runs (default 3) and the worker's peak RSS.
 * Figures, not pass/fail. Then three vendor personalities at once (bench/sync-vendors.ts; skip with
 * BENCH_VENDORS=0, or run only that part with `npm run bench:sync:vendors`).
 *
 * `--strategy bulk [--resources N]` runs the Bulk Data benchmark instead (bench/sync-bulk.ts; default N is
 * 1,000,000, runs BENCH_RUNS). `--strategy search` (the default) is the run described above.
 */
import path from 'node:path';
import os from 'node:os';
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker, bundleWorkflowCode } from '@temporalio/worker';
import type { Config } from '../lib/config/schema.js';
import { openPayloadCodec } from '../lib/keys/open-purpose-keys.js';
import { buildWorkerDeps } from '../workers/build-deps.js';
import { createWorkerActivities } from '../workers/worker-activities.js';
import { RESOURCE_TYPES, readScopeFor } from '../lib/domain.js';
import { loadConfig } from '../lib/config/schema.js';
import { createPool } from '../lib/store/pool.js';
import type { Pool } from '../lib/store/pool.js';
import { createTenant } from '../lib/store/tenants.js';
import { registerIntegration } from '../lib/integrations/registration.js';
import { startSync, syncResult } from '../client/sync-client.js';
import { startSandbox } from '../sandbox/index.js';
import type { SandboxHandle } from '../sandbox/index.js';
import { createTestClient } from '../sandbox/test-client.js';
import { benchInfraEnv, median, peakRssMiB, withBenchInfra, type BenchInfra } from '../dev/ephemeral.js';
import { threeVendorBench } from './sync-vendors.js';
import { trackedWorker } from './bench-worker.js';
import { bulkBench } from './sync-bulk.js';

/** `--name value` or `--name=value` from the command line. */
function argValue(name: string): string | undefined {
  const args = process.argv.slice(2);
  const i = args.indexOf(name);
  if (i >= 0) return args[i + 1];
  return args.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1);
}

const SIZE = Number(argValue('--resources') ?? process.env.BENCH_SIZE ?? 50_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const PAGE = Number(process.env.BENCH_PAGE_SIZE ?? 1_000);
const actor = { actor: 'bench:sync', correlationId: randomUUID() };

/**
 * Payload encryption on vs off: two in-process workers built alike, one with the payload codec and
 * one without (clients matched), alternating full syncs of the same dataset. Medians, resources/s.
 */
async function codecComparison(
  config: Config,
  sandbox: SandboxHandle,
  pool: Pool,
  secretsDir: string,
): Promise<{ on: number; off: number }> {
  const deps = await buildWorkerDeps(config);
  const codec = await openPayloadCodec(config, { pool: deps.pool, kek: deps.kek, actor: 'bench:codec' });
  const bundle = await bundleWorkflowCode({
    workflowsPath: require.resolve('../workflows/index.ts'),
    logger: new DefaultLogger('WARN'),
  });
  const results: Record<'on' | 'off', number[]> = { on: [], off: [] };
  const nativeConnection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  const connection = await Connection.connect({ address: config.TEMPORAL_ADDRESS });
  try {
    for (let run = 1; run <= RUNS; run++) {
      for (const mode of ['on', 'off'] as const) {
        const taskQueue = `bench-codec-${mode}-${run}`;
        const dataConverter = mode === 'on' ? { payloadCodecs: [codec] } : undefined;
        const worker = await Worker.create({
          connection: nativeConnection,
          taskQueue,
          workflowBundle: bundle,
          activities: createWorkerActivities(deps),
          dataConverter,
        });
        const running = worker.run();
        const client = new Client({ connection, dataConverter });
        const integrationId = `bench-codec-${mode}-${run}`;
        await registerIntegration(
          pool,
          {
            id: integrationId,
            tenantId: 'bench',
            vendor: 'sandbox',
            baseUrl: sandbox.fhirBaseUrl,
            secretsDir,
            sandboxAdmin: { url: sandbox.url, adminToken: sandbox.adminToken },
          },
          actor,
        );
        const started = performance.now();
        const report = await syncResult(
          await startSync(client, taskQueue, { tenantId: 'bench', integrationId, vendor: 'sandbox' }, { full: true }),
        );
        results[mode].push(report.totals.fetched / ((performance.now() - started) / 1000));
        worker.shutdown();
        await running;
      }
    }
  } finally {
    await nativeConnection.close();
    await connection.close();
    await deps.close();
  }
  return { on: median(results.on), off: median(results.off) };
}

/** The floor: fetch every page with a bearer token, parse, insert plaintext rows. No Temporal, no crypto. */
async function floorRun(sandbox: SandboxHandle, pool: Pool, token: string, run: number): Promise<number> {
  await pool.query(
    'CREATE TABLE IF NOT EXISTS bench_floor (run int, type text, id text, version text, ' +
      'last_updated timestamptz, body jsonb, PRIMARY KEY (run, type, id))',
  );
  const started = performance.now();
  let count = 0;
  for (const type of RESOURCE_TYPES) {
    let url: string | undefined = `${sandbox.fhirBaseUrl}/${type}?_count=${PAGE}&_sort=_lastUpdated`;
    while (url) {
      const res = await fetch(url, { headers: { authorization: `Bearer ${token}`, accept: 'application/fhir+json' } });
      const bundle = (await res.json()) as {
        entry?: Array<{ resource: { id: string; meta: { versionId: string; lastUpdated: string } } }>;
        link?: Array<{ relation: string; url: string }>;
      };
      const rows = (bundle.entry ?? []).map((e) => e.resource);
      await pool.query(
        `INSERT INTO bench_floor SELECT $1, $2, t.id, t.version, t.last_updated, t.body
            FROM unnest($3::text[], $4::text[], $5::timestamptz[], $6::jsonb[]) AS t(id, version, last_updated, body)`,
        [
          run,
          type,
          rows.map((r) => r.id),
          rows.map((r) => r.meta.versionId),
          rows.map((r) => r.meta.lastUpdated),
          rows.map((r) => JSON.stringify(r)),
        ],
      );
      count += rows.length;
      url = bundle.link?.find((l) => l.relation === 'next')?.url;
    }
  }
  const seconds = (performance.now() - started) / 1000;
  if (count !== SIZE) throw new Error(`floor fetched ${count}, expected ${SIZE}`);
  return count / seconds;
}

/** The three-vendor section on its own worker: page size 100 so the limited vendor makes enough calls. */
async function vendorSection(infra: BenchInfra, pool: Pool): Promise<void> {
  const config = loadConfig({
    ...benchInfraEnv(infra),
    TEMPORAL_TASK_QUEUE: 'bench-vendors',
    EHR_SYNC_PAGE_SIZE: '100',
    EHR_ENDPOINT_QUEUE_RECHECK_SECONDS: '1',
    LOG_LEVEL: 'info',
  });
  await trackedWorker(infra, config, path.join(infra.root, 'vendors-worker.log'));
  const connection = await Connection.connect({ address: infra.temporalAddress });
  infra.onStop('vendors client connection', () => connection.close());
  const client = new Client({
    connection,
    dataConverter: { payloadCodecs: [await openPayloadCodec(config, { pool, actor: 'bench:client' })] },
  });
  await threeVendorBench(
    { pool, client, taskQueue: config.TEMPORAL_TASK_QUEUE, secretsDir: infra.secretsDir },
    (line) => console.log(line),
  );
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const strategy = argValue('--strategy') ?? 'search';
  if (strategy !== 'search' && strategy !== 'bulk') throw new Error('--strategy must be search or bulk');
  if (strategy === 'bulk') {
    const resources = Number(argValue('--resources') ?? 1_000_000);
    if (!Number.isSafeInteger(resources) || resources < 1) throw new Error('--resources must be a positive integer');
    await withBenchInfra(
      (line) => console.log(line),
      (infra) => bulkBench(infra, { resources, runs: RUNS }),
    );
    return;
  }
  if (process.argv.includes('--vendors-only')) {
    await withBenchInfra(
      (line) => console.log(line),
      async (infra) => {
        const pool = createPool(infra.databaseUrl, 4);
        infra.onStop('pool', () => pool.end());
        await vendorSection(infra, pool);
      },
    );
    return;
  }
  console.log(
    `bench:sync — ${SIZE} resources, page size ${PAGE}, ${RUNS} runs each; machine: ${os.cpus().length} cores`,
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
        TEMPORAL_TASK_QUEUE: 'bench-sync',
        EHR_SYNC_PAGE_SIZE: String(PAGE),
        LOG_LEVEL: 'info',
      });
      const worker = await trackedWorker(infra, config, path.join(infra.root, 'worker.log'));
      const connection = await Connection.connect({ address: infra.temporalAddress });
      infra.onStop('client connection', () => connection.close());
      // The worker encrypts every payload; the client must read them the same way.
      const client = new Client({
        connection,
        dataConverter: { payloadCodecs: [await openPayloadCodec(config, { pool, actor: 'bench:client' })] },
      });
      const floorClient = await createTestClient(sandbox, { scopes: RESOURCE_TYPES.map(readScopeFor) });
      await createTenant(pool, { id: 'bench', name: 'Benchmark Clinic (synthetic)' }, actor);

      const floor: number[] = [];
      const e2e: number[] = [];
      for (let run = 1; run <= RUNS; run++) {
        const f = await floorRun(sandbox, pool, await floorClient.token(), run);
        floor.push(f);
        const integrationId = `bench-${run}`;
        await registerIntegration(
          pool,
          {
            id: integrationId,
            tenantId: 'bench',
            vendor: 'sandbox',
            baseUrl: sandbox.fhirBaseUrl,
            secretsDir: infra.secretsDir,
            sandboxAdmin: { url: sandbox.url, adminToken: sandbox.adminToken },
          },
          actor,
        );
        const started = performance.now();
        const handle = await startSync(
          client,
          config.TEMPORAL_TASK_QUEUE,
          { tenantId: 'bench', integrationId, vendor: 'sandbox' },
          { full: true },
        );
        const report = await syncResult(handle);
        const rate = report.totals.fetched / ((performance.now() - started) / 1000);
        if (report.totals.inserted !== SIZE) throw new Error(`sync stored ${report.totals.inserted}, expected ${SIZE}`);
        e2e.push(rate);
        console.log(
          `run ${run}: floor ${f.toFixed(0)} resources/s, ` +
            `end-to-end ${rate.toFixed(0)} resources/s (${report.totals.pages} pages)`,
        );
      }
      const rss = peakRssMiB(worker.child.pid!);
      const e2eMedian = median(e2e);
      const floorMedian = median(floor);
      console.log('\nresults (medians)');
      console.log(
        `  end-to-end sync (Temporal + auth + minimise + encrypt + audit): ${e2eMedian.toFixed(0)} resources/s`,
      );
      console.log(
        `  floor (plain fetch + insert, no Temporal, no encryption):      ${floorMedian.toFixed(0)} resources/s`,
      );
      console.log(
        `  end-to-end / floor: ` +
          `${(e2eMedian / floorMedian).toFixed(2)} (floor is ${(floorMedian / e2eMedian).toFixed(2)}x faster)`,
      );
      console.log(`  worker peak RSS: ${rss.toFixed(0)} MiB`);
      console.log(
        `  goals: >= 5000 resources/s ${e2eMedian >= 5000 ? 'met' : 'NOT met'}; ` +
          `within 3x of floor ${floorMedian / e2eMedian <= 3 ? 'met' : 'NOT met'}`,
      );
      const codec = await codecComparison(config, sandbox, pool, infra.secretsDir);
      const cost = ((codec.off - codec.on) / codec.off) * 100;
      console.log(
        `  payload encryption on vs off (in-process workers): ` +
          `${codec.on.toFixed(0)} vs ${codec.off.toFixed(0)} resources/s (${cost.toFixed(1)} % ` +
          `slower with it; goal < 10 %: ${cost < 10 ? 'met' : 'NOT met'})`,
      );
      if (process.env.BENCH_VENDORS !== '0') await vendorSection(infra, pool);
    },
  );
}

main().catch((err: unknown) => {
  console.error(`bench failed: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
