/**
 * `npm run bench:contain` — breach containment, measured. One tenant with BENCH_INTEGRATIONS (100)
 * sandbox integrations, all syncing (page size 5) on a worker process; `incident declare` for the
 * tenant; from the sandbox's request ledger (only this tenant talks to this sandbox), the time from
 * the declare call to the last FHIR request the sandbox sees, plus the workflow's recorded
 * time-to-contain and the time to a complete evidence package. BENCH_DRILLS drills (default 20, so
 * a p95 can be quoted); between drills the bench restores the integrations itself (recovery is not
 * what is measured).
 * Rotations are skipped (`eradicate: false`). Figures, not pass/fail.
 */
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { registerIntegration } from '../lib/integrations/registration.js';
import { startSync } from '../client/sync-client.js';
import { benchInfraEnv, percentile, tailPercentileText, withBenchInfra, type BenchInfra } from '../dev/ephemeral.js';
import { loadConfig } from '../lib/config/schema.js';
import { declareIncident, incidentTimeline } from '../client/incident-client.js';
import { liftHold } from '../lib/incidents/store.js';
import { openPayloadCodec } from '../lib/keys/open-purpose-keys.js';
import { createPool } from '../lib/store/pool.js';
import { createTenant } from '../lib/store/tenants.js';
import { restoreIntegration } from '../lib/revocation/restore.js';
import { startSandbox } from '../sandbox/index.js';
import { startChildWorker } from '../test/integration/child-worker.js';

const DRILLS = Number(process.env.BENCH_DRILLS ?? 20);
const INTEGRATIONS = Number(process.env.BENCH_INTEGRATIONS ?? 100);
const actor = { actor: 'bench:contain', correlationId: randomUUID() };

const fmt = (ms: number): string => `${ms.toFixed(0)} ms`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  console.log(
    `bench:contain — ${DRILLS} drills, ` +
      `${INTEGRATIONS} integrations of one tenant syncing (page size 5), one worker process; ` +
      `machine: ${os.cpus().length} cores`,
  );
  await withBenchInfra((line) => console.log(line), run);
}

