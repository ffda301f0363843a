/**
 * Tenant DEK rotation's storage side: re-encrypt a tenant's records from older DEK versions to the
 * primary in batches, verify that none is left, and the two key-metadata changes KeyAdmin has no
 * operation for (a rotation's rollback, and destroying one superseded DEK version). Each call is one
 * transaction with its audit event; the records' row locks (SKIP LOCKED) let concurrent batches share
 * work, and the update checks the version it read, so a sync write that lands in between is never
 * overwritten.
 *
 * Which DEK version a record needs is read from its ciphertext's envelope header, in SQL
 * (`envelope_key_version`, migration 1733200001000) — the same bytes decryption trusts — never from
 * the `key_version` column beside it.
 */
import type { AuditContext } from '../audit/chain.js';
import { appendAuditEvents, recordAuditEvent } from '../audit/chain.js';
import type { DataKey } from '../security/envelope.js';
import { decryptRecord, encryptRecord } from '../security/envelope.js';
import type { TenantKeyring } from './keyring.js';
import { ConflictError, EhrError, NotFoundError } from '../errors/index.js';
import type { Pool, PoolClient, Queryable } from '../store/pool.js';
import { withTransaction } from '../store/pool.js';

interface StoredRow {
  integration_id: string;
  resource_type: string;
  resource_id: string;
  version_id: string;
  header_version: number;
  ciphertext: Buffer;
}

/** The DEK version a record's ciphertext header names (NULL for a malformed header), as SQL. */
const HEADER_VERSION = 'envelope_key_version(ciphertext)';

/** Records of the tenant whose ciphertext header names a DEK version below `keyVersion`. */
export async function countRecordsBelowKeyVersion(db: Queryable, tenantId: string, keyVersion: number): Promise<number> {
  const { rows } = await db.query<{ n: string }>(`SELECT count(*) AS n FROM records WHERE tenant_id = $1 AND ${HEADER_VERSION} < $2`, [
    tenantId,
    keyVersion,
  ]);
  return Number(rows[0]?.n ?? 0);
}

/**
 * Re-encrypts up to `batchSize` of the tenant's records whose header names a DEK version below
 * `target` (the new primary) and returns how many moved and how many are left.
 */
export async function reencryptRecordBatch(
  pool: Pool,
  keyring: TenantKeyring,
  args: { tenantId: string; target: DataKey; batchSize: number },
  ctx: AuditContext,
): Promise<{ reencrypted: number; remaining: number }> {
  const { tenantId, target, batchSize } = args;
  const reencrypted = await withTransaction(pool, async (client) => {
    const { rows } = await client.query<StoredRow>(
      `SELECT integration_id, resource_type, resource_id, version_id, ${HEADER_VERSION}::int AS header_version, ciphertext
         FROM records WHERE tenant_id = $1 AND ${HEADER_VERSION} < $2
        ORDER BY integration_id, resource_type, resource_id LIMIT $3 FOR UPDATE SKIP LOCKED`,
      [tenantId, target.version, batchSize],
    );
    if (rows.length === 0) return 0;
    const fresh: Buffer[] = [];
    for (const r of rows) {
      const recordCtx = { tenantId, integrationId: r.integration_id, resourceType: r.resource_type, resourceId: r.resource_id };
      const plaintext = await decryptRecord(r.ciphertext, recordCtx, (t, v) => keyring.dataKey(t, v, ctx));
      try {
        fresh.push(encryptRecord(target, recordCtx, plaintext));
      } finally {
        plaintext.fill(0);
      }
    }
    const res = await client.query(
      `UPDATE records AS r SET ciphertext = t.ciphertext, key_version = $2
         FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::int[], $8::bytea[])
           AS t(integration_id, resource_type, resource_id, version_id, header_version, ciphertext)
        WHERE r.tenant_id = $1 AND r.integration_id = t.integration_id AND r.resource_type = t.resource_type
          AND r.resource_id = t.resource_id AND r.version_id = t.version_id
          AND envelope_key_version(r.ciphertext) = t.header_version`,
      [
        tenantId,
        target.version,
        rows.map((r) => r.integration_id),
        rows.map((r) => r.resource_type),
        rows.map((r) => r.resource_id),
        rows.map((r) => r.version_id),
        rows.map((r) => r.header_version),
        fresh,
      ],
    );
    const fromVersions = [...new Set(rows.map((r) => r.header_version))].sort((a, b) => a - b);
    await appendAuditEvents(client, [
      {
        ...ctx,
        action: 'records.reencrypted',
        outcome: 'success',
        tenantId,
        details: { count: res.rowCount ?? 0, fromKeyVersions: fromVersions, toKeyVersion: target.version },
      },
    ]);
    return res.rowCount ?? 0;
  });
  return { reencrypted, remaining: await countRecordsBelowKeyVersion(pool, tenantId, target.version) };
}

