/**
 * `npm run bench:crypto` — figures for the security core, each beside a floor from the same run:
 *   1. record envelope encrypt+decrypt of 1 KB records (MB/s) vs raw AES-256-GCM from node:crypto;
 *   2. audit chain verification rows/s on 100k rows in PostgreSQL;
 *   3. audit append latency p50/p99 inside a sync-page transaction (1,000-record upsert + events);
 *   4. end-to-end sync throughput with the payload codec on vs off (see bench/sync.ts, BENCH_PAYLOAD_CODEC).
 * Medians of BENCH_RUNS (default 5). Figures, not pass/fail.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { appendAuditEvents } from '../lib/audit/chain.js';
import { verifyAuditChain } from '../lib/audit/verify-chain.js';
import { median, percentile, withBenchInfra } from '../dev/ephemeral.js';
import { decryptRecord, encryptRecord, envelopeHeader } from '../lib/crypto/envelope.js';
import type { DataKey } from '../lib/crypto/envelope.js';
import { createPool, withTransaction } from '../lib/store/pool.js';
import type { Pool } from '../lib/store/pool.js';
import { upsertRecords } from '../lib/store/records.js';
import { createTenant } from '../lib/store/tenants.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const RECORDS = 20_000;

async function envelopeThroughput(): Promise<{ envelope: number; raw: number }> {
  const dek: DataKey = { tenantId: 'bench', version: 1, key: randomBytes(32) };
  const plaintexts = Array.from({ length: RECORDS }, () => randomBytes(1024));
  const mb = (RECORDS * 1024) / 1_048_576;
  const envelopeRuns: number[] = [];
  const rawRuns: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    let t = performance.now();
    for (let i = 0; i < RECORDS; i++) {
      const ctx = { tenantId: 'bench', integrationId: 'i', resourceType: 'Observation', resourceId: `obs-${i}` };
      const ct = encryptRecord(dek, ctx, plaintexts[i]!);
      await decryptRecord(ct, ctx, () => dek);
    }
    envelopeRuns.push(mb / ((performance.now() - t) / 1000));
    t = performance.now();
    for (let i = 0; i < RECORDS; i++) {
      const iv = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', dek.key, iv);
      const ct = Buffer.concat([c.update(plaintexts[i]!), c.final()]);
      const tag = c.getAuthTag();
      const d = createDecipheriv('aes-256-gcm', dek.key, iv);
      d.setAuthTag(tag);
      Buffer.concat([d.update(ct), d.final()]);
    }
    rawRuns.push(mb / ((performance.now() - t) / 1000));
  }
  return { envelope: median(envelopeRuns), raw: median(rawRuns) };
}

async function auditVerify(pool: Pool, rows: number): Promise<number> {
  const batch = 5_000;
  for (let done = 0; done < rows; done += batch) {
    await withTransaction(pool, (c) =>
      appendAuditEvents(
        c,
        Array.from({ length: batch }, (_, i) => ({
          actor: 'bench',
          action: 'bench.event',
          outcome: 'success' as const,
          correlationId: `c${done + i}`,
          details: { n: done + i },
        })),
      ),
    );
  }
  const runs: number[] = [];
  for (let run = 0; run < Math.min(RUNS, 3); run++) {
    const t = performance.now();
    const result = await verifyAuditChain(pool);
    if (!result.ok) throw new Error(`chain broken at ${result.firstBrokenSeq}`);
    runs.push(result.eventsChecked / ((performance.now() - t) / 1000));
  }
  return median(runs);
}

async function appendLatency(pool: Pool): Promise<{ p50: number; p99: number; pageP50: number }> {
  await createTenant(
    pool,
    { id: 'bench-lat', name: 'Latency Clinic (synthetic)' },
    { actor: 'bench', correlationId: 'bench' },
  );
  await pool.query(`INSERT INTO integrations
      (id, tenant_id, vendor, base_url, token_url, client_id, signing_alg, signing_kid, public_jwk,
       private_key_ref, resource_types)
    VALUES ('bench-lat-i', 'bench-lat', 'sandbox', 'http://127.0.0.1/fhir', 'http://127.0.0.1/token', 'c', 'ES384', 'k',
            '{}', 'file:/dev/null', '{Observation}')`);
  const appendMs: number[] = [];
  const pageMs: number[] = [];
  for (let page = 0; page < 200; page++) {
    const records = Array.from({ length: 1_000 }, (_, i) => ({
      resourceId: `obs-${page}-${i}`,
      versionId: '1',
      lastUpdated: new Date(Date.UTC(2024, 0, 1) + page * 1000 + i).toISOString(),
      patientPseudonym: `psn_${i % 50}`,
      keyVersion: 1,
      ciphertext: Buffer.concat([envelopeHeader('bench-lat', 1), randomBytes(600)]),
    }));
    const pageStart = performance.now();
    await withTransaction(pool, async (c) => {
      const counts = await upsertRecords(
        c,
        { tenantId: 'bench-lat', integrationId: 'bench-lat-i', resourceType: 'Observation' },
        records,
      );
      const t = performance.now();
      await appendAuditEvents(c, [
        {
          actor: 'bench',
          action: 'records.stored',
          outcome: 'success',
          tenantId: 'bench-lat',
          integrationId: 'bench-lat-i',
          correlationId: 'run',
          details: { ...counts, patients: records.slice(0, 50).map((r) => r.patientPseudonym) },
        },
      ]);
      appendMs.push(performance.now() - t);
    });
    pageMs.push(performance.now() - pageStart);
  }
  return { p50: percentile(appendMs, 50), p99: percentile(appendMs, 99), pageP50: percentile(pageMs, 50) };
}

async function main(): Promise<void> {
  console.log(`bench:crypto — ${RUNS} runs, medians`);
  const env = await envelopeThroughput();
  console.log(
    `1. 1 KB records, encrypt+decrypt: ` +
      `envelope ${env.envelope.toFixed(1)} MB/s vs raw AES-256-GCM ${env.raw.toFixed(1)} MB/s ` +
      `(${((env.envelope / env.raw) * 100).toFixed(0)} % of raw)`,
  );
  await withBenchInfra(
    (line) => console.log(line),
    async (infra) => {
      const pool = createPool(infra.databaseUrl, 4);
      infra.onStop('pool', () => pool.end());
      const rowsPerSecond = await auditVerify(pool, 100_000);
      console.log(
        `2. audit verification: ` +
          `${Math.round(rowsPerSecond).toLocaleString('en-US')} rows/s over 100,000 rows (goal >= ` +
          `100,000 rows/s: ${rowsPerSecond >= 100_000 ? 'met' : 'NOT met'})`,
      );
      const lat = await appendLatency(pool);
      console.log(
        `3. audit append inside a 1,000-record page transaction: p50 ${lat.p50.toFixed(2)} ms, ` +
          `p99 ${lat.p99.toFixed(2)} ms (whole page transaction p50 ${lat.pageP50.toFixed(1)} ms)`,
      );
      console.log('4. payload codec on vs off: run `npm run bench:sync` (it measures both)');
    },
  );
}

main().catch((err: unknown) => {
  console.error(`bench failed: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
