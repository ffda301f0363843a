/**
 * `npm run bench:revoke` — revocation that fails closed, measured: two worker processes on one task
 * queue run a sync (small pages) of one integration; `revokeIntegration` is called; from the
 * sandbox's request ledger, the time from revoke returning to the last request carrying an old access
 * token (0 when none arrived after it), plus how long revoke took and when each worker's watcher
 * confirmed. BENCH_TRIALS trials (default 50); p50/p95. Figures, not pass/fail.
 */
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { registerIntegration } from '../lib/integrations/registration.js';
import { startSync } from '../client/sync-client.js';
import { benchInfraEnv, percentile, tailPercentileText, withBenchInfra, type BenchInfra } from '../dev/ephemeral.js';
import { loadConfig } from '../lib/config/schema.js';
import { openPayloadCodec } from '../lib/keys/open-purpose-keys.js';
import { createPool } from '../lib/store/pool.js';
import { createTenant } from '../lib/store/tenants.js';
import { REVOCATION_ACK_CHANNEL, REVOCATION_CHANNEL } from '../lib/revocation/watcher.js';
import { revokeIntegration } from '../lib/revocation/revoke.js';
import { startSandbox } from '../sandbox/index.js';
import { startChildWorker } from '../test/integration/child-worker.js';

const TRIALS = Number(process.env.BENCH_TRIALS ?? 50);
const actor = { actor: 'bench:revoke', correlationId: randomUUID() };

const fmt = (ms: number): string => `${ms.toFixed(1)} ms`;

async function main(): Promise<void> {
  console.log(
    `bench:revoke — ${TRIALS} trials, two worker processes, page size 5; ` + `machine: ${os.cpus().length} cores`,
  );
  await withBenchInfra((line) => console.log(line), run);
}