export interface ReencryptionCheck {
  /** Every record of the tenant, counted by the DEK version its ciphertext header names. */
  records: number;
  underOlderKeys: number;
  underKeyVersion: number;
  /** Records under `keyVersion` decrypted in full (GCM tag checked), picked at random. */
  sampleDecrypted: number;
}

/**
 * The check behind "no record left under an older key": counts the tenant's records by the version
 * their ciphertext headers name and decrypts a random sample of those under `keyVersion`. Audited
 * (`records.reencryption_verified`, a failure when any record is still under an older key).
 */
export async function verifyReencryption(
  pool: Pool,
  keyring: TenantKeyring,
  args: { tenantId: string; keyVersion: number; sampleSize: number },
  ctx: AuditContext,
): Promise<ReencryptionCheck> {
  const { tenantId, keyVersion, sampleSize } = args;
  const counts = await pool.query<{ records: string; older: string; current: string }>(
    `SELECT count(*) AS records, count(*) FILTER (WHERE v < $2) AS older, count(*) FILTER (WHERE v = $2) AS current
       FROM (SELECT ${HEADER_VERSION} AS v FROM records WHERE tenant_id = $1) q`,
    [tenantId, keyVersion],
  );
  const sample = await pool.query<Omit<StoredRow, 'version_id' | 'header_version'>>(
    `SELECT integration_id, resource_type, resource_id, ciphertext FROM records
      WHERE tenant_id = $1 AND ${HEADER_VERSION} = $2 ORDER BY random() LIMIT $3`,
    [tenantId, keyVersion, sampleSize],
  );
  for (const r of sample.rows) {
    const at = { tenantId, integrationId: r.integration_id, resourceType: r.resource_type, resourceId: r.resource_id };
    (await decryptRecord(r.ciphertext, at, (t, v) => keyring.dataKey(t, v, ctx))).fill(0);
  }
  const row = counts.rows[0];
  const check = {
    records: Number(row?.records ?? 0),
    underOlderKeys: Number(row?.older ?? 0),
    underKeyVersion: Number(row?.current ?? 0),
    sampleDecrypted: sample.rows.length,
  };
  await recordAuditEvent(pool, {
    ...ctx,
    action: 'records.reencryption_verified',
    outcome: check.underOlderKeys === 0 ? 'success' : 'failure',
    tenantId,
    details: { keyVersion, ...check },
  });
  return check;
}

async function lockTenant(client: PoolClient, tenantId: string): Promise<void> {
  const t = await client.query('SELECT 1 FROM tenants WHERE id = $1 FOR UPDATE', [tenantId]);
  if (t.rowCount === 0) throw new NotFoundError('tenant', tenantId);
}

/**
 * Rollback of a tenant DEK rotation: `previous` is the primary for writes again and `rotated` becomes
 * decrypt-only, so records already re-encrypted under it stay readable (dual read). Idempotent.
 */
