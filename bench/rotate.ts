/**
 * `npm run bench:rotate` — key rotation figures, each beside a floor from the same run:
 *   1. KEK rewrap of 10,000 tenant DEKs: what the rotation workflow's rewrap activity does
 *      (KeyAdmin.rewrapDataKeys in batches, each batch one transaction with its audit events) vs the
 *      floor: the same unwrap + wrap of the same keys in memory (no database, no audit);
 *   2. tenant DEK rotation: records re-encrypted per second by the re-encryption activity's store
 *      function (batches, row locks, version-checked updates, audit) while writers keep storing pages
 *      and readers keep decrypting, vs the floor: decrypt + encrypt of the same records in memory.
 * Read and write errors under load are counted (they must be zero); every record is decrypted after
 * each rotation. Medians of BENCH_RUNS (default 3). Figures, not pass/fail. Library level: Temporal's
 * own cost per batch (one activity task each) is not included.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { median, withBenchInfra } from '../dev/ephemeral.js';
import { createKekProvider } from '../lib/keys/kek-factory.js';
import { decryptRecord, encryptRecord } from '../lib/crypto/envelope.js';
import { KeyAdmin } from '../lib/keys/key-admin.js';
import { KeyHierarchy } from '../lib/keys/key-hierarchy.js';
import { TenantKeyring, dataKeyWrapAad } from '../lib/keys/keyring.js';
import { createPool, withTransaction } from '../lib/store/pool.js';
import type { Pool } from '../lib/store/pool.js';
import { reencryptRecordBatch } from '../lib/keys/record-reencryption.js';
import { upsertRecords } from '../lib/store/records.js';
import { createTenant } from '../lib/store/tenants.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const TENANTS = Number(process.env.BENCH_TENANTS ?? 10_000);
const RECORDS = Number(process.env.BENCH_RECORDS ?? 20_000);
const BATCH = 500;
const ctx = () => ({ actor: 'bench:rotate', correlationId: randomUUID() });
const TENANT = 'bench-rotate';
const INTEGRATION = 'bench-rotate-i';
const TYPE = 'Observation';

async function seedTenantKeys(pool: Pool, kek: KeyHierarchy): Promise<void> {
  for (let start = 0; start < TENANTS; start += 1_000) {
    const ids = Array.from({ length: Math.min(1_000, TENANTS - start) }, (_, i) => `bench-t${start + i}`);
    const wrapped = await Promise.all(
      ids.map((id) => kek.wrapWithPrimary(randomBytes(32), (kv) => dataKeyWrapAad(id, 1, kek.id, kv))),
    );
    await withTransaction(pool, async (c) => {
      await c.query(
        `INSERT INTO tenants (id, name) SELECT id, 'Synthetic Bench Clinic' FROM unnest($1::text[]) AS t(id)`,
        [ids],
      );
      await c.query(
        `INSERT INTO data_keys (tenant_id, key_version, kek_id, kek_version, wrapped_key, status)
         SELECT t.id, 1, $2, t.kv, t.w, 'primary' FROM unnest($1::text[], $3::int[], $4::bytea[]) AS t(id, kv, w)`,
        [ids, kek.id, wrapped.map((w) => w.kekVersion), wrapped.map((w) => w.wrapped)],
      );
    });
  }
}

async function rewrapRun(pool: Pool, kek: KeyHierarchy, admin: KeyAdmin): Promise<{ rate: number; floor: number }> {
  await admin.rotateKek(ctx());
  let moved = 0;
  const t = performance.now();
  for (let remaining = Infinity; remaining > 0;) {
    const r = await admin.rewrapDataKeys(BATCH, ctx());
    moved += r.dataKeys + r.purposeKeys;
    remaining = r.remaining;
  }
  const rate = moved / ((performance.now() - t) / 1000);
  // Floor: the same keys unwrapped and wrapped again in memory.
  const { rows } = await pool.query<{ tenant_id: string; kek_version: number; wrapped_key: Buffer }>(
    `SELECT tenant_id, kek_version, wrapped_key FROM data_keys WHERE tenant_id LIKE 'bench-t%' AND key_version = 1`,
  );
  const f = performance.now();
  for (const r of rows) {
    const raw = await kek.backend.unwrap(
      { kekId: kek.id, kekVersion: r.kek_version, wrapped: r.wrapped_key },
      dataKeyWrapAad(r.tenant_id, 1, kek.id, r.kek_version),
    );
    await kek.backend.wrapWith(r.kek_version, raw, dataKeyWrapAad(r.tenant_id, 1, kek.id, r.kek_version));
    raw.fill(0);
  }
  return { rate, floor: rows.length / ((performance.now() - f) / 1000) };
}

function plaintext(i: number, version: number): Buffer {
  return Buffer.from(
    JSON.stringify({
      resourceType: TYPE,
      id: `obs-${i}`,
      meta: { versionId: String(version) },
      valueQuantity: { value: i % 200 },
      pad: 'x'.repeat(800),
    }),
  );
}

async function writePage(pool: Pool, keyring: TenantKeyring, ids: number[], version: number): Promise<void> {
  const dek = await keyring.primaryDataKey(TENANT, ctx());
  const records = ids.map((i) => ({
    resourceId: `obs-${i}`,
    versionId: String(version),
    lastUpdated: new Date(Date.UTC(2024, 0, 1) + version * 1000).toISOString(),
    patientPseudonym: null,
    keyVersion: dek.version,
    ciphertext: encryptRecord(
      dek,
      { tenantId: TENANT, integrationId: INTEGRATION, resourceType: TYPE, resourceId: `obs-${i}` },
      plaintext(i, version),
    ),
  }));
  await withTransaction(pool, (c) =>
    upsertRecords(c, { tenantId: TENANT, integrationId: INTEGRATION, resourceType: TYPE }, records),
  );
}

async function readSample(pool: Pool, keyring: TenantKeyring, n: number): Promise<void> {
  const { rows } = await pool.query<{ resource_id: string; ciphertext: Buffer }>(
    `SELECT resource_id, ciphertext FROM records WHERE tenant_id = $1 ORDER BY random() LIMIT $2`,
    [TENANT, n],
  );
  for (const r of rows)
    await decryptRecord(
      r.ciphertext,
      { tenantId: TENANT, integrationId: INTEGRATION, resourceType: TYPE, resourceId: r.resource_id },
      keyring.lookup,
    );
}

async function decryptEverything(pool: Pool, keyring: TenantKeyring): Promise<number> {
  const { rows } = await pool.query<{ resource_id: string; ciphertext: Buffer }>(
    `SELECT resource_id, ciphertext FROM records WHERE tenant_id = $1`,
    [TENANT],
  );
  let errors = 0;
  for (const r of rows) {
    await decryptRecord(
      r.ciphertext,
      { tenantId: TENANT, integrationId: INTEGRATION, resourceType: TYPE, resourceId: r.resource_id },
      keyring.lookup,
    ).catch(() => errors++);
  }
  return errors;
}

async function reencryptRun(
  pool: Pool,
  keyring: TenantKeyring,
  admin: KeyAdmin,
  run: number,
): Promise<{ rate: number; floor: number; readErrors: number; writeErrors: number; finalErrors: number }> {
  const { keyVersion } = await admin.rotateTenantKey(TENANT, ctx());
  const target = await keyring.dataKey(TENANT, keyVersion, ctx());
  let stop = false;
  let readErrors = 0;
  let writeErrors = 0;
  let page = 0;
  // Load: a writer updating 100 existing records per page (new versions) and a reader decrypting 100 at random.
  const writer = (async () => {
    while (!stop) {
      const ids = Array.from({ length: 100 }, (_, k) => (page * 100 + k) % RECORDS);
      await writePage(pool, keyring, ids, 10 + run * 1_000 + page++).catch(() => writeErrors++);
    }
  })();
  const reader = (async () => {
    while (!stop) await readSample(pool, keyring, 100).catch(() => readErrors++);
  })();
  let moved = 0;
  const t = performance.now();
  try {
    for (let remaining = Infinity; remaining > 0;) {
      const r = await reencryptRecordBatch(pool, keyring, { tenantId: TENANT, target, batchSize: BATCH }, ctx());
      moved += r.reencrypted;
      remaining = r.remaining;
    }
  } finally {
    stop = true;
    await Promise.all([writer, reader]);
  }
  const rate = moved / ((performance.now() - t) / 1000);
  const finalErrors = await decryptEverything(pool, keyring);
  // Floor: the same records decrypted and encrypted again in memory.
  const { rows } = await pool.query<{ resource_id: string; ciphertext: Buffer }>(
    `SELECT resource_id, ciphertext FROM records WHERE tenant_id = $1`,
    [TENANT],
  );
  const f = performance.now();
  for (const r of rows) {
    const recordCtx = { tenantId: TENANT, integrationId: INTEGRATION, resourceType: TYPE, resourceId: r.resource_id };
    encryptRecord(target, recordCtx, await decryptRecord(r.ciphertext, recordCtx, keyring.lookup));
  }
  return { rate, floor: rows.length / ((performance.now() - f) / 1000), readErrors, writeErrors, finalErrors };
}

async function main(): Promise<void> {
  process.stdout.write(
    `bench:rotate — ${TENANTS.toLocaleString('en-US')} tenant DEKs, ` +
      `${RECORDS.toLocaleString('en-US')} records, batches of ${BATCH}, ${RUNS} runs, medians\n`,
  );
  await withBenchInfra(
    (line) => process.stdout.write(`${line}\n`),
    async (infra) => {
      const pool = createPool(infra.databaseUrl, 8);
      infra.onStop('pool', () => pool.end());
      const kek = await KeyHierarchy.open({
        pool,
        backend: await createKekProvider({ EHR_KEK_PROVIDER: 'local', EHR_KEK_DIR: infra.kekDir } as never),
        audit: ctx(),
      });
      const keyring = new TenantKeyring({ pool, kek });
      const admin = new KeyAdmin({ pool, kek, destroyDelaySeconds: 0, forget: { tenant: (t) => keyring.forget(t) } });
      await seedTenantKeys(pool, kek);
      await createTenant(pool, { id: TENANT, name: 'Synthetic Bench Clinic' }, ctx());
      await pool.query(
        `INSERT INTO integrations (id, tenant_id, vendor, base_url, token_url, client_id, signing_alg,
           signing_kid, public_jwk, private_key_ref, resource_types)
      VALUES ($1, $2, 'sandbox', 'http://127.0.0.1/fhir', 'http://127.0.0.1/token', 'c', 'ES384', 'k',
        '{}', 'file:/dev/null', '{Observation}')`,
        [INTEGRATION, TENANT],
      );
      for (let start = 0; start < RECORDS; start += 1_000)
        await writePage(
          pool,
          keyring,
          Array.from({ length: Math.min(1_000, RECORDS - start) }, (_, k) => start + k),
          1,
        );

      const rewrap: Array<{ rate: number; floor: number }> = [];
      const reenc: Array<Awaited<ReturnType<typeof reencryptRun>>> = [];
      for (let run = 0; run < RUNS; run++) {
        rewrap.push(await rewrapRun(pool, kek, admin));
        reenc.push(await reencryptRun(pool, keyring, admin, run));
      }
      const m = (xs: number[]) => Math.round(median(xs)).toLocaleString('en-US');
      const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
      process.stdout.write(
        `1. KEK rewrap: ${m(rewrap.map((r) => r.rate))} keys/s (batches of ${BATCH}, audited) ` +
          `vs floor ${m(rewrap.map((r) => r.floor))} keys/s (unwrap+wrap in memory)\n`,
      );
      process.stdout.write(
        `2. tenant DEK re-encryption under load: ` +
          `${m(reenc.map((r) => r.rate))} records/s vs floor ${m(reenc.map((r) => r.floor))} ` +
          `records/s (decrypt+encrypt in memory); ` +
          `read errors ${sum(reenc.map((r) => r.readErrors))}, ` +
          `write errors ${sum(reenc.map((r) => r.writeErrors))}, ` +
          `records unreadable afterwards ${sum(reenc.map((r) => r.finalErrors))}\n`,
      );
    },
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