async function run(infra: BenchInfra): Promise<void> {
  const sandbox = await startSandbox({ seed: 2026, size: 2000 });
  infra.onStop('sandbox', () => sandbox.close());
  const pool = createPool(infra.databaseUrl, 4);
  infra.onStop('pool', () => pool.end());
  const config = loadConfig({
    ...benchInfraEnv(infra),
    TEMPORAL_TASK_QUEUE: 'bench-revoke',
    EHR_SYNC_PAGE_SIZE: '5',
    LOG_LEVEL: 'info',
  });
  for (const n of [1, 2]) {
    const worker = await startChildWorker(config, path.join(infra.root, `worker-${n}.log`));
    infra.onStop(`worker ${n}`, async () => {
      worker.child.kill('SIGTERM');
      await worker.exited;
    });
  }
  const connection = await Connection.connect({ address: infra.temporalAddress });
  infra.onStop('client connection', () => connection.close());
  const client = new Client({
    connection,
    dataConverter: { payloadCodecs: [await openPayloadCodec(config, { pool, actor: 'bench:client' })] },
  });
  // Our own listener: when the notification reached a listener, and when each worker acknowledged.
  const listener = new pg.Client({ connectionString: infra.databaseUrl });
  listener.on('error', () => undefined); // the server stops under it at the end; awaited calls report
  await listener.connect();
  infra.onStop('listener', () => listener.end());
  const seen = new Map<string, number>();
  const acks = new Map<string, number[]>();
  listener.on('notification', (msg) => {
    const now = performance.now();
    const body = JSON.parse(msg.payload ?? '{}') as { integrationId?: string };
    if (!body.integrationId) return;
    if (msg.channel === REVOCATION_CHANNEL && !seen.has(body.integrationId)) seen.set(body.integrationId, now);
    if (msg.channel === REVOCATION_ACK_CHANNEL)
      acks.set(body.integrationId, [...(acks.get(body.integrationId) ?? []), now]);
  });
  await listener.query(`LISTEN ${REVOCATION_CHANNEL}`);
  await listener.query(`LISTEN ${REVOCATION_ACK_CHANNEL}`);
  await createTenant(pool, { id: 'bench', name: 'Benchmark Clinic (synthetic)' }, actor);

  const lastOld: number[] = [];
  const revokeMs: number[] = [];
  const notifyMs: number[] = [];
  const ackMs: number[] = [];
  let failedRevoked = 0;
  let lateTrials = 0;
  for (let trial = 1; trial <= TRIALS; trial++) {
    const integrationId = `bench-revoke-${trial}`;
    await registerIntegration(
      pool,
      {
        id: integrationId,
        tenantId: 'bench',
        vendor: 'sandbox',
        baseUrl: sandbox.fhirBaseUrl,
        resourceTypes: ['Patient'],
        secretsDir: infra.secretsDir,
        sandboxAdmin: { url: sandbox.url, adminToken: sandbox.adminToken },
      },
      actor,
    );
    const trialStart = Date.now();
    const handle = await startSync(
      client,
      config.TEMPORAL_TASK_QUEUE,
      { tenantId: 'bench', integrationId, vendor: 'sandbox' },
      { full: true },
    );
    // Under load: both workers have fetched pages with their own token.
    const deadline = Date.now() + 60_000;
    while (
      new Set(
        sandbox
          .ledger(trialStart)
          .filter((e) => e.status === 200)
          .map((e) => e.tokenHash),
      ).size < 2
    ) {
      if (Date.now() > deadline) throw new Error(`trial ${trial}: both workers did not start fetching within 60 s`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const started = performance.now();
    const result = await revokeIntegration(pool, integrationId, actor, { reason: 'benchmark' });
    const returned = performance.now();
    const returnedMs = Date.now();
    revokeMs.push(returned - started);
    const entries = sandbox.ledger(trialStart);
    const oldTokens = new Set(entries.filter((e) => e.atMs <= returnedMs).map((e) => e.tokenHash));
    const outcome = await handle.result().then(
      () => 'completed',
      (err: unknown) =>
        err instanceof WorkflowFailedError
          ? ((err.cause?.cause as { type?: string } | undefined)?.type ?? 'failed')
          : 'error',
    );
    if (outcome === 'INTEGRATION_REVOKED') failedRevoked++;
    const after = sandbox.ledger(returnedMs + 1).filter((e) => oldTokens.has(e.tokenHash));
    if (after.length > 0) lateTrials++;
    lastOld.push(after.length === 0 ? 0 : Math.max(...after.map((e) => e.atMs)) - returnedMs);
    const notifiedAt = seen.get(integrationId);
    if (notifiedAt !== undefined) notifyMs.push(notifiedAt - started);
    for (const at of acks.get(integrationId) ?? []) ackMs.push(at - started);
    if (result.acknowledged !== result.workers || result.workers < 2)
      console.log(`trial ${trial}: ${result.acknowledged}/${result.workers} workers confirmed`);
  }
  console.log('');
  console.log(
    `revoke returned → last request with an old token at the sandbox: ` +
      `p50 ${fmt(percentile(lastOld, 50))}, ${tailPercentileText(lastOld, 95, fmt)}, ` +
      `max ${fmt(Math.max(...lastOld))} (trials with any: ${lateTrials}/${TRIALS})`,
  );
  console.log(
    `revokeIntegration call (commit + both workers confirmed): ` +
      `p50 ${fmt(percentile(revokeMs, 50))}, ${tailPercentileText(revokeMs, 95, fmt)}`,
  );
  console.log(
    `revoke called → notification at a listener: p50 ${fmt(percentile(notifyMs, 50))}, ` +
      `${tailPercentileText(notifyMs, 95, fmt)}`,
  );
  console.log(
    `revoke called → each worker's watcher confirmed (${ackMs.length} confirmations): ` +
      `p50 ${fmt(percentile(ackMs, 50))}, ${tailPercentileText(ackMs, 95, fmt)}`,
  );
  console.log(`syncs failed with INTEGRATION_REVOKED: ${failedRevoked}/${TRIALS}`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
