/**
 * `npm run bench:gateway` — the gateway's FHIR read side (lib/gateway/fhir/handler.ts), called in-process, and the
 * same reads through the whole door (workers/gateway.ts over loopback HTTP: token, consumer, rate limit, freeze):
 *   1. single-resource reads (decrypt, minimise, audit event committed) at a steady BENCH_RATE requests/s (default
 *      200) for BENCH_SECONDS (default 30), open loop: latency from each request's scheduled start, so a stall
 *      counts against every request it delays — p50, p99 (p99 only with >= 100 samples);
 *   1b. the same reads through the gateway's HTTP door with a consumer's access token, same rate;
 *   2. the same reads straight from PostgreSQL (the winner row's ciphertext, no decryption, no audit), same rate;
 *   3. search pages of 1,000 Observations (`_count=1000`, next links followed through all of them): resources/s,
 *      beside the same pages read straight from PostgreSQL.
 * Synthetic data (BENCH_OBSERVATIONS Observations of 1/10 as many patients) stored through the product's write
 * path (minimised, encrypted, audited). Own PostgreSQL and keys in a temporary directory. Figures, not pass/fail.
 */
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import { setTimeout as sleep } from 'node:timers/promises';
import { percentile, tailPercentileText, withBenchInfra, benchInfraEnv } from '../dev/ephemeral.js';
import { loadConfig } from '../lib/config/schema.js';
import { signClientAssertion } from '../lib/crypto/client-assertion.js';
import type { GatewayAccess } from '../lib/gateway/access.js';
import { loadGatewaySigningKey } from '../lib/gateway/auth/access-tokens.js';
import { addConsumer } from '../lib/gateway/consumers.js';
import { handleFhirRead } from '../lib/gateway/fhir/handler.js';
import { createKekProvider } from '../lib/keys/kek-factory.js';
import { KeyHierarchy } from '../lib/keys/key-hierarchy.js';
import { TenantKeyring } from '../lib/keys/keyring.js';
import { createPool } from '../lib/store/pool.js';
import type { Pool } from '../lib/store/pool.js';
import { readWinningRecord, searchWinningRecords } from '../lib/store/record-reads.js';
import { createTenant } from '../lib/store/tenants.js';
import { storeResources } from '../lib/sync/store-resources.js';
import { startGateway } from '../workers/gateway.js';

const RATE = Number(process.env.BENCH_RATE ?? 200);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 30);
const OBSERVATIONS = Number(process.env.BENCH_OBSERVATIONS ?? 20_000);
const TENANT = 'bench-gw';
const INTEGRATION = 'bench-gw-i';
const ctx = { actor: 'bench', correlationId: 'bench-gateway' };

function observation(n: number) {
  const id = `obs-${String(n).padStart(7, '0')}`;
  const lastUpdated = new Date(Date.UTC(2026, 0, 1) + n * 1000).toISOString();
  return {
    id,
    versionId: '1',
    lastUpdated,
    resource: {
      resourceType: 'Observation',
      id,
      meta: { versionId: '1', lastUpdated },
      status: 'final',
      category: [
        { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] },
      ],
      code: { coding: [{ system: 'http://loinc.org', code: '8867-4', display: 'Heart rate' }], text: 'Heart rate' },
      subject: { reference: `Patient/pt-${n % Math.max(1, Math.floor(OBSERVATIONS / 10))}` },
      effectiveDateTime: lastUpdated,
      issued: lastUpdated,
      valueQuantity: { value: 60 + (n % 40), unit: 'beats/minute', system: 'http://unitsofmeasure.org', code: '/min' },
      interpretation: [
        { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation', code: 'N' }] },
      ],
      referenceRange: [{ low: { value: 50, unit: '/min' }, high: { value: 100, unit: '/min' }, text: 'synthetic' }],
    },
  };
}

async function seed(pool: Pool, keyring: TenantKeyring): Promise<void> {
  await createTenant(pool, { id: TENANT, name: 'Gateway Bench Clinic (synthetic)' }, ctx);
  await pool.query(`INSERT INTO integrations
      (id, tenant_id, vendor, base_url, token_url, client_id, signing_alg, signing_kid, public_jwk,
       private_key_ref, resource_types)
    VALUES ('${INTEGRATION}', '${TENANT}', 'sandbox', 'http://127.0.0.1/fhir', 'http://127.0.0.1/token', 'c', 'ES384',
            'k', '{}', 'file:/dev/null', '{Observation}')`);
  const scope = { tenantId: TENANT, integrationId: INTEGRATION, resourceType: 'Observation' as const };
  for (let start = 0; start < OBSERVATIONS; start += 1000) {
    const items = Array.from({ length: Math.min(1000, OBSERVATIONS - start) }, (_, i) => observation(start + i));
    await storeResources({ pool, keyring }, ctx, { ...scope, purpose: 'clinical-sync' }, items);
  }
  await pool.query('ANALYZE records');
}