export async function restoreTenantPrimaryKey(pool: Pool, tenantId: string, previous: number, rotated: number, ctx: AuditContext): Promise<{ changed: boolean }> {
  return withTransaction(pool, async (client) => {
    await lockTenant(client, tenantId);
    const { rows } = await client.query<{ key_version: number; status: string }>('SELECT key_version, status FROM data_keys WHERE tenant_id = $1 AND key_version IN ($2, $3)', [
      tenantId,
      previous,
      rotated,
    ]);
    const prev = rows.find((r) => r.key_version === previous);
    if (!prev || prev.status === 'destroyed') throw new ConflictError('data key of tenant', tenantId, `version ${previous} cannot become primary again`);
    if (prev.status === 'primary') return { changed: false };
    await client.query(`UPDATE data_keys SET status = 'decrypt_only' WHERE tenant_id = $1 AND key_version = $2 AND status = 'primary'`, [tenantId, rotated]);
    await client.query(`UPDATE data_keys SET status = 'primary' WHERE tenant_id = $1 AND key_version = $2`, [tenantId, previous]);
    await appendAuditEvents(client, [{ ...ctx, action: 'key.dek.rotation_rolled_back', outcome: 'success', tenantId, details: { primaryKeyVersion: previous, decryptOnlyKeyVersion: rotated } }]);
    return { changed: true };
  });
}

/**
 * DEK v1 is the source of the tenant's pseudonym key: it may go only once that key is stored
 * (TenantKeyring.ensurePseudonymKey), or every pseudonym would become unreproducible.
 */
async function assertPseudonymKeyStored(client: PoolClient, tenantId: string): Promise<void> {
  const { rows } = await client.query<{ status: string }>(
    `SELECT status FROM tenant_purpose_keys WHERE tenant_id = $1 AND purpose = 'pseudonym' FOR SHARE`,
    [tenantId],
  );
  if (rows.length === 0) throw new ConflictError('data key of tenant', tenantId, 'version 1 derives the pseudonym key, which is not stored yet');
}

/**
 * The DEK versions that vendor writes queued during an incident (pending_vendor_actions, not yet
 * replayed) are encrypted under: re-encryption does not move them, so those versions must outlive the
 * queue. The version is read from the envelope header (lib/security/envelope.ts: format byte, 2-byte
 * key id length, key id, 4-byte key version).
 */
async function versionsHeldByQueuedWrites(client: PoolClient, tenantId: string): Promise<Set<number>> {
  const { rows } = await client.query<{ v: string }>(
    `SELECT DISTINCT ${HEADER_VERSION} AS v FROM pending_vendor_actions
      WHERE tenant_id = $1 AND replayed_at IS NULL AND ${HEADER_VERSION} IS NOT NULL`,
    [tenantId],
  );
  return new Set(rows.map((r) => Number(r.v)));
}

/**
 * Refuses (ConflictError) while any record's ciphertext header names `keyVersion`, saying how many
 * and where (integration and resource type; resource ids can point at a patient, so none).
 */
async function assertNoRecordNeeds(client: PoolClient, tenantId: string, keyVersion: number): Promise<void> {
  const { rows } = await client.query<{ integration_id: string; resource_type: string; n: string }>(
    `SELECT integration_id, resource_type, count(*) AS n FROM records WHERE tenant_id = $1 AND ${HEADER_VERSION} = $2
      GROUP BY integration_id, resource_type ORDER BY count(*) DESC, integration_id, resource_type`,
    [tenantId, keyVersion],
  );
  if (rows.length === 0) return;
  const total = rows.reduce((sum, r) => sum + Number(r.n), 0);
  const where = rows.slice(0, 5).map((r) => `${r.n} ${r.resource_type} of integration ${r.integration_id}`);
  if (rows.length > 5) where.push(`${rows.length - 5} more groups`);
  throw new ConflictError(
    'data key of tenant',
    tenantId,
    `version ${keyVersion} cannot be destroyed: the ciphertext headers of ${total} records still name it ` +
      `(${where.join(', ')}); re-encrypt them first`,
  );
}

