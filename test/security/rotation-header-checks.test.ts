/**
 * Tenant DEK rotation trusts the ciphertext header, as decryption does (DESIGN §4 invariants 3, 4):
 * the SQL reading of the envelope header agrees with the parser for any tenant id and version; the
 * `key_version` column cannot be made to disagree with it; and when it does anyway (the constraint
 * dropped by an owner), re-encryption still moves the record by its header, destruction of a version
 * a header still names is refused naming the version and where, and the refusal is audited.
 * Real PostgreSQL (one throwaway cluster for this file, so its constraint may be dropped), local KEK.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import fc from 'fast-check';
import type pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConflictError } from '../../lib/errors/index.js';
import { decryptRecord, encryptRecord, parseCiphertextHeader } from '../../lib/crypto/envelope.js';
import type { RecordContext } from '../../lib/crypto/envelope.js';
import { KeyAdmin } from '../../lib/keys/key-admin.js';
import { KeyHierarchy } from '../../lib/keys/key-hierarchy.js';
import { TenantKeyring } from '../../lib/keys/keyring.js';
import { LocalKekProvider, ensureLocalKekDir } from '../../lib/keys/local-kek.js';
import {
  countRecordsBelowKeyVersion,
  reencryptRecordBatch,
  verifyReencryption,
} from '../../lib/keys/record-reencryption.js';
import { destroyTenantKeyVersion, destroyUnusedKeyVersions } from '../../lib/keys/tenant-keys.js';
import { useTestCluster } from '../db.js';
import { rejection } from '../helpers.js';

const db = useTestCluster('rotation-headers-', { tenants: ['tenant-drift', 'tenant-refuse', 'tenant-owner'] });
let pool: pg.Pool;
let keyring: TenantKeyring;
let admin: KeyAdmin;

const ctx = (op: string) => ({ actor: 'user:rotation-header-test', correlationId: `corr-${op}-${randomUUID()}` });

beforeAll(async () => {
  pool = db.pool;
  const kekDir = path.join(db.tmp, 'kek');
  await ensureLocalKekDir(kekDir);
  const kek = await KeyHierarchy.open({ pool, backend: await LocalKekProvider.load(kekDir), audit: ctx('open') });
  keyring = new TenantKeyring({ pool, kek });
  admin = new KeyAdmin({ pool, kek, destroyDelaySeconds: 0, forget: { tenant: (t) => keyring.forget(t) } });
  for (const t of ['tenant-drift', 'tenant-refuse', 'tenant-owner']) {
    await db.ownerPool.query(
      `INSERT INTO integrations (id, tenant_id, vendor, base_url, token_url, client_id, signing_alg,
         signing_kid, public_jwk,
                                private_key_ref, resource_types)
       VALUES ($1, $2, 'sandbox', 'http://127.0.0.1:1/fhir', 'http://127.0.0.1:1/token', 'client', 'ES384', 'kid', '{}',
               'file:/nonexistent', ARRAY['Patient','Observation'])`,
      [`${t}-int`, t],
    );
  }
});

/** Stores `n` synthetic records under the tenant's primary DEK; returns their contexts. */
async function storeRecords(tenantId: string, n: number): Promise<RecordContext[]> {
  const dek = await keyring.primaryDataKey(tenantId, ctx('store'));
  const stored: RecordContext[] = [];
  for (let i = 0; i < n; i++) {
    const rc = {
      tenantId,
      integrationId: `${tenantId}-int`,
      resourceType: i % 2 ? 'Observation' : 'Patient',
      resourceId: `r-${i}`,
    };
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
        encryptRecord(dek, rc, Buffer.from(`synthetic ${i}`)),
      ],
    );
    stored.push(rc);
  }
  // DEK v1 derives the pseudonym key: store it, as a sync would have, so v1 is destroyable.
  await keyring.ensurePseudonymKey(tenantId, ctx('pseudonym'));
  return stored;
}

/** What the issue found: an owner sets the column above the version the header names. */
async function raiseColumn(tenantId: string, to: number, limit: number): Promise<void> {
  await db.ownerPool.query('ALTER TABLE records DROP CONSTRAINT IF EXISTS records_key_version_is_header');
  await db.ownerPool.query(
    `UPDATE records SET key_version = $2
      WHERE (tenant_id, resource_id) IN (SELECT tenant_id, resource_id FROM records WHERE tenant_id = $1
        ORDER BY resource_id LIMIT $3)`,
    [tenantId, to, limit],
  );
}

async function decryptAll(records: RecordContext[]): Promise<number> {
  const kek = await KeyHierarchy.open({ pool, backend: await LocalKekProvider.load(path.join(db.tmp, 'kek')) });
  const fresh = new TenantKeyring({ pool, kek });
  for (const rc of records) {
    const { rows } = await pool.query<{ ciphertext: Buffer }>(
      `SELECT ciphertext FROM records WHERE tenant_id = $1 AND integration_id = $2
          AND resource_type = $3 AND resource_id = $4`,
      [rc.tenantId, rc.integrationId, rc.resourceType, rc.resourceId],
    );
    (await decryptRecord(rows[0]!.ciphertext, rc, fresh.lookup)).fill(0);
  }
  return records.length;
}

async function headerVersions(tenantId: string): Promise<number[]> {
  const sql = 'SELECT DISTINCT envelope_key_version(ciphertext)::int AS v FROM records WHERE tenant_id = $1 ORDER BY 1';
  return (await pool.query<{ v: number }>(sql, [tenantId])).rows.map((r) => r.v);
}

const AT = { integrationId: 'i', resourceType: 'Patient', resourceId: 'p' };
const sealed = (tenantId: string, version: number): Buffer =>
  encryptRecord({ tenantId, version, key: Buffer.alloc(32, 7) }, { tenantId, ...AT }, Buffer.from('synthetic'));