/**
 * The gateway's door in this process (workers/gateway.ts, plain HTTP on loopback), a consumer of the bench tenant
 * with a key made here and a rate limit above the bench's rate, and an access token got through `/auth/token`.
 */
async function startDoor(
  root: string,
  pool: Pool,
  keyring: TenantKeyring,
): Promise<{ fhirBaseUrl: string; token: string; close: () => Promise<void> }> {
  const keyFile = path.join(root, 'gateway-access.key');
  fs.writeFileSync(keyFile, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), {
    mode: 0o600,
  });
  const door = await startGateway(
    {
      GATEWAY_HOST: '127.0.0.1',
      GATEWAY_PORT: 0,
      GATEWAY_PUBLIC_URL: undefined,
      GATEWAY_ACCESS_LIFETIME_SECONDS: 3600,
    },
    { pool, keyring, signingKey: await loadGatewaySigningKey(`file:${keyFile}`), actor: 'bench:gateway' },
  );
  const { publicKey, privateKey } = await generateKeyPair('ES384', { extractable: true });
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk, 'sha256');
  await addConsumer(
    pool,
    {
      id: 'bench-consumer',
      tenantId: TENANT,
      purpose: 'clinical-sync',
      scopes: 'system/Observation.rs',
      keys: { kind: 'jwks', jwks: { keys: [{ ...jwk, kid, alg: 'ES384', use: 'sig' }] } },
      ratePerMinute: 1_000_000,
      rateBurst: 100_000,
    },
    ctx,
  );
  const assertion = await signClientAssertion({
    clientId: 'bench-consumer',
    audience: door.tokenUrl,
    kid,
    alg: 'ES384',
    privateKey,
    lifetimeSeconds: 240,
  });
  const res = await fetch(door.tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: assertion,
      scope: 'system/Observation.rs',
    }).toString(),
  });
  const body = (await res.json()) as { access_token?: string };
  if (res.status !== 200 || !body.access_token) throw new Error(`the token endpoint answered ${res.status}`);
  return { fhirBaseUrl: door.fhirBaseUrl, token: body.access_token, close: () => door.close() };
}

/** Open loop at `rate`/s for `seconds`: each call's latency counts from its scheduled start. */
async function steady(rate: number, seconds: number, op: (i: number) => Promise<void>): Promise<number[]> {
  const total = Math.round(rate * seconds);
  const interval = 1000 / rate;
  const latencies: number[] = [];
  const pending: Array<Promise<void>> = [];
  const t0 = performance.now();
  for (let i = 0; i < total; i++) {
    const due = t0 + i * interval;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    pending.push(op(i).then(() => void latencies.push(performance.now() - due)));
  }
  await Promise.all(pending);
  return latencies;
}

function line(name: string, ms: number[], wallSeconds: number): string {
  const fmt = (v: number) => `${v.toFixed(2)} ms`;
  return (
    `${name}: ${ms.length} requests in ${wallSeconds.toFixed(1)} s (${(ms.length / wallSeconds).toFixed(0)}/s): ` +
    `p50 ${fmt(percentile(ms, 50))}, ${tailPercentileText(ms, 99, fmt)}, max ${fmt(Math.max(...ms))}`
  );
}