/**
 * Destroys one superseded DEK version once no record's ciphertext header names it (checked in the same
 * transaction, under the key row's lock); version 1 only once the pseudonym key is stored. A version
 * that queued vendor writes still need is kept (decrypt-only; a later rotation's sweep destroys it).
 * Idempotent. A refusal is audited (best effort) and thrown.
 */
export async function destroyTenantKeyVersion(
  pool: Pool,
  tenantId: string,
  keyVersion: number,
  ctx: AuditContext,
): Promise<{ changed: boolean; keptFor?: string }> {
  try {
    return await withTransaction(pool, async (client) => {
      await lockTenant(client, tenantId);
      if (keyVersion === 1) await assertPseudonymKeyStored(client, tenantId);
      const { rows } = await client.query<{ status: string }>('SELECT status FROM data_keys WHERE tenant_id = $1 AND key_version = $2 FOR UPDATE', [tenantId, keyVersion]);
      const status = rows[0]?.status;
      if (!status) throw new NotFoundError(`data key of tenant ${tenantId}`, String(keyVersion));
      if (status === 'destroyed') return { changed: false };
      if (status === 'primary') throw new ConflictError('data key of tenant', tenantId, `version ${keyVersion} is the primary`);
      await assertNoRecordNeeds(client, tenantId, keyVersion);
      if ((await versionsHeldByQueuedWrites(client, tenantId)).has(keyVersion)) return { changed: false, keptFor: 'queued vendor writes' };
      await client.query(`UPDATE data_keys SET status = 'destroyed', wrapped_key = NULL, destroyed_at = now() WHERE tenant_id = $1 AND key_version = $2`, [tenantId, keyVersion]);
      await appendAuditEvents(client, [{ ...ctx, action: 'key.dek.destroyed', outcome: 'success', tenantId, details: { keyVersions: [keyVersion], count: 1 } }]);
      return { changed: true };
    });
  } catch (err) {
    const errorCode = err instanceof EhrError ? err.code : 'UNCLASSIFIED';
    const details = { keyVersions: [keyVersion], errorCode };
    await recordAuditEvent(pool, { ...ctx, action: 'key.dek.destroyed', outcome: 'failure', tenantId, details }).catch(() => undefined);
    throw err;
  }
}

/**
 * Destroys every other superseded (decrypt-only) DEK version of the tenant that no record's ciphertext
 * header names: DEK v1 that rotations before the pseudonym key existed kept, and versions left
 * decrypt-only by a rolled-back rotation. Versions still holding records or queued vendor writes are
 * left alone. Returns the versions destroyed.
 */
export async function destroyUnusedKeyVersions(pool: Pool, tenantId: string, ctx: AuditContext): Promise<{ destroyed: number[] }> {
  return withTransaction(pool, async (client) => {
    await lockTenant(client, tenantId);
    const { rows } = await client.query<{ key_version: number }>(
      `SELECT key_version FROM data_keys d WHERE tenant_id = $1 AND status = 'decrypt_only'
          AND NOT EXISTS (SELECT 1 FROM records r
                           WHERE r.tenant_id = d.tenant_id AND envelope_key_version(r.ciphertext) = d.key_version)
        ORDER BY key_version FOR UPDATE`,
      [tenantId],
    );
    const held = await versionsHeldByQueuedWrites(client, tenantId);
    const versions = rows.map((r) => r.key_version).filter((v) => !held.has(v));
    if (versions.length === 0) return { destroyed: [] };
    if (versions.includes(1)) await assertPseudonymKeyStored(client, tenantId);
    await client.query(`UPDATE data_keys SET status = 'destroyed', wrapped_key = NULL, destroyed_at = now() WHERE tenant_id = $1 AND key_version = ANY($2::int[])`, [
      tenantId,
      versions,
    ]);
    await appendAuditEvents(client, [{ ...ctx, action: 'key.dek.destroyed', outcome: 'success', tenantId, details: { keyVersions: versions, count: versions.length } }]);
    return { destroyed: versions };
  });
}