describe('the envelope header read in SQL', () => {
  it('names the same version as the parser, for any tenant id and version; malformed headers read as NULL', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,62}$/),
        fc.integer({ min: 1, max: 0xffffffff }),
        async (tenantId, version) => {
          const ct = sealed(tenantId, version);
          const { rows } = await pool.query<{ v: string }>('SELECT envelope_key_version($1) AS v', [ct]);
          expect(Number(rows[0]!.v)).toBe(parseCiphertextHeader(ct).keyVersion);
        },
      ),
      { numRuns: 60 },
    );
    const malformed = [
      Buffer.alloc(0),
      Buffer.from([1, 0]),
      Buffer.from([2, 0, 1, 0x74, 0, 0, 0, 3]), // unknown format
      sealed('t', 3).subarray(0, 6), // cut inside the header
      Buffer.from([1, 0, 9, 0x74, 0, 0, 0, 3]), // key id longer than the bytes
    ];
    for (const m of malformed)
      expect((await pool.query('SELECT envelope_key_version($1) AS v', [m])).rows[0].v).toBeNull();
  });
});

describe('key_version can no longer lie about the header', () => {
  it('refuses, even to the owner, a column that disagrees with the ciphertext header', async () => {
    await storeRecords('tenant-owner', 2);
    const raise = pool.query(`UPDATE records SET key_version = key_version + 1 WHERE tenant_id = 'tenant-owner'`);
    expect(await rejection(raise)).toMatchObject({ code: '23514', constraint: 'records_key_version_is_header' });
    // Nor can a record be stored whose header cannot be read at all.
    const unreadable = pool.query(
      `INSERT INTO records (tenant_id, integration_id, resource_type, resource_id, version_id, last_updated,
         key_version, ciphertext)
       VALUES ('tenant-owner', 'tenant-owner-int', 'Patient', 'unreadable', '1', now(), 1, $1)`,
      [Buffer.from([2, 0, 0, 0, 0, 0, 1])],
    );
    expect(await rejection(unreadable)).toMatchObject({ code: '23514', constraint: 'records_key_version_is_header' });
  });
});

describe('rotation reads and gates by the header even when the column lies', () => {
  it('re-encrypts a record whose column was raised, verifies by header, then destroys v1: every record decrypts', async () => {
    const records = await storeRecords('tenant-drift', 7);
    await admin.rotateTenantKey('tenant-drift', ctx('rotate'));
    await raiseColumn('tenant-drift', 2, 1); // one record claims v2 while its header still says v1
    expect(await countRecordsBelowKeyVersion(pool, 'tenant-drift', 2)).toBe(7);

    const target = await keyring.dataKey('tenant-drift', 2);
    let moved = 0;
    for (let left = Infinity; left > 0;) {
      const b = await reencryptRecordBatch(
        pool,
        keyring,
        { tenantId: 'tenant-drift', target, batchSize: 3 },
        ctx('reencrypt'),
      );
      moved += b.reencrypted;
      left = b.remaining;
    }
    expect(moved).toBe(7);
    expect(await headerVersions('tenant-drift')).toEqual([2]);
    expect(
      await verifyReencryption(
        pool,
        keyring,
        { tenantId: 'tenant-drift', keyVersion: 2, sampleSize: 3 },
        ctx('verify'),
      ),
    ).toEqual({
      records: 7,
      underOlderKeys: 0,
      underKeyVersion: 7,
      sampleDecrypted: 3,
    });
    expect(await destroyTenantKeyVersion(pool, 'tenant-drift', 1, ctx('destroy'))).toEqual({ changed: true });
    expect(await decryptAll(records)).toBe(7);
  });

  it('refuses to destroy a version any header still names, says which and where, and audits the refusal', async () => {
    const records = await storeRecords('tenant-refuse', 5);
    await admin.rotateTenantKey('tenant-refuse', ctx('rotate'));
    await raiseColumn('tenant-refuse', 2, 5); // every column says v2; every header says v1
    const check = await verifyReencryption(
      pool,
      keyring,
      { tenantId: 'tenant-refuse', keyVersion: 2, sampleSize: 3 },
      ctx('verify'),
    );
    expect(check).toMatchObject({ records: 5, underOlderKeys: 5, underKeyVersion: 0 });

    const audit = ctx('destroy-refused');
    const err = await rejection(destroyTenantKeyVersion(pool, 'tenant-refuse', 1, audit));
    expect(err).toBeInstanceOf(ConflictError);
    expect((err as Error).message).toContain(
      'version 1 cannot be destroyed: the ciphertext headers of 5 records still name it ' +
        '(3 Patient of integration tenant-refuse-int, 2 Observation of integration tenant-refuse-int)',
    );
    expect(await destroyUnusedKeyVersions(pool, 'tenant-refuse', ctx('sweep'))).toEqual({ destroyed: [] });
    const keys = await pool.query(
      `SELECT key_version, status FROM data_keys WHERE tenant_id = 'tenant-refuse' ORDER BY 1`,
    );
    expect(keys.rows).toEqual([
      { key_version: 1, status: 'decrypt_only' },
      { key_version: 2, status: 'primary' },
    ]);
    const refused = await pool.query(
      `SELECT outcome, details FROM audit_events WHERE correlation_id = $1 AND action = 'key.dek.destroyed'`,
      [audit.correlationId],
    );
    expect(refused.rows).toEqual([{ outcome: 'failure', details: { keyVersions: [1], errorCode: 'CONFLICT' } }]);
    expect(await decryptAll(records)).toBe(5);
  });
});