async function run(infra: BenchInfra): Promise<void> {
  const sandbox = await startSandbox({ seed: 2026, size: 2000 });
  infra.onStop('sandbox', () => sandbox.close());
  const pool = createPool(infra.databaseUrl, 8);
  infra.onStop('pool', () => pool.end());
  // The run's own anchor (and evidence beside it), from benchInfraEnv: never the dev stack's.
  const config = loadConfig({
    ...benchInfraEnv(infra),
    TEMPORAL_TASK_QUEUE: 'bench-contain',
    EHR_SYNC_PAGE_SIZE: '5',
    LOG_LEVEL: 'info',
    WORKER_MAX_CONCURRENT_ACTIVITIES: '32',
  });
  const worker = await startChildWorker(config, path.join(infra.root, 'worker.log'));
  infra.onStop('worker', async () => {
    worker.child.kill('SIGTERM');
    await worker.exited;
  });
  const connection = await Connection.connect({ address: infra.temporalAddress });
  infra.onStop('client connection', () => connection.close());
  const client = new Client({
    connection,
    dataConverter: { payloadCodecs: [await openPayloadCodec(config, { pool, actor: 'bench:client' })] },
  });
  const sandboxAdmin = { url: sandbox.url, adminToken: sandbox.adminToken };
  await createTenant(pool, { id: 'bench', name: 'Benchmark Clinic (synthetic)' }, actor);
  const ids = Array.from({ length: INTEGRATIONS }, (_, k) => `bench-contain-${k + 1}`);
  for (const id of ids) {
    await registerIntegration(
      pool,
      {
        id,
        tenantId: 'bench',
        vendor: 'sandbox',
        baseUrl: sandbox.fhirBaseUrl,
        resourceTypes: ['Patient', 'Observation'],
        secretsDir: infra.secretsDir,
        sandboxAdmin,
      },
      actor,
    );
  }
  const lastRequest: number[] = [];
  const contain: number[] = [];
  const evidence: number[] = [];
  for (let drill = 1; drill <= DRILLS; drill++) {
    const start = Date.now();
    const syncs = await Promise.all(
      ids.map((integrationId) =>
        startSync(
          client,
          config.TEMPORAL_TASK_QUEUE,
          { tenantId: 'bench', integrationId, vendor: 'sandbox' },
          { full: true },
        ),
      ),
    );
    // Under load: wait until pages are flowing.
    while (sandbox.ledger(start).filter((e) => e.status === 200).length < INTEGRATIONS) await sleep(50);
    const incidentId = `bench-${drill}-${randomUUID().slice(0, 8)}`;
    const declaredAt = Date.now();
    const handle = await declareIncident(client, config.TEMPORAL_TASK_QUEUE, {
      incidentId,
      scope: 'tenant:bench',
      severity: 'high',
      reason: 'benchmark drill',
      declaredBy: 'bench@example.org',
      drill: true,
      eradicate: false,
    });
    // A query can fail while the worker is saturated (100 syncs being cancelled): ask again.
    const timeline = () =>
      incidentTimeline(handle).catch(async (err: unknown) => {
        const { status } = await handle.describe();
        if (status.name !== 'RUNNING') throw new Error(`drill ${drill}: the incident workflow is ${status.name}`);
        console.log(
          `drill ${drill}: timeline query failed (${err instanceof Error ? err.message : String(err)}), retrying`,
        );
        return undefined;
      });
    let t = await timeline();
    while (t?.status !== 'awaiting-approval') {
      await sleep(25);
      t = await timeline();
    }
    const evidenceDoneAt = Date.parse(t.entries.find((e) => e.step === 'evidence-preserved')!.at);
    await Promise.all(syncs.map((s) => s.result().catch(() => undefined)));
    const after = sandbox.ledger(declaredAt);
    lastRequest.push(after.length === 0 ? 0 : Math.max(...after.map((e) => e.atMs)) - declaredAt);
    // Where the time goes: the incident's first workflow task, the revoking commit (its audit rows are
    // written just before it), and the requests that still reached the vendor after it.
    const events = (await handle.fetchHistory()).events ?? [];
    const firstTask = events.find((e) => e.workflowTaskStartedEventAttributes);
    const taskAt = firstTask?.eventTime
      ? Number(firstTask.eventTime.seconds) * 1000 + Math.floor((firstTask.eventTime.nanos ?? 0) / 1e6)
      : NaN;
    const revoked = await pool.query<{ at: Date }>(
      `SELECT max(occurred_at) AS at FROM audit_events WHERE action = 'integration.revoked' AND correlation_id = $1`,
      [incidentId],
    );
    const committedAt = revoked.rows[0]?.at?.getTime() ?? NaN;
    const late = after.filter((e) => e.atMs > committedAt).length;
    const stepAt = (step: string) =>
      `${step} +${fmt(Date.parse(t.entries.find((e) => e.step === step)?.at ?? '') - declaredAt)}`;
    console.log(
      `drill ${drill}: ` +
        `${['credentials-revoked', 'scope-held', 'schedules-paused', 'syncs-cancelled'].map(stepAt).join(', ')}`,
    );
    console.log(
      `drill ${drill}: first workflow task +${fmt(taskAt - declaredAt)}, ` +
        `revocation committed +${fmt(committedAt - declaredAt)}, ${late} requests after the commit`,
    );
    contain.push(t.timeToContainMs ?? NaN);
    evidence.push(evidenceDoneAt - Date.parse(t.declaredAt));
    console.log(
      `drill ${drill}: last vendor request ${fmt(lastRequest.at(-1)!)} after declare; ` +
        `contained in ${fmt(contain.at(-1)!)}; ` +
        `evidence ${fmt(evidence.at(-1)!)} ` +
        `(${t.entries.find((e) => e.step === 'evidence-preserved')?.detail?.files ?? '?'} files)`,
    );
    // Reset for the next drill: end the incident and restore the integrations directly.
    await handle.terminate('benchmark drill done');
    await liftHold(pool, incidentId, actor);
    for (const id of ids) await restoreIntegration(pool, id, actor, { secretsDir: infra.secretsDir, sandboxAdmin });
    await sleep(1000);
  }
  console.log('');
  console.log(
    `declare → last vendor request for the scope: p50 ${fmt(percentile(lastRequest, 50))}, ` +
      `${tailPercentileText(lastRequest, 95, fmt)}, max ${fmt(Math.max(...lastRequest))}`,
  );
  console.log(
    `time-to-contain recorded on the incident: p50 ${fmt(percentile(contain, 50))}, ` +
      tailPercentileText(contain, 95, fmt),
  );
  console.log(
    `declare → complete evidence package: p50 ${fmt(percentile(evidence, 50))}, ` +
      tailPercentileText(evidence, 95, fmt),
  );
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