async function main(): Promise<void> {
  console.log(
    `bench:gateway — handleFhirRead in-process, and through the gateway over loopback HTTP, ` +
      `${OBSERVATIONS.toLocaleString('en-US')} Observations, ${RATE}/s for ${SECONDS} s`,
  );
  await withBenchInfra(
    (l) => console.log(l),
    async (infra) => {
      const pool = createPool(infra.databaseUrl, 12);
      infra.onStop('pool', () => pool.end());
      const config = loadConfig({ ...benchInfraEnv(infra), LOG_LEVEL: 'warn' });
      const kek = await KeyHierarchy.open({ pool, backend: await createKekProvider(config) });
      const keyring = new TenantKeyring({ pool, kek });
      let t = performance.now();
      await seed(pool, keyring);
      console.log(
        `seeded ${OBSERVATIONS} Observations (minimised, encrypted, audited) in ${((performance.now() - t) / 1000).toFixed(1)} s`,
      );
      const access: GatewayAccess = {
        tenantId: TENANT,
        consumerId: 'bench-consumer',
        purpose: 'clinical-sync',
        scopes: [{ context: 'system', resourceType: 'Observation', read: true, search: true }],
        breakGlass: [],
        correlationId: randomUUID(),
      };
      const deps = { pool, keyring };
      const baseUrl = 'https://gateway.bench/fhir';
      const idOf = (i: number) => `obs-${String((i * 7919) % OBSERVATIONS).padStart(7, '0')}`;
      // Warm-up: the data key unwrapped once, plans cached.
      for (let i = 0; i < 200; i++)
        await handleFhirRead(deps, access, {
          method: 'GET',
          path: `Observation/${idOf(i)}`,
          query: new URLSearchParams(),
          baseUrl,
        });

      t = performance.now();
      const gateway = await steady(RATE, SECONDS, async (i) => {
        const res = await handleFhirRead(
          deps,
          { ...access, correlationId: randomUUID() },
          {
            method: 'GET',
            path: `Observation/${idOf(i)}`,
            query: new URLSearchParams(),
            baseUrl,
          },
        );
        if (res.status !== 200) throw new Error(`read answered ${res.status}`);
      });
      console.log(line('1. read by id, decrypt + minimise + audit', gateway, (performance.now() - t) / 1000));
      t = performance.now();
      const raw = await steady(RATE, SECONDS, async (i) => {
        if (!(await readWinningRecord(pool, TENANT, 'Observation', idOf(i)))) throw new Error('missing row');
      });
      console.log(line('2. same reads straight from PostgreSQL', raw, (performance.now() - t) / 1000));

      const door = await startDoor(infra.root, pool, keyring);
      infra.onStop('gateway', () => door.close());
      t = performance.now();
      const http = await steady(RATE, SECONDS, async (i) => {
        const res = await fetch(`${door.fhirBaseUrl}/Observation/${idOf(i)}`, {
          headers: { authorization: `Bearer ${door.token}` },
        });
        await res.arrayBuffer();
        if (res.status !== 200) throw new Error(`the gateway answered ${res.status}`);
      });
      console.log(
        line(
          '1b. read by id through the gateway over HTTP (token, consumer, rate limit, freeze checked)',
          http,
          (performance.now() - t) / 1000,
        ),
      );

      t = performance.now();
      let served = 0;
      let pages = 0;
      let query = new URLSearchParams('_count=1000');
      for (;;) {
        const res = await handleFhirRead(
          deps,
          { ...access, correlationId: randomUUID() },
          { method: 'GET', path: 'Observation', query, baseUrl },
        );
        const bundle = res.body as { entry: unknown[]; link: Array<{ relation: string; url: string }> };
        served += bundle.entry.length;
        pages += 1;
        const next = bundle.link.find((l) => l.relation === 'next');
        if (!next) break;
        query = new URL(next.url).searchParams;
      }
      const gatewaySearch = served / ((performance.now() - t) / 1000);
      t = performance.now();
      let rows = 0;
      let after: string | undefined;
      for (;;) {
        const page = await searchWinningRecords(pool, {
          tenantId: TENANT,
          resourceType: 'Observation',
          lastUpdated: [],
          ...(after ? { afterId: after } : {}),
          limit: 1001,
        });
        const kept = page.slice(0, 1000);
        rows += kept.length;
        if (page.length <= 1000) break;
        after = kept[kept.length - 1]!.resourceId;
      }
      const rawSearch = rows / ((performance.now() - t) / 1000);
      console.log(
        `3. search pages of 1,000 Observations (${pages} pages, ${served} resources): ` +
          `${Math.round(gatewaySearch).toLocaleString('en-US')} resources/s through the gateway vs ` +
          `${Math.round(rawSearch).toLocaleString('en-US')} rows/s straight from PostgreSQL`,
      );
      const aim = (ms: number[]) =>
        ms.length >= 100 ? (percentile(ms, 99) < 50 ? 'met' : 'NOT met') : 'not enough samples';
      console.log(`aim p99 < 50 ms: 1. ${aim(gateway)}; 1b. (over HTTP) ${aim(http)}`);
    },
  );
}

main().catch((err: unknown) => {
  console.error(`bench failed: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
